"""Two applies of one root at the same time, as two real processes: the apply lock (claims in the cloud,
docs/safety.md) lets one run and turns the other away, so that after the next plan and apply no identity
holds two images and nothing the tool did not make was deleted. And the operator's side of the lock:
claims in plans, `reconciler unlock`, the lock's options."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from promises import fingerprint, violations

from reconciler.cli import main
from reconciler.connect import open_cloud
from reconciler.lock import claims_region
from reconciler.lock_claims import CLAIM, HELD, HOLDER, STATE, claim_name
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
            assert "another apply of set platform has the lock" in err or "kept trying" in err
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


def test_claims_are_bookkeeping_and_unlock_deletes_only_this_sets_claims(tmp_path, capsys):
    """A claim left by a killed apply: plans count it apart (never unmanaged), `unlock` shows it and deletes
    it; an id that is not a claim of this root's set is refused and nothing is deleted."""
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        region = claims_region(client)
        left = client.create_image(
            region,
            {"name": claim_name("platform"), "os_type": "linux", "disk_format": "raw", "container_format": "bare",
             "visibility": "private", CLAIM: "platform", HOLDER: "ci-runner:7:abc", STATE: HELD},
        )  # fmt: skip
        other_set = client.create_image(
            region,
            {"name": claim_name("api"), "os_type": "linux", "disk_format": "raw", "container_format": "bare",
             "visibility": "private", CLAIM: "api", HOLDER: "ci-runner:8:def", STATE: HELD},
        )  # fmt: skip
        unmanaged = next(
            i
            for r in target.regions
            for i in client.list_images(r, owner=client.project_id)
            if not set(i.properties) & {"reconciler_set", CLAIM}
        )
    main(["plan", str(root), "--format", "json"])
    info = json.loads(capsys.readouterr().out)["info"]
    assert info["unmanaged"] == 2 and info["bookkeeping"] == 2
    (shown,) = info["lock"]  # this set's claim only, never the other set's
    assert (shown["claim"], shown["holder"], shown["state"], shown["live"]) == (
        left.id,
        "ci-runner:7:abc",
        "held",
        True,
    )
    assert main(["apply", str(root), "--auto-approve"]) == 1
    assert f"claim {left.id} of holder ci-runner:7:abc" in capsys.readouterr().err
    for refused in (other_set.id, unmanaged.id, "00000000-0000-4000-8000-000000000000"):
        assert main(["unlock", str(root), "--claim", refused, "--auto-approve"]) == 1
        assert "is not an apply-lock claim of set platform" in capsys.readouterr().err
    assert main(["unlock", str(root), "--claim", left.id, "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "ci-runner:7:abc" in out and "live by the server's clock" in out and f"Deleted the claim {left.id}" in out
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        assert client.find_image(region, left.id) is None
        assert client.find_image(region, other_set.id) is not None
        assert client.find_image(unmanaged.region, unmanaged.id) is not None
    assert main(["apply", str(root), "--auto-approve"]) == 0


def test_lock_options_are_checked(tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    for flags in (["--lock-lease", "29"], ["--lock-lease", "901"], ["--lock-timeout", "-1"]):
        assert main(["apply", str(root), "--auto-approve", *flags]) == 1
        assert "--lock-" in capsys.readouterr().err


def test_apply_with_lock_timeout_waits_out_a_left_claim_and_the_winner_deletes_it(tmp_path, capsys):
    """A loser whose delete failed left a probing claim: the next apply given --lock-timeout waits (a
    killed apply's claim is the same case) until the claim expires by the server's clock, then holds and
    deletes it. The simulator serving the same state file moves the clock instead of waiting 125 s."""
    import threading

    from reconciler.simulator.server import SimulatorServer
    from reconciler.simulator.state import StateStore

    root = tmp_path / "root"
    shutil.copytree(ROOT, root)
    assert main(["plan", str(root)]) == 0  # makes the state from the seed
    capsys.readouterr()
    sim = SimulatorServer(StateStore.open(root / ".reconciler" / "sim-state.json")).start()
    try:
        desired = load_desired_state(root)
        with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
            region = claims_region(client)
            left = client.create_image(
                region,
                {"name": claim_name("platform"), "os_type": "linux", "disk_format": "raw", "container_format": "bare",
                 "visibility": "private", CLAIM: "platform", HOLDER: "ci-runner:9:lost", STATE: "probing"},
            )  # fmt: skip
        codes: list[int] = []
        waiting = threading.Thread(
            target=lambda: codes.append(main(["apply", str(root), "--auto-approve", "--lock-timeout", "60"]))
        )
        waiting.start()
        waiting.join(3)
        assert waiting.is_alive() and not codes, "apply did not wait for the left claim"
        sim.advance_clock(126)
        waiting.join(60)
        assert codes == [0], capsys.readouterr().err
        with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
            assert client.find_image(region, left.id) is None, "the winner kept the expired claim"
            assert [i for i in client.list_images(region) if i.name == claim_name("platform")] == []
    finally:
        sim.stop()
