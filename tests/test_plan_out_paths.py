"""`plan --out FILE` and `apply --plan FILE` with a path that cannot be written or read (issue 17): a clear
error naming the path, exit 1, checked before the cloud is read, and nothing left behind: no temporary
file, no folder created for a mistyped path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from support import case_root, cloud_was_read

from reconciler import saved_plan
from reconciler.cli import main
from reconciler.errors import ReconcilerError


@pytest.fixture
def root(tmp_path, monkeypatch):
    return case_root(tmp_path, monkeypatch)


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


# What `plan --out` replaces must be a regular file (issue 17, hostile review): the save renames a new file
# over the path, which over a device or a pipe replaces the node itself (as root, /dev/null) and over a
# symbolic link replaces the link. Never tried against real devices: a FIFO and links under tmp_path.


def unreplaceable(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths `plan --out` must refuse, made under tmp_path, with the words the error uses."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = tmp_path / "target.json"
    target.write_text("kept\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    to_fifo = tmp_path / "to-pipe"
    to_fifo.symlink_to(fifo)
    to_folder = tmp_path / "to-folder"
    (tmp_path / "folder").mkdir()
    to_folder.symlink_to(tmp_path / "folder")
    return {
        "fifo": (fifo, "that is a named pipe, not a regular file"),
        "link to a file": (link, "that is a symbolic link"),
        "dangling link": (dangling, "that is a symbolic link"),
        "link to a fifo": (to_fifo, "that is a symbolic link"),
        "link to a folder": (to_folder, "that is a symbolic link"),
    }


@pytest.mark.parametrize("name", ["fifo", "link to a file", "dangling link", "link to a fifo", "link to a folder"])
def test_plan_out_refuses_what_is_not_a_regular_file(name, root, tmp_path, capsys):
    out, words = unreplaceable(tmp_path)[name]
    before = out.lstat()
    assert main(["plan", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: plan --out {out}: {words}" in err and "Traceback" not in err, err
    assert "a saved plan replaces the file it names" in err
    after = out.lstat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode), "the path was replaced"
    assert not cloud_was_read(root)
    assert (tmp_path / "target.json").read_text() == "kept\n"
    assert not (tmp_path / "nowhere.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_a_device_is_refused_by_kind(root, tmp_path, monkeypatch, capsys):
    # A character device, told by its mode only: the path is a regular file whose lstat says "device".
    out = tmp_path / "fake-device"
    out.write_text("")
    real_lstat = Path.lstat

    def device_lstat(self):
        result = real_lstat(self)
        if self == out:
            return os.stat_result((stat.S_IFCHR | 0o666, *tuple(result)[1:]))
        return result

    monkeypatch.setattr(Path, "lstat", device_lstat)
    assert main(["plan", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: plan --out {out}: that is a character device, not a regular file" in err, err
    assert not cloud_was_read(root)


def test_a_path_that_becomes_a_link_while_the_cloud_is_read_is_refused(tmp_path, monkeypatch):
    # check_destination ran before the cloud was read; save checks again right before the rename.
    out = tmp_path / "plan.json"
    out.symlink_to(tmp_path / "elsewhere.json")
    monkeypatch.setattr(saved_plan, "_write_json", lambda *a: pytest.fail("written through a link"))
    with pytest.raises(ReconcilerError, match="symbolic link"):
        saved_plan.save(out, _FakePlan(), None)


class _FakePlan:
    target = None

    def to_json(self):
        return {}


def test_a_new_plan_file_gets_the_mode_a_new_file_gets(root, tmp_path):
    old = os.umask(0o027)
    try:
        out = tmp_path / "plan.json"
        assert main(["plan", str(root), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0666 less the umask, not mkstemp's 0600


def test_a_replaced_plan_file_keeps_its_mode(root, tmp_path):
    out = tmp_path / "plan.json"
    out.write_text("old\n")
    out.chmod(0o644)
    assert main(["plan", str(root), "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and json.loads(out.read_text())["saved"]
