"""What the environment says about the cloud, without an HTTP client: the variables that name the
credentials and the identity URL, and the rules an identity URL must meet (https except for loopback, the
v2.0 base, no credentials inside it).

A root that names `cloud.credentials: PREFIX` reads exactly PREFIX_USERNAME, PREFIX_API_PASSWORD and
PREFIX_TENANT_ID, and nothing else: several projects in one run can each act as their own API user, and a
missing variable is an error rather than a silent switch to another user (NHN_CLOUD_* or OS_*). The
identity URL is the same for every root.

Pure on purpose: the one-line target description (reconciler/target.py) reads the identity URL's host
from here, and describing a run's target must not load `requests` (reconciler/cloud/auth.py does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from reconciler.cloud.errors import CloudConfigError

NHN_IDENTITY_URL = "https://api-identity-infrastructure.nhncloudservice.com/v2.0"
ENV_NAMES = {
    "username": ("NHN_CLOUD_USERNAME", "OS_USERNAME"),
    "password": ("NHN_CLOUD_API_PASSWORD", "OS_PASSWORD"),
    "tenant_id": ("NHN_CLOUD_TENANT_ID", "OS_TENANT_ID", "OS_PROJECT_ID"),
    "identity_url": ("NHN_CLOUD_IDENTITY_URL", "OS_AUTH_URL"),
}
# The prefixes of the default names above: a root naming one would read the default user under another name.
RESERVED_PREFIXES = ("NHN_CLOUD", "OS")
# A prefix's own names, by kind; the tenant id is optional like NHN_CLOUD_TENANT_ID.
PREFIXED_SUFFIXES = {"username": "_USERNAME", "password": "_API_PASSWORD", "tenant_id": "_TENANT_ID"}


def credential_names(prefix: str | None) -> dict[str, tuple[str, ...]]:
    """The variables each credential is read from, first found wins: the default NHN_CLOUD_* / OS_* names,
    or, for a root's `cloud.credentials` prefix, its three names and no other."""
    if prefix is None:
        return {kind: ENV_NAMES[kind] for kind in PREFIXED_SUFFIXES}
    return {kind: (prefix + suffix,) for kind, suffix in PREFIXED_SUFFIXES.items()}


def first_set(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | tuple[None, None]:
    """(variable, value) of the first of `names` the environment sets to something non-empty."""
    for name in names:
        if env.get(name):
            return name, env[name]
    return None, None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def identity_url_setting(env: Mapping[str, str]) -> tuple[str | None, str]:
    """(variable, URL): the identity URL the environment gives and the variable that gives it, or
    (None, NHN Cloud's) when none does."""
    for name in ENV_NAMES["identity_url"]:
        if env.get(name):
            return name, env[name]
    return None, NHN_IDENTITY_URL


def split_identity_url(url: str, variable: str | None) -> SplitResult:
    """The URL's parts; a CloudConfigError naming the variable when they cannot be read (an unclosed `[`,
    a port that is no number): one line, never the URL itself, which may carry a password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it is the check: it raises for a port that is no number
    except ValueError:
        raise CloudConfigError(
            f"{variable or 'the identity URL'} is not a valid URL (its host or port cannot be read)",
            hint=f"give the identity v2 base, like {NHN_IDENTITY_URL}",
        ) from None
    return parts


def check_identity_url(url: str, variable: str | None = None) -> str:
    """The identity base URL, normalised; https required except for loopback hosts (the simulator).
    `variable`: the environment variable it came from, named in the errors."""
    url = url.rstrip("/")
    parts = split_identity_url(url, variable)
    if parts.username is not None or parts.password is not None:
        # Never echo it: the part before "@" may hold a password.
        raise CloudConfigError(
            "the identity URL carries credentials before its host; give them in NHN_CLOUD_USERNAME and "
            "NHN_CLOUD_API_PASSWORD instead"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CloudConfigError(f"identity URL {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise CloudConfigError(
            f"identity URL {url} uses plain http: credentials would cross the network unencrypted",
            hint="use https (plain http is accepted only for loopback hosts such as the simulator)",
        )
    if not parts.path.endswith("/v2.0"):
        raise CloudConfigError(
            f"identity URL {url} does not end in /v2.0",
            hint="give the identity v2 base, like OS_AUTH_URL: https://api-identity-infrastructure.nhncloudservice.com/v2.0",
        )
    return url
