"""The `reconciler-plans` document of a run over several roots (issue 21): one item per root in the order
given (the plan with `root` first, or the error), a summary adding the roots up, the inverse for a saved
file read back, and its schema (which checks each planned root against the plan schema). Pure: no server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import roots_document
from reconciler.plan_kinds import ACTION_KINDS
from reconciler.render.json import render_json

CASES = Path(__file__).resolve().parent.parent / "cases"
ROOTS_CASES = Path(__file__).resolve().parent.parent / "roots_cases"


def golden_plan(case: str) -> dict[str, Any]:
    return json.loads((CASES / case / "plan.json").read_text(encoding="utf-8"))


def errored(root: str = "teams/broken", target: str | None = "set web · SIMULATOR state s.json · project p1 · KR1"):
    return {"root": root, "target": target, "error": {"message": "no such project", "hint": None, "details": []}}


def sample_entries() -> list[dict[str, Any]]:
    return [
        {"root": "teams/platform", "plan": golden_plan("delete-unprotected")},
        errored(),
        {"root": "teams/apps", "plan": golden_plan("copies-two-regions")},
        {"root": "teams/refused", "plan": golden_plan("delete-protected-refused")},
    ]


def test_the_document_names_its_format_and_keeps_the_roots_in_order():
    document = roots_document.document(sample_entries())
    assert (document["format"], document["format_version"]) == ("reconciler-plans", "1")
    assert roots_document.FORMAT == "reconciler-plans" and roots_document.FORMAT_VERSION == "1"
    assert [item["root"] for item in document["roots"]] == [
        "teams/platform",
        "teams/broken",
        "teams/apps",
        "teams/refused",
    ]
    first = document["roots"][0]
    assert next(iter(first)) == "root", "the root comes first in a planned item"
    assert {k: v for k, v in first.items() if k != "root"} == golden_plan("delete-unprotected")
    assert document["roots"][1] == errored()


def test_the_summary_adds_the_roots_up():
    summary = roots_document.document(sample_entries())["summary"]
    assert summary == {
        "roots": 4,
        "planned": 3,
        "errors": 1,
        "refusals": 1,
        "warnings": 0,
        "actions": {"copy": 2, "update": 2, "delete": 1},
        "changes": True,
    }
    assert list(summary["actions"]) == [k for k in ACTION_KINDS if k in summary["actions"]], "in the kinds' order"


def test_a_run_without_actions_has_no_changes_even_with_a_refusal():
    entries = [
        {"root": "a", "plan": golden_plan("no-changes")},
        {"root": "b", "plan": golden_plan("delete-protected-refused")},
    ]
    summary = roots_document.document(entries)["summary"]
    assert summary["changes"] is False and summary["actions"] == {} and summary["refusals"] == 1


def test_a_saved_plan_keeps_its_saved_section():
    plan = {**golden_plan("share"), "saved": {"target": {"kind": "simulator", "project": "p"}, "tool": {}}}
    document = roots_document.document([{"root": "a", "plan": plan}, errored()])
    assert document["roots"][0]["saved"] == plan["saved"]
    assert roots_document.entries(document)[0]["plan"] == plan


def test_entries_read_the_document_back():
    entries = sample_entries()
    assert roots_document.entries(roots_document.document(entries)) == entries
    # ... through its JSON text too, as a saved file is read.
    text = render_json(roots_document.document(entries))
    assert roots_document.entries(json.loads(text)) == entries


def test_the_document_and_every_golden_run_match_the_schema():
    assert roots_document.validate(roots_document.document(sample_entries())) == []
    goldens = sorted(ROOTS_CASES.glob("*/plans.json"))
    assert goldens
    for path in goldens:
        assert roots_document.validate(json.loads(path.read_text(encoding="utf-8"))) == [], path


def broken(change) -> list[str]:
    document = copy.deepcopy(roots_document.document(sample_entries()))
    change(document)
    return roots_document.validate(document)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["roots"][0].pop("root"), "roots/0: 'root' is a required property"),
        (lambda d: d["roots"][1]["error"].pop("message"), "roots/1/error: 'message' is a required property"),
        (lambda d: d["roots"][1].pop("target"), "roots/1: 'target' is a required property"),
        (lambda d: d.update(format="reconciler-plan"), "format: 'reconciler-plans' was expected"),
        (lambda d: d.update(format_version="2"), "format_version: '1' was expected"),
        (lambda d: d["roots"][2]["actions"][0].update(kind="zap"), "roots/2/actions/0/kind: 'zap' is not one of"),
        (lambda d: d["roots"][0].pop("summary"), "roots/0: 'summary' is a required property"),
        (lambda d: d.update(roots=[]), "roots: [] should be non-empty"),
        (lambda d: d["summary"].pop("changes"), "summary: 'changes' is a required property"),
        (lambda d: d["summary"]["actions"].update(zap=1), "summary/actions: 'zap' is not one of"),
        (lambda d: d["roots"][1]["error"].update(details="x"), "roots/1/error/details: 'x' is not of type 'array'"),
    ],
)
def test_the_schema_refuses_a_broken_document_and_says_where(change, expected):
    problems = broken(change)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_document_that_is_not_an_object_is_refused_at_the_top():
    assert roots_document.validate([]) == ["(document): [] is not of type 'object'"]


def test_problems_are_escaped_and_short():
    hostile = "\x1b[2J" + "x" * 1000
    problems = broken(lambda d: d["roots"][2]["actions"][0].update(kind=hostile))
    assert problems and all("\x1b" not in p and len(p) < 300 for p in problems)
