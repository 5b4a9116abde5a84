"""The docs keep up with the code: every refusal and warning code the planner can emit is listed in
docs/plan-format.md, every output format is named in its usage line, and the examples' READMEs show the
output the tool really prints. A code added without its documentation fails here, not in a review."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from reconciler.cli import build_parser, main

REPO = Path(__file__).resolve().parent.parent
PLAN_FORMAT = (REPO / "docs" / "plan-format.md").read_text(encoding="utf-8")


def emitted_codes(method: str) -> set[str]:
    """The first argument of every `ctx.<method>("code", ...)` call in the planner's modules."""
    modules = sorted((REPO / "reconciler" / "planner").glob("*.py"))
    assert len(modules) > 5, "the planner is a package of concern modules"
    codes = set()
    nodes = (node for module in modules for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))))
    for node in nodes:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            codes.add(node.args[0].value)
    return codes


def documented_codes(heading: str) -> set[str]:
    """The backticked words of the paragraph that starts with `heading` ("Refusal codes:")."""
    paragraph = PLAN_FORMAT.split(heading, 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z0-9_]+)`", paragraph))


@pytest.mark.parametrize(("method", "heading"), [("refuse", "Refusal codes:"), ("warn", "Warning codes:")])
def test_every_code_the_planner_emits_is_documented(method, heading):
    emitted = emitted_codes(method)
    assert len(emitted) >= 5, "the planner's calls were not found: has its shape changed?"
    assert sorted(emitted - documented_codes(heading)) == []


def test_the_usage_line_names_every_output_format():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command" or a.choices)
    plan = subparsers.choices["plan"]
    formats = next(a for a in plan._actions if a.dest == "format").choices
    usage = PLAN_FORMAT.split("\n\n", 2)[1]
    assert f"[--format {'|'.join(formats)}]" in usage


def test_the_simulator_doc_does_not_say_plan_and_apply_are_to_come():
    text = (REPO / "docs" / "simulator.md").read_text(encoding="utf-8")
    assert "still to come" not in text and "No such command exists" not in text


def test_the_retire_protected_readme_shows_the_refusal_as_printed(tmp_path, capsys, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    example = REPO / "examples" / "retire-protected"
    shown = re.search(r"would have refused:\n\n```\n(.*?)```", (example / "README.md").read_text(), re.S).group(1)
    root = tmp_path / "root"
    shutil.copytree(example, root, ignore=shutil.ignore_patterns(".reconciler"))
    (root / "images" / "old-gold.yaml").unlink()
    assert main(["plan", str(root), "--no-color"]) == 3
    printed = capsys.readouterr().out
    for line in shown.splitlines():
        assert line in printed.splitlines()
