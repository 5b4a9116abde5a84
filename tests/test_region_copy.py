"""Copies to other regions: streamed, verified, restartable. Each fault fails cleanly, leaves nothing a
later plan takes for a good copy, restores the download flag, and a re-run completes."""

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
from support import is_lock_record, let_lock_leases_expire

from reconciler.cli import main

CASES = Path(__file__).resolve().parent / "cases"
FILE_GET = "GET /image/{region}/v2/images/{image_id}/file"
FILE_PUT = "PUT /image/{region}/v2/images/{image_id}/file"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def root_with(tmp_path: Path, behaviour: dict | None = None) -> Path:
    """copies-two-regions: a 16 MiB home image in KR1 (downloads off) to be copied to JP1 and KR2."""
    root = tmp_path / "root"
    shutil.copytree(CASES / "copies-two-regions" / "root", root)
    if behaviour:
        seed = yaml.safe_load((root / "seed.yaml").read_text())
        seed.setdefault("behaviour", {}).update(behaviour)
        (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    return root


def state(root: Path) -> dict:
    return json.loads((root / ".reconciler" / "sim-state.json").read_text())


def images(root: Path, region: str) -> list[dict]:
    """The images of a region, but the apply lock (bookkeeping, see reconciler/lock.py)."""
    return [
        i["fields"] for i in state(root)["images"].values() if i["region"] == region and not is_lock_record(i["fields"])
    ]


def clear_faults(root: Path) -> None:
    path = root / ".reconciler" / "sim-state.json"
    doc = json.loads(path.read_text())
    doc["behaviour"]["faults"] = []
    doc["behaviour"]["upload_keeps_bytes"] = True
    path.write_text(json.dumps(doc))


def apply(root: Path, capsys, *extra: str) -> tuple[int, dict]:
    code = main(["apply", str(root), "--auto-approve", "--format", "json", "--parallelism", "1", *extra])
    return code, json.loads(capsys.readouterr().out)


def assert_clean_failure_then_rerun_converges(root: Path, capsys, code: int, report: dict, message: str) -> None:
    assert code == 1
    failed = [r for r in report["results"] if r["status"] == "failed"]
    assert failed and failed[0]["kind"] == "copy" and message in failed[0]["message"]
    # Nothing left behind that a plan would take for a good copy, and downloads are off again.
    assert images(root, failed[0]["region"]) == []
    (home,) = images(root, "KR1")
    assert home["nhncloud_allow_download"] == "false" and "reconciler_download_was" not in home
    # A re-run (the fault gone) completes and converges.
    clear_faults(root)
    code, report = apply(root, capsys)
    assert code == 0, report
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0
    capsys.readouterr()


def test_copies_are_verified_and_carry_the_source_properties(tmp_path, capsys):
    root = root_with(tmp_path)
    code, report = apply(root, capsys)
    assert code == 0
    (home,) = images(root, "KR1")
    for region in ("JP1", "KR2"):
        (copy,) = images(root, region)
        assert (copy["checksum"], copy["os_hash_value"], copy["size"]) == (
            home["checksum"],
            home["os_hash_value"],
            home["size"],
        )
        assert copy["reconciler_copy_of"] == home["id"] and copy["status"] == "active"
        assert copy["visibility"] == "private" and copy["protected"] is False
        assert copy["os_type"] == home["os_type"] and "nhncloud_allow_download" not in copy
    assert home["nhncloud_allow_download"] == "false"


def test_a_download_broken_mid_stream(tmp_path, capsys):
    root = root_with(tmp_path, {"faults": [{"route": FILE_GET, "on_call": 1, "cut_after_bytes": 3 * 1024 * 1024}]})
    code, report = apply(root, capsys)
    assert_clean_failure_then_rerun_converges(root, capsys, code, report, "download broke off")


def test_an_upload_broken_mid_stream(tmp_path, capsys):
    root = root_with(tmp_path, {"faults": [{"route": FILE_PUT, "on_call": 1, "cut_after_bytes": 3 * 1024 * 1024}]})
    code, report = apply(root, capsys)
    assert_clean_failure_then_rerun_converges(root, capsys, code, report, "no answer")


def test_a_server_error_on_the_upload(tmp_path, capsys):
    root = root_with(tmp_path, {"faults": [{"route": FILE_PUT, "on_call": 1, "status": 500}]})
    code, report = apply(root, capsys)
    assert_clean_failure_then_rerun_converges(root, capsys, code, report, "500")


def test_a_checksum_mismatch_deletes_the_copy_and_names_both_values(tmp_path, capsys):
    root = root_with(tmp_path, {"upload_keeps_bytes": False})
    code, report = apply(root, capsys)
    (home,) = images(root, "KR1")
    failed = next(r for r in report["results"] if r["status"] == "failed")
    assert f"the bytes sent have {home['checksum']}" in failed["message"] and "its checksum is" in failed["message"]
    assert_clean_failure_then_rerun_converges(root, capsys, code, report, "does not match the bytes sent")


def test_a_process_killed_mid_copy_leaves_a_copy_the_next_plan_replaces(tmp_path, capsys):
    root = root_with(tmp_path, {"faults": [{"route": FILE_PUT, "on_call": 1, "stall_s": 30}]})
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", str(root), "--auto-approve", "--parallelism", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the copy's target exists, then kill mid-copy
            path = root / ".reconciler" / "sim-state.json"
            if path.exists() and any(i["region"] == "JP1" for i in state(root)["images"].values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the copy never started")
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    (left,) = images(root, "JP1")
    assert left["status"] != "active"  # an unfinished target, marked as the copy
    (home,) = images(root, "KR1")
    assert home["nhncloud_allow_download"] == "true" and home["reconciler_download_was"] == "false"
    clear_faults(root)
    code = main(["plan", str(root), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    ids = [a["id"] for a in plan["actions"]]
    assert "delete:web-base:JP1:replace" in ids and "copy:web-base:JP1" in ids  # replaced, delete then copy
    assert "update:web-base:KR1:download-off" in ids  # and the flag a crash left on is restored
    # The killed apply could not release its lock claim: the next apply may go once its lease ran out.
    let_lock_leases_expire(root / ".reconciler" / "sim-state.json")
    code, report = apply(root, capsys)
    assert code == 0, report
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0
    (home,) = images(root, "KR1")
    assert home["nhncloud_allow_download"] == "false" and "reconciler_download_was" not in home


def test_the_plan_shows_the_bytes_each_copy_moves_and_a_total(tmp_path, capsys):
    root = root_with(tmp_path)
    main(["plan", str(root), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    sizes = [a["bytes"] for a in plan["actions"] if a["kind"] == "copy"]
    assert len(sizes) == 2 and all(s > 16 * 1024 * 1024 for s in sizes)
    assert plan["summary"]["copy_bytes"] == sum(sizes)
    main(["plan", str(root)])
    assert "Copies move 32.6 MiB." in capsys.readouterr().out
