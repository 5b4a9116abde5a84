"""Credentials and authentication: identity v2 tokens for NHN Cloud (and the simulator), and a trusted-
header mode for a real Glance run without Keystone (the contract tests' third tier).

Credentials come only from the environment: `NHN_CLOUD_USERNAME`,
`NHN_CLOUD_API_PASSWORD`, optional `NHN_CLOUD_TENANT_ID` and `NHN_CLOUD_IDENTITY_URL`, or the OpenStack
`OS_*` names; a root with `cloud.credentials: PREFIX` reads PREFIX_USERNAME, PREFIX_API_PASSWORD and
PREFIX_TENANT_ID instead (their lists and the identity URL's rules: environment.py). The password and
tokens never appear in a repr, a log line or an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from reconciler.cloud.environment import (
    NHN_IDENTITY_URL,
    check_identity_url,
    credential_names,
    first_set,
    identity_url_setting,
)
from reconciler.cloud.errors import CloudConfigError, CloudResponseError, CloudTransportError, Unauthorized

log = logging.getLogger(__name__)

# Re-authenticate this long before the token expires, so no request races the expiry.
REFRESH_MARGIN_S = 300.0


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    identity_url: str = NHN_IDENTITY_URL
    tenant_id: str | None = None
    # The variable the tenant id came from, named when it is not the root's project.
    tenant_variable: str = field(default="NHN_CLOUD_TENANT_ID", compare=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str], prefix: str | None = None) -> Credentials:
        """The credentials of a root: from NHN_CLOUD_* (or OS_*), or with `prefix` (the root's
        `cloud.credentials`) from exactly PREFIX_USERNAME, PREFIX_API_PASSWORD and PREFIX_TENANT_ID."""
        names = credential_names(prefix)
        _, username = first_set(env, names["username"])
        _, password = first_set(env, names["password"])
        missing = [names[kind][0] for kind, value in (("username", username), ("password", password)) if not value]
        if missing:
            raise _missing_credentials(missing, prefix)
        assert username is not None and password is not None
        tenant_variable, tenant_id = first_set(env, names["tenant_id"])
        variable, url = identity_url_setting(env)
        return cls(
            username,
            password,
            check_identity_url(url, variable),
            tenant_id,
            tenant_variable=tenant_variable or names["tenant_id"][0],
        )


def _missing_credentials(missing: list[str], prefix: str | None) -> CloudConfigError:
    if prefix is None:
        return CloudConfigError(
            f"no credentials: {' and '.join(missing)} not set",
            hint="export NHN_CLOUD_USERNAME and NHN_CLOUD_API_PASSWORD (the API password from the console's "
            "API security settings, not the console password); OS_USERNAME / OS_PASSWORD work too",
        )
    # Never a fallback to NHN_CLOUD_* / OS_*: they may be another project's user, set for another root.
    return CloudConfigError(
        f"no credentials for cloud.credentials {prefix}: {' and '.join(missing)} not set",
        hint=f"export {prefix}_USERNAME and {prefix}_API_PASSWORD (the API password of the user for this root's "
        "project); a root that names cloud.credentials reads only these, never NHN_CLOUD_* or OS_*",
    )


class Authenticator(Protocol):
    """Gives requests their identity and endpoints."""

    project_id: str

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request, authenticating first if needed."""

    def invalidate(self) -> None:
        """Forget the current token (after a 401), so the next request re-authenticates."""

    def endpoint(self, service_type: str, region: str) -> str:
        """The public URL of `service_type` in `region`."""

    def regions(self, service_type: str) -> tuple[str, ...]:
        """The regions that offer `service_type`, sorted."""

    def ensure_valid_for(self, seconds: float) -> None:
        """Before a long call (a transfer): re-authenticate now if the token would expire during it."""


class KeystoneV2Auth:
    """Identity v2 tokens (NHN Cloud, the simulator): one token per project, re-issued on 401 and
    `REFRESH_MARGIN_S` before it expires; endpoints from the token's service catalog."""

    def __init__(
        self,
        credentials: Credentials,
        project_id: str,
        session: requests.Session,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if credentials.tenant_id and credentials.tenant_id != project_id:
            raise CloudConfigError(
                f"{credentials.tenant_variable} {credentials.tenant_id} is not cloud.project {project_id}",
                hint="the credentials and the root must name the same project",
            )
        self.project_id = project_id
        self._credentials = credentials
        self._session = session
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._catalog: dict[str, dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"KeystoneV2Auth(identity={self._credentials.identity_url!r}, project={self.project_id!r})"

    def auth_headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._authenticate()
            assert self._token is not None
            return {"X-Auth-Token": self._token}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def ensure_valid_for(self, seconds: float) -> None:
        """A token can expire in the middle of a long transfer, which cannot be resumed: take a fresh one
        first when the current one has less than `seconds` (plus the usual margin) to live."""
        with self._lock:
            if self._token is None or self._clock() + seconds >= self._expires_at - REFRESH_MARGIN_S:
                self._authenticate()

    def endpoint(self, service_type: str, region: str) -> str:
        self.auth_headers()  # the catalog comes with the token
        try:
            return self._catalog[service_type][region].rstrip("/")
        except KeyError:
            offered = ", ".join(sorted(self._catalog.get(service_type, {}))) or "none"
            raise CloudConfigError(
                f"the service catalog has no {service_type} endpoint in region {region} (it has: {offered})"
            ) from None

    def regions(self, service_type: str) -> tuple[str, ...]:
        self.auth_headers()
        return tuple(sorted(self._catalog.get(service_type, {})))

    def _authenticate(self) -> None:
        url = f"{self._credentials.identity_url}/tokens"
        body = {
            "auth": {
                "tenantId": self.project_id,
                "passwordCredentials": {"username": self._credentials.username, "password": self._credentials.password},
            }
        }
        try:
            answer = self._session.post(url, json=body, headers={"Accept": "application/json"}, timeout=self._timeout)
        except requests.RequestException as err:
            raise CloudTransportError(f"identity POST {url}: no answer ({type(err).__name__})") from None
        if answer.status_code == 401:
            raise Unauthorized(
                401,
                "the identity service refused the credentials",
                service="identity",
                method="POST",
                path=urlsplit(url).path,
                hint=f"check the username, the API password and that the user belongs to project {self.project_id}",
            )
        if answer.status_code != 200:
            raise CloudResponseError(f"identity POST {url}: unexpected status {answer.status_code}")
        access = _json_field(answer, "access")
        token = _dig(access, "token", "id", kind=str)
        tenant = _dig(access, "token", "tenant", "id", kind=str)
        expires = _dig(access, "token", "expires", kind=str)
        if tenant != self.project_id:
            raise CloudConfigError(
                f"the token is for tenant {tenant}, not cloud.project {self.project_id}",
                hint="set cloud.project to the tenant id the credentials belong to",
            )
        self._catalog = _parse_catalog(access.get("serviceCatalog"))
        self._token = token
        self._expires_at = _parse_time(expires)
        log.info("authenticated to %s as project %s", self._credentials.identity_url, self.project_id)


class TrustedHeaderAuth:
    """A Glance run without Keystone trusts identity headers (its "trusted" paste flavor). Only the image
    service, at one endpoint; used by the contract tests against a real Glance."""

    def __init__(self, project_id: str, image_endpoint: str, region: str = "LOCAL") -> None:
        self.project_id = project_id
        self._endpoint = image_endpoint.rstrip("/")
        self._region = region

    def auth_headers(self) -> dict[str, str]:
        return {"X-Identity-Status": "Confirmed", "X-Project-Id": self.project_id, "X-Roles": "member,reader"}

    def ensure_valid_for(self, seconds: float) -> None:
        pass  # no token: nothing expires

    def invalidate(self) -> None:
        pass

    def endpoint(self, service_type: str, region: str) -> str:
        if service_type != "image" or region != self._region:
            raise CloudConfigError(f"only the image service in region {self._region} is configured")
        return self._endpoint

    def regions(self, service_type: str) -> tuple[str, ...]:
        return (self._region,) if service_type == "image" else ()


def _json_field(answer: requests.Response, key: str) -> dict[str, Any]:
    try:
        doc = answer.json()
    except ValueError:
        raise CloudResponseError("the identity service answered with something that is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), dict):
        raise CloudResponseError(f"the identity service's answer has no {key!r} object")
    return doc[key]


def _dig(doc: Any, *path: str, kind: type) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            raise CloudResponseError(f"the identity answer lacks access.{'.'.join(path)}")
        doc = doc[key]
    if not isinstance(doc, kind):
        raise CloudResponseError(f"the identity answer's access.{'.'.join(path)} is not a {kind.__name__}")
    return doc


def _parse_catalog(raw: Any) -> dict[str, dict[str, str]]:
    if not isinstance(raw, list):
        raise CloudResponseError("the identity answer has no serviceCatalog list")
    catalog: dict[str, dict[str, str]] = {}
    for service in raw:
        if not isinstance(service, dict) or not isinstance(service.get("type"), str):
            continue
        for endpoint in service.get("endpoints") or []:
            if isinstance(endpoint, dict) and isinstance(endpoint.get("region"), str) and endpoint.get("publicURL"):
                catalog.setdefault(service["type"], {})[endpoint["region"]] = str(endpoint["publicURL"])
    return catalog


def _parse_time(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CloudResponseError(f"the token's expiry {value!r} is not an ISO time") from None
    if moment.tzinfo is None:  # Keystone v2 writes UTC, sometimes without the Z
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
