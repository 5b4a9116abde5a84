"""Who uses an image, over real HTTP (issue 22): Nova's servers (`image: {"id"}` or `""` for a volume root)
and Cinder's volumes (`volume_image_metadata.image_id`), listed page by page; and images gaining and losing
users through Nova `POST` / `DELETE /servers` and Cinder `POST` / `DELETE /volumes`, with OpenStack's
answers to bad requests."""

from __future__ import annotations

import copy
import re

import requests
from support import (
    DOWNLOADABLE_IMAGE,
    LOCAL_STOPPED_SERVER,
    OUTSIDER,
    OWNER,
    OWNER_USER,
    PARTNER,
    PARTNER_USER,
    PROTECTED_IMAGE,
    PUBLIC_IMAGE,
    SHARED_IMAGE,
    VOLUME_SERVER,
    Api,
    standard_seed,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UNKNOWN_ID = "99999999-0000-4000-8000-000000000099"
QUEUED_IMAGE = "00000000-0000-4000-8000-0000000000aa"
PARTNER_PRIVATE = "00000000-0000-4000-8000-0000000000bb"
DATA_VOLUME = "50000000-0000-4000-8000-000000000001"
SPARE_VOLUME = "50000000-0000-4000-8000-000000000002"
BLANK_VOLUME = "50000000-0000-4000-8000-000000000003"
CREATE_SERVER_ROUTE = "POST /compute/{region}/v2/{tenant_id}/servers"
DELETE_SERVER_ROUTE = "DELETE /compute/{region}/v2/{tenant_id}/servers/{server_id}"
CREATE_VOLUME_ROUTE = "POST /volume/{region}/v2/{tenant_id}/volumes"
DELETE_VOLUME_ROUTE = "DELETE /volume/{region}/v2/{tenant_id}/volumes/{volume_id}"


def usage_seed() -> dict:
    """The standard seed, plus servers booted from images (by id and by name), volumes attached, detached
    and blank, an image not yet active and another project's private image."""
    seed = copy.deepcopy(standard_seed())
    seed["images"] += [
        {"id": QUEUED_IMAGE, "project": OWNER, "region": "KR1", "name": "half-made", "status": "queued"},
        {"id": PARTNER_PRIVATE, "project": PARTNER, "region": "KR1", "name": "partner-only"},
        {"project": OWNER, "region": "KR1", "name": "twin"},
        {"project": OWNER, "region": "KR1", "name": "twin"},
    ]
    for n in range(3):
        seed["servers"].append(
            {
                "project": OWNER,
                "region": "KR1",
                "name": f"app-{n}",
                "flavor": "u2.c2m4",
                "os_type": "linux",
                "image": "web-base" if n % 2 else DOWNLOADABLE_IMAGE,
            }
        )
    seed["volumes"] = [
        {
            "id": DATA_VOLUME,
            "project": OWNER,
            "region": "KR1",
            "name": "data",
            "image": "web-base",
            "attached_to": "app-0",
        },
        {"id": SPARE_VOLUME, "project": OWNER, "region": "KR1", "name": "spare", "image": PROTECTED_IMAGE},
        {"id": BLANK_VOLUME, "project": OWNER, "region": "KR1", "name": "blank", "size_gb": 20},
    ]
    return seed


def nova_fault(answer, name: str, status: int) -> str:
    """The message of a Nova/Cinder fault body `{name: {"message": ..., "code": status}}`."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {name}, body
    assert body[name]["code"] == status
    return body[name]["message"]


def owner_api(make_sim, **knobs) -> Api:
    return Api(make_sim(usage_seed(), **knobs), *OWNER_USER, OWNER)


def flavor_id(api: Api, name: str) -> str:
    flavors = api.compute("GET", "/flavors/detail").json()["flavors"]
    return next(f["id"] for f in flavors if f["name"] == name)


def boot(api: Api, name: str = "new", *, image: str = DOWNLOADABLE_IMAGE, flavor: str = "u2.c2m4", **extra):
    body = {"server": {"name": name, "flavorRef": flavor_id(api, flavor), "imageRef": image, **extra}}
    return api.compute("POST", "/servers", json=body)


def boot_from_volume(api: Api, volume_id: str, name: str = "bfv"):
    mapping = [{"boot_index": 0, "uuid": volume_id, "source_type": "volume", "destination_type": "volume"}]
    return boot(api, name, image="", flavor="m2.c4m8", block_device_mapping_v2=mapping)


def make_volume(api: Api, size: int = 10, **fields):
    return api.volume("POST", "/volumes", json={"volume": {"size": size, **fields}})


def servers(api: Api) -> dict[str, dict]:
    return {s["id"]: s for s in api.compute("GET", "/servers/detail").json()["servers"]}


def volumes(api: Api) -> dict[str, dict]:
    return {v["id"]: v for v in api.volume("GET", "/volumes/detail").json()["volumes"]}


def walk(api: Api, service: str, path: str, key: str, limit: int) -> list[list[dict]]:
    """Every page of a Nova / Cinder detail list, following each `next` link as given."""
    call = api.compute if service == "compute" else api.volume
    answer = call("GET", path, params={"limit": limit})
    pages = []
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body[key])
        links = [link["href"] for link in body.get(f"{key}_links", []) if link["rel"] == "next"]
        if not links:
            return pages
        assert f"limit={limit}" in links[0] and f"marker={body[key][-1]['id']}" in links[0], links
        answer = api.http.get(links[0], timeout=30)


# -- listings -------------------------------------------------------------------------------------------


def test_servers_detail_pages_show_each_servers_image(make_sim):
    """limit/marker pages with a `next` link while a page is full; a local-disk server shows the image it
    was booted from (seeded by id or by name), a volume-rooted one `image: ""`."""
    api = owner_api(make_sim)
    pages = walk(api, "compute", "/servers/detail", "servers", limit=2)
    assert [len(page) for page in pages] == [2, 2, 2, 0]
    listed = {s["name"]: s for page in pages for s in page}
    assert len(listed) == 6
    for name in ("app-0", "app-1", "app-2"):
        assert listed[name]["image"]["id"] == DOWNLOADABLE_IMAGE, listed[name]
        assert listed[name]["image"]["links"][0]["rel"] == "bookmark"
    assert listed["web-golden-01"]["image"] == ""
    # A marker from another page goes on after it; an unknown one is Nova's 400.
    rest = api.compute("GET", "/servers/detail", params={"limit": 10, "marker": pages[0][-1]["id"]}).json()
    assert [s["id"] for s in rest["servers"]] == [s["id"] for page in pages[1:] for s in page]
    answer = api.compute("GET", "/servers/detail", params={"marker": UNKNOWN_ID})
    assert nova_fault(answer, "badRequest", 400) == f"marker [{UNKNOWN_ID}] not found"


def test_volumes_detail_pages_list_detached_volumes_and_their_images(make_sim):
    """Cinder lists every volume of the project, attached or not, page by page; one made from an image
    carries `volume_image_metadata.image_id`, a blank one none."""
    api = owner_api(make_sim)
    pages = walk(api, "volume", "/volumes/detail", "volumes", limit=2)
    listed = {v["id"]: v for page in pages for v in page}
    assert [len(page) for page in pages] == [2, 2, 0]
    assert {DATA_VOLUME, SPARE_VOLUME, BLANK_VOLUME} < set(listed)
    spare = listed[SPARE_VOLUME]
    assert (spare["status"], spare["attachments"], spare["name"]) == ("available", [], "spare")
    assert spare["volume_image_metadata"]["image_id"] == PROTECTED_IMAGE
    assert "volume_image_metadata" not in listed[BLANK_VOLUME]
    assert listed[BLANK_VOLUME]["size"] == 20 and listed[BLANK_VOLUME]["bootable"] == "false"
    data = listed[DATA_VOLUME]
    assert data["status"] == "in-use" and data["volume_image_metadata"]["image_id"] == DOWNLOADABLE_IMAGE
    app0 = next(s for s in servers(api).values() if s["name"] == "app-0")
    assert data["attachments"][0]["server_id"] == app0["id"] and data["attachments"][0]["device"] == "/dev/vdb"
    assert app0["os-extended-volumes:volumes_attached"] == [{"id": DATA_VOLUME}]
    attachments = api.compute("GET", f"/servers/{app0['id']}/os-volume_attachments").json()["volumeAttachments"]
    assert [(a["volumeId"], a["device"]) for a in attachments] == [(DATA_VOLUME, "/dev/vdb")]
    answer = api.volume("GET", "/volumes/detail", params={"marker": UNKNOWN_ID})
    assert nova_fault(answer, "itemNotFound", 404) == f"Marker {UNKNOWN_ID} could not be found."


# -- Nova: booting and deleting servers ------------------------------------------------------------------


def test_a_server_booted_from_an_image_lists_it_and_goes_when_deleted(make_sim):
    api = owner_api(make_sim)
    answer = boot(api, "web-new", image=PUBLIC_IMAGE, metadata={"team": "web"})
    assert answer.status_code == 202, answer.text
    created = answer.json()["server"]
    assert UUID.match(created["id"]) and created["adminPass"]
    assert created["security_groups"] == [{"name": "default"}] and created["OS-DCF:diskConfig"] == "MANUAL"
    assert answer.headers["Location"] == next(link["href"] for link in created["links"] if link["rel"] == "self")
    server = servers(api)[created["id"]]
    assert (server["name"], server["status"], server["image"]["id"]) == ("web-new", "ACTIVE", PUBLIC_IMAGE)
    assert server["metadata"]["team"] == "web" and server["metadata"]["os_type"] == "linux"
    assert server["metadata"]["image_name"] == "Ubuntu Server 22.04 LTS (2024.01.16)"
    assert api.compute("DELETE", f"/servers/{created['id']}").status_code == 204
    assert created["id"] not in servers(api)
    assert nova_fault(api.compute("GET", f"/servers/{created['id']}"), "itemNotFound", 404)
    assert nova_fault(api.compute("DELETE", f"/servers/{created['id']}"), "itemNotFound", 404)


def test_a_new_server_builds_for_the_configured_polls(make_sim):
    api = owner_api(make_sim, server_ready_after_polls=2)
    server_id = boot(api).json()["server"]["id"]
    seen = [(s["status"], s["OS-EXT-STS:task_state"]) for s in (servers(api)[server_id] for _ in range(3))]
    assert seen == [("BUILD", "spawning"), ("BUILD", "spawning"), ("ACTIVE", None)]


def test_a_member_boots_from_an_image_shared_with_it(make_sim):
    sim = make_sim(usage_seed())
    partner = Api(sim, *PARTNER_USER, PARTNER)
    body = {"server": {"name": "p", "flavorRef": flavor_id(partner, "u2.c2m4"), "imageRef": SHARED_IMAGE}}
    answer = partner.compute("POST", "/servers", json=body)
    assert answer.status_code == 202, answer.text
    assert servers(partner)[answer.json()["server"]["id"]]["image"]["id"] == SHARED_IMAGE


def test_boot_refusals_are_novas(make_sim):
    api = owner_api(make_sim)
    for image in (UNKNOWN_ID, PARTNER_PRIVATE, "not-an-image"):
        assert nova_fault(boot(api, image=image), "badRequest", 400) == "Can not find requested image"
    assert nova_fault(boot(api, image=QUEUED_IMAGE), "badRequest", 400) == f"Image {QUEUED_IMAGE} is not active."
    body = {"server": {"name": "x", "flavorRef": UNKNOWN_ID, "imageRef": DOWNLOADABLE_IMAGE}}
    answer = api.compute("POST", "/servers", json=body)
    assert nova_fault(answer, "badRequest", 400) == f"Flavor {UNKNOWN_ID} could not be found."
    body = {"server": {"name": "x", "flavorRef": flavor_id(api, "u2.c2m4")}}
    assert nova_fault(api.compute("POST", "/servers", json=body), "badRequest", 400) == "Missing imageRef attribute"
    message = nova_fault(api.compute("POST", "/servers", json={"server": {"name": "x"}}), "badRequest", 400)
    assert message.startswith("Invalid input for field/attribute server.") and "'flavorRef' is a required" in message
    # NHN's volume-rooted flavors have no local disk: Nova's zero-disk rule.
    assert (
        nova_fault(boot(api, flavor="m2.c4m8"), "forbidden", 403)
        == "Only volume-backed servers are allowed for flavors with zero disk."
    )
    assert len(servers(api)) == 6, "a refused boot adds no server"


def test_a_partner_cannot_boot_from_the_owners_private_image(make_sim):
    sim = make_sim(usage_seed())
    partner = Api(sim, *PARTNER_USER, PARTNER)
    body = {"server": {"name": "p", "flavorRef": flavor_id(partner, "u2.c2m4"), "imageRef": DOWNLOADABLE_IMAGE}}
    assert (
        nova_fault(partner.compute("POST", "/servers", json=body), "badRequest", 400) == "Can not find requested image"
    )


def test_deleting_a_server_detaches_its_volumes(make_sim):
    api = owner_api(make_sim)
    app0 = next(s for s in servers(api).values() if s["name"] == "app-0")
    root = next(
        v for v in volumes(api).values() if v["attachments"] and v["attachments"][0]["server_id"] == VOLUME_SERVER
    )
    assert api.compute("DELETE", f"/servers/{app0['id']}").status_code == 204
    assert api.compute("DELETE", f"/servers/{VOLUME_SERVER}").status_code == 204
    after = volumes(api)
    for volume_id in (DATA_VOLUME, root["id"]):
        assert (after[volume_id]["status"], after[volume_id]["attachments"]) == ("available", [])
    # The volumes still name their images: they stay users of them.
    assert after[DATA_VOLUME]["volume_image_metadata"]["image_id"] == DOWNLOADABLE_IMAGE
    left = servers(api)
    assert app0["id"] not in left and VOLUME_SERVER not in left and LOCAL_STOPPED_SERVER in left


# -- Cinder: volumes from images, booting from them, deleting them ----------------------------------------


def test_a_volume_made_from_an_image_shows_it_and_goes_when_deleted(make_sim):
    api = owner_api(make_sim)
    answer = make_volume(api, 10, name="from-image", imageRef=DOWNLOADABLE_IMAGE)
    assert answer.status_code == 202, answer.text
    created = answer.json()["volume"]
    assert UUID.match(created["id"]) and created["name"] == "from-image" and created["size"] == 10
    listed = volumes(api)[created["id"]]
    assert listed["status"] == "available" and listed["bootable"] == "true"
    assert listed["volume_image_metadata"]["image_id"] == DOWNLOADABLE_IMAGE
    by_name = make_volume(api, 10, imageRef="Ubuntu Server 22.04 LTS (2024.01.16)").json()["volume"]
    assert volumes(api)[by_name["id"]]["volume_image_metadata"]["image_id"] == PUBLIC_IMAGE
    blank = make_volume(api, 5).json()["volume"]
    assert "volume_image_metadata" not in volumes(api)[blank["id"]]
    answer = api.volume("DELETE", f"/volumes/{created['id']}")
    assert (answer.status_code, answer.content) == (202, b"")
    assert created["id"] not in volumes(api)
    assert nova_fault(api.volume("GET", f"/volumes/{created['id']}"), "itemNotFound", 404)
    assert nova_fault(api.volume("DELETE", f"/volumes/{created['id']}"), "itemNotFound", 404)


def test_a_new_volume_is_creating_for_the_configured_polls(make_sim):
    api = owner_api(make_sim, server_ready_after_polls=1)
    created = make_volume(api, imageRef=DOWNLOADABLE_IMAGE).json()["volume"]
    assert created["status"] == "creating"
    assert volumes(api)[created["id"]]["status"] == "creating"
    assert volumes(api)[created["id"]]["status"] == "available"


def test_a_server_booted_from_a_volume_shows_no_image_and_its_volume_does(make_sim):
    api = owner_api(make_sim)
    answer = boot_from_volume(api, SPARE_VOLUME)
    assert answer.status_code == 202, answer.text
    server_id = answer.json()["server"]["id"]
    server = servers(api)[server_id]
    assert server["image"] == "" and server["os-extended-volumes:volumes_attached"] == [{"id": SPARE_VOLUME}]
    volume = volumes(api)[SPARE_VOLUME]
    assert volume["status"] == "in-use" and volume["attachments"][0]["device"] == "/dev/vda"
    assert volume["attachments"][0]["server_id"] == server_id
    assert volume["volume_image_metadata"]["image_id"] == PROTECTED_IMAGE
    # An attached volume cannot be deleted (Cinder's 400); once its server is gone, it can.
    message = nova_fault(api.volume("DELETE", f"/volumes/{SPARE_VOLUME}"), "badRequest", 400)
    assert message.startswith("Invalid volume: Volume status must be available or error") and "attached" in message
    assert api.compute("DELETE", f"/servers/{server_id}").status_code == 204
    assert volumes(api)[SPARE_VOLUME]["status"] == "available"
    assert api.volume("DELETE", f"/volumes/{SPARE_VOLUME}").status_code == 202
    assert SPARE_VOLUME not in volumes(api)


def test_boot_from_volume_refusals_are_novas(make_sim):
    api = owner_api(make_sim)
    message = nova_fault(boot_from_volume(api, DATA_VOLUME), "badRequest", 400)
    assert message == (
        f"Invalid volume: Volume {DATA_VOLUME} status must be available or downloading to reserve, "
        "but the current status is in-use."
    )
    assert nova_fault(boot_from_volume(api, BLANK_VOLUME), "badRequest", 400) == (
        f"Block Device {BLANK_VOLUME} is not bootable."
    )
    assert nova_fault(boot_from_volume(api, UNKNOWN_ID), "badRequest", 400) == (
        f"Block Device Mapping is Invalid: failed to get volume {UNKNOWN_ID}."
    )
    no_root = [{"boot_index": 1, "uuid": SPARE_VOLUME, "source_type": "volume", "destination_type": "volume"}]
    message = nova_fault(boot(api, image="", block_device_mapping_v2=no_root), "badRequest", 400)
    assert message.startswith("Block Device Mapping is Invalid: Boot sequence")


def test_volume_create_refusals_are_cinders(make_sim):
    api = owner_api(make_sim)
    invalid = "Invalid image identifier or unable to access requested image."
    for image in (UNKNOWN_ID, PARTNER_PRIVATE, "no-such-name"):
        assert nova_fault(make_volume(api, imageRef=image), "badRequest", 400) == invalid
    assert nova_fault(make_volume(api, imageRef=QUEUED_IMAGE), "badRequest", 400) == (
        f"Invalid input received: Image {QUEUED_IMAGE} is not active."
    )
    for size in (0, -1, "ten", None):
        message = nova_fault(make_volume(api, size), "badRequest", 400)
        assert message.startswith("Invalid input received: Invalid volume size provided for create request")
    # Two images the project can see share a name: Cinder asks for an id.
    assert nova_fault(make_volume(api, imageRef="twin"), "conflictingRequest", 409) == (
        "Multiple matches found for 'twin', use an ID to be more specific."
    )
    assert len(volumes(api)) == 4, "a refused create adds no volume"


def test_a_creating_volume_cannot_be_deleted_or_booted(make_sim):
    api = owner_api(make_sim, server_ready_after_polls=5)
    created = make_volume(api, imageRef=DOWNLOADABLE_IMAGE).json()["volume"]
    assert nova_fault(api.volume("DELETE", f"/volumes/{created['id']}"), "badRequest", 400).startswith(
        "Invalid volume: Volume status must be available"
    )
    assert nova_fault(boot_from_volume(api, created["id"]), "badRequest", 400).endswith(
        "but the current status is creating."
    )


def test_another_projects_volume_is_not_found(make_sim):
    sim = make_sim(usage_seed())
    outsider = Api(sim, "outsider@example.com", "outsider-pass", OUTSIDER)
    assert nova_fault(outsider.volume("DELETE", f"/volumes/{SPARE_VOLUME}"), "itemNotFound", 404) == (
        f"Volume {SPARE_VOLUME} could not be found."
    )
    assert SPARE_VOLUME not in volumes(outsider)


def test_each_new_call_is_counted_under_its_route(make_sim):
    sim = make_sim(usage_seed())
    api = Api(sim, *OWNER_USER, OWNER)
    server_id = boot(api).json()["server"]["id"]
    api.compute("DELETE", f"/servers/{server_id}")
    volume_id = make_volume(api).json()["volume"]["id"]
    api.volume("DELETE", f"/volumes/{volume_id}")
    routes = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10).json()["routes"]
    for route in (CREATE_SERVER_ROUTE, DELETE_SERVER_ROUTE, CREATE_VOLUME_ROUTE, DELETE_VOLUME_ROUTE):
        assert routes[route] == 1, (route, routes)
    logged = {(entry["route"], entry["status"]) for entry in sim.request_log()}
    assert {
        (CREATE_SERVER_ROUTE, 202),
        (DELETE_SERVER_ROUTE, 204),
        (CREATE_VOLUME_ROUTE, 202),
        (DELETE_VOLUME_ROUTE, 202),
    } <= logged
