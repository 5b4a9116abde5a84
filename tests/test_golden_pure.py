"""Golden plans from recorded live state: for each case in tests/cases/, the planner alone (`build_plan`)
on the case's root, its `snapshot.json` (tests/test_golden_snapshots.py captures it) and the target in its
`plan.json` must render that `plan.json` byte for byte. No simulator, no HTTP: a change to the planner is
checked against every golden in about a second, and a failure here points at the planner, not the client.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from snapshot_data import snapshot_from_json, snapshot_to_json

from reconciler.plan import Target
from reconciler.planner import build_plan
from reconciler.render.json import render_json
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "root").is_dir())


def target_of(document: dict) -> Target:
    """plan.json's target, as Target.to_json wrote it."""
    doc = document["target"]
    return Target(doc["kind"], doc["project"], doc["identity"], tuple(doc["regions"]), doc.get("state"))


@pytest.mark.parametrize("case", case_names())
def test_planner_alone_renders_the_golden_plan(case, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root, ignore=shutil.ignore_patterns(".reconciler"))
    desired = load_desired_state(root)
    snapshot_path = CASES / case / "snapshot.json"
    assert snapshot_path.exists(), f"{snapshot_path} is missing: capture it (tests/test_golden_snapshots.py)"
    snapshot = snapshot_from_json(snapshot_path.read_text(encoding="utf-8"), where=str(snapshot_path))
    expected = (CASES / case / "plan.json").read_text(encoding="utf-8")
    target = target_of(json.loads(expected))
    assert target.to_json() == json.loads(expected)["target"], "the target reads back as it was written"

    plan = build_plan(desired, snapshot, target)

    assert render_json(plan.to_json()) == expected


@pytest.mark.parametrize("case", case_names())
def test_snapshot_json_reads_back_to_the_same_text(case):
    text = (CASES / case / "snapshot.json").read_text(encoding="utf-8")
    assert snapshot_to_json(snapshot_from_json(text)) == text
