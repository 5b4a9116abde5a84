"""The planner's shape is checked, not promised: a package of concern modules, none over 400 lines, which
never import each other (they meet in the context and the driver's order), over infrastructure modules that
import no concern (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler" / "planner"
CONCERNS = {
    "identity", "temporary", "imaging", "fields", "copies", "sharing", "protection", "removals", "deletion", "guards", "in_use",
    "families", "acceptance", "uploads",
}  # fmt: skip
INFRASTRUCTURE = {"context", "graph", "patching", "field_table", "download_flag", "usage"}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def package_imports(path: Path) -> set[str]:
    """The planner modules `path` imports (`from . import x`, `from .x import y`, `reconciler.planner.x`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found.update([node.module] if node.module else [alias.name for alias in node.names])
            elif node.module and node.module.startswith("reconciler.planner."):
                found.add(node.module.removeprefix("reconciler.planner.").split(".")[0])
    return found


def test_every_module_is_a_concern_or_infrastructure():
    names = {path.stem for path in modules()} - {"__init__"}
    assert names == CONCERNS | INFRASTRUCTURE, "a new planner module: add it to CONCERNS or INFRASTRUCTURE"


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split the concern"


@pytest.mark.parametrize("path", [p for p in modules() if p.stem in CONCERNS], ids=lambda p: p.name)
def test_concerns_never_import_each_other(path):
    assert package_imports(path) & CONCERNS == set()


@pytest.mark.parametrize("path", [p for p in modules() if p.stem in INFRASTRUCTURE], ids=lambda p: p.name)
def test_infrastructure_imports_no_concern(path):
    assert package_imports(path) & CONCERNS == set()
