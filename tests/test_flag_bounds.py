"""Numeric flags have bounds beyond argparse's types (issue 17, hostile review): a float flag took `nan`
and `inf` (`--timeout nan` never timed out, `--lock-timeout inf` waited forever), an int flag any size, and
`--max-chars` below what the Markdown rendering needs. Each is a usage error, exit 1, before the cloud is
read. And the hints that come with saved plans fit the flags given and quote the paths they print."""

from __future__ import annotations

import json

import pytest
from support import case_root, cloud_was_read

from reconciler.cli import main
from reconciler.render import MIN_MAX_CHARS


@pytest.fixture
def root(tmp_path, monkeypatch):
    return case_root(tmp_path, monkeypatch)


BAD_FLAGS = {
    "timeout nan": (["apply", "--timeout", "nan"], "--timeout must be a number of seconds"),
    "timeout inf": (["apply", "--timeout", "inf"], "--timeout must be a number of seconds"),
    "timeout -inf": (["apply", "--timeout=-inf"], "--timeout must be a number of seconds"),
    "timeout huge": (
        ["apply", "--timeout", "1e30"],
        "--timeout must be a number of seconds, more than 0 and at most 604,800",
    ),
    "timeout zero": (["apply", "--timeout", "0"], "--timeout must be a number of seconds, more than 0"),
    "lock-timeout nan": (["apply", "--lock-timeout", "nan"], "--lock-timeout must be a number of seconds"),
    "lock-timeout inf": (["apply", "--lock-timeout", "inf"], "--lock-timeout must be a number of seconds"),
    "lock-timeout negative": (["apply", "--lock-timeout", "-1"], "--lock-timeout must be a number of seconds, 0 or"),
    "lock-lease nan": (["apply", "--lock-lease", "nan"], "--lock-lease must be between 30 and 900"),
    "max-deletions huge (plan)": (["plan", "--max-deletions", str(10**23)], "--max-deletions must be between 0 and"),
    "max-deletions huge (apply)": (["apply", "--max-deletions", str(10**23)], "--max-deletions must be between 0"),
    "max-chars small": (["plan", "--max-chars", "100"], f"--max-chars must be at least {MIN_MAX_CHARS:,}"),
    "max-chars one short": (["plan", "--max-chars", str(MIN_MAX_CHARS - 1)], "--max-chars must be at least"),
    "max-chars negative": (["plan", "--max-chars", "-5"], "--max-chars must be at least"),
    "parallelism huge": (["apply", "--parallelism", str(10**23)], "--parallelism must be between 1 and 64"),
    "region-parallelism 65": (["apply", "--region-parallelism", "65"], "--region-parallelism must be between 1 and 64"),
}


@pytest.mark.parametrize("name", sorted(BAD_FLAGS))
def test_an_out_of_bounds_flag_is_a_usage_error_before_the_cloud_is_read(name, root, capsys):
    (command, *flags), message = BAD_FLAGS[name]
    assert (
        main([command, str(root), *flags, "--auto-approve"] if command == "apply" else [command, str(root), *flags])
        == 1
    )
    err = capsys.readouterr().err
    assert f"error: {message}" in err, err
    assert not cloud_was_read(root)


@pytest.mark.parametrize("flags", [["--max-chars", str(MIN_MAX_CHARS)], ["--timeout", "604800"]])
def test_the_bounds_themselves_are_allowed(flags, root, capsys):
    command = "apply" if flags[0] == "--timeout" else "plan"
    argv = [command, str(root), *flags, "--format", "json"] + (["--auto-approve"] if command == "apply" else [])
    assert main(argv) == 0, capsys.readouterr().err


def test_a_narrowed_saved_plan_hint_fits_target_and_exclude(root, tmp_path, capsys):
    assert main(["plan", str(root), "--out", str(tmp_path / "p.json"), "--target", "web-base"]) == 1
    err = capsys.readouterr().err
    assert "cannot be combined with --target" in err
    (hint,) = [line for line in err.splitlines() if line.startswith("hint: ")]
    assert "max_deletions" not in hint and "--target" in hint, hint


def test_a_saved_plan_with_max_deletions_hints_at_the_setting(root, tmp_path, capsys):
    assert main(["plan", str(root), "--out", str(tmp_path / "p.json"), "--max-deletions", "3"]) == 1
    (hint,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hint: ")]
    assert "settings.max_deletions" in hint and "--target" not in hint, hint


def test_the_commands_printed_with_a_saved_plan_quote_its_path(root, tmp_path, capsys):
    folder = tmp_path / "my plans"
    folder.mkdir()
    plan_file = folder / "plan; rm -rf x\x1b[2J.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    err = capsys.readouterr().err
    quoted = f"'{folder}/plan; rm -rf x\\x1b[2J.json'"
    assert f"apply it with: reconciler apply --plan {quoted} (it runs" in err, err
    # A journal beside the plan says it was partly applied: the hint to resume quotes the path too.
    journal = plan_file.with_name(plan_file.name + ".progress.json")
    journal.write_text(json.dumps({"done": ["update:web-base:KR1"], "made": {}}))
    assert main(["apply", str(root), "--plan", str(plan_file), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert f"hint: finish it with: reconciler apply --plan {quoted} --resume" in err, err
    assert "\x1b" not in err
