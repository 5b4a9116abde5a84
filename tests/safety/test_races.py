"""Two applies of one root at the same time, as two real processes: the apply lock (a Glance image with
a deterministic id, created atomically) lets one run and turns the other away, so that after the next
plan and apply no identity holds two images and nothing the tool did not make was deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from promises import fingerprint, violations

from reconciler.cli import main
from reconciler.connect import open_cloud
from reconciler.lock import LockedError, apply_lock
from reconciler.validate import load_desired_state

ROOT = Path(__file__).resolve().parent / "root"
RACE_OUTCOMES: list[list[int]] = []


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("attempt", range(3))
def test_two_applies_at_once(tmp_path, capsys, attempt):
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    main(["plan", str(root), "--format", "json"])
    capsys.readouterr()
    before = fingerprint(root)
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--auto-approve"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=120), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    # Either one ran and the other was turned away by the lock, or they did not overlap at all.
    assert codes in ([0, 0], [0, 1]), results
    RACE_OUTCOMES.append(codes)
    for code, err in results:
        if code == 1:
            assert "another apply of set platform is running" in err
    assert violations(root, before, converged=False) == []
    # The next plan and apply finish whatever is left; then one image per identity, nothing lost.
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0
    capsys.readouterr()
    assert violations(root, before, converged=True) == []


def test_the_applies_did_overlap_at_least_once():
    """Otherwise the races above tested nothing."""
    assert [0, 1] in RACE_OUTCOMES, RACE_OUTCOMES


def test_a_held_lock_turns_an_apply_away_and_a_crashed_holders_lock_is_taken_over(tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        region = target.regions[0]
        with apply_lock(client, region, "platform"):
            with pytest.raises(LockedError, match="another apply of set platform is running"):
                with apply_lock(client, region, "platform"):
                    pass
        # A lock left by a process that no longer runs on this machine is taken over.
        from reconciler import lock

        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        pid = dead.stdout.strip()
        client.create_image(
            region,
            {"id": lock.lock_id(client.project_id, "platform"), "name": "reconciler-lock-platform", "os_type": "linux",
             "visibility": "private", "disk_format": "raw", "container_format": "bare", lock.LOCK: "platform",
             lock.HOLDER: f"{__import__('socket').gethostname()}:{pid}", lock.EXPIRES: "2999-01-01T00:00:00Z"},
        )  # fmt: skip
        with apply_lock(client, region, "platform"):
            pass
        assert client.find_image(region, lock.lock_id(client.project_id, "platform")) is None
    # The lock never shows in a plan.
    main(["plan", str(root), "--format", "json"])
    assert json.loads(capsys.readouterr().out)["info"]["unmanaged"] == 2


def test_a_lock_this_process_left_behind_is_taken_over(tmp_path):
    """An apply run in-process (a library caller, a test) whose release failed left a lock naming this
    very process: it is not held any more, so the next apply takes it over instead of waiting 10 minutes."""
    from reconciler import lock

    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        region = target.regions[0]
        client.create_image(
            region,
            {"id": lock.lock_id(client.project_id, "platform"), "name": "reconciler-lock-platform", "os_type": "linux",
             "visibility": "private", "disk_format": "raw", "container_format": "bare", lock.LOCK: "platform",
             lock.HOLDER: lock._holder(), lock.EXPIRES: "2999-01-01T00:00:00Z"},
        )  # fmt: skip
        with apply_lock(client, region, "platform"):
            pass
        assert client.find_image(region, lock.lock_id(client.project_id, "platform")) is None


def test_another_process_with_this_pid_keeps_its_lock(tmp_path):
    """Two containers on one host network both run as pid 1: same host and pid, but not this process."""
    from reconciler import lock

    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        region = target.regions[0]
        other = f"{__import__('socket').gethostname()}:{os.getpid()}:another-process"
        client.create_image(
            region,
            {"id": lock.lock_id(client.project_id, "platform"), "name": "reconciler-lock-platform", "os_type": "linux",
             "visibility": "private", "disk_format": "raw", "container_format": "bare", lock.LOCK: "platform",
             lock.HOLDER: other, lock.EXPIRES: "2999-01-01T00:00:00Z"},
        )  # fmt: skip
        with pytest.raises(LockedError, match="another apply of set platform is running"):
            with apply_lock(client, region, "platform"):
                pass
        assert client.find_image(region, lock.lock_id(client.project_id, "platform")) is not None


def test_a_failed_release_is_tried_again(tmp_path):
    from reconciler import lock

    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    delete = "DELETE /image/{region}/v2/images/{image_id}"
    seed["behaviour"] = {"faults": [{"route": delete, "on_call": [1, 2], "status": 500}]}
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    desired = load_desired_state(root)
    waits = []
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        region = target.regions[0]
        with apply_lock(client, region, "platform", sleep=waits.append):
            pass
        assert client.find_image(region, lock.lock_id(client.project_id, "platform")) is None
    assert waits == [0.5, 1.0]  # two refusals, then released
