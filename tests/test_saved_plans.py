"""Saved plans: plan --out, then apply --plan applies exactly that, or refuses (exit 1, naming each
object and what changed) when the root, the target or an object the plan touches changed; --resume
finishes a partial apply."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import cloud_unchanged_but_lock_traces, let_lock_leases_expire

from reconciler.cli import main
from reconciler.cloud.model import set_ops
from reconciler.connect import open_cloud
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def saved(case: str, tmp_path: Path, capsys) -> tuple[Path, Path]:
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) in (0, 3)
    capsys.readouterr()
    return root, plan_file


def through_the_api(root: Path, change) -> None:
    """Change the cloud as someone else would: through the simulator's API."""
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
        change(client)


def test_a_saved_plan_is_applied_exactly(tmp_path, capsys):
    root, plan_file = saved("copies-two-regions", tmp_path, capsys)
    document = json.loads(plan_file.read_text())
    assert set(document["saved"]) == {"files", "target", "fingerprints", "creates"}
    assert document["saved"]["creates"] == ["web-base/JP1", "web-base/KR2"]
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in report["results"]] == [a["id"] for a in document["actions"]]
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def test_a_change_to_a_touched_object_makes_the_plan_stale(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    image_id = json.loads(plan_file.read_text())["actions"][0]["image_id"]
    through_the_api(root, lambda c: c.update_image("KR1", image_id, set_ops({"login_username": "root"})))
    state_before = json.loads((root / ".reconciler" / "sim-state.json").read_bytes())
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"KR1/{image_id}: properties.login_username added ('root')" in err
    assert "nothing was applied" in err
    cloud_unchanged_but_lock_traces(state_before, json.loads((root / ".reconciler" / "sim-state.json").read_bytes()))


def test_a_change_to_an_untouched_object_does_not(tmp_path, capsys):
    root, plan_file = saved("protect-unprotect", tmp_path, capsys)
    document = json.loads(plan_file.read_text())
    touched = {a["image_id"] for a in document["actions"]}

    def rename_something_else(client):
        other = client.create_image("KR1", {"name": "unrelated", "os_type": "linux", "disk_format": "qcow2",
                                            "container_format": "bare", "visibility": "private"})  # fmt: skip
        assert other.id not in touched
        client.update_image("KR1", other.id, set_ops({"name": "renamed-unrelated"}))

    through_the_api(root, rename_something_else)
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0


def test_a_changed_root_makes_the_plan_stale(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    manifest = root / "images" / "web.yaml"
    manifest.write_text(manifest.read_text() + "\n# a reviewed change\n")
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert "images/web.yaml: changed" in err and "the root changed since the plan was saved" in err


def test_another_target_is_refused(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    other = tmp_path / "other-state.json"
    assert main(["simulator", "init", str(other), "--seed", str(root / "seed.yaml")]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--sim-state", str(other)]) == 1
    assert "the target is not the one the plan was saved for" in capsys.readouterr().err


def test_resume_finishes_a_killed_apply(tmp_path, capsys):
    root, _ = saved("copies-two-regions", tmp_path, capsys)
    # The second copy's upload stalls: the apply is killed in the middle of it.
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed.setdefault("behaviour", {})["faults"] = [
        {"route": "PUT /image/{region}/v2/images/{image_id}/file", "on_call": 2, "stall_s": 30}
    ]
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    shutil.rmtree(root / ".reconciler")
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--plan", str(plan_file), str(root), "--auto-approve", "--parallelism", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    journal = plan_file.with_name("plan.json.progress.json")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if journal.exists() and len(json.loads(journal.read_text())["done"]) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the apply never got going")
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    done = json.loads(journal.read_text())["done"]
    assert "copy:web-base:JP1" in done and "copy:web-base:KR2" not in done

    # Without --resume, a partly applied plan is refused.
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    assert "--resume" in capsys.readouterr().err
    # The stall fault lives in the simulator's state: clear it, as a fixed cause would be.
    state_path = root / ".reconciler" / "sim-state.json"
    state = json.loads(state_path.read_text())
    state["behaviour"]["faults"] = []
    state_path.write_text(json.dumps(state))
    # The killed run's lock claim blocks the set until its lease runs out (docs/safety.md).
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--resume"]) == 1
    assert "has the lock" in capsys.readouterr().err
    let_lock_leases_expire(state_path)
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--resume"]) == 0
    capsys.readouterr()
    assert not journal.exists()
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0
