"""cli.py stays the edge it says it is (issue 20): it parses arguments, wires the commands' steps together,
prints and maps errors to exit codes. The rules it once held (which keys a scope may name, what a saved
plan must satisfy, the journal of an apply, the progress lines) live in reconciler.scope,
reconciler.saved_plan, reconciler.plan_match and reconciler.render.progress, each tested there with plain
data. These checks fail if a rule grows back into cli.py."""

from __future__ import annotations

import ast
from pathlib import Path

import reconciler

CLI = Path(reconciler.__file__).parent / "cli.py"

# About 800 lines after the rules left it (the parser alone is some 250): room for a flag or two, not for
# another rule. Before the move it was 906.
MAX_LINES = 820

# Modules whose business is the plan's content: a command that imports one is deciding something about
# actions, images or markers itself instead of calling the module that owns the rule.
RULE_MODULES = frozenset(
    {
        "reconciler.markers",
        "reconciler.plan",
        "reconciler.plan_kinds",
        "reconciler.plan_match",
        "reconciler.plan_codec",
        "reconciler.ownership",
        "reconciler.live",
        "reconciler.cloud.records",
    }
)

# Fields of an action, an image or a plan's vocabulary that only a rule reads (apply's report, a claim or
# an error are read for printing, through other names).
RULE_FIELDS = frozenset({"kind", "properties", "changes", "expects", "depends_on", "compensates", "makes_image"})


def _tree() -> ast.Module:
    return ast.parse(CLI.read_text(encoding="utf-8"))


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module an import in `tree` names, at any depth (cli.py imports inside each command)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from reconciler import markers`
    return names


def read_fields(tree: ast.Module) -> set[str]:
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def test_cli_stays_small():
    lines = len(CLI.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"cli.py has {lines} lines (at most {MAX_LINES}): move the rule into its module"


def test_cli_imports_no_rule_module():
    assert imported_modules(_tree()) & RULE_MODULES == set()


def test_cli_reads_no_field_only_a_rule_reads():
    assert read_fields(_tree()) & RULE_FIELDS == set()


def test_the_checks_see_a_rule():
    # The same checks on a function that decides something about live images find it: they can fail.
    rule = ast.parse(
        "def known(images):\n"
        "    from reconciler import markers\n"
        "    return {i.properties.get(markers.KEY) for i in images}\n"
    )
    assert "reconciler.markers" in imported_modules(rule) & RULE_MODULES
    assert read_fields(rule) & RULE_FIELDS == {"properties"}
