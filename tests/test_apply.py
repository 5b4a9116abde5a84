"""Apply against the simulator over HTTP: every applicable golden case converges (apply, then plan again:
no actions, no refusals); refused plans change nothing; compensations run after failures; stale
expectations stop an action before it touches anything; a protected image is never deleted."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from support import cloud_unchanged_but_lock_traces

from reconciler.apply import DONE, FAILED, SKIPPED, STALE, Applier
from reconciler.cli import main
from reconciler.connect import open_cloud
from reconciler.planner import build_plan
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")


def case_plan(case: str) -> dict:
    return json.loads((CASES / case / "plan.json").read_text())


def uploads_from_a_url(case: str) -> bool:
    """Its apply would contact the URL's host: tests never leave this machine (URL uploads are applied
    against a loopback server in tests/test_upload_apply.py)."""
    return any(action["kind"] == "create" and "url" in action for action in case_plan(case)["actions"])


APPLICABLE = sorted(
    p.name
    for p in CASES.iterdir()
    if (p / "plan.json").exists() and not case_plan(p.name)["refusals"] and not uploads_from_a_url(p.name)
)
REFUSED = sorted(p.name for p in CASES.iterdir() if (p / "plan.json").exists() and case_plan(p.name)["refusals"])


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def copy_root(case: str, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root)
    return root


def plan_json(root: Path, capsys) -> tuple[int, dict]:
    code = main(["plan", str(root), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("case", APPLICABLE)
def test_applicable_cases_converge(case, tmp_path, capsys):
    root = copy_root(case, tmp_path)
    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["done"] == len(case_plan(case)["actions"])
    code, again = plan_json(root, capsys)
    assert (code, again["actions"], again["refusals"]) == (0, [], [])


def test_apply_never_says_nothing_was_changed_before_it_changes_things(tmp_path, capsys):
    root = copy_root("protect-unprotect", tmp_path)
    assert main(["apply", str(root), "--auto-approve", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was changed." not in out and "Nothing was applied" not in out
    assert "Plan: " in out and "Apply: " in out.split("Plan: ", 1)[1]


@pytest.mark.parametrize("case", REFUSED)
def test_refused_plans_change_nothing(case, tmp_path, capsys):
    root = copy_root(case, tmp_path)
    _, before = plan_json(root, capsys)
    state = json.loads((root / ".reconciler" / "sim-state.json").read_bytes())
    assert main(["apply", str(root), "--auto-approve"]) == 3
    assert "Nothing was applied: the plan has refusals." in capsys.readouterr().out
    cloud_unchanged_but_lock_traces(state, json.loads((root / ".reconciler" / "sim-state.json").read_bytes()))
    _, after = plan_json(root, capsys)
    assert after == before


def test_apply_without_a_terminal_needs_auto_approve(tmp_path, capsys, monkeypatch):
    root = copy_root("share", tmp_path)
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["apply", str(root)]) == 1
    assert "no terminal to confirm the plan on" in capsys.readouterr().err
    _, plan = plan_json(root, capsys)
    assert len(plan["actions"]) == 1  # nothing was applied


# -- failures, compensation, staleness: the Applier on a plan made just before ---------------------


class FakeClock:
    """Apply's clock and sleep for tests of its waits: sleeping moves the clock, and is recorded."""

    def __init__(self) -> None:
        self.time = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds


def add_fault(root: Path, fault: dict) -> None:
    """Inject a simulator fault through the case's seed (the state is made from it on first use)."""
    seed_path = root / "seed.yaml"
    seed = yaml.safe_load(seed_path.read_text())
    seed.setdefault("behaviour", {}).setdefault("faults", []).append(fault)
    seed_path.write_text(yaml.safe_dump(seed))


def test_the_start_after_a_stop_runs_even_when_the_create_fails(tmp_path, capsys):
    root = copy_root("running-u2-stop", tmp_path)
    add_fault(
        root, {"route": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action", "on_call": 2, "status": 500}
    )
    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 1
    report = {r["id"].split(":")[0]: r["status"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert report == {"stop_instance": DONE, "create": FAILED, "start_instance": DONE}
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (server,) = state["servers"].values()
    assert server["status"] == "ACTIVE" and "reconciler_stopped_by" not in server["metadata"]


def test_a_stop_that_lands_after_its_answer_was_lost_leaves_the_instance_to_the_next_plan(
    tmp_path, capsys, monkeypatch
):
    """The stop is held in front of the server past the client's read timeout, then carried out. The
    restart owed for it runs while the server is still ACTIVE: it must not take "already running" as done
    and clear the mark, or the late stop leaves the instance SHUTOFF with nothing to say why."""
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "1")
    root = copy_root("running-u2-stop", tmp_path)
    add_fault(root, {"route": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action", "on_call": 1,
                     "stall_s": 1.5})  # fmt: skip
    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 1
    report = {r["id"].split(":")[0]: r["status"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert report["stop_instance"] == FAILED and report["start_instance"] == "left"
    time.sleep(1.0)  # the held stop has landed by now
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (server,) = state["servers"].values()
    assert server["metadata"].get("reconciler_stopped_by", "").startswith("web-platform:")
    # The faults pass; re-run as a user would (a run may find the stop still under way, and stop as stale):
    # the image is made and the instance started again.
    seed = root / ".reconciler" / "sim-state.json"
    state["behaviour"]["faults"] = []
    seed.write_text(json.dumps(state))
    codes = []
    while len(codes) < 3 and 0 not in codes:
        codes.append(main(["apply", str(root), "--auto-approve"]))
    capsys.readouterr()
    assert codes[-1] == 0, codes
    code, again = plan_json(root, capsys)
    assert (code, again["actions"]) == (0, [])
    (server,) = json.loads(seed.read_text())["servers"].values()
    assert server["status"] == "ACTIVE" and "reconciler_stopped_by" not in server["metadata"]


def test_a_stale_stop_touches_nothing_and_skips_what_follows(tmp_path):
    root = copy_root("running-u2-stop", tmp_path)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        server_id = next(a.details["server"] for a in plan.actions if a.kind == "stop_instance")
        # Someone stops the instance between the plan and the apply.
        client.stop_server("KR1", server_id)
        client.wait_for_server("KR1", server_id, status="SHUTOFF", timeout=10)
        report = Applier(client, plan).run()
        statuses = {r.action.kind: r.status for r in report.results}
        assert statuses == {"stop_instance": STALE, "create": SKIPPED, "start_instance": SKIPPED}
        stale = next(r for r in report.results if r.status == STALE)
        assert "status is 'SHUTOFF', the plan expected 'ACTIVE'" in stale.message
        assert client.list_images("KR1", owner=client.project_id) == []  # nothing was created
        assert client.get_server("KR1", server_id).status == "SHUTOFF"  # and it was not started


def test_a_protected_image_is_never_deleted_even_if_the_plan_says_so(tmp_path):
    root = copy_root("delete-unprotected", tmp_path)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        (delete,) = [a for a in plan.actions if a.kind == "delete"]
        from reconciler.cloud.records import set_ops

        client.update_image("KR1", delete.image_id, set_ops({"protected": True}))
        report = Applier(client, plan).run()
        assert [r.status for r in report.results] == [STALE]
        assert client.get_image("KR1", delete.image_id).protected is True


def test_strict_brackets_reprotect_even_when_the_patch_fails(tmp_path, capsys):
    root = copy_root("protect-strict", tmp_path)
    # One at a time, in plan order: the lock marks its claim held (PATCH 1), unprotect api-base, unprotect
    # db-base (the bracket), then the rename of db-base is the fourth PATCH, and fails.
    add_fault(root, {"route": "PATCH /image/{region}/v2/images/{image_id}", "on_call": [4], "status": 500})
    assert main(["apply", str(root), "--auto-approve", "--format", "json", "--parallelism", "1"]) == 1
    results = json.loads(capsys.readouterr().out)["results"]
    by_id = {r["id"]: r["status"] for r in results}
    assert by_id["unprotect:db-base:KR1:update"] == DONE
    assert by_id["update:db-base:KR1"] == FAILED
    assert by_id["protect:db-base:KR1:update"] == DONE  # the bracket closed despite the failure
    assert by_id["protect:web-base:KR1"] == SKIPPED  # nothing new starts after a failure
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    db = next(i for i in state["images"].values() if i["fields"].get("reconciler_key") == "db-base")
    assert db["fields"]["protected"] is True


def test_a_create_whose_answer_was_lost_is_found_by_its_temporary_name(tmp_path, capsys):
    root = copy_root("stopped-u2", tmp_path)
    route = "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action"
    add_fault(root, {"route": route, "on_call": 1, "lose_answer": True})
    # The createImage is carried out but its answer lost: apply finds the image by its temporary name
    # and finishes it, instead of repeating the call.
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, plan = plan_json(root, capsys)
    assert (code, plan["actions"]) == (0, [])
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    assert [i["fields"]["name"] for i in state["images"].values()] == ["web-base"]


def test_a_create_that_was_never_carried_out_fails_and_the_next_plan_creates_again(tmp_path, capsys, monkeypatch):
    import reconciler.apply

    monkeypatch.setattr(reconciler.apply, "LOST_ANSWER_SEARCH_S", 0.3)  # the search itself: the next test
    monkeypatch.setattr(reconciler.apply, "LOST_ANSWER_POLL_S", 0.1)
    root = copy_root("stopped-u2", tmp_path)
    route = "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action"
    add_fault(root, {"route": route, "on_call": 1, "drop": True})
    assert main(["apply", str(root), "--auto-approve"]) == 1
    assert "failed: create:web-base:KR1" in capsys.readouterr().out
    _, plan = plan_json(root, capsys)
    assert [a["kind"] for a in plan["actions"]] == ["create"]


def test_after_a_lost_imaging_answer_the_image_is_searched_for_60_s_every_5_s_and_never_made_twice(tmp_path):
    """The answer to createImage is lost and the image does not show (yet): apply lists the region for the
    temporary name every 5 s for 60 s (on its own clock, injected here), then fails the action; it never
    repeats the call."""
    root = copy_root("stopped-u2", tmp_path)
    add_fault(
        root, {"route": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action", "on_call": 1, "drop": True}
    )
    desired = load_desired_state(root)
    clock = FakeClock()
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        report = Applier(client, plan, clock=clock.now, sleep=clock.sleep).run()
        assert [r.status for r in report.results] == [FAILED]
        assert clock.slept == [5.0] * 12, clock.slept
        assert client.list_images("KR1", owner=client.project_id) == []
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    assert state["fault_hits"] == {"drop POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action": 1}


def _apply_on_a_terminal(root: Path, answer: bytes) -> tuple[int, str]:
    """Run `reconciler apply` with a pseudo-terminal as stdin, answering the question."""
    import os
    import pty
    import subprocess
    import sys

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", str(root)],
        stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(terminal)
    os.write(controller, answer)
    out, _ = process.communicate(timeout=60)
    os.close(controller)
    return process.returncode, out


def test_on_a_terminal_apply_asks_and_only_yes_proceeds(tmp_path, capsys):
    root = copy_root("share", tmp_path)
    code, out = _apply_on_a_terminal(root, b"no\n")
    assert code == 1 and "Only 'yes' is accepted" in out and "Apply cancelled; nothing was changed." in out
    _, plan = plan_json(root, capsys)
    assert len(plan["actions"]) == 1
    code, out = _apply_on_a_terminal(root, b"yes\n")
    assert code == 0 and "Apply: 1 done." in out
    _, plan = plan_json(root, capsys)
    assert plan["actions"] == []


def test_the_guards_refuse_an_action_aimed_at_an_image_or_server_the_root_does_not_give_its_key(tmp_path):
    """Whatever a plan says (a planner bug, a tampered plan given to the library), apply re-reads the
    object and touches it only if the root gives it to the action's key (reconciler/apply_guard.py)."""
    import dataclasses

    from reconciler.apply_guard import GuardContext
    from reconciler.cloud.records import set_ops

    root = copy_root("running-u2-stop", tmp_path)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        bystander = client.create_image(
            "KR1", {"name": "handmade", "os_type": "linux", "disk_format": "qcow2", "container_format": "bare"}
        )
        client.update_image("KR1", bystander.id, set_ops({"protected": False}))
        before = client.get_image("KR1", bystander.id)
        stop = next(a for a in plan.actions if a.kind == "stop_instance")
        aimed = dataclasses.replace(
            stop,
            id="update:web-base:KR1",
            kind="update",
            image_id=bystander.id,
            changes={"name": plan.actions[1].changes["name"]},
            expects={f"KR1/{bystander.id}": {"status": "queued"}},
            details={},
        )
        evil = dataclasses.replace(plan, actions=(aimed,))
        report = Applier(client, evil, guard=GuardContext.from_desired(desired)).run()
        assert [r.status for r in report.results] == [STALE]
        assert "not an image of set web-platform key web-base" in report.results[0].message
        assert client.get_image("KR1", bystander.id) == before
        # Without the guard the same action renames it: the guard is what stopped it (checked below, on
        # a copy of the plan aimed at the same image), and a stop aimed at another server is refused too.
        other_server = dataclasses.replace(
            stop, details={**stop.details, "server": "00000000-0000-4000-8000-0000000000ff"}
        )
        report = Applier(
            client, dataclasses.replace(plan, actions=(other_server,)), guard=GuardContext.from_desired(desired)
        ).run()
        assert report.results[0].status in (STALE, FAILED)
        unguarded = Applier(client, evil).run()
        assert [r.status for r in unguarded.results] == [DONE]
        assert client.get_image("KR1", bystander.id).name != before.name, "the aimed action does rename unguarded"


@pytest.mark.parametrize("case", ["unshare-last-member", "share"])
def test_under_strict_protection_a_protected_images_visibility_changes_inside_a_bracket(tmp_path, capsys, case):
    """protected_patch: strict refuses any PATCH of a protected image but one of `protected`: making it
    shared (first share) or private again (last unshare) is bracketed unprotect -> PATCH -> protect."""
    root = copy_root(case, tmp_path)
    config = root / "reconciler.yaml"
    config.write_text(
        config.read_text().replace("cloud: {kind: simulator", "cloud: {kind: simulator, protected_patch: strict")
    )
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed.setdefault("behaviour", {})["protected_patch"] = "strict"
    for image in seed["images"]:
        image["protected"] = True
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    manifest = next((root / "images").glob("*.yaml"))
    manifest.write_text(manifest.read_text().replace("    source:", "    protected: true\n    source:", 1))
    code, plan = plan_json(root, capsys)
    assert code == 0, plan["refusals"]
    ids = [a["id"] for a in plan["actions"]]
    at = ids.index("update:web-base:KR1:visibility")
    assert ids[at - 1 : at + 2] == [
        "unprotect:web-base:KR1:visibility", "update:web-base:KR1:visibility", "protect:web-base:KR1:visibility"
    ], ids  # fmt: skip
    assert main(["apply", str(root), "--auto-approve"]) == 0, capsys.readouterr().out[-2000:]
    capsys.readouterr()
    code, again = plan_json(root, capsys)
    assert (code, again["actions"]) == (0, [])


@pytest.mark.parametrize(("ready_after_polls", "searches"), [(1000, 24), (0, 12)])
def test_on_the_volume_path_the_search_goes_on_while_the_volume_is_uploading(tmp_path, ready_after_polls, searches):
    """A lost answer to os-volume_upload_image, and a listing that does not show the new image yet: while
    Cinder shows the root volume `uploading`, apply keeps looking past 60 s (up to --timeout, 120 s here);
    once the volume is done, it stops at 60 s."""
    root = copy_root("create-running-m2", tmp_path)
    add_fault(
        root,
        {"route": "POST /volume/{region}/v2/{tenant_id}/volumes/{volume_id}/action", "on_call": 1, "lose_answer": True},
    )
    seed_path = root / "seed.yaml"
    seed = yaml.safe_load(seed_path.read_text())
    seed["behaviour"].update(listing_lag_s=100000, image_ready_after_polls=ready_after_polls)
    seed_path.write_text(yaml.safe_dump(seed))
    desired = load_desired_state(root)
    clock = FakeClock()
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        report = Applier(client, plan, clock=clock.now, sleep=clock.sleep, timeout=120).run()
        create = next(r for r in report.results if r.action.kind == "create")
        assert create.status == FAILED and len(clock.slept) == searches, (create.message, clock.slept)


# -- issue 17: what a hostile review found ---------------------------------------------------------


def test_following_the_protected_copy_hint_lifts_the_refusal(tmp_path, capsys):
    """A protected copy left out of copies: is refused; the hint's per-copy override, applied, unprotects
    that copy alone, and then leaving it out deletes it (the key's protected: false did neither)."""
    root = copy_root("protected-copy-removed", tmp_path)
    code, plan = plan_json(root, capsys)
    (refusal,) = plan["refusals"]
    assert code == 3 and "copies: [{region: JP1, protected: false}]" in refusal["hint"]
    manifest = root / "images" / "web.yaml"
    declared = manifest.read_text()
    manifest.write_text(declared + "    copies: [{region: JP1, protected: false}]\n")
    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["results"]] == ["unprotect:web-2026-12:JP1"]
    manifest.write_text(declared)
    code, plan = plan_json(root, capsys)
    assert (code, [a["id"] for a in plan["actions"]], plan["refusals"]) == (0, ["delete:web-2026-12:JP1"], [])
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, again = plan_json(root, capsys)
    assert (code, again["actions"], again["refusals"]) == (0, [], [])
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (home,) = state["images"].values()
    assert home["fields"]["protected"] is True  # the home image was never unprotected


def test_a_strict_adopt_bracket_reprotects_even_when_the_adopt_fails(tmp_path, capsys):
    root = copy_root("adopt-protected-strict", tmp_path)
    # One at a time, in plan order: the lock marks its claim held (PATCH 1), unprotect the JP1 copy (2),
    # then the adopt of the copy is the third PATCH, and fails.
    add_fault(root, {"route": "PATCH /image/{region}/v2/images/{image_id}", "on_call": [3], "status": 500})
    assert main(["apply", str(root), "--auto-approve", "--format", "json", "--parallelism", "1"]) == 1
    by_id = {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert by_id["unprotect:web-base:JP1:adopt"] == DONE
    assert by_id["adopt:web-base:JP1"] == FAILED
    assert by_id["protect:web-base:JP1:adopt"] == DONE  # the bracket closed despite the failure
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    assert all(i["fields"]["protected"] for i in state["images"].values() if i["fields"].get("name") == "web-base")


def test_removing_the_properties_block_removes_the_managed_keys_live(tmp_path, capsys):
    root = copy_root("properties-block-removed", tmp_path)
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (image,) = state["images"].values()
    assert "login_username" not in image["fields"] and "app_tier" not in image["fields"]
    assert "reconciler_props" not in image["fields"] and image["fields"]["team"] == "web"
