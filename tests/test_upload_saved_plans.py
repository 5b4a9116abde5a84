"""Saved plans of uploads (issue 25), through the CLI on the simulator, as a CI job runs them: what apply
uploads (the file or URL, its disk format, the digest the image records) is compared, so a saved plan whose
upload was edited never runs; what plan time saw of the bytes (their size, where the file was found) is for
the reader only, so a pull request's plan made before the artifact was built matches the apply job's. And a
plan looks for an upload's bytes only while its key has no image."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main

CASES = Path(__file__).resolve().parent / "cases"
CREATE = "create:web-2026-12:KR1"
ARTIFACT = "build/web-2026-12.qcow2"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def saved(case: str, tmp_path: Path, capsys, *, built: bool = True) -> tuple[Path, Path, dict[str, Any]]:
    """The case's root (its artifact removed unless `built`), and the plan saved from it."""
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root, ignore=shutil.ignore_patterns(".reconciler"))
    if not built:
        (root / ARTIFACT).unlink()
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    return root, plan_file, json.loads(plan_file.read_text(encoding="utf-8"))


def apply_saved(root: Path, plan_file: Path, capsys) -> tuple[int, dict[str, Any], str]:
    code = main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def edit(plan_file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(plan_file.read_text(encoding="utf-8"))
    (create,) = [a for a in document["actions"] if a["id"] == CREATE]
    change(create)
    plan_file.write_text(json.dumps(document), encoding="utf-8")


def _set_source(create: dict[str, Any]) -> None:
    create["changes"]["reconciler_source"]["after"] = "sha256:" + "0" * 64


EDITS = {
    "file": lambda create: create.update(file="build/other.qcow2"),
    "disk_format": lambda create: create.update(disk_format="raw"),
    "reconciler_source": _set_source,
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_a_saved_upload_whose_file_format_or_digest_was_edited_never_runs(field, tmp_path, capsys):
    root, plan_file, _ = saved("upload-file-present", tmp_path, capsys)
    edit(plan_file, EDITS[field])

    code, report, err = apply_saved(root, plan_file, capsys)

    assert code == 1 and report["outcome"] == "plan_mismatch"
    assert "differs from the saved plan" in err and "nothing was applied" in err
    assert f"{CREATE}: saved: " in err and field in err


def test_a_saved_upload_whose_url_was_edited_never_runs(tmp_path, capsys):
    root, plan_file, _ = saved("upload-url-not-contacted", tmp_path, capsys)
    edit(plan_file, lambda create: create.update(url="https://evil.example.net/web-2026-12.qcow2"))

    code, report, err = apply_saved(root, plan_file, capsys)

    assert code == 1 and report["outcome"] == "plan_mismatch"
    assert f"{CREATE}: saved: url 'https://evil.example.net/web-2026-12.qcow2'" in err


def test_a_pull_requests_plan_made_before_the_artifact_was_built_matches_the_apply_jobs(tmp_path, capsys):
    root, plan_file, document = saved("upload-file-present", tmp_path, capsys, built=False)
    (create,) = document["actions"]
    assert [w["code"] for w in document["warnings"]] == ["source_not_built"]
    assert create["bytes"] is None and create["artifact"] is None
    shutil.copy(CASES / "upload-file-present" / "root" / ARTIFACT, root / ARTIFACT)  # the apply job builds it

    code, report, err = apply_saved(root, plan_file, capsys)

    assert code == 0 and report["outcome"] == "applied", err
    assert [(r["id"], r["status"]) for r in report["results"]] == [(CREATE, "done")]


def test_a_saved_upload_left_unedited_is_applied_and_the_next_plan_has_no_change(tmp_path, capsys):
    root, plan_file, _ = saved("upload-file-present", tmp_path, capsys)

    code, report, err = apply_saved(root, plan_file, capsys)

    assert code == 0 and report["outcome"] == "applied", err
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


@pytest.mark.parametrize(("case", "probed"), [("upload-file-present", ["web-2026-12"]), ("upload-hash-changed", [])])
def test_plan_probes_an_upload_only_while_its_key_has_no_image(case, probed, tmp_path, capsys, monkeypatch):
    """A plan looks for the bytes (and, with --fetch-sources, contacts a URL) only for an image it may make."""
    from reconciler import snapshot

    seen: list[str] = []
    real = snapshot.probe
    monkeypatch.setattr(
        snapshot, "probe", lambda source, root, access: seen.append(source.file) or real(source, root, access)
    )
    saved(case, tmp_path, capsys)
    assert seen == [ARTIFACT] * len(probed)
