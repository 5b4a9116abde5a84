"""A cancelled or timed-out apply, in-process against the simulator: what stops, what still runs (the
compensations owed), and what is left for the next run. Real signals through the CLI are in
tests/safety/test_signals.py."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from reconciler.apply import DONE, FAILED, INTERRUPTED, LEFT, SKIPPED, STALE, Applier, StepResult
from reconciler.cancel import Cancellation
from reconciler.cli import main
from reconciler.connect import open_cloud
from reconciler.lock import apply_lock
from reconciler.lock_guard import LockGuardedClient
from reconciler.plan import Action, Reason
from reconciler.planner import build_plan
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"


def case_root(tmp_path: Path, case: str, **behaviour) -> Path:
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed["behaviour"] = {**(seed.get("behaviour") or {}), **behaviour}
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    return root


def test_a_cancellation_during_a_create_deletes_its_image_and_still_restarts_the_instance(tmp_path):
    root = case_root(tmp_path, "running-u2-stop", image_ready_after_polls=50, image_task_polls=1)
    desired = load_desired_state(root)
    cancellation = Cancellation()

    def progress(event, action, payload):
        if event == "start" and action.kind == "create":
            cancellation.request(signal.SIGINT)  # as the signal handler would

    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        with apply_lock(client, desired.root.set) as session:
            guarded = LockGuardedClient(client, session, cancellation)
            report = Applier(guarded, plan, lock=session, cancellation=cancellation, progress=progress).run()
        statuses = {r.action.kind: r.status for r in report.results}
        assert report.outcome == "interrupted" and report.to_json()["outcome"] == "interrupted"
        assert statuses["stop_instance"] == DONE and statuses["create"] == INTERRUPTED
        assert statuses["start_instance"] in (DONE, LEFT), report.to_json()
        images = [i for i in client.list_images("KR1", owner=client.project_id) if "~rc-" in (i.name or "")]
        assert images == [], "the image being made was not deleted"
        server_id = next(a.details["server"] for a in plan.actions if a.kind == "stop_instance")
        server = client.get_server("KR1", server_id)
        if statuses["start_instance"] == DONE:
            assert server.status == "ACTIVE" and "reconciler_stopped_by" not in server.metadata
        else:
            assert server.status == "SHUTOFF" and server.metadata["reconciler_stopped_by"].startswith("web-platform:")


def test_a_stop_that_times_out_while_powering_off_is_still_owed_its_start(tmp_path, capsys):
    """--timeout expires while the server is still powering off: the stop fails, but it is this run's
    stop, so its start runs; the server cannot take it yet (a task), so it is left for the next run, which
    restarts it."""
    root = case_root(tmp_path, "running-u2-stop", server_ready_after_polls=1000)
    assert main(["apply", str(root), "--auto-approve", "--timeout", "0.5", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    statuses = {r["kind"]: r["status"] for r in report["results"]}
    assert statuses == {"stop_instance": FAILED, "create": SKIPPED, "start_instance": LEFT}, report
    left = next(r for r in report["results"] if r["kind"] == "start_instance")
    assert "powering-off" in left["message"] and "the next plan starts it" in left["message"]
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    state["behaviour"]["server_ready_after_polls"] = 0  # the stop finishes, as it would in a while:
    for server in state["servers"].values():
        if server.get("task"):
            server["task"]["polls_left"] = 1  # the one under way too (it counted 1000 polls, 200 s of waits)
    (root / ".reconciler" / "sim-state.json").write_text(json.dumps(state))
    assert main(["plan", str(root), "--format", "json"]) == 0
    kinds = {a["id"]: a["reason"]["code"] for a in json.loads(capsys.readouterr().out)["actions"]}
    assert kinds.get("start_instance:web-base:KR1") in ("left_stopped", "running_stop"), kinds
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def _action(kind: str, **details) -> Action:
    return Action(f"{kind}:web:KR1", kind, "web", "KR1", Reason("c", "m"), details=details)


@pytest.mark.parametrize(
    ("compensated_kind", "status", "owed", "reason"),
    [
        ("stop_instance", DONE, True, "the stop ran: its start is owed"),
        ("stop_instance", FAILED, True, "a stop that timed out may have stopped the server"),
        ("stop_instance", INTERRUPTED, True, "a stop in flight when cancelled may have stopped it"),
        ("stop_instance", STALE, False, "a stale stop touched nothing"),
        ("stop_instance", SKIPPED, False, "a stop that never started"),
        ("unprotect", FAILED, True, "an unprotect whose answer was lost may have unprotected"),
        ("update", FAILED, False, "a failed download-on recorded nothing to restore"),
        ("update", DONE, True, "the download flag was turned on: restore it"),
    ],
)
def test_which_compensations_are_owed(compensated_kind, status, owed, reason):
    compensated = _action(compensated_kind)
    compensation = _action("start_instance", compensates=compensated.id)
    results = {compensated.id: StepResult(compensated, status)}
    assert Applier._owed(compensation, {compensated.id: compensated}, results) is owed, reason
