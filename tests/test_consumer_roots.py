"""An owner root and its consumer root on the simulator, end to end through the CLI (`main([...])`, in-process),
checked as the consumer sees it through the simulator's own API (tests/support.py `Api`, the consumer's token),
never through the tool's output (issue 24).

The owner rolls a family out and shares it with the consumer; the consumer's root holds only rules. One
`apply owner consumer --auto-approve` makes the version, shares it and accepts it: the consumer's default image
list (GET /v2/images: its own, the public and the accepted shared images; it owns none and nothing is public
here) holds exactly the images its rules accept, and the owner's next plan has nothing pending. A rotation
later the same rule accepts the new version in the same run. A reject rule rejects an image the consumer had
accepted by hand. With saved plans, the consumer's accept of a version shared in the same run is left for the
next plan. A root of rules alone deletes nothing of its project.

That a root without rules makes no shared-image listing is counted in tests/test_request_counts.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import CREDENTIAL_VARIABLES, OUTSIDER, OUTSIDER_USER, OWNER, OWNER_USER, PARTNER, PARTNER_USER, Api

from reconciler.cli import main
from reconciler.simulator.embedded import running_simulator
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.state import write_state_file

CONSUMER, CONSUMER_USER = PARTNER, PARTNER_USER
OTHER, OTHER_USER = OUTSIDER, OUTSIDER_USER  # another owner, whose shares the consumer rejects
FAMILY = "web-base"
MONTHS = ["2026-10", "2026-11", "2026-12"]
GOLDEN = "10000000-0000-4000-8000-000000000041"
OTHERS_IMAGE = "00000000-0000-4000-8000-000000000401"  # OTHER's, shared with the consumer, accepted by hand
UNNAMED = "00000000-0000-4000-8000-000000000402"  # the owner's, shared outside the family, left pending
UNMANAGED = "00000000-0000-4000-8000-000000000403"  # the consumer's own, made by hand
OF_THE_SET = "00000000-0000-4000-8000-000000000404"  # the consumer's own, of its root's set (apps)

SEED: dict[str, Any] = {
    "regions": ["KR1"],
    "projects": [
        {"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]},
        {"id": CONSUMER, "users": [{"username": CONSUMER_USER[0], "api_password": CONSUMER_USER[1]}]},
        {"id": OTHER, "users": [{"username": OTHER_USER[0], "api_password": OTHER_USER[1]}]},
    ],
    "servers": [
        {"id": GOLDEN, "project": OWNER, "region": "KR1", "name": "web-golden-01", "flavor": "u2.c2m4",
         "status": "SHUTOFF", "os_type": "linux"},
    ],
    "images": [
        {"id": OTHERS_IMAGE, "project": OTHER, "region": "KR1", "name": "junk", "visibility": "shared",
         "members": [{"project": CONSUMER, "status": "accepted"}]},
        {"id": UNNAMED, "project": OWNER, "region": "KR1", "name": "tools", "visibility": "shared",
         "members": [{"project": CONSUMER, "status": "pending"}]},
        {"id": UNMANAGED, "project": CONSUMER, "region": "KR1", "name": "hand-made"},
    ],
}  # fmt: skip

SET_IMAGE = {"id": OF_THE_SET, "project": CONSUMER, "region": "KR1", "name": "apps-base",
             "properties": {"reconciler_set": "apps", "reconciler_key": "apps-base",
                            "reconciler_source": f"image:{OF_THE_SET}"}}  # fmt: skip
ACCEPT_FAMILY = f"version: 1\naccept:\n  - {{owner: {OWNER}, family: {FAMILY}}}\n"
REJECT_OTHER = f'version: 1\nreject:\n  - {{owner: {OTHER}, name: "*"}}\n'


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The owner's and the consumer's roots under tmp_path (the working directory), one simulator state of
    both projects: the state file."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state.json"
    write_state_file(state, state_from_seed(SEED))
    write_root(tmp_path / "owner", "platform", OWNER)
    write_root(tmp_path / "consumer", "apps", CONSUMER)
    list_versions(tmp_path / "owner", 1)
    (tmp_path / "consumer" / "accept.yaml").write_text(ACCEPT_FAMILY, encoding="utf-8")
    return state


def write_root(root: Path, set_name: str, project: str) -> None:
    root.mkdir()
    (root / "reconciler.yaml").write_text(
        f"version: 1\nset: {set_name}\ncloud: {{kind: simulator, project: {project}}}\ndefaults: {{region: KR1}}\n",
        encoding="utf-8",
    )


def list_versions(owner: Path, month: int) -> list[str]:
    """The owner's family lists the first `month` versions, shared with the consumer."""
    listed = MONTHS[:month]
    image = {"source": {"instance": "web-golden-01"}, "name": "web-base-{version}", "share": [CONSUMER]}
    family = {"versions": listed, "keep": 2, "protect_newest": 1, "image": image}
    document = {"version": 1, "families": {FAMILY: family}}
    (owner / "web.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return listed


def run(capsys: pytest.CaptureFixture[str], state: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--sim-state", str(state), "--no-color"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def apply_both(capsys: pytest.CaptureFixture[str], state: Path) -> str:
    code, out, err = run(capsys, state, "apply", "owner", "consumer", "--auto-approve")
    assert code == 0, out + err
    return out


def plan_json(capsys: pytest.CaptureFixture[str], state: Path, root: str) -> dict[str, Any]:
    code, out, err = run(capsys, state, "plan", root, "--format", "json")
    assert code == 0, out + err
    return json.loads(out)


# -- the simulator, through its own API ------------------------------------------------------------------


@contextmanager
def api(state: Path, user: tuple[str, str], project: str) -> Iterator[Api]:
    with running_simulator(state) as server:
        yield Api(server, *user, project)


def consumer_list(state: Path) -> set[str]:
    """The ids in the consumer's default image list (no filter: what its console and `openstack image list`
    show), but its own images."""
    with api(state, CONSUMER_USER, CONSUMER) as consumer:
        answer = consumer.image("GET", "/v2/images", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {image["id"] for image in answer.json()["images"]} - {UNMANAGED}


def consumer_status(state: Path, image_id: str, owner_user: tuple[str, str] = OWNER_USER, owner: str = OWNER) -> str:
    """The consumer's member status of one image, as its owner reads it."""
    with api(state, owner_user, owner) as reader:
        answer = reader.image("GET", f"/v2/images/{image_id}/members/{CONSUMER}")
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


def family_images(state: Path) -> dict[str, str]:
    """The owner's family images: version -> image id."""
    with api(state, OWNER_USER, OWNER) as owner:
        answer = owner.image("GET", "/v2/images", params={"limit": 1000, "owner": OWNER})
    assert answer.status_code == 200, answer.text
    return {i["reconciler_version"]: i["id"] for i in answer.json()["images"] if i.get("reconciler_family") == FAMILY}


def consumer_owned(state: Path) -> set[str]:
    with api(state, CONSUMER_USER, CONSUMER) as consumer:
        answer = consumer.image("GET", "/v2/images", params={"limit": 1000, "owner": CONSUMER})
    assert answer.status_code == 200, answer.text
    return {image["id"] for image in answer.json()["images"]}


# -- one run: make, share, accept ----------------------------------------------------------------------------


def test_one_apply_makes_the_version_shares_it_and_the_consumer_accepts_it(world, capsys):
    assert consumer_list(world) == {OTHERS_IMAGE}  # before: only what it accepted by hand

    apply_both(capsys, world)

    versions = family_images(world)
    assert set(versions) == {MONTHS[0]}
    assert consumer_status(world, versions[MONTHS[0]]) == "accepted"
    assert consumer_list(world) == {versions[MONTHS[0]], OTHERS_IMAGE}  # the pending `tools` is not listed
    assert consumer_status(world, UNNAMED) == "pending", "no rule names it: left alone"


def test_the_owners_next_plan_has_nothing_pending(world, capsys):
    apply_both(capsys, world)

    plan = plan_json(capsys, world, "owner")

    assert "members_pending" not in {w["code"] for w in plan["warnings"]}
    assert plan["info"]["pending_members"] == []
    assert plan["actions"] == []


def test_a_rotation_later_the_family_rule_accepts_the_new_version_in_the_same_run(world, capsys):
    apply_both(capsys, world)
    for month in (2, 3):
        listed = list_versions(world.parent / "owner", month)
        apply_both(capsys, world)

        versions = family_images(world)
        assert set(versions) == set(listed[-2:]), "keep: 2"
        assert all(consumer_status(world, image_id) == "accepted" for image_id in versions.values())
        assert consumer_list(world) == {*versions.values(), OTHERS_IMAGE}
    assert plan_json(capsys, world, "consumer")["actions"] == []


def test_a_reject_rule_rejects_an_image_the_consumer_accepted_by_hand(world, capsys):
    (world.parent / "consumer" / "reject.yaml").write_text(REJECT_OTHER, encoding="utf-8")

    apply_both(capsys, world)

    assert consumer_status(world, OTHERS_IMAGE, OTHER_USER, OTHER) == "rejected"
    versions = family_images(world)
    assert consumer_list(world) == {versions[MONTHS[0]]}, "the rejected image left the consumer's list"


# -- saved plans ---------------------------------------------------------------------------------------------


def test_with_saved_plans_the_accept_of_a_version_shared_in_the_same_run_waits_for_the_next_plan(world, capsys):
    code, out, err = run(capsys, world, "plan", "owner", "consumer", "--out", "plans.json")
    assert code == 0, out + err

    code, out, err = run(
        capsys, world, "apply", "--plan", "plans.json", "owner", "consumer", "--auto-approve", "--format", "json"
    )

    assert code == 0, out + err
    version = family_images(world)[MONTHS[0]]
    assert f"left for the next plan: accept:{version}:KR1" in err
    assert "Finish it" not in err  # a run that succeeded has nothing to resume
    # The report says so too: a CI job reading it sees the accept still waiting.
    consumer = json.loads(out)["roots"][1]
    assert consumer["root"] == "consumer" and consumer["outcome"] == "applied"
    assert {r["id"]: r["status"] for r in consumer["results"]} == {f"accept:{version}:KR1": "deferred"}
    assert consumer_status(world, version) == "pending"
    assert consumer_list(world) == {OTHERS_IMAGE}

    code, out, err = run(capsys, world, "plan", "owner", "consumer", "--out", "plans.json")
    assert code == 0, out + err
    code, out, err = run(capsys, world, "apply", "--plan", "plans.json", "owner", "consumer", "--auto-approve")
    assert code == 0, out + err
    assert consumer_status(world, version) == "accepted"
    assert consumer_list(world) == {version, OTHERS_IMAGE}


# -- a root of rules alone -----------------------------------------------------------------------------------


def test_a_root_of_rules_alone_deletes_nothing_of_its_project(world, capsys):
    plan = plan_json(capsys, world, "consumer")
    assert plan["actions"] == [] and plan["refusals"] == []  # the owner has not shared its family yet

    apply_both(capsys, world)

    assert consumer_owned(world) == {UNMANAGED}


def test_a_root_of_rules_alone_whose_set_has_images_is_refused_and_deletes_nothing(world, capsys):
    write_state_file(world, state_from_seed({**SEED, "images": [*SEED["images"], SET_IMAGE]}))

    code, out, err = run(capsys, world, "plan", "consumer", "--format", "json")
    assert code == 3, out + err
    plan = json.loads(out)
    assert [r["code"] for r in plan["refusals"]] == ["empty_root"]
    assert plan["actions"] == []

    code, out, err = run(capsys, world, "apply", "consumer", "--auto-approve")

    assert code == 3, out + err
    assert consumer_owned(world) == {UNMANAGED, OF_THE_SET}
