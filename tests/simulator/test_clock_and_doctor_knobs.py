"""The simulator's clock (Date headers, timestamps, `POST /_simulator/clock`), deleted-id tombstones in the
state, the `hold` fault, and the knobs a `doctor` run checks: each knob's default is
what the reconciler assumes of NHN, and flipping it changes what the API does."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
from support import (
    DOWNLOADABLE_IMAGE,
    OWNER,
    OWNER_USER,
    PARTNER,
    PROTECTED_IMAGE,
    SHARED_IMAGE,
    Api,
    standard_seed,
)

from reconciler.schemas import load_schema
from reconciler.simulator import server as server_module
from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore, write_state_file

REPO = Path(__file__).resolve().parents[2]
CREATE_ROUTE = "POST /image/{region}/v2/images"
UNKNOWN_PROJECT = "ffffffffffffffffffffffffffffffff"


def owner_api(sim) -> Api:
    return Api(sim, *OWNER_USER, OWNER)


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def date_of(answer: requests.Response) -> float:
    return email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()


def create(api: Api, **fields) -> requests.Response:
    body = {"name": "knob", "os_type": "linux", "disk_format": "qcow2", "container_format": "bare", **fields}
    return api.image("POST", "/v2/images", json={"visibility": "private", **body})


def list_ids(api: Api, query: str = "") -> list[str]:
    answer = api.image("GET", f"/v2/images{query}")
    assert answer.status_code == 200, answer.text
    return [image["id"] for image in answer.json()["images"]]


def clock(sim, advance_s=None) -> requests.Response:
    url = f"{sim.base_url}/_simulator/clock"
    if advance_s is None:
        return requests.get(url, timeout=10)
    return requests.post(url, json={"advance_s": advance_s}, timeout=10)


# -- the clock ------------------------------------------------------------------------------------


def test_every_answer_carries_a_date_header_from_the_clock(sim, owner):
    """RFC 7231 Date on every answer: services, errors, identity, the simulator's own endpoints."""
    answers = [
        owner.image("GET", "/v2/images"),
        owner.image("GET", "/v2/images/99999999-0000-4000-8000-000000000099"),
        owner.compute("GET", "/servers"),
        requests.get(f"{sim.identity_url}", timeout=10),
        requests.get(f"{sim.base_url}/no/such/path", timeout=10),
        requests.get(f"{sim.base_url}/_simulator/stats", timeout=10),
    ]
    for answer in answers:
        assert answer.headers["Date"].endswith(" GMT"), answer.headers
        assert abs(date_of(answer) - time.time()) < 5


def test_moving_the_clock_moves_dates_and_new_timestamps(sim, owner):
    """POST /_simulator/clock adds to the offset and answers it; Date headers and created_at follow."""
    assert clock(sim).json()["offset_s"] == 0
    answer = clock(sim, 3600)
    assert answer.status_code == 200, answer.text
    assert answer.json()["offset_s"] == 3600
    assert sim.advance_clock(1800) == 5400
    assert clock(sim).json()["offset_s"] == 5400
    made = create(owner)
    assert abs(date_of(made) - (time.time() + 5400)) < 5
    image = made.json()
    assert abs(epoch(image["created_at"]) - (time.time() + 5400)) < 5
    assert image["created_at"] == image["updated_at"] and image["created_at"].endswith("Z")
    assert abs(sim.now() - (time.time() + 5400)) < 1


@pytest.mark.parametrize("body", [{}, {"advance_s": "60"}, {"advance_s": True}, {"advance_s": 1, "x": 2}])
def test_a_malformed_clock_request_is_400(sim, body):
    answer = requests.post(f"{sim.base_url}/_simulator/clock", json=body, timeout=10)
    assert answer.status_code == 400, answer.text
    assert clock(sim).json()["offset_s"] == 0


def test_the_clock_offset_lives_in_the_state_file(make_sim, tmp_path):
    """Every process serving one state shares the clock: the offset is in the state."""
    path = tmp_path / "state.json"
    sim = make_sim(state_file=path)
    sim.advance_clock(120)
    assert json.loads(path.read_text())["clock_offset_s"] == 120
    second = SimulatorServer(StateStore.open(path), Behaviour()).start()
    try:
        assert clock(second).json()["offset_s"] == 120
    finally:
        second.stop()


def test_clock_skew_separates_the_date_header_from_stored_timestamps(make_sim):
    sim = make_sim(clock_skew_s=-90)
    made = create(owner_api(sim))
    assert abs(date_of(made) + 90 - epoch(made.json()["updated_at"])) < 3


def test_leases_expire_by_moving_the_clock(sim, owner):
    """What a lock test does: updated_at is the server's; moving the clock ages it without waiting."""
    claim = create(owner).json()
    sim.advance_clock(600)
    listed = owner.image("GET", f"/v2/images?name={claim['name']}")
    assert date_of(listed) - epoch(claim["updated_at"]) >= 599


# -- deleted ids in the state ---------------------------------------------------------------------


def test_tombstones_persist_and_old_state_files_load(make_sim, tmp_path):
    """A state written before tombstones and the clock existed (no `deleted_images`, no
    `clock_offset_s`) serves as usual; a delete then records the id in the file."""
    path = tmp_path / "state.json"
    state = state_from_seed(standard_seed())
    del state["deleted_images"], state["clock_offset_s"]
    write_state_file(path, state)
    sim = SimulatorServer(StateStore.open(path), Behaviour(image_ready_after_polls=0)).start()
    try:
        api = owner_api(sim)
        assert clock(sim).json()["offset_s"] == 0
        assert api.image("DELETE", f"/v2/images/{DOWNLOADABLE_IMAGE}").status_code == 204
        tombstone = json.loads(path.read_text())["deleted_images"][DOWNLOADABLE_IMAGE]
        assert tombstone["region"] == "KR1" and tombstone["deleted_at"].endswith("Z")
        assert create(api, id=DOWNLOADABLE_IMAGE).status_code == 409
    finally:
        sim.stop()


def test_deleted_ids_reusable_knob(make_sim):
    api = owner_api(make_sim(deleted_ids_reusable=True))
    assert api.image("DELETE", f"/v2/images/{DOWNLOADABLE_IMAGE}").status_code == 204
    again = create(api, id=DOWNLOADABLE_IMAGE)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == DOWNLOADABLE_IMAGE


# -- the hold fault -------------------------------------------------------------------------------


def test_hold_answers_two_racing_creates_together_in_the_same_second(make_sim):
    """`hold: 2`: the first POST waits for the second; both are carried out, then both answered."""
    sim = make_sim(faults=[{"route": CREATE_ROUTE, "on_call": [1, 2], "hold": 2}])
    api = owner_api(sim)
    answers: dict[str, requests.Response] = {}
    finished: dict[str, float] = {}

    def post(name: str) -> None:
        answers[name] = create(api, name=name)
        finished[name] = time.monotonic()

    first = threading.Thread(target=post, args=("first",))
    first.start()
    time.sleep(0.5)
    assert "first" not in answers, "the first call was answered before the second came"
    second = threading.Thread(target=post, args=("second",))
    second.start()
    first.join(15)
    second.join(15)
    assert [answers[n].status_code for n in ("first", "second")] == [201, 201]
    assert answers["first"].json()["created_at"] == answers["second"].json()["created_at"]
    assert abs(finished["first"] - finished["second"]) < 0.5
    # Later calls are not held.
    started = time.monotonic()
    assert create(api).status_code == 201
    assert time.monotonic() - started < 2
    hits = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10).json()["routes"]
    assert hits[CREATE_ROUTE] == 3


def test_hold_with_a_conflict_answers_both(make_sim):
    """Two creates of one id held together: one is created, the other is 409, and neither waits for long."""
    sim = make_sim(faults=[{"route": CREATE_ROUTE, "on_call": [1, 2], "hold": 2}])
    api = owner_api(sim)
    image_id = "aaaaaaaa-0000-4000-8000-0000000000a1"
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(create(api, id=image_id).status_code)) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(statuses) == [201, 409]
    assert time.monotonic() - started < 5


def test_a_held_call_goes_ahead_alone_after_the_timeout(make_sim, monkeypatch):
    monkeypatch.setattr(server_module, "HOLD_TIMEOUT_S", 0.4)
    sim = make_sim(faults=[{"route": CREATE_ROUTE, "on_call": 1, "hold": 3}])
    started = time.monotonic()
    assert create(owner_api(sim)).status_code == 201
    assert 0.35 <= time.monotonic() - started < 3


def test_hold_is_one_kind_of_fault_among_the_others():
    with pytest.raises(ValueError, match="a fault needs exactly one of status, drop, lose_answer, cut_after_bytes"):
        Behaviour.from_dict({"faults": [{"route": CREATE_ROUTE, "hold": 2, "status": 503}]})
    with pytest.raises(ValueError, match="less than the minimum of 1"):
        Behaviour.from_dict({"faults": [{"route": CREATE_ROUTE, "hold": 0}]})
    fault = Behaviour.from_dict({"faults": [{"route": CREATE_ROUTE, "hold": 2}]}).faults[0]
    assert (fault.kind, fault.to_dict()) == ("hold", {"route": CREATE_ROUTE, "on_call": [1], "hold": 2})


# -- doctor's knobs -------------------------------------------------------------------------------


def test_listing_lag_hides_new_images_and_recent_changes_from_lists_only(make_sim):
    """`listing_lag_s`: lists show images as they were that long ago (GET by id is current)."""
    sim = make_sim(listing_lag_s=30)
    api = owner_api(sim)
    image = create(api, name="lagging").json()
    assert image["id"] not in list_ids(api)
    assert api.image("GET", f"/v2/images/{image['id']}").status_code == 200
    sim.advance_clock(31)
    assert image["id"] in list_ids(api)
    renamed = api.patch_image(image["id"], [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert renamed.json()["name"] == "renamed"
    assert list_ids(api, "?name=lagging") == [image["id"]]
    assert list_ids(api, "?name=renamed") == []
    sim.advance_clock(31)
    assert list_ids(api, "?name=renamed") == [image["id"]]
    assert list_ids(api, "?name=lagging") == []


def test_without_lag_lists_are_read_after_write(sim, owner):
    image = create(owner, name="fresh").json()
    assert list_ids(owner, "?name=fresh") == [image["id"]]
    owner.patch_image(image["id"], [{"op": "replace", "path": "/name", "value": "fresher"}])
    assert list_ids(owner, "?name=fresher") == [image["id"]]


def test_name_filter_knob(make_sim):
    assert list_ids(owner_api(make_sim()), "?name=web-base") == [DOWNLOADABLE_IMAGE]
    ignored = list_ids(owner_api(make_sim(name_filter=False)), "?name=web-base")
    assert DOWNLOADABLE_IMAGE in ignored and PROTECTED_IMAGE in ignored


def test_patch_moves_updated_at_knob(make_sim):
    sim = make_sim(patch_moves_updated_at=False)
    api = owner_api(sim)
    before = api.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}").json()["updated_at"]
    sim.advance_clock(10)
    answer = api.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/name", "value": "moved"}])
    assert (answer.json()["name"], answer.json()["updated_at"]) == ("moved", before)


def test_unprotect_allowed_knob(make_sim):
    api = owner_api(make_sim(unprotect_allowed=False))
    answer = api.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/protected", "value": False}])
    assert answer.status_code == 403, answer.text
    assert "cannot be unprotected" in answer.json()["message"]
    assert api.image("GET", f"/v2/images/{PROTECTED_IMAGE}").json()["protected"] is True
    # Protecting, and PATCHes that leave protected alone, still work.
    assert api.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/protected", "value": True}]).ok
    assert api.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/protected", "value": True}]).ok


def test_client_image_ids_knob(make_sim):
    api = owner_api(make_sim(client_image_ids="refuse"))
    refused = create(api, id="aaaaaaaa-0000-4000-8000-0000000000c1")
    assert refused.status_code == 403
    assert "Attribute 'id' is read-only." in refused.json()["message"]
    assert create(api).status_code == 201
    assert create(owner_api(make_sim()), id="aaaaaaaa-0000-4000-8000-0000000000c1").status_code == 201


def test_property_filters_knob(make_sim):
    """Default (assumed of NHN): custom-property filters are ignored; true (Glance 33): they filter."""
    for knob, want_other in ((False, True), (True, False)):
        api = owner_api(make_sim(property_filters=knob))
        mine = create(api, reconciler_key="web").json()["id"]
        other = create(api, reconciler_key="api").json()["id"]
        listed = list_ids(api, "?reconciler_key=web")
        assert mine in listed and (other in listed) == want_other, knob


def test_os_type_required_knob(make_sim):
    body = {"name": "no-os-type", "visibility": "private"}
    assert owner_api(make_sim()).image("POST", "/v2/images", json=body).status_code == 400
    assert owner_api(make_sim(os_type_required=False)).image("POST", "/v2/images", json=body).status_code == 201


def test_download_gating_knob(make_sim):
    path = f"/v2/images/{PROTECTED_IMAGE}/file"  # no nhncloud_allow_download
    assert owner_api(make_sim()).image("GET", path).status_code == 403
    answer = owner_api(make_sim(download_gating=False)).image("GET", path)
    assert answer.status_code == 200 and answer.content.startswith(b"QFI\xfb")


def test_unknown_member_knob(make_sim):
    members = f"/v2/images/{SHARED_IMAGE}/members"
    accepted = owner_api(make_sim()).image("POST", members, json={"member": UNKNOWN_PROJECT})
    assert (accepted.status_code, accepted.json()["status"]) == (200, "pending")  # as Glance 33
    api = owner_api(make_sim(unknown_member="refuse"))
    refused = api.image("POST", members, json={"member": UNKNOWN_PROJECT})
    assert refused.status_code == 404 and UNKNOWN_PROJECT in refused.json()["message"]
    assert api.image("DELETE", f"{members}/{PARTNER}").status_code == 204
    assert api.image("POST", members, json={"member": PARTNER}).status_code == 200


# -- the knobs' contract: schema, defaults, docs ----------------------------------------------------

DOCTOR_KNOBS = {
    "deleted_ids_reusable": (False, True),
    "clock_skew_s": (0, -2.5),
    "listing_lag_s": (0, 30),
    "name_filter": (True, False),
    "patch_moves_updated_at": (True, False),
    "unprotect_allowed": (True, False),
    "client_image_ids": ("accept", "refuse"),
    "property_filters": (False, True),
    "os_type_required": (True, False),
    "download_gating": (True, False),
    "unknown_member": ("accept", "refuse"),
}


def test_every_knob_has_the_schemas_default_and_is_documented():
    schema = load_schema("seed")["properties"]["behaviour"]["properties"]
    defaults = {
        f.name: f.default for f in dataclasses.fields(Behaviour) if f.name in schema and "default" in schema[f.name]
    }
    for name, default in defaults.items():
        assert schema[name]["default"] == default, name
    docs = (REPO / "docs" / "simulator.md").read_text(encoding="utf-8")
    for name in DOCTOR_KNOBS:
        assert schema[name]["default"] == DOCTOR_KNOBS[name][0], name
        assert f"`{name}`" in docs, f"docs/simulator.md does not document {name}"


@pytest.mark.parametrize(("name", "flipped"), [(k, v[1]) for k, v in DOCTOR_KNOBS.items()])
def test_each_doctor_knob_round_trips_through_a_seed(name, flipped):
    seed = standard_seed()
    seed["behaviour"] = {name: flipped}
    state = state_from_seed(seed)
    assert state["behaviour"][name] == flipped
    assert getattr(Behaviour.from_dict(state["behaviour"]), name) == flipped


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"client_image_ids": "maybe"}, "'maybe' is not one of ['accept', 'refuse']"),
        ({"unknown_member": 404}, "404 is not one of ['accept', 'refuse']"),
        ({"listing_lag_s": -1}, "-1 is less than the minimum of 0"),
        ({"name_filter": "no"}, "'no' is not of type 'boolean'"),
        ({"clock_skew_s": "5"}, "'5' is not of type 'number'"),
    ],
)
def test_bad_knob_values_are_refused(knobs, message):
    with pytest.raises(ValueError) as refused:
        Behaviour.from_dict(knobs)
    assert message in str(refused.value)
