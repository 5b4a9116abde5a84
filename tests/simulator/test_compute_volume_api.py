"""Compute (Nova) and Block Storage (Cinder) over real HTTP: servers, flavors, attachments, stop/start,
metadata, and the two ways of imaging an instance."""

from __future__ import annotations

import hashlib
import re

import pytest
from support import (
    LOCAL_RUNNING_SERVER,
    LOCAL_STOPPED_SERVER,
    OWNER,
    OWNER_USER,
    PARTNER,
    VOLUME_SERVER,
    Api,
    standard_seed,
)

from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import connect

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MIB = 1024 * 1024
UNKNOWN_ID = "99999999-0000-4000-8000-000000000099"


def nova_fault(answer, name: str, status: int) -> str:
    """The message of a Nova/Cinder fault body `{name: {"message": ..., "code": status}}`."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {name}, body
    assert body[name]["code"] == status
    return body[name]["message"]


def get_server(api: Api, server_id: str) -> dict:
    answer = api.compute("GET", f"/servers/{server_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["server"]


def action(api: Api, server_id: str, body: dict):
    return api.compute("POST", f"/servers/{server_id}/action", json=body)


def create_image(api: Api, server_id: str, name: str = "snap", **extra):
    return action(api, server_id, {"createImage": {"name": name, **extra}})


def image_id_from_location(answer) -> str:
    location = answer.headers["Location"]
    image_id = location.rstrip("/").rsplit("/", 1)[-1]
    assert UUID.match(image_id), location
    return image_id


def get_image(api: Api, image_id: str) -> dict:
    answer = api.image("GET", f"/v2/images/{image_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def root_volume_id(api: Api, server_id: str) -> str:
    attachments = api.compute("GET", f"/servers/{server_id}/os-volume_attachments").json()["volumeAttachments"]
    return next(a["volumeId"] for a in attachments if a["device"] == "/dev/vda")


def upload_image(api: Api, volume_id: str, **args):
    body = {
        "os-volume_upload_image": {
            "image_name": "vol-snap",
            "disk_format": "qcow2",
            "container_format": "bare",
            "visibility": "private",
            "protected": False,
            **args,
        }
    }
    return api.volume("POST", f"/volumes/{volume_id}/action", json=body)


# -- servers and flavors --------------------------------------------------------------------------


def test_servers_list_has_ids_names_links(owner):
    """GET /servers lists the project's servers in the region with id, name and links."""
    answer = owner.compute("GET", "/servers")
    assert answer.status_code == 200, answer.text
    servers = answer.json()["servers"]
    assert {s["id"] for s in servers} == {VOLUME_SERVER, LOCAL_STOPPED_SERVER, LOCAL_RUNNING_SERVER}
    for server in servers:
        assert server["name"]
        assert server["links"]


def test_servers_detail_has_status_and_flavor_id_only(owner):
    """GET /servers/detail shows each server's status and its flavor as an id only (no name)."""
    answer = owner.compute("GET", "/servers/detail")
    assert answer.status_code == 200, answer.text
    servers = {s["id"]: s for s in answer.json()["servers"]}
    assert servers[VOLUME_SERVER]["status"] == "ACTIVE"
    assert servers[LOCAL_STOPPED_SERVER]["status"] == "SHUTOFF"
    assert servers[LOCAL_RUNNING_SERVER]["status"] == "ACTIVE"
    for server in servers.values():
        flavor = server["flavor"]
        assert "id" in flavor
        assert "name" not in flavor and "original_name" not in flavor, flavor


def test_get_server_shows_one_server(owner):
    """GET /servers/{id} returns that server wrapped in `server`."""
    server = get_server(owner, VOLUME_SERVER)
    assert server["id"] == VOLUME_SERVER
    assert server["name"] == "web-golden-01"
    assert server["tenant_id"] == OWNER
    assert server["OS-EXT-STS:task_state"] is None


def test_flavors_detail_maps_server_flavor_ids_to_names(owner):
    """flavors/detail maps a server's flavor id to its name (m2.c4m8, u2.c2m4)."""
    answer = owner.compute("GET", "/flavors/detail")
    assert answer.status_code == 200, answer.text
    names = {f["id"]: f["name"] for f in answer.json()["flavors"]}
    assert names[get_server(owner, VOLUME_SERVER)["flavor"]["id"]] == "m2.c4m8"
    assert names[get_server(owner, LOCAL_STOPPED_SERVER)["flavor"]["id"]] == "u2.c2m4"
    assert names[get_server(owner, LOCAL_RUNNING_SERVER)["flavor"]["id"]] == "u2.c2m4"


def test_name_filter_is_a_regex(owner):
    """`name=` filters servers by regular expression, as Nova does."""
    answer = owner.compute("GET", "/servers", params={"name": "^batch-0[0-9]$"})
    assert answer.status_code == 200, answer.text
    assert {s["id"] for s in answer.json()["servers"]} == {LOCAL_STOPPED_SERVER, LOCAL_RUNNING_SERVER}
    answer = owner.compute("GET", "/servers/detail", params={"name": "golden"})
    assert [s["id"] for s in answer.json()["servers"]] == [VOLUME_SERVER]


def test_unknown_server_is_404_item_not_found(owner):
    """An unknown server is 404 `{"itemNotFound": {"message": "Instance X could not be found.", "code": 404}}`."""
    answer = owner.compute("GET", f"/servers/{UNKNOWN_ID}")
    assert answer.json() == {"itemNotFound": {"message": f"Instance {UNKNOWN_ID} could not be found.", "code": 404}}
    assert answer.status_code == 404


def test_url_tenant_other_than_token_tenant_is_400(owner):
    """A compute URL whose tenant differs from the token's project is 400 `Malformed request URL`."""
    url = owner.endpoint("compute").replace(OWNER, PARTNER) + "/servers"
    answer = owner.http.get(url, timeout=10)
    message = nova_fault(answer, "badRequest", 400)
    assert message.startswith("Malformed request URL")
    assert f"URL's project_id '{PARTNER}' doesn't match Context's project_id '{OWNER}'" in message


def test_another_projects_server_is_404(partner):
    """A server of another project is 404 (not 403) through the caller's own endpoint."""
    answer = partner.compute("GET", f"/servers/{VOLUME_SERVER}")
    message = nova_fault(answer, "itemNotFound", 404)
    assert message == f"Instance {VOLUME_SERVER} could not be found."


def test_another_projects_servers_not_listed(partner):
    """The server list shows only the caller's project."""
    answer = partner.compute("GET", "/servers")
    assert answer.status_code == 200
    assert answer.json()["servers"] == []


# -- volume attachments ---------------------------------------------------------------------------


def test_volume_server_has_root_attachment_on_vda(owner):
    """os-volume_attachments of a volume-rooted server lists one volume on /dev/vda."""
    answer = owner.compute("GET", f"/servers/{VOLUME_SERVER}/os-volume_attachments")
    assert answer.status_code == 200, answer.text
    attachments = answer.json()["volumeAttachments"]
    assert len(attachments) == 1
    assert attachments[0]["device"] == "/dev/vda"
    assert attachments[0]["serverId"] == VOLUME_SERVER
    assert attachments[0]["volumeId"]


@pytest.mark.parametrize("server_id", [LOCAL_STOPPED_SERVER, LOCAL_RUNNING_SERVER])
def test_local_disk_server_has_no_attachments(owner, server_id):
    """os-volume_attachments of a local-disk (u2) server is empty."""
    answer = owner.compute("GET", f"/servers/{server_id}/os-volume_attachments")
    assert answer.status_code == 200, answer.text
    assert answer.json()["volumeAttachments"] == []


def test_volumes_attached_on_server_view(owner):
    """`os-extended-volumes:volumes_attached` names the root volume, or is empty for a local disk."""
    volume_id = root_volume_id(owner, VOLUME_SERVER)
    assert get_server(owner, VOLUME_SERVER)["os-extended-volumes:volumes_attached"] == [{"id": volume_id}]
    assert get_server(owner, LOCAL_STOPPED_SERVER)["os-extended-volumes:volumes_attached"] == []


# -- stop and start -------------------------------------------------------------------------------


def test_os_stop_on_active_is_202_then_shutoff(owner):
    """os-stop on an ACTIVE server is 202 with no body, and the server becomes SHUTOFF."""
    answer = action(owner, LOCAL_RUNNING_SERVER, {"os-stop": None})
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    server = get_server(owner, LOCAL_RUNNING_SERVER)
    assert server["status"] == "SHUTOFF"
    assert server["OS-EXT-STS:task_state"] is None


def test_os_stop_on_shutoff_is_409(owner):
    """os-stop on a SHUTOFF server is 409 `Cannot 'stop' instance X while it is in vm_state stopped`."""
    answer = action(owner, LOCAL_STOPPED_SERVER, {"os-stop": None})
    message = nova_fault(answer, "conflictingRequest", 409)
    assert message == f"Cannot 'stop' instance {LOCAL_STOPPED_SERVER} while it is in vm_state stopped"


def test_os_start_on_shutoff_is_202_then_active(owner):
    """os-start on a SHUTOFF server is 202 with no body, and the server becomes ACTIVE."""
    answer = action(owner, LOCAL_STOPPED_SERVER, {"os-start": None})
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    server = get_server(owner, LOCAL_STOPPED_SERVER)
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:task_state"] is None


def test_os_start_on_active_is_409(owner):
    """os-start on an ACTIVE server is 409 `Cannot 'start' instance X while it is in vm_state active`."""
    answer = action(owner, VOLUME_SERVER, {"os-start": None})
    message = nova_fault(answer, "conflictingRequest", 409)
    assert message == f"Cannot 'start' instance {VOLUME_SERVER} while it is in vm_state active"


def test_os_stop_takes_polls_with_task_state(make_sim):
    """With server_ready_after_polls=2, a stopping server shows ACTIVE/powering-off for two polls, then
    SHUTOFF/null."""
    api = Api(make_sim(server_ready_after_polls=2), *OWNER_USER, OWNER)
    assert action(api, LOCAL_RUNNING_SERVER, {"os-stop": None}).status_code == 202
    polls = [get_server(api, LOCAL_RUNNING_SERVER) for _ in range(3)]
    assert [(p["status"], p["OS-EXT-STS:task_state"]) for p in polls] == [
        ("ACTIVE", "powering-off"),
        ("ACTIVE", "powering-off"),
        ("SHUTOFF", None),
    ]
    assert polls[-1]["OS-EXT-STS:vm_state"] == "stopped"


def test_os_start_takes_polls_with_task_state(make_sim):
    """With server_ready_after_polls=2, a starting server shows SHUTOFF/powering-on for two polls, then
    ACTIVE/null."""
    api = Api(make_sim(server_ready_after_polls=2), *OWNER_USER, OWNER)
    assert action(api, LOCAL_STOPPED_SERVER, {"os-start": None}).status_code == 202
    polls = [get_server(api, LOCAL_STOPPED_SERVER) for _ in range(3)]
    assert [(p["status"], p["OS-EXT-STS:task_state"]) for p in polls] == [
        ("SHUTOFF", "powering-on"),
        ("SHUTOFF", "powering-on"),
        ("ACTIVE", None),
    ]


# -- Nova's task states: a server busy with a task refuses other actions ----------------------------


def task_states(api: Api, server_id: str, polls: int) -> list[tuple[str, str | None]]:
    return [(s["status"], s["OS-EXT-STS:task_state"]) for s in (get_server(api, server_id) for _ in range(polls))]


def test_create_image_task_states_over_server_polls(make_sim):
    """A local-disk createImage is Nova's snapshot task: with image_task_polls=2 the stopped server shows
    task_state image_snapshot for two polls, image_pending_upload for two, image_uploading while its
    image uploads (image_ready_after_polls=2), then null once the image is active."""
    api = Api(make_sim(image_ready_after_polls=2, image_task_polls=2), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    assert task_states(api, LOCAL_STOPPED_SERVER, 7) == [
        ("SHUTOFF", "image_snapshot"),
        ("SHUTOFF", "image_snapshot"),
        ("SHUTOFF", "image_pending_upload"),
        ("SHUTOFF", "image_pending_upload"),
        ("SHUTOFF", "image_uploading"),
        ("SHUTOFF", "image_uploading"),
        ("SHUTOFF", None),
    ]
    assert get_image(api, image_id)["status"] == "active"


def test_create_image_task_moves_with_polls_of_the_server_or_the_image(make_sim):
    """Polls of the image count as polls of the task: the task ends the moment the image is active."""
    api = Api(make_sim(image_ready_after_polls=2, image_task_polls=1), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    seen = []
    for _ in range(2):
        seen.append(get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"])
        seen.append(get_image(api, image_id)["status"])
    seen.append(get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"])
    assert seen == ["image_snapshot", "queued", "image_uploading", "saving", None]
    assert get_image(api, image_id)["status"] == "active"


def test_actions_during_create_image_are_409_with_novas_message(make_sim):
    """While the snapshot task runs, os-start and a second createImage are 409 conflictingRequest
    "Cannot '<action>' instance <id> while it is in task_state <state>" (Nova's check_instance_state,
    worded by raise_http_conflict_for_instance_invalid_state); os-stop of the stopped server meets
    Nova's vm_state check first. Once the image is active, os-start is accepted."""
    api = Api(make_sim(image_ready_after_polls=1, image_task_polls=1), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    server = LOCAL_STOPPED_SERVER
    start = nova_fault(action(api, server, {"os-start": None}), "conflictingRequest", 409)
    assert start == f"Cannot 'start' instance {server} while it is in task_state image_snapshot"
    again = nova_fault(create_image(api, server, "snap-2"), "conflictingRequest", 409)
    assert again == f"Cannot 'createImage' instance {server} while it is in task_state image_snapshot"
    stop = nova_fault(action(api, server, {"os-stop": None}), "conflictingRequest", 409)
    assert stop == f"Cannot 'stop' instance {server} while it is in vm_state stopped"
    get_server(api, server)  # image_snapshot -> image_pending_upload
    late = nova_fault(action(api, server, {"os-start": None}), "conflictingRequest", 409)
    assert late == f"Cannot 'start' instance {server} while it is in task_state image_pending_upload"
    while get_image(api, image_id)["status"] != "active":
        pass
    assert get_server(api, server)["OS-EXT-STS:task_state"] is None
    assert action(api, server, {"os-start": None}).status_code == 202
    names = [i["name"] for i in api.image("GET", "/v2/images").json()["images"]]
    assert "snap-2" not in names


def test_create_image_conflict_ignores_the_running_status_knob(make_sim):
    """A task under way is Nova's 409 whatever create_image_running_status says (that knob is NHN's
    answer for a running server)."""
    api = Api(make_sim(image_ready_after_polls=1, create_image_running_status=400), *OWNER_USER, OWNER)
    create_image(api, LOCAL_STOPPED_SERVER)
    nova_fault(create_image(api, LOCAL_STOPPED_SERVER, "snap-2"), "conflictingRequest", 409)


def test_deleting_the_image_ends_the_snapshot_task(make_sim):
    """Nova resets the task_state when Glance loses the image mid-snapshot: the server is free again."""
    api = Api(make_sim(image_ready_after_polls=2, image_task_polls=5), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    assert get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"] == "image_snapshot"
    assert api.image("DELETE", f"/v2/images/{image_id}").status_code == 204
    assert get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"] is None
    assert action(api, LOCAL_STOPPED_SERVER, {"os-start": None}).status_code == 202


def test_an_image_ready_at_once_needs_no_task(make_sim):
    """image_ready_after_polls=0: the image is active at once and the server shows no task at all."""
    api = Api(make_sim(image_ready_after_polls=0, image_task_polls=3), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    assert get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"] is None
    assert get_image(api, image_id)["status"] == "active"


def test_image_task_polls_zero_goes_straight_to_uploading(make_sim):
    """image_task_polls=0 skips image_snapshot and image_pending_upload: the image behaves as before
    the knob existed (queued, saving, active)."""
    api = Api(make_sim(image_ready_after_polls=2, image_task_polls=0), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    assert get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"] == "image_uploading"
    assert [get_image(api, image_id)["status"] for _ in range(2)] == ["saving", "active"]
    assert get_server(api, LOCAL_STOPPED_SERVER)["OS-EXT-STS:task_state"] is None


def test_a_stopping_server_refuses_stop_start_and_create_image(make_sim):
    """While powering-off (status still ACTIVE): os-stop and createImage meet the task, 409 task_state
    powering-off; os-start meets Nova's vm_state check first, 409 vm_state active."""
    api = Api(make_sim(server_ready_after_polls=2), *OWNER_USER, OWNER)
    server = LOCAL_RUNNING_SERVER
    assert action(api, server, {"os-stop": None}).status_code == 202
    stop = nova_fault(action(api, server, {"os-stop": None}), "conflictingRequest", 409)
    assert stop == f"Cannot 'stop' instance {server} while it is in task_state powering-off"
    start = nova_fault(action(api, server, {"os-start": None}), "conflictingRequest", 409)
    assert start == f"Cannot 'start' instance {server} while it is in vm_state active"
    image = nova_fault(create_image(api, server), "conflictingRequest", 409)
    assert image == f"Cannot 'createImage' instance {server} while it is in task_state powering-off"
    assert task_states(api, server, 3) == [("ACTIVE", "powering-off"), ("ACTIVE", "powering-off"), ("SHUTOFF", None)]
    assert action(api, server, {"os-start": None}).status_code == 202


def test_a_starting_server_refuses_start_stop_and_create_image(make_sim):
    """While powering-on (status still SHUTOFF): os-start and createImage meet the task, 409 task_state
    powering-on; os-stop meets the vm_state check first, 409 vm_state stopped."""
    api = Api(make_sim(server_ready_after_polls=2), *OWNER_USER, OWNER)
    server = LOCAL_STOPPED_SERVER
    assert action(api, server, {"os-start": None}).status_code == 202
    start = nova_fault(action(api, server, {"os-start": None}), "conflictingRequest", 409)
    assert start == f"Cannot 'start' instance {server} while it is in task_state powering-on"
    stop = nova_fault(action(api, server, {"os-stop": None}), "conflictingRequest", 409)
    assert stop == f"Cannot 'stop' instance {server} while it is in vm_state stopped"
    image = nova_fault(create_image(api, server), "conflictingRequest", 409)
    assert image == f"Cannot 'createImage' instance {server} while it is in task_state powering-on"
    assert task_states(api, server, 3) == [("SHUTOFF", "powering-on"), ("SHUTOFF", "powering-on"), ("ACTIVE", None)]


# -- metadata -------------------------------------------------------------------------------------


def test_metadata_post_merges_and_get_returns(owner):
    """POST metadata merges the keys into the existing metadata; GET returns the merged set."""
    before = owner.compute("GET", f"/servers/{VOLUME_SERVER}/metadata").json()["metadata"]
    assert before.get("os_type") == "linux"
    answer = owner.compute("POST", f"/servers/{VOLUME_SERVER}/metadata", json={"metadata": {"team": "web"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {**before, "team": "web"}
    after = owner.compute("GET", f"/servers/{VOLUME_SERVER}/metadata")
    assert after.status_code == 200
    assert after.json()["metadata"] == {**before, "team": "web"}
    assert get_server(owner, VOLUME_SERVER)["metadata"]["team"] == "web"


def test_metadata_delete_key(owner):
    """DELETE metadata/{key} removes that key (204); deleting it again is 404."""
    owner.compute("POST", f"/servers/{VOLUME_SERVER}/metadata", json={"metadata": {"team": "web"}})
    answer = owner.compute("DELETE", f"/servers/{VOLUME_SERVER}/metadata/team")
    assert answer.status_code == 204, answer.text
    metadata = owner.compute("GET", f"/servers/{VOLUME_SERVER}/metadata").json()["metadata"]
    assert "team" not in metadata
    again = owner.compute("DELETE", f"/servers/{VOLUME_SERVER}/metadata/team")
    nova_fault(again, "itemNotFound", 404)


def test_metadata_values_must_be_strings(owner):
    """A non-string metadata value is 400 badRequest, and nothing changes."""
    before = owner.compute("GET", f"/servers/{VOLUME_SERVER}/metadata").json()["metadata"]
    answer = owner.compute("POST", f"/servers/{VOLUME_SERVER}/metadata", json={"metadata": {"count": 3}})
    nova_fault(answer, "badRequest", 400)
    assert owner.compute("GET", f"/servers/{VOLUME_SERVER}/metadata").json()["metadata"] == before


# -- createImage ----------------------------------------------------------------------------------


def test_create_image_on_stopped_local_server_is_202_with_location(owner):
    """createImage on a SHUTOFF u2 server is 202, no body, and Location's last segment is the image id."""
    answer = create_image(owner, LOCAL_STOPPED_SERVER)
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    image_id = image_id_from_location(answer)
    assert get_image(owner, image_id)["id"] == image_id


def test_create_image_progresses_to_active(make_sim):
    """With image_ready_after_polls=2 (and image_task_polls=1), the new image is queued while Nova
    snapshots (image_snapshot, image_pending_upload: one poll each), then queued, saving (no size or
    checksum yet) as it uploads, then active with its checksums."""
    api = Api(make_sim(image_ready_after_polls=2, image_task_polls=1), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))
    polls = [get_image(api, image_id) for _ in range(5)]
    assert [p["status"] for p in polls] == ["queued", "queued", "queued", "saving", "active"]
    assert all(p["checksum"] is None and p["size"] is None for p in polls[:4])
    assert re.fullmatch(r"[0-9a-f]{32}", polls[4]["checksum"])
    assert polls[4]["os_hash_algo"] == "sha512"


def test_create_image_attributes(owner):
    """The server's image is private, owned by the project, inherits os_type, and holds disk_mb of data."""
    image_id = image_id_from_location(create_image(owner, LOCAL_STOPPED_SERVER, metadata={"purpose": "golden"}))
    image = get_image(owner, image_id)
    assert image["status"] == "active"
    assert image["owner"] == OWNER
    assert image["visibility"] == "private"
    assert image["os_type"] == "linux"
    assert image["purpose"] == "golden"
    assert image["name"] == "snap"
    assert image["size"] > 2 * MIB  # the seeded server has disk_mb: 2
    assert re.fullmatch(r"[0-9a-f]{32}", image["checksum"])


def test_create_image_min_disk_from_flavor(owner):
    """The server's image takes `min_disk` from the server's flavor disk."""
    flavor_id = get_server(owner, LOCAL_STOPPED_SERVER)["flavor"]["id"]
    flavor = owner.compute("GET", f"/flavors/{flavor_id}").json()["flavor"]
    assert flavor["disk"] > 0
    image_id = image_id_from_location(create_image(owner, LOCAL_STOPPED_SERVER))
    assert get_image(owner, image_id)["min_disk"] == flavor["disk"]


def test_create_image_on_running_local_server_is_409_by_default(owner):
    """createImage on an ACTIVE u2 server is 409 conflictingRequest (default knob)."""
    answer = create_image(owner, LOCAL_RUNNING_SERVER)
    message = nova_fault(answer, "conflictingRequest", 409)
    assert LOCAL_RUNNING_SERVER in message


def test_create_image_running_status_knob(make_sim):
    """`create_image_running_status=400` changes the answer for a running u2 to 400."""
    api = Api(make_sim(create_image_running_status=400), *OWNER_USER, OWNER)
    answer = create_image(api, LOCAL_RUNNING_SERVER)
    nova_fault(answer, "badRequest", 400)


def test_create_image_on_volume_root_is_400_by_default(owner):
    """createImage on a volume-rooted server is 400 badRequest (default knob)."""
    answer = create_image(owner, VOLUME_SERVER)
    message = nova_fault(answer, "badRequest", 400)
    assert VOLUME_SERVER in message


def test_create_image_volume_root_status_knob(make_sim):
    """`create_image_volume_root_status=409` changes the answer for a volume root to 409."""
    api = Api(make_sim(create_image_volume_root_status=409), *OWNER_USER, OWNER)
    answer = create_image(api, VOLUME_SERVER)
    nova_fault(answer, "conflictingRequest", 409)


def test_create_image_without_name_is_400(owner):
    """createImage without a name is 400 badRequest and creates no image."""
    before = {i["id"] for i in owner.image("GET", "/v2/images").json()["images"]}
    answer = action(owner, LOCAL_STOPPED_SERVER, {"createImage": {}})
    nova_fault(answer, "badRequest", 400)
    after = {i["id"] for i in owner.image("GET", "/v2/images").json()["images"]}
    assert after == before


def test_server_image_download_needs_allow_download(owner):
    """A server's image downloads only after `nhncloud_allow_download` is PATCHed to "true" (default "false")."""
    image_id = image_id_from_location(create_image(owner, LOCAL_STOPPED_SERVER))
    image = get_image(owner, image_id)
    assert image["nhncloud_allow_download"] == "false"
    refused = owner.image("GET", f"/v2/images/{image_id}/file")
    assert refused.status_code == 403, refused.text
    patched = owner.patch_image(image_id, [{"op": "replace", "path": "/nhncloud_allow_download", "value": "true"}])
    assert patched.status_code == 200, patched.text
    assert patched.json()["nhncloud_allow_download"] == "true"
    download = owner.image("GET", f"/v2/images/{image_id}/file")
    assert download.status_code == 200, download.text[:200]
    assert len(download.content) == image["size"]
    assert hashlib.md5(download.content, usedforsecurity=False).hexdigest() == image["checksum"]


# -- Cinder os-volume_upload_image ----------------------------------------------------------------


def test_get_volume(owner):
    """GET volumes/{id} shows the root volume, in-use and attached to its server on /dev/vda."""
    volume_id = root_volume_id(owner, VOLUME_SERVER)
    answer = owner.volume("GET", f"/volumes/{volume_id}")
    assert answer.status_code == 200, answer.text
    volume = answer.json()["volume"]
    assert volume["id"] == volume_id
    assert volume["status"] == "in-use"
    assert [(a["server_id"], a["device"]) for a in volume["attachments"]] == [(VOLUME_SERVER, "/dev/vda")]


def test_upload_image_without_force_is_400(owner):
    """os-volume_upload_image on an in-use volume without force is 400 `Invalid volume: ... must be available`."""
    volume_id = root_volume_id(owner, VOLUME_SERVER)
    answer = upload_image(owner, volume_id)
    message = nova_fault(answer, "badRequest", 400)
    assert message == f"Invalid volume: Volume {volume_id} status must be available"


def test_upload_image_with_force_is_202_with_image_id(owner):
    """os-volume_upload_image with force true is 202 with `os-volume_upload_image.image_id`."""
    volume_id = root_volume_id(owner, VOLUME_SERVER)
    answer = upload_image(owner, volume_id, force=True)
    assert answer.status_code == 202, answer.text
    result = answer.json()["os-volume_upload_image"]
    assert UUID.match(result["image_id"])
    assert result["image_name"] == "vol-snap"


def test_upload_image_result_inherits_and_becomes_active(make_sim):
    """The volume's image inherits os_type/os_distro/os_version, is private, and becomes active."""
    api = Api(make_sim(image_ready_after_polls=2), *OWNER_USER, OWNER)
    volume_id = root_volume_id(api, VOLUME_SERVER)
    image_id = upload_image(api, volume_id, force=True).json()["os-volume_upload_image"]["image_id"]
    image = get_image(api, image_id)
    assert image["status"] == "queued"
    assert (image["os_type"], image["os_distro"], image["os_version"]) == ("linux", "ubuntu", "22.04")
    assert image["visibility"] == "private"
    assert image["owner"] == OWNER
    assert image["name"] == "vol-snap"
    assert [get_image(api, image_id)["status"] for _ in range(2)] == ["saving", "active"]


def test_upload_image_unknown_volume_is_404(owner):
    """os-volume_upload_image on an unknown volume is 404 itemNotFound."""
    answer = upload_image(owner, UNKNOWN_ID, force=True)
    message = nova_fault(answer, "itemNotFound", 404)
    assert UNKNOWN_ID in message


def test_unknown_volume_get_is_404(owner):
    """GET volumes/{unknown} is 404 itemNotFound."""
    answer = owner.volume("GET", f"/volumes/{UNKNOWN_ID}")
    nova_fault(answer, "itemNotFound", 404)


# -- found in review ------------------------------------------------------------------------------


def test_create_image_metadata_wins_over_inherited_properties(owner):
    """createImage metadata naming an inherited property (os_type, nhncloud_*) sets it on the image."""
    metadata = {"os_type": "windows", "nhncloud_allow_download": "true"}
    image_id = image_id_from_location(create_image(owner, LOCAL_STOPPED_SERVER, metadata=metadata))
    image = get_image(owner, image_id)
    assert (image["os_type"], image["nhncloud_allow_download"]) == ("windows", "true")


@pytest.mark.parametrize("key", ["status", "checksum", "owner", "name", "protected"])
def test_create_image_metadata_cannot_set_image_attributes(owner, key):
    """createImage metadata becomes image properties; Glance's own attributes are refused (400), and
    no image is made."""
    before = len(owner.image("GET", "/v2/images").json()["images"])
    answer = create_image(owner, LOCAL_STOPPED_SERVER, metadata={key: "x"})
    assert nova_fault(answer, "badRequest", 400).startswith("Invalid image metadata")
    assert len(owner.image("GET", "/v2/images").json()["images"]) == before


def test_imaging_a_large_disk_answers_at_once_and_hashes_in_the_background(make_sim, monkeypatch):
    """Nova answers createImage at once; the simulator hashes a large generated disk off the request
    path and keeps the image `saving` until the checksums exist."""
    import threading

    from reconciler.simulator import qcow2

    release = threading.Event()
    real = qcow2.generated_digests

    def slow_digests(size_mb, content):
        assert release.wait(10), "the test never released the digests"
        return real(1, content)

    monkeypatch.setattr(qcow2, "generated_digests", slow_digests)
    seed = standard_seed()
    seed["servers"][1]["disk_mb"] = 4096  # above the inline-hashing threshold
    api = Api(make_sim(seed, image_ready_after_polls=1, image_task_polls=0), *OWNER_USER, OWNER)
    image_id = image_id_from_location(create_image(api, LOCAL_STOPPED_SERVER))  # returns: not hashed inline
    statuses = [get_image(api, image_id)["status"] for _ in range(3)]
    assert statuses == ["queued", "saving", "saving"]  # ready by polls, still hashing
    release.set()
    for _ in range(200):
        image = get_image(api, image_id)
        if image["status"] == "active":
            break
        threading.Event().wait(0.01)
    assert image["status"] == "active" and image["checksum"] == real(1, image_id)[0]
    assert image["size"] > 4096 * 1024 * 1024


def test_negative_server_limit_is_400(owner):
    """Nova refuses a negative limit rather than returning a truncated list."""
    answer = owner.compute("GET", "/servers?limit=-1")
    assert nova_fault(answer, "badRequest", 400) == "limit param must be positive"


def test_volumes_detail_pages_and_names_the_image_each_volume_was_made_from(make_sim):
    """Cinder's paged detail list: a volume made from an image names it in volume_image_metadata, so
    "who uses an image" covers volumes too (the client's list_volumes)."""
    seed = standard_seed()
    seed["servers"].append({**seed["servers"][0], "name": "second-volume-server", "id": None})
    seed["servers"][-1].pop("id")
    sim = make_sim(seed)
    owner = Api(sim, *OWNER_USER, OWNER)
    first = owner.volume("GET", "/volumes/detail", params={"limit": 1}).json()
    assert len(first["volumes"]) == 1 and first["volumes_links"][0]["rel"] == "next"
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    client._page_size = 1
    volumes = client.list_volumes("KR1")
    assert len(volumes) == 2 and all(v.image_id for v in volumes)
    booted = {s.image_id for s in client.list_servers("KR1")}
    assert None in booted, "a server booted from a volume shows no image"
