"""The rules of `plan --out` and `apply --plan` (reconciler.saved_plan), each called with plain data: a
saved document as a dict, a journal in a temporary folder, actions built here. No command line, no
simulator (tests/test_saved_plans.py runs the same rules through the command line)."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import pytest

from reconciler.errors import UsageError
from reconciler.plan import Action, Change, Reason
from reconciler.plan_codec import action_to_json
from reconciler.saved_plan import (
    Journal,
    StalePlanError,
    apply_command,
    check_fresh,
    check_not_partly_applied,
    check_set,
    refuse_narrowing,
)

SET = "web-platform"
HOME = "00000000-0000-4000-8000-000000000011"
PLAN = Path("plans/plan.json")
RENAME = Action(
    id="update:web:KR1",
    kind="update",
    key="web",
    region="KR1",
    reason=Reason("field_changed", "the name differs", "images/web.yaml:3"),
    image_id=HOME,
    changes=MappingProxyType({"name": Change("web", "web-base")}),
    expects=MappingProxyType({f"KR1/{HOME}": {"status": "active"}}),
)


# -- saved plans are whole -------------------------------------------------------------------------


def test_a_whole_plan_passes():
    refuse_narrowing("plan --out", targets=[], excludes=[], max_deletions=None)


@pytest.mark.parametrize(
    ("scope", "flags", "hint"),
    [
        ({"targets": ["web"]}, "--target", "save a plan of the whole root"),
        ({"excludes": ["web"]}, "--exclude", "save a plan of the whole root"),
        ({"max_deletions": 0}, "--max-deletions", "raise settings.max_deletions"),  # 0 is given too
        ({"targets": ["a"], "max_deletions": 9}, "--target, --max-deletions", "; to allow more deletions"),
    ],
)
def test_a_narrowed_plan_is_refused_naming_each_flag(scope, flags, hint):
    given = {"targets": [], "excludes": [], "max_deletions": None, **scope}
    with pytest.raises(UsageError) as raised:
        refuse_narrowing("apply --plan", **given)
    assert raised.value.message == f"apply --plan cannot be combined with {flags}: saved plans cover the whole root"
    assert hint in raised.value.hint


# -- the command to copy ----------------------------------------------------------------------------


def test_the_command_to_apply_or_resume_quotes_and_escapes_the_path():
    assert apply_command(PLAN) == "reconciler apply --plan plans/plan.json"
    assert apply_command(Path("my plan;rm x")) == "reconciler apply --plan 'my plan;rm x'"
    assert apply_command(PLAN, resume=True) == "reconciler apply --plan plans/plan.json --resume"
    assert "\x1b" not in apply_command(Path("p\x1b[2Jlan.json"))


def test_the_command_names_the_roots_of_a_run_of_several_and_keeps_paths_from_reading_as_options():
    assert apply_command(PLAN, roots=["a", "b c"]) == "reconciler apply --plan plans/plan.json a 'b c'"
    assert apply_command(Path("-p.json"), roots=["-dash"], resume=True) == (
        "reconciler apply --plan ./-p.json ./-dash --resume"
    )


# -- set, partial applies, the fresh plan -----------------------------------------------------------


def test_a_plan_for_another_set_is_refused():
    check_set({"set": SET}, SET, PLAN)
    with pytest.raises(StalePlanError, match=r"was saved for set 'db', this root is set 'web-platform'"):
        check_set({"set": "db"}, SET, PLAN)


def test_a_partly_applied_plan_needs_resume(tmp_path):
    journal = Journal(tmp_path / "plan.json.progress.json", done=["update:web:KR1", "share:web:KR1:p"])
    check_not_partly_applied(journal, PLAN, resume=True)
    check_not_partly_applied(Journal(tmp_path / "none"), PLAN, resume=False)
    with pytest.raises(UsageError) as raised:
        check_not_partly_applied(journal, PLAN, resume=False)
    assert raised.value.message == "plans/plan.json was partly applied already (2 actions done)"
    assert raised.value.hint == "finish it with: reconciler apply --plan plans/plan.json --resume"


def test_a_fresh_plan_that_says_the_same_runs():
    result = check_fresh({"actions": [action_to_json(RENAME)]}, PLAN, [RENAME], [], SET, resume=False)
    assert result.ok and result.matched == {RENAME.id: RENAME.id}


def test_a_fresh_plan_that_differs_is_refused_naming_each_difference():
    saved = action_to_json(RENAME)
    saved["changes"]["name"]["after"] = "web-evil"
    with pytest.raises(StalePlanError) as raised:
        check_fresh({"actions": [saved]}, PLAN, [RENAME], [], SET, resume=False)
    assert raised.value.message == (
        "the plan made now differs from the saved plan plans/plan.json in 1 place(s): nothing was applied"
    )
    assert raised.value.details[0] == "differences (saved vs now):"
    assert "web-evil" in raised.value.details[1] and "web-base" in raised.value.details[1]


def test_resume_reports_what_the_fresh_plan_no_longer_has_as_done():
    result = check_fresh({"actions": [action_to_json(RENAME)]}, PLAN, [], [], SET, resume=True)
    assert result.already_done == (RENAME.id,)
    with pytest.raises(StalePlanError):
        check_fresh({"actions": [action_to_json(RENAME)]}, PLAN, [], [], SET, resume=False)


# -- the journal ------------------------------------------------------------------------------------


def test_the_journal_records_each_action_done_and_the_image_a_create_made(tmp_path):
    journal = Journal(tmp_path / "plan.json.progress.json")
    seen = []
    progress = journal.recording(lambda *event: seen.append(event[0]))
    create = SimpleNamespace(id="create:web:KR1", kind="create")
    update = SimpleNamespace(id="update:db:KR1", kind="update")
    progress("start", create, None)
    progress("end", create, SimpleNamespace(status="done", image_id="new-image"))
    progress("end", update, SimpleNamespace(status="done", image_id=HOME))  # acts on an image, makes none
    progress("end", SimpleNamespace(id="delete:x:KR1", kind="delete"), SimpleNamespace(status="failed", image_id=None))
    assert seen == ["start", "end", "end", "end"]  # the printer sees every event
    assert journal.done == ["create:web:KR1", "update:db:KR1"]
    assert json.loads(journal.path.read_text()) == {
        "done": ["create:web:KR1", "update:db:KR1"],
        "made": {"create:web:KR1": "new-image"},
    }
    journal.discard()
    assert not journal.path.exists()
    journal.discard()  # twice is fine


@pytest.mark.parametrize(
    ("done_before", "statuses", "resumable"),
    [
        ([], ["failed", "skipped"], False),  # nothing of the plan is done: apply it again as a whole
        ([], ["done", "failed"], True),
        (["update:web:KR1"], ["failed"], True),  # done by an earlier run
    ],
)
def test_a_resume_is_offered_once_some_action_is_done(tmp_path, done_before, statuses, resumable):
    assert Journal(tmp_path / "j", done=done_before).resumable(iter(statuses)) is resumable
