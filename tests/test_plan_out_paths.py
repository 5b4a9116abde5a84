"""`plan --out FILE` and `apply --plan FILE` with a path that cannot be written or read (issue 17): a clear
error naming the path, exit 1, checked before the cloud is read, and nothing left behind: no temporary
file, no folder created for a mistyped path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler import saved_plan
from reconciler.cli import main
from reconciler.errors import ReconcilerError

CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture
def root(tmp_path, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "root"
    shutil.copytree(CASES / "share" / "root", target)
    return target


def cloud_was_read(root: Path) -> bool:
    """The simulator makes its state file from the seed on the first read of the cloud."""
    return (root / ".reconciler").exists()


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_normal_plan_out_reads_the_cloud_and_writes_the_file(root, tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(out)]) == 0
    assert cloud_was_read(root) and json.loads(out.read_text())["saved"]
    assert f"Saved the plan to {out}" in capsys.readouterr().err


def test_plan_out_to_a_folder_is_refused_and_leaves_nothing(root, tmp_path, capsys):
    folder = tmp_path / "plans"
    folder.mkdir()
    assert main(["plan", str(root), "--out", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"error: plan --out {folder}: that is a folder" in err and "Traceback" not in err, err
    assert f"hint: name a file in it, e.g. {folder / 'plan.json'}" in err
    assert everything_under(folder) == [] and not cloud_was_read(root)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".plans.")], "a temporary file was left"


def test_plan_out_under_a_regular_file_is_refused(root, tmp_path, capsys):
    blocking = tmp_path / "notes.txt"
    blocking.write_text("mine\n")
    out = blocking / "sub" / "plan.json"
    assert main(["plan", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: plan --out {out}: {blocking} is a file, not a folder" in err, err
    assert blocking.read_text() == "mine\n" and not cloud_was_read(root)


def test_plan_out_into_a_missing_folder_is_refused_not_created(root, tmp_path, capsys):
    out = tmp_path / "typo" / "deeper" / "plan.json"
    assert main(["plan", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: plan --out {out}: the folder {out.parent} does not exist" in err, err
    assert not (tmp_path / "typo").exists() and not cloud_was_read(root)


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saved_plan.os, "replace", refuse)
    with pytest.raises(ReconcilerError, match=r"cannot write .*plan\.json: No space left on device"):
        saved_plan._write_json(tmp_path / "plan.json", {"a": 1})
    assert everything_under(tmp_path) == []


def test_a_hostile_out_path_is_shown_escaped(root, tmp_path, capsys):
    out = tmp_path / "p\x1b[2J\n  - delete x.json"
    assert main(["plan", str(root), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\n  - delete x" not in err, err
    assert "p\\x1b[2J\\x0a  - delete x.json" in err


def test_apply_plan_that_is_a_folder(root, tmp_path, capsys):
    assert main(["apply", str(root), "--plan", str(tmp_path), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"error: apply --plan {tmp_path}: that is a folder, not a saved plan" in err, err
    assert not cloud_was_read(root)


def test_apply_plan_that_does_not_exist(root, tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["apply", str(root), "--plan", str(missing), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"error: apply --plan {missing}: no such file" in err and "Errno" not in err, err
    assert not cloud_was_read(root)


def test_apply_plan_that_cannot_be_read(root, tmp_path, capsys):
    binary = tmp_path / "plan.json"
    binary.write_bytes(b"\xff\xfe{}")
    assert main(["apply", str(root), "--plan", str(binary), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"error: apply --plan {binary}: not a saved plan (not UTF-8 text at byte 0)" in err, err
    assert not cloud_was_read(root)


def test_apply_plan_without_read_permission(root, tmp_path, capsys, monkeypatch):
    # Tests run as root in CI, which reads a file whatever its mode: the refusal is simulated.
    locked = tmp_path / "plan.json"
    locked.write_text("{}")
    read_text = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    assert main(["apply", str(root), "--plan", str(locked), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"error: apply --plan {locked}: cannot read it (Permission denied)" in err, err
