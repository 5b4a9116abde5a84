"""`reconciler plan` from the command line: the target first, exit codes 0/1/2/3, JSON alone on stdout,
--max-deletions and the global flags in either place, colour only on a terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.render.text import colorize

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "cases"


@pytest.fixture
def root(tmp_path, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)

    def copy(case: str) -> Path:
        target = tmp_path / case
        shutil.copytree(CASES / case / "root", target)
        return target

    return copy


def test_installed_command_prints_the_target_first_and_exits_0(root):
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", str(root("rename-in-place"))], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("reconciler plan · set web-platform · SIMULATOR state .reconciler/sim-state.json")
    assert lines[-1] == "Nothing was changed."


def test_json_is_the_only_thing_on_stdout(root, capsys):
    assert main(["plan", str(root("share")), "--format", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # exactly one document
    assert document["format_version"] == "1" and document["target"]["kind"] == "simulator"
    assert captured.err.startswith("reconciler plan · set web-platform · SIMULATOR")


def test_detailed_exitcode_is_2_with_changes_and_0_without(root, capsys):
    assert main(["plan", str(root("share")), "--detailed-exitcode"]) == 2
    assert main(["plan", str(root("no-changes")), "--detailed-exitcode"]) == 0
    capsys.readouterr()


def test_refusals_exit_3_and_the_plan_is_still_printed(root, capsys):
    assert main(["plan", str(root("delete-protected-refused"))]) == 3
    out = capsys.readouterr().out
    assert "[protected_undeclared]" in out and "This plan cannot be applied" in out


def test_max_deletions_flag_overrides_the_setting(root, capsys):
    case = root("max-deletions")
    assert main(["plan", str(case)]) == 3
    assert main(["plan", str(case), "--max-deletions", "3"]) == 0
    assert main(["plan", str(case), "--max-deletions", "-1"]) == 1
    capsys.readouterr()


def test_global_flags_before_or_after_the_subcommand(root, capsys, tmp_path):
    case = root("share")
    state = tmp_path / "elsewhere" / "state.json"
    seed = case / "seed.yaml"
    assert main(["simulator", "init", str(state), "--seed", str(seed)]) == 0
    capsys.readouterr()
    assert main(["--sim-state", str(state), "-v", "plan", str(case), "--no-color"]) == 0
    first = capsys.readouterr().out
    assert main(["plan", str(case), "--sim-state", str(state), "--no-color", "-v"]) == 0
    second = capsys.readouterr().out
    assert first.splitlines()[0].startswith(f"reconciler plan · set web-platform · SIMULATOR state {state}")
    assert first == second
    assert not (case / ".reconciler").exists(), "--sim-state overrides the root's own state file"


def test_invalid_root_exits_1_before_reading_the_cloud(root, capsys):
    case = root("share")
    (case / "images" / "broken.yaml").write_text("version: 1\nimages: {web: {source: {}}}\n")
    assert main(["plan", str(case)]) == 1
    err = capsys.readouterr().err
    assert "images/broken.yaml" in err and not (case / ".reconciler").exists()


def test_colour_only_marks_lines_and_is_plain_otherwise():
    text = "header\n  + create   web  KR1\n  - delete   old  KR1\n  warning [x] web: y\n"
    coloured = colorize(text)
    assert "\033[32m  + create" in coloured and "\033[31m  - delete" in coloured
    assert coloured.splitlines()[0] == "header"


def test_no_color_and_a_pipe_give_plain_text(root, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    main(["plan", str(root("share"))])
    assert "\033[" not in capsys.readouterr().out


def test_target_and_exclude_narrow_the_plan_and_say_so_everywhere(root, capsys):
    case = root("max-deletions")  # three undeclared images would be deleted
    assert main(["plan", str(case), "--format", "json", "--target", "tmp-build-0411"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in document["actions"]] == ["delete:tmp-build-0411:KR1"]
    assert document["info"]["partial"]["targets"] == ["tmp-build-0411"]
    assert [w["code"] for w in document["warnings"]] == ["partial_plan"]
    assert main(["plan", str(case), "--exclude", "tmp-build-0411", "--exclude", "tmp-build-0412"]) == 0
    text = capsys.readouterr().out
    assert "delete         tmp-build-0413" in text and "tmp-build-0411" not in text.split("warning")[0]
    assert "warning [partial_plan] partial plan (excluding tmp-build-0411, tmp-build-0412)" in text
    assert main(["plan", str(case), "--format", "markdown", "--target", "tmp-build-0411"]) == 0
    assert "Partial plan (only tmp-build-0411)" in capsys.readouterr().out


def test_apply_with_a_target_changes_only_that_key(root, capsys):
    case = root("protect-unprotect")
    assert main(["apply", str(case), "--auto-approve", "--target", "web-base"]) == 0
    capsys.readouterr()
    main(["plan", str(case), "--format", "json"])
    remaining = json.loads(capsys.readouterr().out)["actions"]
    assert [a["id"] for a in remaining] == ["unprotect:api-base:KR1"]


def test_an_unknown_target_is_an_error(root, capsys):
    assert main(["plan", str(root("share")), "--target", "nope"]) == 1
    assert "no image of set web-platform has the key nope" in capsys.readouterr().err
