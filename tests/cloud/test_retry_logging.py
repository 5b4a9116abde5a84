"""urllib3 logs a WARNING for each retry of a broken connection (issue 17): in a run without -v those
lines reached stderr although the retry succeeded. Without -v they stay out; with -v they are shown.
Checked through the installed command, whose stderr is the user's terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import case_root

IMAGES = "GET /image/{region}/v2/images"


@pytest.fixture
def faulty_root(tmp_path, monkeypatch):
    """The share case, whose cloud answers its first image listing 503 and drops the second connection."""
    root = case_root(tmp_path, monkeypatch)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed["behaviour"] = {
        "faults": [{"route": IMAGES, "on_call": 1, "status": 503}, {"route": IMAGES, "on_call": 2, "drop": True}]
    }
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    return root


def plan(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", str(root), *extra], capture_output=True, text=True
    )


def faults_landed(root: Path) -> dict[str, int]:
    return json.loads((root / ".reconciler" / "sim-state.json").read_text()).get("fault_hits", {})


def test_retries_are_silent_without_verbose(faulty_root):
    result = plan(faulty_root)
    assert result.returncode == 0, result.stderr
    assert faults_landed(faulty_root) == {f"status {IMAGES}": 1, f"drop {IMAGES}": 1}
    assert "Retrying" not in result.stderr and "urllib3" not in result.stderr, result.stderr
    assert result.stderr == ""


def test_retries_are_logged_with_verbose(faulty_root):
    result = plan(faulty_root, "-v")
    assert result.returncode == 0, result.stderr
    assert "WARNING urllib3.connectionpool: Retrying (Retry(" in result.stderr, result.stderr
