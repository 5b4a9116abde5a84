"""HTTP for the cloud client: one `requests` session per client with a timeout on every request,
urllib3 `Retry` for idempotent verbs (429/502/503/504 and connection failures, honouring Retry-After),
a bounded Retry-After wait for POST and PATCH answered 429/503 (refused before any work was done),
re-authentication on 401, and the services' error bodies turned into typed errors.

Never retried: a POST or PATCH that got no answer (it may have been carried out; the caller
re-observes instead), and a streamed upload (its body cannot be replayed).
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError
from urllib3.util.retry import Retry

from reconciler.cloud.auth import Authenticator
from reconciler.cloud.errors import CloudApiError, CloudResponseError, CloudTransportError, api_error_class

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = (429, 502, 503, 504)
# Connect timeout, read timeout (seconds): every request has both.
DEFAULT_TIMEOUT = (10.0, 120.0)
MAX_RETRY_AFTER_S = 60.0


class _Retry(Retry):
    """urllib3's Retry with an injectable sleep, so tests never wait."""

    sleeper: Callable[[float], None] = staticmethod(time.sleep)

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after:
            self.sleeper(min(retry_after, MAX_RETRY_AFTER_S))
            return True
        return False

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            self.sleeper(backoff)


class _EnvironmentReadOnce(requests.Session):
    """A session that reads proxies (with no_proxy) and the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)
    from the environment once per origin, where requests re-reads them on every request: that was a
    quarter of the client's CPU per call in a refresh of 3,000 members calls (docs/performance.md).

    ~/.netrc is never consulted (requests would otherwise add its credentials as a Basic Authorization
    header to every request without one): every request here carries a token.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # what requests would read per request, read below once per origin
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        origin = urlsplit(url)[:2]
        with self._environment_lock:
            if origin not in self._environment:
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                self._environment[origin] = (get_environ_proxies(url), bundle)
            env_proxies, bundle = self._environment[origin]
        # What requests does with trust_env: explicit settings win, the environment fills in.
        if proxies is not None:
            for scheme, proxy in env_proxies.items():
                proxies.setdefault(scheme, proxy)
        if verify is True or verify is None:
            verify = bundle or verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """What requests prepares, without its cookie and settings merging when there is nothing to merge (no
        cookie, no session auth or params): that merging was a sixth of the client's CPU per call, most of it
        copying an empty cookie jar and checking the types of the settings (docs/performance.md)."""
        if len(self.cookies) or self.auth or self.params or request.cookies or request.auth or request.files:
            return super().prepare_request(request)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        prepared.prepare_url(request.url, request.params)
        prepared.prepare_headers(self._headers_with(request.headers))
        prepared._cookies = RequestsCookieJar()  # what prepare_cookies keeps for no cookie, without its header walk
        prepared.prepare_body(request.data, request.files, request.json)
        prepared.prepare_auth(None, request.url)  # credentials in the URL, as requests reads them
        prepared.prepare_hooks(merge_hooks(request.hooks, self.hooks))
        return prepared

    def _headers_with(self, headers: Mapping[str, str | None] | None) -> CaseInsensitiveDict[str]:
        """The session's headers overridden by the request's, a None value removing one (requests' merge_setting)."""
        merged = CaseInsensitiveDict(self.headers)
        merged.update(headers or {})
        for name in [name for name, value in merged.items() if value is None]:
            del merged[name]
        return merged


def make_session(retries: int, sleep: Callable[[float], None]) -> requests.Session:
    retry_class = type("Retry", (_Retry,), {"sleeper": staticmethod(sleep)})
    policy = retry_class(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=IDEMPOTENT,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = _EnvironmentReadOnce()
    adapter = HTTPAdapter(max_retries=policy, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Transport:
    """Sends one API request and returns the response, or raises a typed error."""

    def __init__(
        self,
        auth: Authenticator,
        session: requests.Session,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = auth
        self._session = session
        # A streamed upload cannot be replayed: its own session has no retries.
        self._once = _EnvironmentReadOnce()
        self._timeout = timeout
        self._retries = retries
        self._sleep = sleep

    def close(self) -> None:
        self._session.close()
        self._once.close()

    def request(
        self,
        service: str,
        region: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """`path` is relative to the service's endpoint in `region`. Raises CloudApiError for >= 400."""
        url = self.auth.endpoint(service, region) + path
        replayable = data is None
        session = self._session if replayable else self._once
        rate_limited_waits = 0
        reauthenticated = False
        while True:
            request_headers = {"Accept": "application/json", **(headers or {}), **self.auth.auth_headers()}
            try:
                request = requests.Request(method, url, json=json, data=data, headers=request_headers, params=params)
                answer = _send(session, request, timeout=self._timeout, stream=stream)
            except requests.RequestException as err:
                raise CloudTransportError(
                    f"{service} {method} {_path_of(url)}: no answer ({_describe(err)})",
                    hint="the request may or may not have been carried out; the next plan re-reads the cloud",
                ) from None
            log.debug("%s %s -> %s", method, _path_of(url), answer.status_code)
            if answer.status_code == 401 and not reauthenticated and replayable:
                # The token expired or was revoked: authenticate again, once.
                answer.close()
                self.auth.invalidate()
                reauthenticated = True
                continue
            if (
                answer.status_code in (429, 503)
                and method not in IDEMPOTENT
                and replayable
                and rate_limited_waits < self._retries
                and (wait := _retry_after(answer)) is not None
            ):
                # Refused before any work was done: safe to send again after the server's wait.
                answer.close()
                rate_limited_waits += 1
                self._sleep(min(wait, MAX_RETRY_AFTER_S))
                continue
            if answer.status_code >= 400:
                raise error_from_response(service, method, url, answer)
            return answer


def _send(session: requests.Session, request: requests.Request, *, timeout: Any, stream: bool) -> requests.Response:
    """What `session.request` does, but the path keeps its encoded dot segments: requests decodes "%2E"
    to "." while preparing, so a member id ".." sent as "%2E%2E" would go out as "..", which a server or
    proxy resolves to the parent (the image itself)."""
    prepared = session.prepare_request(request)
    prepared.url = encoded_dot_segments(prepared.url)
    settings = session.merge_environment_settings(prepared.url, {}, stream, None, None)
    return session.send(prepared, timeout=timeout, allow_redirects=True, **settings)


def encoded_dot_segments(url: str) -> str:
    """`url` with every path segment of dots alone ("." or "..") percent-encoded. A prepared URL has one
    only where the caller encoded it (urllib3 already removed literal ones), so this restores the caller's."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if not any(segment and set(segment) == {"."} for segment in segments):
        return url
    path = "/".join("%2E" * len(s) if s and set(s) == {"."} else s for s in segments)
    return urlunsplit(parts._replace(path=path))


def _retry_after(answer: requests.Response) -> float | None:
    value = answer.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _path_of(url: str) -> str:
    return requests.utils.urlparse(url).path


def _describe(err: requests.RequestException) -> str:
    # Once urllib3's retries are spent, a read timeout arrives as a ConnectionError wrapping
    # MaxRetryError(reason=ReadTimeoutError): look at the reason too.
    reason = getattr(err.args[0], "reason", None) if err.args else None
    if isinstance(err, requests.Timeout) or isinstance(reason, (ReadTimeoutError, ConnectTimeoutError)):
        return "timed out"
    if isinstance(err, requests.ConnectionError):
        return "connection failed or dropped"
    return type(err).__name__


def error_from_response(service: str, method: str, url: str, answer: requests.Response) -> CloudApiError:
    """A typed error carrying the server's own message, whatever shape its body has."""
    message = server_message(answer)
    cls = api_error_class(answer.status_code)
    return cls(answer.status_code, message, service=service, method=method, path=_path_of(url))


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _clean(text: str, limit: int = 500) -> str:
    """Plain text from a message that may carry HTML residue (Glance's `<br /><br />`)."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_message(answer: requests.Response) -> str:
    """The message in an error body: Glance `{"message", "code", "title"}`, Nova/Cinder
    `{"<fault>": {"message", "code"}}`, Keystone `{"error": {...}}`, or HTML / plain text."""
    text = answer.text or ""
    content_type = answer.headers.get("Content-Type", "")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            body = answer.json()
        except ValueError:
            return f"(an error body that is not valid JSON: {_clean(text, 200)!r})"
        if isinstance(body, dict):
            if isinstance(body.get("message"), str):
                return _clean(body["message"])
            for value in body.values():
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return _clean(value["message"])
        return f"(an error body without a message: {_clean(text, 200)!r})"
    if not text.strip():
        return answer.reason or "(no message)"
    if "html" in content_type or text.lstrip().startswith("<"):
        # webob's HTML page: the <title> and <h1> repeat the status; the rest of the body explains.
        body = re.search(r"<body[^>]*>(.*)</body>", text, re.S | re.I)
        inner = re.sub(r"<(title|h1)[^>]*>.*?</\1>", " ", body.group(1) if body else text, flags=re.S | re.I)
        return _clean(inner) or answer.reason or "(no message)"
    return _clean(text)


def json_body(answer: requests.Response, what: str) -> Any:
    """The answer's JSON document, or a clear error if it is not JSON (an HTML page, a truncated body)."""
    try:
        return answer.json()
    except ValueError:
        kind = answer.headers.get("Content-Type", "no content type")
        raise CloudResponseError(
            f"{what}: the server answered {answer.status_code} with a body that is not valid JSON ({kind})"
        ) from None
