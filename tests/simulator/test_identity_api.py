"""Identity v2 over real HTTP: tokens, the service catalog, refusals, expiry and version documents, and
keystonemiddleware's 401."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
from support import OUTSIDER, OWNER, OWNER_USER, PARTNER_USER, STANDARD_SEED, Api

AUTH_REQUIRED = "The request you have made requires authentication."


def post_tokens(sim, body: dict) -> requests.Response:
    return requests.post(f"{sim.identity_url}/tokens", json=body, timeout=10, headers={"Accept": "application/json"})


def credentials(user: tuple[str, str], tenant: str) -> dict:
    return {"auth": {"tenantId": tenant, "passwordCredentials": {"username": user[0], "password": user[1]}}}


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def assert_keystone_401(answer: requests.Response) -> None:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == 401
    assert body["error"]["title"] == "Unauthorized"
    assert body["error"]["message"] == AUTH_REQUIRED


# -- tokens ---------------------------------------------------------------------------------------


def test_token_response_has_id_future_expiry_and_tenant(sim):
    """POST /v2.0/tokens returns a token id, an ISO `expires` in the future and the tenant."""
    answer = post_tokens(sim, credentials(OWNER_USER, OWNER))
    assert answer.status_code == 200, answer.text
    token = answer.json()["access"]["token"]
    assert isinstance(token["id"], str) and token["id"]
    expires = parse_iso(token["expires"])
    assert expires > datetime.now(UTC)
    assert token["tenant"]["id"] == OWNER


def test_catalog_has_image_compute_volume_in_every_region(sim):
    """The catalog lists image, compute and volumev2 endpoints for every seeded region."""
    access = post_tokens(sim, credentials(OWNER_USER, OWNER)).json()["access"]
    by_type = {service["type"]: service for service in access["serviceCatalog"]}
    for kind in ("image", "compute", "volumev2"):
        assert kind in by_type, sorted(by_type)
        regions = {endpoint["region"] for endpoint in by_type[kind]["endpoints"]}
        assert regions == set(STANDARD_SEED["regions"]), (kind, regions)


def test_catalog_image_url_is_bare_and_compute_volume_end_in_tenant(sim):
    """Image publicURLs have no /v2; compute and volumev2 publicURLs end in /v2/{tenantId}."""
    access = post_tokens(sim, credentials(OWNER_USER, OWNER)).json()["access"]
    for service in access["serviceCatalog"]:
        for endpoint in service["endpoints"]:
            url = endpoint["publicURL"]
            if service["type"] == "image":
                assert "/v2" not in url, url
            elif service["type"] in ("compute", "volumev2"):
                assert url.rstrip("/").endswith(f"/v2/{OWNER}"), url


def test_wrong_password_is_401_keystone_body(sim):
    """A wrong password is refused with 401 and Keystone's error body."""
    answer = post_tokens(sim, credentials((OWNER_USER[0], "not-the-password"), OWNER))
    assert_keystone_401(answer)


def test_unknown_user_is_401_keystone_body(sim):
    """An unknown user is refused with 401 and Keystone's error body."""
    answer = post_tokens(sim, credentials(("nobody@example.com", "whatever"), OWNER))
    assert_keystone_401(answer)


def test_user_of_another_tenant_is_401(sim):
    """A valid user asking for a tenant it does not belong to is refused with 401."""
    answer = post_tokens(sim, credentials(PARTNER_USER, OWNER))
    assert_keystone_401(answer)


@pytest.mark.parametrize(
    "raw",
    [b"not json at all", b"[]", b'{"auth": {"tenantId": "x"}}', b'{"auth": {"passwordCredentials": {"username": 1}}}'],
    ids=["not-json", "not-object", "no-credentials", "bad-username"],
)
def test_malformed_token_request_is_400(sim, raw):
    """A malformed token request body is 400 with Keystone's error body."""
    answer = requests.post(
        f"{sim.identity_url}/tokens",
        data=raw,
        timeout=10,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 400
    assert error["message"]


def test_password_never_in_token_response(sim):
    """The token response never echoes the API password."""
    answer = post_tokens(sim, credentials(OWNER_USER, OWNER))
    assert answer.status_code == 200
    assert OWNER_USER[1] not in answer.text
    # A wrong password is not echoed either.
    refused = post_tokens(sim, credentials((OWNER_USER[0], "s3cret-wrong-pass"), OWNER))
    assert "s3cret-wrong-pass" not in refused.text


# -- service requests without a valid token ---------------------------------------------------------


SERVICE_PATHS = {
    "image": ("image", "/v2/images"),
    "compute": ("compute", "/servers"),
    "volume": ("volumev2", "/volumes/00000000-0000-4000-8000-00000000dead"),
}


@pytest.mark.parametrize("service", sorted(SERVICE_PATHS))
def test_service_request_without_token_is_401(owner, service):
    """A service request with no X-Auth-Token is 401 `The request you have made requires authentication.`"""
    kind, path = SERVICE_PATHS[service]
    answer = requests.get(owner.endpoint(kind) + path, headers={"Accept": "application/json"}, timeout=10)
    assert answer.status_code == 401, answer.text
    assert AUTH_REQUIRED in answer.text
    assert "Keystone uri=" in answer.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("service", sorted(SERVICE_PATHS))
def test_service_request_with_bogus_token_is_401(owner, service):
    """A service request with an unknown token is 401 `The request you have made requires authentication.`"""
    kind, path = SERVICE_PATHS[service]
    answer = requests.get(
        owner.endpoint(kind) + path,
        headers={"Accept": "application/json", "X-Auth-Token": "0123456789abcdef0123456789abcdef"},
        timeout=10,
    )
    assert answer.status_code == 401, answer.text
    assert AUTH_REQUIRED in answer.text


@pytest.mark.parametrize("service", sorted(SERVICE_PATHS))
def test_service_401_has_keystonemiddleware_body(owner, service):
    """keystonemiddleware rejects before the service: the 401 body is Keystone's `{"error": {...}}` shape."""
    kind, path = SERVICE_PATHS[service]
    answer = requests.get(owner.endpoint(kind) + path, headers={"Accept": "application/json"}, timeout=10)
    assert_keystone_401(answer)


def test_expired_token_is_401(make_sim):
    """A token used after its `expires` (on the simulator's clock) is refused with 401."""
    sim = make_sim(token_lifetime_s=1)
    api = Api(sim, *OWNER_USER, OWNER)
    assert api.image("GET", "/v2/images").status_code == 200
    sim.advance_clock(3600)
    answer = api.image("GET", "/v2/images")
    assert answer.status_code == 401, answer.text
    assert AUTH_REQUIRED in answer.text


def test_token_still_valid_before_expiry(make_sim):
    """A token used before its lifetime ends (on the simulator's clock) is still accepted."""
    sim = make_sim(token_lifetime_s=60)
    api = Api(sim, *OWNER_USER, OWNER)
    sim.advance_clock(30)
    assert api.image("GET", "/v2/images").status_code == 200


def test_token_is_project_scoped(sim, outsider):
    """A token for one project gives that project's catalog (compute URL carries its tenant)."""
    assert outsider.endpoint("compute").endswith(f"/v2/{OUTSIDER}")
    assert outsider.access["token"]["tenant"]["id"] == OUTSIDER


# -- version documents ----------------------------------------------------------------------------


def test_identity_v2_version_document(sim):
    """GET /v2.0 is 200 with the v2.0 version document."""
    answer = requests.get(sim.identity_url, timeout=10)
    assert answer.status_code == 200, answer.text
    version = answer.json()["version"]
    assert version["id"] == "v2.0"
    assert any(link["rel"] == "self" for link in version["links"])


def test_identity_root_lists_versions_with_300(sim):
    """GET / is 300 Multiple Choices listing the identity versions (v2.0 among them)."""
    answer = requests.get(sim.base_url + "/", timeout=10, allow_redirects=False)
    assert answer.status_code == 300, answer.text
    values = answer.json()["versions"]["values"]
    assert "v2.0" in {v["id"] for v in values}


def test_image_endpoint_root_lists_versions_with_300(owner):
    """GET on the bare image endpoint is 300 with a `versions` list including a CURRENT v2.x."""
    answer = requests.get(owner.endpoint("image"), timeout=10, allow_redirects=False)
    assert answer.status_code == 300, answer.text
    versions = answer.json()["versions"]
    assert isinstance(versions, list) and versions
    assert all(v["id"].startswith("v2.") for v in versions)
    assert any(v["status"] == "CURRENT" for v in versions)


def test_compute_endpoint_version_document(owner):
    """GET on the compute endpoint `/v2/{tenant}` returns the v2.0 version document."""
    answer = requests.get(owner.endpoint("compute"), timeout=10)
    assert answer.status_code == 200, answer.text
    version = answer.json()["version"]
    assert version["id"] == "v2.0"
    assert version["links"]


def test_version_documents_are_json(sim, owner):
    """Version documents are served as application/json."""
    for url in (sim.identity_url, owner.endpoint("compute")):
        answer = requests.get(url, timeout=10)
        assert answer.headers["Content-Type"].startswith("application/json")
        json.loads(answer.text)


def test_a_token_without_tenant_is_unscoped_and_opens_nothing(sim):
    """Keystone v2 without tenantId issues an unscoped token (no tenant, empty catalog) that no
    service accepts: a client that forgets the tenant fails at once, as on NHN."""
    answer = requests.post(
        f"{sim.identity_url}/tokens",
        json={"auth": {"passwordCredentials": {"username": OWNER_USER[0], "password": OWNER_USER[1]}}},
        timeout=10,
    )
    access = answer.json()["access"]
    assert answer.status_code == 200 and "tenant" not in access["token"] and access["serviceCatalog"] == []
    listing = requests.get(
        f"{sim.base_url}/image/KR1/v2/images",
        headers={"X-Auth-Token": access["token"]["id"], "Accept": "application/json"},
        timeout=10,
    )
    assert listing.status_code == 401


def test_a_malformed_content_length_is_400_and_closes_the_connection(sim):
    """A Content-Length that is not a number gets a 400 answer, never a silent hang-up."""
    import socket

    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
        conn.sendall(b"POST /v2.0/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        received = b""
        while chunk := conn.recv(4096):  # until the server closes the connection
            received += chunk
        reply = received.decode()
    assert reply.startswith("HTTP/1.1 400") and "Connection: close" in reply and "Invalid Content-Length" in reply
