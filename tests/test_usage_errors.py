"""Usage errors exit 1, like every error (issue 17): argparse's own exit code, 2, is also what
`plan --detailed-exitcode` means by "the plan has changes", so a typo in a CI recipe read as a plan with
changes. Checked through the installed command, as CI runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture
def case_root(tmp_path, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)

    def copy(case: str) -> str:
        target = tmp_path / case
        shutil.copytree(CASES / case / "root", target)
        return str(target)

    return copy


def reconciler(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


# argparse's own errors: the usage line, then "PROG: error: ..." on stderr.
PARSER_ERRORS = {
    "unknown option": (["plan", "{root}", "--detailed-exitcode", "--formt", "markdown"], "unrecognized arguments"),
    "unknown option before the command": (["--formt", "plan", "{root}"], "error:"),
    "bad choice": (["plan", "{root}", "--detailed-exitcode", "--format", "yaml"], "invalid choice: 'yaml'"),
    "bad int": (["plan", "{root}", "--detailed-exitcode", "--max-chars", "many"], "invalid int value: 'many'"),
    "bad float": (["apply", "{root}", "--timeout", "soon"], "invalid float value: 'soon'"),
    "missing argument": (["plan", "{root}", "--detailed-exitcode", "--out"], "expected one argument"),
    "missing required option": (["import", "{root}"], "the following arguments are required: --region"),
    "unknown command": (["plna", "{root}"], "invalid choice: 'plna'"),
    # plan, apply and validate take several roots; the commands of one root take one.
    "extra positional": (["import", "{root}", "{root}", "--region", "KR1"], "unrecognized arguments"),
    "simulator without its command": (["simulator"], "the following arguments are required"),
}


@pytest.mark.parametrize("name", sorted(PARSER_ERRORS))
def test_argparse_errors_exit_1_with_the_usage_line(name, case_root):
    argv, message = PARSER_ERRORS[name]
    root = case_root("share")
    result = reconciler(*(a.format(root=root) for a in argv))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.startswith("usage: reconciler"), result.stderr
    assert "error:" in result.stderr and message in result.stderr, result.stderr
    assert result.stdout == ""


# The tool's own UsageErrors, raised once the command line parsed.
TOOL_ERRORS = {
    "negative max-deletions": (["plan", "{root}", "--detailed-exitcode", "--max-deletions", "-1"], "--max-deletions"),
    "unknown target key": (["plan", "{root}", "--detailed-exitcode", "--target", "nosuch"], "nosuch"),
    "resume without plan": (["apply", "{root}", "--resume"], "--resume needs --plan"),
    "zero parallelism": (["apply", "{root}", "--parallelism", "0"], "--parallelism must be between 1 and 64"),
    "lease out of range": (["apply", "{root}", "--lock-lease", "5"], "--lock-lease must be between"),
    "narrowed saved plan": (["plan", "{root}", "--out", "{root}/p.json", "--target", "web-base"], "cannot be combined"),
    "no terminal to confirm": (["apply", "{root}"], "no terminal to confirm"),
}


@pytest.mark.parametrize("name", sorted(TOOL_ERRORS))
def test_the_tools_usage_errors_exit_1(name, case_root):
    argv, message = TOOL_ERRORS[name]
    root = case_root("share")
    result = reconciler(*(a.format(root=root) for a in argv))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "error: " in result.stderr and message in result.stderr, result.stderr


def test_no_command_prints_the_help_and_exits_1():
    result = reconciler()
    assert result.returncode == 1
    assert result.stderr.startswith("usage: reconciler") and "COMMAND" in result.stderr


def test_help_and_version_still_exit_0():
    assert reconciler("--help").returncode == 0
    assert reconciler("plan", "--help").returncode == 0
    version = reconciler("--version")
    assert version.returncode == 0 and version.stdout.startswith("reconciler ")


def test_detailed_exitcode_is_2_only_for_a_plan_with_changes(case_root):
    changes = reconciler("plan", case_root("share"), "--detailed-exitcode", "--format", "markdown")
    assert changes.returncode == 2, changes.stderr
    assert changes.stdout.strip(), "a plan with changes is printed"
    assert reconciler("plan", case_root("no-changes"), "--detailed-exitcode").returncode == 0
    assert reconciler("plan", case_root("delete-protected-refused"), "--detailed-exitcode").returncode == 3


def test_a_hostile_option_is_shown_escaped_in_argparses_error():
    result = reconciler("plan", "--\x1b[2Jformat\x07")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "--\\x1b[2Jformat\\x07" in result.stderr, result.stderr
