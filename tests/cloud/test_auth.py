"""Credentials and identity v2 authentication (reconciler.cloud.auth): the environment names, the identity
URL rules, no password anywhere it could leak, the token's tenant, re-authentication on 401 and before
expiry, and endpoints from the service catalog."""

from __future__ import annotations

import json
import time

import pytest
import requests
from support import OWNER, OWNER_USER, PARTNER

from reconciler.cloud.auth import (
    NHN_IDENTITY_URL,
    REFRESH_MARGIN_S,
    Credentials,
    KeystoneV2Auth,
    check_identity_url,
)
from reconciler.cloud.errors import CloudConfigError, Unauthorized
from reconciler.cloud.nhn import connect
from reconciler.cloud.transport import make_session
from reconciler.simulator.identity import TokenStore

SECRET = "s3cr3t-API-p4ss"
TOKENS_ROUTE = "POST /v2.0/tokens"
IMAGES_ROUTE = "GET /image/{region}/v2/images"


def stats(sim) -> dict[str, int]:
    answer = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10)
    assert answer.status_code == 200
    return answer.json()["routes"]


def no_secret(error: BaseException, secret: str = SECRET) -> None:
    assert secret not in str(error)
    assert secret not in repr(error)
    assert secret not in (getattr(error, "hint", None) or "")


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


# -- Credentials.from_environment -------------------------------------------------------------------


def test_from_environment_reads_nhn_names():
    """NHN_CLOUD_USERNAME, _API_PASSWORD, _TENANT_ID and _IDENTITY_URL fill the credentials."""
    creds = Credentials.from_environment(
        {
            "NHN_CLOUD_USERNAME": "dev@example.com",
            "NHN_CLOUD_API_PASSWORD": SECRET,
            "NHN_CLOUD_TENANT_ID": OWNER,
            "NHN_CLOUD_IDENTITY_URL": "https://identity.example.com/v2.0",
        }
    )
    assert creds == Credentials("dev@example.com", SECRET, "https://identity.example.com/v2.0", OWNER)


def test_from_environment_falls_back_to_os_names():
    """OS_USERNAME, OS_PASSWORD, OS_TENANT_ID and OS_AUTH_URL work when no NHN_CLOUD_* name is set."""
    creds = Credentials.from_environment(
        {
            "OS_USERNAME": "os-user",
            "OS_PASSWORD": SECRET,
            "OS_TENANT_ID": OWNER,
            "OS_AUTH_URL": "https://keystone.example.com/v2.0",
        }
    )
    assert creds == Credentials("os-user", SECRET, "https://keystone.example.com/v2.0", OWNER)


def test_from_environment_accepts_os_project_id():
    """OS_PROJECT_ID gives the tenant when OS_TENANT_ID is not set."""
    creds = Credentials.from_environment({"OS_USERNAME": "u", "OS_PASSWORD": SECRET, "OS_PROJECT_ID": PARTNER})
    assert creds.tenant_id == PARTNER


def test_from_environment_nhn_names_win_over_os_names():
    """When both are set, every NHN_CLOUD_* name wins over its OS_* counterpart."""
    creds = Credentials.from_environment(
        {
            "NHN_CLOUD_USERNAME": "nhn-user",
            "OS_USERNAME": "os-user",
            "NHN_CLOUD_API_PASSWORD": SECRET,
            "OS_PASSWORD": "os-password",
            "NHN_CLOUD_TENANT_ID": OWNER,
            "OS_TENANT_ID": PARTNER,
            "OS_PROJECT_ID": PARTNER,
            "NHN_CLOUD_IDENTITY_URL": "https://nhn.example.com/v2.0",
            "OS_AUTH_URL": "https://os.example.com/v2.0",
        }
    )
    assert creds == Credentials("nhn-user", SECRET, "https://nhn.example.com/v2.0", OWNER)


def test_from_environment_default_identity_url_is_nhn_https():
    """Without an identity URL the default is NHN's public https identity v2 endpoint."""
    creds = Credentials.from_environment({"NHN_CLOUD_USERNAME": "u", "NHN_CLOUD_API_PASSWORD": SECRET})
    assert creds.identity_url == NHN_IDENTITY_URL
    assert creds.identity_url == "https://api-identity-infrastructure.nhncloudservice.com/v2.0"
    assert creds.tenant_id is None


def test_from_environment_missing_username_names_the_variable():
    """A missing username is a CloudConfigError naming NHN_CLOUD_USERNAME, with a hint, and no password."""
    with pytest.raises(CloudConfigError) as caught:
        Credentials.from_environment({"NHN_CLOUD_API_PASSWORD": SECRET})
    assert "NHN_CLOUD_USERNAME" in str(caught.value)
    assert "NHN_CLOUD_API_PASSWORD" not in str(caught.value)
    assert caught.value.hint
    no_secret(caught.value)


def test_from_environment_missing_password_names_the_variable():
    """A missing password is a CloudConfigError naming NHN_CLOUD_API_PASSWORD, with a hint."""
    with pytest.raises(CloudConfigError) as caught:
        Credentials.from_environment({"NHN_CLOUD_USERNAME": "u", "NHN_CLOUD_API_PASSWORD": ""})
    assert "NHN_CLOUD_API_PASSWORD" in str(caught.value)
    assert "NHN_CLOUD_USERNAME" not in str(caught.value)
    assert caught.value.hint and "NHN_CLOUD_API_PASSWORD" in caught.value.hint


def test_from_environment_missing_both_names_both():
    """With nothing set, the error names both variables."""
    with pytest.raises(CloudConfigError) as caught:
        Credentials.from_environment({})
    assert "NHN_CLOUD_USERNAME" in str(caught.value)
    assert "NHN_CLOUD_API_PASSWORD" in str(caught.value)


def test_from_environment_checks_the_identity_url():
    """An OS_AUTH_URL over plain http to a remote host is refused, with no password in the error."""
    with pytest.raises(CloudConfigError) as caught:
        Credentials.from_environment(
            {"OS_USERNAME": "u", "OS_PASSWORD": SECRET, "OS_AUTH_URL": "http://keystone.example.com/v2.0"}
        )
    no_secret(caught.value)


def test_from_environment_normalises_the_identity_url():
    """A trailing slash on the identity URL is dropped."""
    creds = Credentials.from_environment(
        {"OS_USERNAME": "u", "OS_PASSWORD": SECRET, "OS_AUTH_URL": "https://keystone.example.com/v2.0/"}
    )
    assert creds.identity_url == "https://keystone.example.com/v2.0"


# -- check_identity_url ---------------------------------------------------------------------------


def test_plain_http_refused_for_a_remote_host():
    """http to a non-loopback host is refused with a hint to use https."""
    with pytest.raises(CloudConfigError) as caught:
        check_identity_url("http://example.com/v2.0")
    assert "http" in str(caught.value)
    assert caught.value.hint and "https" in caught.value.hint


@pytest.mark.parametrize(
    "url", ["http://localhost.example.com/v2.0", "http://10.0.0.1/v2.0", "http://127.example.com/v2.0"]
)
def test_plain_http_refused_for_hosts_that_only_look_local(url):
    """http to a host that merely resembles loopback (a name, a private address) is refused."""
    with pytest.raises(CloudConfigError):
        check_identity_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/v2.0",
        "http://localhost:5000/v2.0",
        "http://[::1]:5000/v2.0",
        "http://127.0.0.2/v2.0",
        "https://example.com/v2.0",
    ],
)
def test_loopback_http_and_any_https_accepted(url):
    """http is accepted for 127.0.0.0/8, localhost and [::1]; https for any host."""
    assert check_identity_url(url) == url


@pytest.mark.parametrize(
    "url", ["https://example.com/v3", "https://example.com/", "https://example.com/v2.0/tokens", "http://127.0.0.1"]
)
def test_url_not_ending_in_v2_0_refused(url):
    """An identity URL that does not end in /v2.0 is refused, with a hint showing the expected form."""
    with pytest.raises(CloudConfigError) as caught:
        check_identity_url(url)
    assert "/v2.0" in str(caught.value)
    assert caught.value.hint and "/v2.0" in caught.value.hint


@pytest.mark.parametrize("url", ["ftp://example.com/v2.0", "example.com/v2.0", "https:///v2.0"])
def test_non_http_url_refused(url):
    """A URL that is not http(s) with a host is refused."""
    with pytest.raises(CloudConfigError):
        check_identity_url(url)


def test_trailing_slash_normalised():
    """A trailing slash is removed."""
    assert check_identity_url("https://example.com/v2.0/") == "https://example.com/v2.0"
    assert check_identity_url("http://127.0.0.1:5000/v2.0//") == "http://127.0.0.1:5000/v2.0"


# -- no secret in repr / errors -------------------------------------------------------------------


def test_credentials_repr_has_no_password():
    """repr and str of Credentials never show the password."""
    creds = Credentials("dev@example.com", SECRET, "https://example.com/v2.0", OWNER)
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert "dev@example.com" in repr(creds)


def test_tenant_mismatch_refused_before_any_request(make_sim):
    """NHN_CLOUD_TENANT_ID naming another project than cloud.project: CloudConfigError before any request."""
    sim = make_sim()
    creds = Credentials(OWNER_USER[0], OWNER_USER[1], sim.identity_url, tenant_id=PARTNER)
    with pytest.raises(CloudConfigError) as caught:
        connect(creds, OWNER, sleep=Recorder())
    assert PARTNER in str(caught.value) and OWNER in str(caught.value)
    assert caught.value.hint
    no_secret(caught.value, OWNER_USER[1])
    assert stats(sim).get(TOKENS_ROUTE, 0) == 0


class _FakeSession:
    """A session whose token POST answers a fixed identity document."""

    def __init__(self, access: dict) -> None:
        self.access = access
        self.posts = 0

    def post(self, url, json=None, headers=None, timeout=None):
        self.posts += 1
        answer = requests.Response()
        answer.status_code = 200
        answer._content = _json_bytes({"access": self.access})
        answer.headers["Content-Type"] = "application/json"
        return answer


def _json_bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _access(tenant: str, token: str = "tok-1", expires: str = "2999-01-01T00:00:00Z") -> dict:
    return {
        "token": {"id": token, "expires": expires, "tenant": {"id": tenant}},
        "serviceCatalog": [
            {"type": "image", "endpoints": [{"region": "KR1", "publicURL": "https://kr1-image.example.com"}]}
        ],
    }


def test_token_for_another_tenant_is_a_config_error():
    """A token whose tenant is not cloud.project gives CloudConfigError naming both, with a hint."""
    creds = Credentials("u", SECRET, "https://identity.example.com/v2.0")
    auth = KeystoneV2Auth(creds, OWNER, _FakeSession(_access(PARTNER)))  # type: ignore[arg-type]
    with pytest.raises(CloudConfigError) as caught:
        auth.auth_headers()
    assert PARTNER in str(caught.value) and OWNER in str(caught.value)
    assert caught.value.hint
    no_secret(caught.value)


def test_wrong_password_is_unauthorized_with_hint(make_sim):
    """A wrong password: Unauthorized (401) with a hint; neither message nor hint holds the password."""
    sim = make_sim()
    client = connect(Credentials(OWNER_USER[0], SECRET, sim.identity_url), OWNER, sleep=Recorder())
    try:
        with pytest.raises(Unauthorized) as caught:
            client.list_images("KR1")
    finally:
        client.close()
    error = caught.value
    assert error.status == 401
    assert error.service == "identity"
    assert error.hint and "password" in error.hint
    no_secret(error)
    assert stats(sim)[TOKENS_ROUTE] == 1  # a refused login is not retried


# -- re-authentication ----------------------------------------------------------------------------


def test_reauthenticates_once_on_401(make_sim):
    """When the cloud forgets the token (401), the client authenticates again and the call succeeds."""
    sim = make_sim()
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=Recorder())
    try:
        first = client.list_images("KR1")
        before = client._http.auth.auth_headers()["X-Auth-Token"]
        sim.app.tokens = TokenStore()  # the simulator forgets every token, as after a restart
        second = client.list_images("KR1")
        after = client._http.auth.auth_headers()["X-Auth-Token"]
    finally:
        client.close()
    assert [i.id for i in second] == [i.id for i in first]
    assert after != before
    routes = stats(sim)
    assert routes[TOKENS_ROUTE] == 2
    assert routes[IMAGES_ROUTE] == 3  # one 200, one 401, one 200 after re-authenticating


def test_persistent_401_is_unauthorized_after_one_reauthentication(make_sim):
    """A 401 that persists after re-authenticating raises Unauthorized; the client re-authenticates only once."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": [1, 2, 3], "status": 401}])
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=Recorder())
    try:
        with pytest.raises(Unauthorized) as caught:
            client.list_images("KR1")
    finally:
        client.close()
    assert caught.value.status == 401
    routes = stats(sim)
    assert routes[TOKENS_ROUTE] == 2
    assert routes[IMAGES_ROUTE] == 2


def test_refreshes_the_token_shortly_before_expiry(make_sim):
    """The token is reused until REFRESH_MARGIN_S before it expires; then auth_headers() gets a new one."""
    lifetime = 3600
    sim = make_sim(token_lifetime_s=lifetime)
    start = time.time()
    now = [start]
    session = make_session(0, lambda s: None)
    auth = KeystoneV2Auth(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, session, clock=lambda: now[0])
    try:
        first = auth.auth_headers()["X-Auth-Token"]
        assert auth.auth_headers()["X-Auth-Token"] == first
        now[0] = start + lifetime - REFRESH_MARGIN_S - 10  # still well inside the margin
        assert auth.auth_headers()["X-Auth-Token"] == first
        assert stats(sim)[TOKENS_ROUTE] == 1
        now[0] = start + lifetime - REFRESH_MARGIN_S + 5  # inside the refresh window
        second = auth.auth_headers()["X-Auth-Token"]
        assert second != first
        assert stats(sim)[TOKENS_ROUTE] == 2
    finally:
        session.close()


def test_a_long_transfer_gets_a_token_that_outlives_it(make_sim):
    """Before a transfer that may take longer than the token has left, a fresh token is taken: a stream
    cannot be resumed, so it must not start on a token about to expire."""
    lifetime = 3600
    sim = make_sim(token_lifetime_s=lifetime)
    start = time.time()
    now = [start]
    session = make_session(0, lambda s: None)
    auth = KeystoneV2Auth(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, session, clock=lambda: now[0])
    try:
        first = auth.auth_headers()["X-Auth-Token"]
        auth.ensure_valid_for(60)  # a minute-long transfer with an hour left: the token stays
        assert auth.auth_headers()["X-Auth-Token"] == first
        now[0] = start + 1800
        auth.ensure_valid_for(1700)  # 30 min left, a 28-minute transfer, 5 min margin: renew first
        second = auth.auth_headers()["X-Auth-Token"]
        assert second != first and stats(sim)[TOKENS_ROUTE] == 2
    finally:
        session.close()


# -- endpoints ------------------------------------------------------------------------------------


def test_endpoints_come_from_the_catalog_per_region(make_sim):
    """endpoint() returns each service's public URL for the region, from the token's catalog."""
    sim = make_sim()
    session = make_session(0, lambda s: None)
    auth = KeystoneV2Auth(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, session)
    try:
        assert auth.endpoint("image", "KR1") == f"{sim.base_url}/image/KR1"
        assert auth.endpoint("image", "JP1") == f"{sim.base_url}/image/JP1"
        assert auth.endpoint("compute", "KR2") == f"{sim.base_url}/compute/KR2/v2/{OWNER}"
        assert auth.endpoint("volumev2", "KR1") == f"{sim.base_url}/volume/KR1/v2/{OWNER}"
        assert auth.regions("image") == ("JP1", "KR1", "KR2")
        assert auth.regions("no-such-service") == ()
    finally:
        session.close()
    assert stats(sim)[TOKENS_ROUTE] == 1  # one token serves every lookup


def test_unknown_region_lists_the_regions_offered(make_sim):
    """An unknown region is a CloudConfigError that lists the regions the catalog offers."""
    sim = make_sim()
    session = make_session(0, lambda s: None)
    auth = KeystoneV2Auth(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, session)
    try:
        with pytest.raises(CloudConfigError) as caught:
            auth.endpoint("image", "KR3")
    finally:
        session.close()
    message = str(caught.value)
    assert "KR3" in message
    assert "JP1, KR1, KR2" in message


def test_unknown_region_through_the_client(make_sim):
    """A client call in a region the catalog lacks fails with CloudConfigError before any service request."""
    sim = make_sim()
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=Recorder())
    try:
        with pytest.raises(CloudConfigError, match="KR3"):
            client.list_images("KR3")
    finally:
        client.close()
    assert IMAGES_ROUTE not in stats(sim)


def test_credentials_in_the_identity_url_are_refused_without_echoing_them():
    with pytest.raises(CloudConfigError) as caught:
        check_identity_url("https://user:SECRETPW@api-identity.example.com/v2.0")
    assert "SECRETPW" not in str(caught.value) and "NHN_CLOUD_API_PASSWORD" in str(caught.value)
