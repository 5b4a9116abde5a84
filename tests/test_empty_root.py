"""An empty root never deletes: a root that declares no image (no manifest at all, or manifests with
`images: {}`) validates, but its plan holds no deletion and is refused with empty_root while the set has
live images; apply exits 3 and changes nothing. settings.allow_empty_set: true lifts both (the golden
cases empty-root-* show the plans; tests/test_apply.py applies the allowed one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import cloud_unchanged_but_lock_traces

from reconciler.cli import main

CASES = Path(__file__).resolve().parent / "cases"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def empty_root(tmp_path: Path, way: str) -> Path:
    root = tmp_path / "root"
    shutil.copytree(CASES / "empty-root-refused" / "root", root)  # three live images of the set, no manifest
    if way == "images-empty":
        (root / "images").mkdir()
        (root / "images" / "web.yaml").write_text("version: 1\nimages: {}\n")
    return root


@pytest.mark.parametrize("way", ["no-manifest", "images-empty"])
def test_apply_on_an_empty_root_with_live_images_exits_3_and_changes_nothing(tmp_path, capsys, way):
    root = empty_root(tmp_path, way)
    assert main(["validate", str(root)]) == 0  # not an input error: the plan decides
    files = 0 if way == "no-manifest" else 1
    assert f"OK: 0 images in {files} file" in capsys.readouterr().out

    assert main(["plan", str(root), "--format", "json"]) == 3  # also makes the simulator's state
    plan = json.loads(capsys.readouterr().out)
    assert [r["code"] for r in plan["refusals"]] == ["empty_root"] and plan["actions"] == []
    state = root / ".reconciler" / "sim-state.json"
    before = json.loads(state.read_bytes())

    assert main(["apply", str(root), "--auto-approve"]) == 3
    out = capsys.readouterr().out
    assert "empty_root" in out and "settings.allow_empty_set: true" in out
    assert "Nothing was applied: the plan has refusals." in out
    cloud_unchanged_but_lock_traces(before, json.loads(state.read_bytes()))


def test_allow_empty_set_retires_the_set_and_the_next_plan_is_empty_and_not_refused(tmp_path, capsys):
    root = empty_root(tmp_path, "images-empty")
    config = root / "reconciler.yaml"
    config.write_text(config.read_text() + "settings: {allow_empty_set: true}\n")
    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 0
    capsys.readouterr()
    config.write_text(config.read_text().replace("settings: {allow_empty_set: true}\n", ""))
    assert main(["plan", str(root), "--format", "json"]) == 0  # the set has no live image left
    plan = json.loads(capsys.readouterr().out)
    assert (plan["actions"], plan["refusals"], plan["info"]["this_set"]) == ([], [], 0)
    assert (plan["info"]["unmanaged"], plan["info"]["other_sets"]) == (1, 1)  # the others are untouched
