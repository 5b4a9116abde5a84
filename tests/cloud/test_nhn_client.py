"""NhnCloudClient against the simulator over real HTTP: catalog regions, servers (find, read, stop / start,
metadata, imaging by root device), waiting, streamed downloads, retries that follow the CloudClient
contract (reads retried, POSTs never repeated after a lost answer, 429/503 honouring Retry-After), and no
secret in logs or reprs."""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
import requests
from support import (
    DOWNLOADABLE_IMAGE,
    LOCAL_RUNNING_SERVER,
    LOCAL_STOPPED_SERVER,
    OWNER,
    OWNER_USER,
    PROTECTED_IMAGE,
    VOLUME_SERVER,
    standard_seed,
)

from reconciler.cloud.auth import Credentials
from reconciler.cloud.errors import (
    CloudError,
    CloudTimeout,
    CloudTransportError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
)
from reconciler.cloud.nhn import NhnCloudClient, connect
from reconciler.cloud.records import set_ops
from reconciler.simulator.identity import TokenStore
from reconciler.snapshot import ServerIndex

REGION = "KR1"
IMAGES = "GET /image/{region}/v2/images"
CREATE_IMAGE = "POST /image/{region}/v2/images"
GET_IMAGE = "GET /image/{region}/v2/images/{image_id}"
GET_SERVER = "GET /compute/{region}/v2/{tenant_id}/servers/{server_id}"
SERVER_ACTION = "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action"
VOLUME_ACTION = "POST /volume/{region}/v2/{tenant_id}/volumes/{volume_id}/action"
TOKENS = "POST /v2.0/tokens"
DUPLICATE_SERVER = "10000000-0000-4000-8000-000000000009"
ERROR_SERVER = "10000000-0000-4000-8000-000000000008"
UNKNOWN_ID = "99999999-0000-4000-8000-000000000000"


class Recorder:
    """A sleep that records the seconds instead of waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class FakeTime:
    """A clock and a sleep that advances it: waiting tests never wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stats(sim) -> dict[str, int]:
    answer = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10)
    assert answer.status_code == 200
    return answer.json()["routes"]


def new_image_attributes(**extra: object) -> dict[str, object]:
    return {
        "name": "client-test",
        "disk_format": "qcow2",
        "container_format": "bare",
        "visibility": "private",
        "os_type": "linux",
        **extra,
    }


@pytest.fixture
def connect_to():
    """`connect_to(sim, **connect_kwargs)` -> (client, recorder) for the owner project; closed afterwards."""
    clients: list[NhnCloudClient] = []

    def make(sim, **kwargs):
        recorder = Recorder()
        client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=recorder, **kwargs)
        clients.append(client)
        return client, recorder

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sim(make_sim):
    return make_sim()


@pytest.fixture
def client(sim, connect_to):
    return connect_to(sim)[0]


# -- catalog --------------------------------------------------------------------------------------


def test_image_regions_are_the_catalogs_sorted(client):
    """image_regions() lists the catalog's image regions, sorted."""
    assert client.image_regions() == ("JP1", "KR1", "KR2")


def test_list_images_follows_every_page(sim, connect_to):
    """list_images returns every image across pages of `next` links."""
    base, _ = connect_to(sim)
    everything = base.list_images(REGION)
    paged = NhnCloudClient(base._http, page_size=1)
    assert sorted(i.id for i in paged.list_images(REGION)) == sorted(i.id for i in everything)
    assert len(everything) >= 3
    # One unpaged listing, then one page per image, then the empty page after the last full one (Glance
    # sends `next` whenever a page is full).
    assert stats(sim)[IMAGES] == 1 + len(everything) + 1


def test_list_images_filters_by_name_on_the_server_and_dates_the_answer(sim, connect_to):
    """`name=` is sent to the server (one page, only that name) and the listing carries the first page's
    Date header as the server's clock: the apply lock judges leases on it, never on the client's clock."""
    import time

    base, _ = connect_to(sim)
    made = base.create_image(
        REGION, {"name": "only-me", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
    )
    before = stats(sim).get(IMAGES, 0)
    listing = base.list_images_dated(REGION, owner=base.project_id, name="only-me")
    assert [i.id for i in listing.images] == [made.id]
    assert stats(sim)[IMAGES] == before + 1
    assert listing.server_time is not None and abs(listing.server_time - time.time()) < 5


def test_a_name_with_a_colon_is_asked_for_as_an_exact_match(sim, connect_to):
    """Glance takes `web:base` as operator `web` (400); `eq:web:base` is the name itself."""
    base, _ = connect_to(sim)
    made = base.create_image(
        REGION, {"name": "web:base", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
    )
    assert [i.id for i in base.list_images(REGION, owner=base.project_id, name="web:base")] == [made.id]


@pytest.mark.parametrize(
    ("text", "epoch", "reason"),
    [
        ("2026-11-30T05:01:02Z", 1796014862.0, "Glance's ISO time with Z"),
        ("2026-11-30T05:01:02.000000", 1796014862.0, "Nova's time without a zone is UTC"),
        ("Mon, 30 Nov 2026 05:01:02 GMT", 1796014862.0, "an HTTP Date header"),
        ("yesterday", None, "unreadable: None, never a guess"),
        (None, None, "absent"),
    ],
)
def test_server_times_parse(text, epoch, reason):
    from reconciler.cloud.records import parse_server_time

    assert parse_server_time(text) == epoch, reason


# -- find / get server ----------------------------------------------------------------------------


def test_list_servers_follows_every_page_and_reads_nothing_per_server(sim, connect_to):
    """list_servers returns every server of the project across pages of Nova's `servers_links`, with
    status and metadata but without the root device and flavor name, which cost a read per server."""
    base, _ = connect_to(sim)
    paged = NhnCloudClient(base._http, page_size=1)
    requests.delete(f"{sim.base_url}/_simulator/stats", timeout=5)
    servers = paged.list_servers(REGION)
    assert {s.id for s in servers} >= {VOLUME_SERVER, LOCAL_STOPPED_SERVER}
    assert all(s.root_device is None and s.flavor_name is None for s in servers)
    by_id = {s.id: s for s in servers}
    assert by_id[LOCAL_STOPPED_SERVER].status == "SHUTOFF" and by_id[LOCAL_STOPPED_SERVER].name == "batch-01"
    assert by_id[VOLUME_SERVER].metadata.get("os_type") == "linux"
    # One page per server, then the empty page after the last full one; no other request.
    compute = {route: n for route, n in stats(sim).items() if route.startswith("GET /compute")}
    assert compute == {"GET /compute/{region}/v2/{tenant_id}/servers/detail": len(servers) + 1}


def test_a_listed_server_read_again_has_its_root_device_and_flavor(client):
    listed = {s.id: s for s in client.list_servers(REGION)}[VOLUME_SERVER]
    read = client.get_server(REGION, VOLUME_SERVER)
    assert (read.root_device, read.flavor_name) == ("volume", "m2.c4m8")
    assert (read.id, read.name, read.status, read.metadata) == (listed.id, listed.name, listed.status, listed.metadata)


def test_servers_are_found_by_id_or_exact_name(client):
    """snapshot.ServerIndex: by id, else by the exact name, as text (not a pattern); None if none."""
    servers = client.list_servers(REGION)
    assert ServerIndex(REGION, servers).find("batch-01").id == LOCAL_STOPPED_SERVER
    assert ServerIndex(REGION, servers).find(VOLUME_SERVER).name == "web-golden-01"
    assert ServerIndex(REGION, servers).find(VOLUME_SERVER.upper()).id == VOLUME_SERVER  # ids are case-blind
    for unknown in ("no-such-server", UNKNOWN_ID, "batch-0.", "batch"):
        assert ServerIndex(REGION, servers).find(unknown) is None


def test_an_ambiguous_server_name_is_an_error(make_sim, connect_to):
    """Two servers with the same name: CloudError saying they "are named", with both ids and a hint."""
    seed = standard_seed()
    seed["servers"].append(
        {
            "id": DUPLICATE_SERVER,
            "project": OWNER,
            "region": REGION,
            "name": "batch-01",
            "flavor": "u2.c2m4",
            "status": "ACTIVE",
            "os_type": "linux",
            "disk_mb": 1,
        }
    )
    client, _ = connect_to(make_sim(seed))
    servers = client.list_servers(REGION)
    with pytest.raises(CloudError, match="are named") as caught:
        ServerIndex(REGION, servers).find("batch-01")
    assert LOCAL_STOPPED_SERVER in str(caught.value)
    assert DUPLICATE_SERVER in str(caught.value)
    assert caught.value.hint
    # By id each is still found.
    assert ServerIndex(REGION, servers).find(DUPLICATE_SERVER).id == DUPLICATE_SERVER


def test_get_server_volume_root(sim, client):
    """A volume-rooted m2 server: flavor name, root device "volume" with its root volume, metadata."""
    server = client.get_server(REGION, VOLUME_SERVER)
    with sim.app.store.transaction() as txn:
        volume_id = txn.doc["servers"][VOLUME_SERVER]["root_volume_id"]
    assert server.id == VOLUME_SERVER
    assert server.region == REGION
    assert server.name == "web-golden-01"
    assert server.status == "ACTIVE"
    assert server.task_state is None
    assert server.flavor_name == "m2.c4m8"
    assert server.root_device == "volume"
    assert server.root_volume_id == volume_id
    assert server.os_type == "linux"
    assert server.metadata["os_distro"] == "ubuntu"
    assert server.base_image_name == "Ubuntu Server 22.04 LTS (2024.01.16)"


def test_get_server_local_root(client):
    """A u2 server: flavor name u2.c2m4, root device "local" with no volume."""
    stopped = client.get_server(REGION, LOCAL_STOPPED_SERVER)
    assert stopped.flavor_name == "u2.c2m4"
    assert stopped.root_device == "local"
    assert stopped.root_volume_id is None
    assert stopped.status == "SHUTOFF"
    running = client.get_server(REGION, LOCAL_RUNNING_SERVER)
    assert running.flavor_name == "u2.c2m4"
    assert running.root_device == "local"
    assert running.os_type == "windows"
    assert running.base_image_name == "Windows 2019 STD (2019.05.28) KO"


def test_get_server_unknown_is_not_found(client):
    """get_server of an unknown id raises NotFound (404)."""
    with pytest.raises(NotFound) as caught:
        client.get_server(REGION, UNKNOWN_ID)
    assert caught.value.status == 404
    assert UNKNOWN_ID in caught.value.server_message


# -- stop / start / wait --------------------------------------------------------------------------


def test_stop_then_wait_for_shutoff_polls_with_growing_backoff(make_sim, connect_to):
    """stop_server, then wait_for_server SHUTOFF polls through the transition with growing delays."""
    sim = make_sim(server_ready_after_polls=2)
    client, recorder = connect_to(sim)
    client.stop_server(REGION, VOLUME_SERVER)
    server = client.wait_for_server(REGION, VOLUME_SERVER, status="SHUTOFF", timeout=60)
    assert server.status == "SHUTOFF"
    assert server.task_state is None
    assert stats(sim)[GET_SERVER] == 3  # two polls see powering-off, the third SHUTOFF
    assert len(recorder.sleeps) == 2
    assert recorder.sleeps[1] > recorder.sleeps[0] > 0


def test_stop_server_on_a_stopped_server_is_a_no_op(make_sim, connect_to):
    """stop_server on a SHUTOFF server succeeds without error (idempotent)."""
    sim = make_sim()
    client, _ = connect_to(sim)
    client.stop_server(REGION, LOCAL_STOPPED_SERVER)
    client.stop_server(REGION, LOCAL_STOPPED_SERVER)
    assert client.get_server(REGION, LOCAL_STOPPED_SERVER).status == "SHUTOFF"
    assert stats(sim)[SERVER_ACTION] == 2


def test_stop_server_twice_while_powering_off_is_fine(make_sim, connect_to):
    """A second stop_server while the first is still powering off is fine (on its way to the target)."""
    client, _ = connect_to(make_sim(server_ready_after_polls=3))
    client.stop_server(REGION, VOLUME_SERVER)
    client.stop_server(REGION, VOLUME_SERVER)
    assert client.wait_for_server(REGION, VOLUME_SERVER, status="SHUTOFF", timeout=60).status == "SHUTOFF"


def test_start_server_then_wait_for_active(make_sim, connect_to):
    """start_server on a SHUTOFF server, then wait_for_server ACTIVE."""
    client, recorder = connect_to(make_sim(server_ready_after_polls=1))
    client.start_server(REGION, LOCAL_STOPPED_SERVER)
    server = client.wait_for_server(REGION, LOCAL_STOPPED_SERVER, status="ACTIVE", timeout=60)
    assert server.status == "ACTIVE"
    assert server.task_state is None
    assert len(recorder.sleeps) == 1


def test_start_server_on_a_running_server_is_a_no_op(client):
    """start_server on an ACTIVE server succeeds without error (idempotent)."""
    client.start_server(REGION, LOCAL_RUNNING_SERVER)
    client.start_server(REGION, LOCAL_RUNNING_SERVER)
    assert client.get_server(REGION, LOCAL_RUNNING_SERVER).status == "ACTIVE"


def _seed_with_error_server() -> dict:
    seed = standard_seed()
    seed["servers"].append(
        {
            "id": ERROR_SERVER,
            "project": OWNER,
            "region": REGION,
            "name": "broken-01",
            "flavor": "m2.c4m8",
            "status": "ERROR",
            "os_type": "linux",
            "disk_mb": 1,
        }
    )
    return seed


def test_wait_for_server_fails_early_on_error(make_sim, connect_to):
    """wait_for_server of a server in ERROR raises CloudError at the first poll, not a timeout."""
    client, recorder = connect_to(make_sim(_seed_with_error_server()))
    with pytest.raises(CloudError, match="ERROR") as caught:
        client.wait_for_server(REGION, ERROR_SERVER, status="ACTIVE", timeout=600)
    assert not isinstance(caught.value, CloudTimeout)
    assert "broken-01" in str(caught.value)
    assert recorder.sleeps == []


def test_start_server_in_error_is_a_conflict(make_sim, connect_to):
    """start_server on a server in ERROR (neither there nor on its way) raises Conflict."""
    client, _ = connect_to(make_sim(_seed_with_error_server()))
    with pytest.raises(Conflict) as caught:
        client.start_server(REGION, ERROR_SERVER)
    assert caught.value.status == 409
    assert caught.value.service == "compute"


def test_wait_for_server_times_out(make_sim, connect_to):
    """wait_for_server gives CloudTimeout naming the server and its last status when time runs out."""
    sim = make_sim(server_ready_after_polls=100)
    base, _ = connect_to(sim)
    fake = FakeTime()
    client = NhnCloudClient(base._http, sleep=fake.sleep, clock=fake.clock)
    client.stop_server(REGION, VOLUME_SERVER)
    with pytest.raises(CloudTimeout) as caught:
        client.wait_for_server(REGION, VOLUME_SERVER, status="SHUTOFF", timeout=5)
    assert VOLUME_SERVER in str(caught.value)
    assert "powering-off" in str(caught.value)
    assert sum(fake.sleeps) == pytest.approx(5)


# -- images from servers, waiting -----------------------------------------------------------------


def test_wait_for_image_times_out_with_last_status(make_sim, connect_to):
    """wait_for_image gives CloudTimeout naming the image and the last status seen, after `timeout`."""
    sim = make_sim(image_ready_after_polls=100)
    base, _ = connect_to(sim)
    fake = FakeTime()
    client = NhnCloudClient(base._http, sleep=fake.sleep, clock=fake.clock)
    server = client.get_server(REGION, LOCAL_STOPPED_SERVER)
    image_id = client.create_image_from_server(REGION, server, "slow-image")
    with pytest.raises(CloudTimeout) as caught:
        client.wait_for_image(REGION, image_id, timeout=5)
    message = str(caught.value)
    assert image_id in message
    assert re.search(r"last seen: (queued|saving)$", message), message
    assert sum(fake.sleeps) == pytest.approx(5)
    assert fake.sleeps[1] > fake.sleeps[0]  # backoff grows; the last delay is cut to the deadline
    assert caught.value.hint


def test_wait_for_image_fails_early_when_the_image_disappears(client):
    """wait_for_image of an image that does not exist raises CloudError at once, not a timeout."""
    with pytest.raises(CloudError, match="disappeared") as caught:
        client.wait_for_image(REGION, UNKNOWN_ID, timeout=600)
    assert not isinstance(caught.value, CloudTimeout)


def test_create_image_from_volume_root_uses_cinder(sim, client):
    """A volume-rooted server is imaged through Cinder's os-volume_upload_image; the id is a real image."""
    server = client.get_server(REGION, VOLUME_SERVER)
    image_id = client.create_image_from_server(REGION, server, "golden-from-volume")
    routes = stats(sim)
    assert routes[VOLUME_ACTION] == 1
    assert SERVER_ACTION not in routes
    image = client.wait_for_image(REGION, image_id, timeout=30)
    assert image.id == image_id
    assert image.name == "golden-from-volume"
    assert image.owner == OWNER
    assert image.visibility == "private"
    assert image.protected is False


def test_create_image_from_local_stopped_server_uses_nova(sim, client):
    """A stopped u2 server is imaged through Nova createImage; its metadata becomes image properties."""
    server = client.get_server(REGION, LOCAL_STOPPED_SERVER)
    image_id = client.create_image_from_server(
        REGION, server, "batch-image", metadata={"reconciler_key": "batch", "description": "from batch-01"}
    )
    routes = stats(sim)
    assert routes[SERVER_ACTION] == 1
    assert VOLUME_ACTION not in routes
    image = client.wait_for_image(REGION, image_id, timeout=30)
    assert image.status == "active"
    assert image.name == "batch-image"
    assert image.properties["reconciler_key"] == "batch"
    assert image.properties["description"] == "from batch-01"
    assert image_id in {i.id for i in client.list_images(REGION)}


def test_create_image_from_local_running_server_is_a_conflict(sim, client):
    """A running u2 server cannot be imaged: Conflict (409) carrying Nova's message; no image appears."""
    before = {i.id for i in client.list_images(REGION)}
    server = client.get_server(REGION, LOCAL_RUNNING_SERVER)
    with pytest.raises(Conflict) as caught:
        client.create_image_from_server(REGION, server, "running-image")
    assert caught.value.status == 409
    assert caught.value.service == "compute"
    assert "createImage" in caught.value.server_message
    assert {i.id for i in client.list_images(REGION)} == before
    assert stats(sim)[SERVER_ACTION] == 1  # refused, and never repeated


# -- server metadata ------------------------------------------------------------------------------


def test_set_server_metadata_merges(client):
    """set_server_metadata merges keys into the existing metadata."""
    client.set_server_metadata(REGION, LOCAL_STOPPED_SERVER, {"a": "1"})
    client.set_server_metadata(REGION, LOCAL_STOPPED_SERVER, {"b": "2", "a": "3"})
    metadata = client.get_server(REGION, LOCAL_STOPPED_SERVER).metadata
    assert metadata["a"] == "3"
    assert metadata["b"] == "2"
    assert metadata["os_type"] == "linux"  # untouched


def test_delete_server_metadata_true_then_false(client):
    """delete_server_metadata returns True when it removed the key, False when it was not set."""
    client.set_server_metadata(REGION, LOCAL_STOPPED_SERVER, {"gone": "soon"})
    assert client.delete_server_metadata(REGION, LOCAL_STOPPED_SERVER, "gone") is True
    assert "gone" not in client.get_server(REGION, LOCAL_STOPPED_SERVER).metadata
    assert client.delete_server_metadata(REGION, LOCAL_STOPPED_SERVER, "gone") is False


# -- downloads ------------------------------------------------------------------------------------


def test_download_streams_bytes_matching_the_checksum(client):
    """download_image_data streams bytes whose md5 is the image's checksum and whose length is its size."""
    image = client.get_image(REGION, DOWNLOADABLE_IMAGE)
    digest = hashlib.md5()
    received = 0
    chunks = 0
    with client.download_image_data(REGION, DOWNLOADABLE_IMAGE) as download:
        assert download.size == image.size
        assert download.checksum == image.checksum
        for chunk in download.chunks():
            digest.update(chunk)
            received += len(chunk)
            chunks += 1
    assert received == image.size
    assert digest.hexdigest() == image.checksum
    assert chunks >= 2  # streamed, not one buffer (the image is 3 MB)


def test_download_of_a_queued_image_has_no_data(client):
    """download_image_data of a queued image (no data yet) raises CloudError "no data"."""
    image = client.create_image(REGION, new_image_attributes(nhncloud_allow_download="true"))
    assert image.status == "queued"
    with pytest.raises(CloudError, match="no data"):
        with client.download_image_data(REGION, image.id):
            pass


def test_download_refused_without_allow_download(client):
    """An image without nhncloud_allow_download cannot be downloaded: Forbidden with NHN's message."""
    server = client.get_server(REGION, LOCAL_STOPPED_SERVER)
    image_id = client.create_image_from_server(REGION, server, "no-download")
    with pytest.raises(Forbidden, match="nhncloud_allow_download"):
        with client.download_image_data(REGION, image_id):
            pass


# -- retries --------------------------------------------------------------------------------------


def test_read_retried_after_503_honours_retry_after(make_sim, connect_to):
    """A 503 with Retry-After 1 on a listing: the read is retried after sleeping 1 s, and succeeds."""
    sim = make_sim(faults=[{"route": IMAGES, "on_call": 1, "status": 503, "retry_after": 1}])
    client, recorder = connect_to(sim)
    images = client.list_images(REGION)
    assert DOWNLOADABLE_IMAGE in {i.id for i in images}
    assert recorder.sleeps == [1.0]
    assert stats(sim)[IMAGES] == 2


def test_post_retried_after_429_honours_retry_after(make_sim, connect_to):
    """A 429 with Retry-After 2 on create_image: sent again after sleeping 2 s, and succeeds."""
    sim = make_sim(faults=[{"route": CREATE_IMAGE, "on_call": 1, "status": 429, "retry_after": 2}])
    client, recorder = connect_to(sim)
    image = client.create_image(REGION, new_image_attributes(name="after-429"))
    assert image.name == "after-429"
    assert image.status == "queued"
    assert recorder.sleeps == [2.0]
    assert stats(sim)[CREATE_IMAGE] == 2
    assert [i.name for i in client.list_images(REGION)].count("after-429") == 1


def test_post_503_without_retry_after_is_rate_limited(make_sim, connect_to):
    """A 503 without Retry-After on create_image raises RateLimited; the POST is sent only once."""
    sim = make_sim(faults=[{"route": CREATE_IMAGE, "on_call": 1, "status": 503}])
    client, recorder = connect_to(sim)
    with pytest.raises(RateLimited) as caught:
        client.create_image(REGION, new_image_attributes())
    assert caught.value.status == 503
    assert stats(sim)[CREATE_IMAGE] == 1
    assert recorder.sleeps == []


def test_dropped_read_is_retried(make_sim, connect_to):
    """A GET whose connection drops without an answer is retried, and get_image succeeds."""
    sim = make_sim(faults=[{"route": GET_IMAGE, "on_call": 1, "drop": True}])
    client, _ = connect_to(sim)
    image = client.get_image(REGION, DOWNLOADABLE_IMAGE)
    assert image.id == DOWNLOADABLE_IMAGE
    assert stats(sim)[GET_IMAGE] == 2


def test_dropped_post_is_never_repeated(make_sim, connect_to):
    """A POST whose connection drops raises CloudTransportError saying it may or may not have been done;
    it is sent only once."""
    sim = make_sim(faults=[{"route": CREATE_IMAGE, "on_call": 1, "drop": True}])
    client, _ = connect_to(sim)
    with pytest.raises(CloudTransportError) as caught:
        client.create_image(REGION, new_image_attributes(name="dropped"))
    assert "POST" in str(caught.value)
    assert caught.value.hint and "may or may not have been carried out" in caught.value.hint
    assert stats(sim)[CREATE_IMAGE] == 1


def test_dropped_server_action_is_never_repeated(make_sim, connect_to):
    """A createImage whose connection drops is not sent again (not idempotent)."""
    sim = make_sim(faults=[{"route": SERVER_ACTION, "on_call": 1, "drop": True}])
    client, _ = connect_to(sim)
    server = client.get_server(REGION, LOCAL_STOPPED_SERVER)
    with pytest.raises(CloudTransportError):
        client.create_image_from_server(REGION, server, "dropped-image")
    assert stats(sim)[SERVER_ACTION] == 1


def test_stalled_read_times_out(make_sim, connect_to):
    """A GET answered later than the read timeout raises CloudTransportError saying it timed out."""
    sim = make_sim(faults=[{"route": IMAGES, "on_call": 1, "stall_s": 3}])
    client, _ = connect_to(sim, timeout=(2, 0.5), retries=0)
    with pytest.raises(CloudTransportError) as caught:
        client.list_images(REGION)
    assert "timed out" in str(caught.value)
    assert stats(sim)[IMAGES] == 1


# -- secrets --------------------------------------------------------------------------------------


def test_no_password_or_token_in_logs_or_repr(sim, client, caplog):
    """At DEBUG, no log record of a session of calls holds the password or a token; nor does repr(client)."""
    caplog.set_level(logging.DEBUG, logger="reconciler")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    password = OWNER_USER[1]
    client.list_images(REGION)
    first_token = client._http.auth.auth_headers()["X-Auth-Token"]
    client.get_image(REGION, DOWNLOADABLE_IMAGE)
    client.update_image(REGION, DOWNLOADABLE_IMAGE, set_ops({"description": "logged?"}))
    sim.app.tokens = TokenStore()  # force a re-authentication mid-session
    client.get_server(REGION, VOLUME_SERVER)
    with pytest.raises(Forbidden) as caught:
        client.delete_image(REGION, PROTECTED_IMAGE)
    second_token = client._http.auth.auth_headers()["X-Auth-Token"]
    assert first_token != second_token
    assert stats(sim)[TOKENS] == 2

    assert caplog.records, "expected DEBUG records from the session"
    secrets = (password, first_token, second_token)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        for secret in secrets:
            assert secret not in text, f"secret in log record {record.name}: {record.getMessage()}"
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in repr(client)
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
