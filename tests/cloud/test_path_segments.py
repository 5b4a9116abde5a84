"""Ids from data (members, image ids, metadata keys: anyone in the project can set them in the cloud) go
into request paths as exactly one segment each. requests/urllib3 drop a literal dot segment, so
`DELETE .../images/ID/members/..` went out as `DELETE .../images/ID/`: an unshare deleted the image.
Checked against the simulator's request log (what was really sent) and the cloud afterwards."""

from __future__ import annotations

import pytest
import requests
from support import OWNER, OWNER_USER

from reconciler.cloud.auth import Credentials
from reconciler.cloud.errors import CloudError, NotFound
from reconciler.cloud.nhn import _q, connect

REGION = "KR1"


@pytest.fixture
def sim(make_sim):
    return make_sim()


@pytest.fixture
def client(sim):
    made = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=lambda _: None)
    yield made
    made.close()


def shared_image(client) -> str:
    attributes = {"name": "segments", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
    image = client.create_image(REGION, {**attributes, "visibility": "shared"})
    return image.id


def sent_paths(sim, method: str) -> list[str]:
    log = requests.get(f"{sim.base_url}/_simulator/requests", timeout=10).json()
    return [entry["path"] for entry in log if entry["method"] == method]


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "%2E%2E%2E"),
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("..x", "..x"),  # not a dot segment: left readable
        ("8989447062e04a818baf9e073fd04fa7", "8989447062e04a818baf9e073fd04fa7"),
    ],
)
def test_a_value_becomes_exactly_one_segment(value, segment):
    assert _q(value) == segment


def test_an_empty_value_is_refused_before_anything_is_sent():
    """An empty segment would name the collection (DELETE .../members/)."""
    with pytest.raises(CloudError, match="empty id"):
        _q("")


def test_encoded_dot_segments_survive_requests_preparation():
    """requests decodes %2E while preparing a URL: the transport encodes such a segment again."""
    from reconciler.cloud.transport import encoded_dot_segments

    prepared = requests.Request("DELETE", "http://h/v2/images/abc/members/%2E%2E").prepare()
    assert prepared.url.endswith("/members/..")  # the fact this guards against
    assert encoded_dot_segments(prepared.url) == "http://h/v2/images/abc/members/%2E%2E"
    assert encoded_dot_segments("http://h/v2/images/abc?marker=..") == "http://h/v2/images/abc?marker=.."


def test_removing_the_member_dot_dot_sends_the_member_path_and_keeps_the_image(sim, client):
    image_id = shared_image(client)
    client.add_member(REGION, image_id, "..")
    requests.delete(f"{sim.base_url}/_simulator/requests", timeout=10)
    assert client.remove_member(REGION, image_id, "..") is True
    assert sent_paths(sim, "DELETE") == [f"/image/{REGION}/v2/images/{image_id}/members/%2E%2E"]
    assert client.get_image(REGION, image_id).status == "queued"  # still there
    assert client.list_members(REGION, image_id) == []


@pytest.mark.parametrize("member", ["..", "."])
def test_an_unknown_dot_member_is_a_404_like_glance_and_the_image_stays(sim, client, member):
    """The simulator decodes %2E%2E to the member id "..", as Glance would: unknown, so 404 (False)."""
    image_id = shared_image(client)
    assert client.remove_member(REGION, image_id, member) is False
    assert client.get_image(REGION, image_id).id == image_id


def test_a_member_with_a_slash_stays_one_segment(sim, client):
    image_id = shared_image(client)
    client.add_member(REGION, image_id, "a/b?c")
    requests.delete(f"{sim.base_url}/_simulator/requests", timeout=10)
    assert client.remove_member(REGION, image_id, "a/b?c") is True
    assert sent_paths(sim, "DELETE") == [f"/image/{REGION}/v2/images/{image_id}/members/a%2Fb%3Fc"]
    assert client.list_members(REGION, image_id) == []
    assert client.get_image(REGION, image_id).id == image_id


def test_an_image_id_of_dots_reads_no_collection(sim, client):
    """GET .../images/.. would read .../v2/ (or the listing): the id is sent encoded, and is unknown."""
    requests.delete(f"{sim.base_url}/_simulator/requests", timeout=10)
    with pytest.raises(NotFound):
        client.get_image(REGION, "..")
    assert sent_paths(sim, "GET") == [f"/image/{REGION}/v2/images/%2E%2E"]
