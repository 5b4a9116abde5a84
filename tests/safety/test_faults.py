"""Faults on every path: each scenario applies a realistic root through injected
faults until it converges, re-running as a user would, then checks the promises: nothing protected
deleted, nothing unmanaged or another set's touched, one image per identity, nothing declared lost,
every instance the tool stopped started again, and an empty final plan. Each scenario asserts that its
faults actually landed, so a run where none lands cannot pass.

The seed is RECONCILER_FAULT_SEED (default 4711); the figures line at the end of the run names it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from promises import clear_faults, fault_hits, fingerprint, state, violations
from support import FAULT_FIGURES

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent / "root"
SEED = int(os.environ.get("RECONCILER_FAULT_SEED", "4711"))
# A re-run budget, not a speed target: with 15% random server errors and the lock's and guards' reads,
# a realistic apply sometimes needs more than 25 runs to get every action through.
MAX_RUNS = 40
ROUTES = {
    "image_patch": "PATCH /image/{region}/v2/images/{image_id}",
    "image_post": "POST /image/{region}/v2/images",
    "image_get": "GET /image/{region}/v2/images/{image_id}",
    "image_list": "GET /image/{region}/v2/images",
    "file_get": "GET /image/{region}/v2/images/{image_id}/file",
    "file_put": "PUT /image/{region}/v2/images/{image_id}/file",
    "members": "POST /image/{region}/v2/images/{image_id}/members",
    "delete": "DELETE /image/{region}/v2/images/{image_id}",
    "action": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action",
    "server_get": "GET /compute/{region}/v2/{tenant_id}/servers/{server_id}",
    "volume_action": "POST /volume/{region}/v2/{tenant_id}/volumes/{volume_id}/action",
    "metadata": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/metadata",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def prepared(tmp_path: Path, behaviour: dict) -> Path:
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed["behaviour"] = {"image_ready_after_polls": 1, "server_ready_after_polls": 1, **behaviour}
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    assert main(["validate", str(root)]) == 0
    return root


@pytest.fixture(autouse=True)
def brisk_lock(monkeypatch):
    """Lock rounds lost to a probing claim back off for 0.5-3 s: real time these runs need not spend."""
    from reconciler import lock

    monkeypatch.setattr(lock, "BACKOFF_S", (0.001, 0.005))


CLAIM_IN_ERROR = re.compile(r"claim ([0-9a-f-]{36}) of holder")


def quiet_apply(root: Path, capsys, *extra: str) -> int:
    """One apply, as a user would run it. A killed apply (or a release that failed every retry) leaves its
    lock claim until the lease ends; the user then follows the runbook: `reconciler unlock --claim ID`
    for each claim apply's error names (runs here are sequential, so no named holder is still running)."""
    code = main(["apply", str(root), "--auto-approve", "--format", "json", *extra])
    err = capsys.readouterr().err
    if code == 1 and "has the lock" in err:
        for claim in sorted(set(CLAIM_IN_ERROR.findall(err))):
            # unlock meets the same faults as apply: one that fails is simply tried again after the next run
            main(["unlock", str(root), "--claim", claim, "--auto-approve"])
            capsys.readouterr()
    return code


def unsettled(root: Path, capsys) -> bool:
    """An apply that finds a create still running (one a killed run started) succeeds with nothing to do
    for it, as it should; once the image is made, the next plan finishes it (an adopt). A user would apply
    again until the plan is empty; so does this."""
    if main(["plan", str(root), "--format", "json"]) != 0:
        capsys.readouterr()
        return True  # the faults still on failed the plan: apply again, as a user would
    document = json.loads(capsys.readouterr().out)
    return bool(document["actions"]) or any(w["code"] == "create_in_progress" for w in document["warnings"])


def converge(root: Path, capsys, before: dict, name: str, *extra: str, transient: int | None = None) -> int:
    """Apply until an apply succeeds (re-running as a user would), checking the safety promises after
    every run; then, faults cleared, the final plan must be empty and every promise kept.

    `transient`: the faults last that many runs, then pass (a slow spell, not a broken cloud). Faults
    pinned to a call number hit the same call in every run (each run starts its simulator afresh), so a
    run that always stalls on the same call is a cloud that never answers it, and re-running cannot help."""
    runs = 0
    for runs in range(1, MAX_RUNS + 1):
        if runs == transient:
            clear_faults(root)  # the record of hits stays
        code = quiet_apply(root, capsys, *extra)
        assert violations(root, before, converged=False) == [], f"{name}: run {runs}"
        if code == 0 and not unsettled(root, capsys):
            break
    else:
        pytest.fail(f"{name}: did not converge in {MAX_RUNS} runs")
    hits = fault_hits(root)
    clear_faults(root)
    assert main(["plan", str(root), "--format", "json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["actions"] == [] and final["refusals"] == [], f"{name}: not converged: {final['actions']}"
    found = violations(root, before, converged=True)
    FAULT_FIGURES["runs"] += runs
    FAULT_FIGURES["hits"] += sum(hits.values())
    FAULT_FIGURES["violations"] += len(found)
    FAULT_FIGURES["seed"] = SEED
    assert found == [], f"{name}: {found}"
    return runs


def first_state(root: Path, capsys) -> dict:
    """Create the simulator state from the seed (a plan does) and fingerprint it before any fault."""
    main(["plan", str(root), "--format", "json"])
    capsys.readouterr()
    return fingerprint(root)


def test_random_server_errors_on_a_share_of_calls(tmp_path, capsys):
    root = prepared(tmp_path, {"random_faults": {"rate": 0.15, "seed": SEED}})
    before = first_state(root, capsys)
    converge(root, capsys, before, "5xx")
    hits = fault_hits_of(root)
    assert sum(hits.values()) >= 3, hits
    assert len({route.split(" ", 2)[2] for route in hits}) >= 2, f"faults landed on too few routes: {hits}"


def fault_hits_of(root: Path) -> dict[str, int]:
    # clear_faults keeps the record of hits in the state
    return dict(state(root).get("fault_hits", {}))


def test_rate_limits_with_retry_after(tmp_path, capsys):
    rng = random.Random(SEED)
    faults = [
        {"route": ROUTES[name], "on_call": sorted(rng.sample(range(1, 6), 2)), "status": 429, "retry_after": 0}
        for name in ("image_patch", "image_post", "image_list", "members", "action", "server_get")
    ]
    root = prepared(tmp_path, {"faults": faults})
    before = first_state(root, capsys)
    converge(root, capsys, before, "429")
    hits = fault_hits_of(root)
    assert {k.split(" ", 1)[0] for k in hits} == {"status"} and sum(hits.values()) >= 6, hits


def test_dropped_connections_and_lost_answers(tmp_path, capsys):
    kinds = ["drop", "lose_answer"]
    root = prepared(tmp_path, {"random_faults": {"rate": 0.06, "seed": SEED + 1, "kinds": kinds}})
    before = first_state(root, capsys)
    converge(root, capsys, before, "drops")
    hits = fault_hits_of(root)
    assert {k.split(" ", 1)[0] for k in hits} == {"random-drop", "random-lose_answer"}, hits
    assert sum(hits.values()) >= 4, hits


def test_stalls_past_the_client_timeout(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_HTTP_TIMEOUT", "1")
    faults = [
        {"route": ROUTES[name], "on_call": [2], "stall_s": 1.5}
        for name in ("image_get", "server_get", "image_patch", "action")
    ]
    root = prepared(tmp_path, {"faults": faults})
    before = first_state(root, capsys)
    # Stalled before it is carried out, a createImage may land after its run gave up and restarted the
    # instance, and be refused then: the same in every run while the stall lasts.
    converge(root, capsys, before, "stalls", transient=4)
    assert sum(fault_hits_of(root).values()) >= 4


def test_tokens_revoked_mid_apply(tmp_path, capsys):
    root = prepared(tmp_path, {"revoke_tokens_every": 7})
    before = first_state(root, capsys)
    converge(root, capsys, before, "tokens")
    hits = fault_hits_of(root)
    # Renewed transparently on every replayable call; a streamed upload cut off by it fails and is re-run.
    assert sum(v for k, v in hits.items() if k.startswith("token_revoked")) >= 3, hits


def test_the_apply_process_killed_at_random_moments(tmp_path, capsys):
    rng = random.Random(SEED + 2)
    # Latency long enough that an apply of this root outlasts the latest kill (1.5 s) by a wide margin, and
    # a run that is killed still gets through some actions: 15 ms left runs done before their kill.
    root = prepared(tmp_path, {"latency_ms": 40})
    before = first_state(root, capsys)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", str(root), "--auto-approve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.3, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        assert violations(root, before, converged=False) == []
    assert kills >= 2, "the process finished before it could be killed: nothing was tested"
    FAULT_FIGURES["hits"] += kills
    converge(root, capsys, before, "kills")
