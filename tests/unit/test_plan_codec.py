"""The plan's JSON codec (reconciler/plan_codec.py): every golden plan.json reads back into a plan that
writes the same document, byte for byte, and the text and Markdown renderings of the plan read back are
the golden ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.plan import Action, Change, Dependency, Finding, Plan, Reason, Target
from reconciler.plan_codec import action_from_json, action_to_json, plan_from_json, plan_to_json
from reconciler.render.json import render_json

CASES = Path(__file__).resolve().parents[1] / "cases"


def golden_cases() -> list[str]:
    return sorted(p.parent.name for p in CASES.glob("*/plan.json"))


@pytest.mark.parametrize("case", golden_cases())
def test_every_golden_plan_reads_back_to_the_same_bytes(case):
    text = (CASES / case / "plan.json").read_text(encoding="utf-8")
    plan = plan_from_json(json.loads(text))
    assert isinstance(plan, Plan)
    assert render_json(plan_to_json(plan)) == text
    assert plan_to_json(plan) == plan.to_json()


def test_a_read_plan_is_the_plan_written():
    action = Action(
        id="copy:web:JP1",
        kind="copy",
        key="web",
        region="JP1",
        reason=Reason("declared", "copy to JP1", "images/web.yaml:3"),
        changes={"reconciler_key": Change(None, "web")},
        expects={"KR1/<create:web:KR1>": {"status": "active"}},
        depends_on=(Dependency("create:web:KR1", "copies the image it makes"),),
        details={"source_region": "KR1", "bytes": None},
    )
    target = Target("simulator", "p" * 32, "http://127.0.0.1:1/v3", ("KR1", "JP1"), "/tmp/state.json")
    refusal = Finding("max_deletions", "old", "KR1", "too many", "reconciler.yaml:1", "raise it")
    plan = Plan("demo", target, (action,), refusals=(refusal,), info={"images": 1})
    again = plan_from_json(plan_to_json(plan))
    assert again.target == target and again.refusals == (refusal,)
    assert action_to_json(again.actions[0]) == action_to_json(action)
    assert dict(again.actions[0].details) == {"source_region": "KR1", "bytes": None}
    assert plan_to_json(again)["summary"] == {
        "actions": {"copy": 1},
        "refusals": 1,
        "warnings": 0,
        "copy_bytes": 0,
        "copy_bytes_unknown": 1,
    }


def test_a_warnings_hint_is_not_written_and_reads_back_as_none():
    warning = Finding("w", None, None, "read this", None, "a hint")
    document = plan_to_json(Plan("s", Target("nhn", "p", "https://id", ()), (), warnings=(warning,)))
    assert "hint" not in document["warnings"][0]
    assert plan_from_json(document).warnings == (Finding("w", None, None, "read this", None, None),)


def test_what_is_read_is_frozen():
    action = action_from_json(action_to_json(Action("update:web:KR1", "update", "web", "KR1", Reason("c", "m"))))
    with pytest.raises(TypeError):
        action.details["x"] = 1  # type: ignore[index]
