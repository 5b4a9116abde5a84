"""The examples do what their READMEs say: the quickstart's plan shows a create from a running instance
with its warning, a copy, a share and a rename, and converges; a protected image retires in two steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns(".reconciler"))
    return root


def plan(root: Path, capsys) -> tuple[int, dict]:
    code = main(["plan", str(root), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_quickstart_plan_shows_what_the_readme_promises(tmp_path, capsys):
    code, document = plan(copy("quickstart", tmp_path), capsys)
    assert code == 0
    kinds = {(a["kind"], a["key"]) for a in document["actions"]}
    assert ("create", "web-base-2026-11") in kinds and ("copy", "web-base-2026-11") in kinds
    assert ("share", "web-base-2026-11") in kinds
    rename = next(a for a in document["actions"] if a["key"] == "api-base")
    assert rename["changes"]["name"] == {"before": "api-base", "after": "api-base-lts"}
    assert "running_instance" in {w["code"] for w in document["warnings"]}


def test_the_quickstart_applies_and_converges(tmp_path, capsys):
    root = copy("quickstart", tmp_path)
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, document = plan(root, capsys)
    assert (code, document["actions"], document["refusals"]) == (0, [], [])


def test_a_protected_image_retires_in_two_steps(tmp_path, capsys):
    root = copy("retire-protected", tmp_path)
    # Removing it first is refused.
    (root / "images" / "old-gold.yaml").rename(tmp_path / "old-gold.yaml")
    code, document = plan(root, capsys)
    assert code == 3 and [r["code"] for r in document["refusals"]] == ["protected_undeclared"]
    (tmp_path / "old-gold.yaml").rename(root / "images" / "old-gold.yaml")

    # Step 1: unprotect.
    _, document = plan(root, capsys)
    assert [a["id"] for a in document["actions"]] == ["unprotect:old-gold:KR1"]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()

    # Step 2: remove it from the manifests; now it is deleted.
    (root / "images" / "old-gold.yaml").unlink()
    _, document = plan(root, capsys)
    assert [a["id"] for a in document["actions"]] == ["delete:old-gold:KR1"]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, document = plan(root, capsys)
    assert (code, document["actions"]) == (0, [])
