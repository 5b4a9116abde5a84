"""The Markdown rendering keeps its size budget whatever the plan holds (issue 17): the must-keep parts (the
banner, the refusals, the warnings) are cut to their first items when they do not fit whole, and the
verdict, the table and the summary are always there. Plans are generated here: no server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS
from reconciler.render.markdown import render_markdown

PARTNER = "8989447062e04a818baf9e073fd04fa7"
GITHUB_LIMIT = 65_536


def action(kind: str, key: str, number: int, region: str = "KR1") -> dict[str, Any]:
    return {
        "id": f"{kind}:{key}:{region}:{number}",
        "kind": kind,
        "key": key,
        "region": region,
        "image_id": f"00000000-0000-4000-8000-{number:012d}",
        "name": f"{key}-2026-{number}",
        "member": f"{number:032x}",
        "server_name": f"web-golden-{number:02d}",
        "changes": {},
        "expects": {},
        "reason": {
            "code": kind,
            "message": f"{kind} planned for {key} number {number}: the manifest no longer lists it",
            "source": f"images/web.yaml:{number}",
        },
        "depends_on": [],
    }


def said(code: str, number: int, *, hint: bool = False) -> dict[str, Any]:
    item = {
        "code": code,
        "key": f"image-{number}",
        "region": "KR1",
        "message": f"image-{number} is in a state this plan cannot change on its own ({code} {number})",
        "source": f"images/web.yaml:{number}",
    }
    return {**item, "hint": f"do what the message says for image-{number}, then plan again"} if hint else item


def plan(
    *,
    unshares: int = 0,
    deletes: int = 0,
    unprotects: int = 0,
    stops: int = 0,
    updates: int = 0,
    refusals: int = 0,
    warnings: int = 0,
    partial: bool = False,
) -> dict[str, Any]:
    """A plan document: one image (`web-base`) losing `unshares` members, and the rest one per key."""
    actions = [action("unshare", "web-base", n) for n in range(unshares)]
    for kind, count in (("delete", deletes), ("unprotect", unprotects), ("stop_instance", stops), ("update", updates)):
        actions += [action(kind, f"{kind}-{n}", n, region=("KR1", "JP1")[n % 2]) for n in range(count)]
    counts: dict[str, int] = {}
    for item in actions:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    info: dict[str, Any] = {"images": 1, "other_sets": 0, "pending_members": [], "this_set": 1, "unmanaged": 0}
    if partial:
        info["partial"] = {"targets": ["web-base"], "excludes": [], "description": "only web-base"}
    return {
        "format_version": "1",
        "set": "web-platform",
        "target": {
            "kind": "simulator",
            "project": "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b",
            "identity": "loopback",
            "regions": ["JP1", "KR1"],
            "state": ".reconciler/sim-state.json",
        },
        "actions": actions,
        "refusals": [said("protected_undeclared", n, hint=True) for n in range(refusals)],
        "warnings": [said("name_in_use", n) for n in range(warnings)],
        "info": info,
        "summary": {"actions": counts, "refusals": refusals, "warnings": warnings},
    }


def more_lines(markdown: str) -> dict[str, int]:
    """What each "… and N more X" line says was left out, by the plural of X."""
    found = re.findall(r"… and ([\d,]+) more ([a-z ]+):", markdown)
    return {what if what.endswith("s") else f"{what}s": int(n.replace(",", "")) for n, what in found}


def assert_essentials(markdown: str, document: dict[str, Any]) -> None:
    lines = markdown.splitlines()
    assert lines[0].startswith("#### reconciler plan · set web-platform")
    assert re.match(r"\*\*(Cannot be applied|Review the risky changes|Safe to apply|No changes)\*\*: ", lines[2])
    if document["actions"]:  # a plan without actions has no table
        assert "| region |" in markdown and "\n| KR1 |" in markdown
    assert markdown.endswith("\n\nNothing was changed.\n")


def test_four_hundred_unshares_fit_the_default_budget_and_github():
    # The review's case: one image with 400 accepted members and `share: []` made a 72,436-character comment.
    document = plan(unshares=400)
    markdown = render_markdown(document)
    assert len(markdown) <= DEFAULT_MAX_CHARS < GITHUB_LIMIT
    assert_essentials(markdown, document)
    assert "**Review the risky changes**: 400 actions, 400 unshares" in markdown
    shown = markdown.count("> - unshare the share with")
    assert shown > 10  # the first ones are named
    assert more_lines(markdown) == {"unshares": 400 - shown}
    assert "`reconciler plan --format text` shows every one" in markdown


@pytest.mark.parametrize("max_chars", [MIN_MAX_CHARS, 2_500, 5_000, 12_345, 30_000, DEFAULT_MAX_CHARS])
@pytest.mark.parametrize(
    "counts",
    [
        {"unshares": 300},
        {"unshares": 300, "deletes": 40, "unprotects": 40, "stops": 5, "refusals": 60, "warnings": 80},
        {"refusals": 500},
        {"warnings": 700, "updates": 50},
        {"updates": 400},
    ],
    ids=["unshares", "everything", "refusals", "warnings", "updates"],
)
def test_the_output_always_fits_and_keeps_the_verdict_and_the_table(max_chars, counts):
    document = plan(**counts)
    markdown = render_markdown(document, max_chars=max_chars)
    assert len(markdown) <= max_chars
    assert_essentials(markdown, document)


@pytest.mark.parametrize("max_chars", [5_000, 20_000])
def test_a_cut_keeps_the_first_items_of_every_list_and_counts_the_rest(max_chars):
    document = plan(unshares=300, deletes=40, unprotects=40, stops=5, refusals=60, warnings=80)
    markdown = render_markdown(document, max_chars=max_chars)
    assert len(markdown) <= max_chars
    for first in (
        "> - unshare the share with `00000000000000000000000000000000`",
        "> - delete image `delete-0-2026-0`",
        "> - unprotect image `unprotect-0-2026-0`",
        "> - stop_instance instance `web-golden-00`",
        "- **protected_undeclared** `image-0` KR1",
        "- name_in_use `image-0` KR1",
    ):
        assert first in markdown
    shown = {
        "unshares": markdown.count("> - unshare the share"),
        "deletions": markdown.count("> - delete image"),
        "unprotects": markdown.count("> - unprotect image"),
        "instance stops": markdown.count("> - stop_instance instance"),
        "refusals": markdown.count("- **protected_undeclared**"),
        "warnings": markdown.count("- name_in_use"),
    }
    total = {"unshares": 300, "deletions": 40, "unprotects": 40, "instance stops": 5, "refusals": 60, "warnings": 80}
    left_out = more_lines(markdown)
    assert {what: shown[what] + left_out.get(what, 0) for what in total} == total
    assert left_out  # something was cut
    assert "detail blocks were left out" in markdown  # and no block fits beside the cut lists


def test_one_left_out_is_said_in_the_singular():
    document = plan(stops=2)
    for stop in document["actions"]:
        stop["reason"]["message"] += " and so on" * 90  # two such lines do not fit in the minimum budget
    markdown = render_markdown(document, max_chars=MIN_MAX_CHARS)
    assert "… and 1 more instance stop: " in markdown
    assert "**Review the risky changes**: 2 actions, 2 instance stops" in markdown


def test_the_note_about_left_out_blocks_tells_the_truth():
    # 300 unshares at 5,000 characters gave 54,563 characters "to stay under 5,000 characters".
    markdown = render_markdown(plan(unshares=300), max_chars=5_000)
    assert "left out to stay under 5,000 characters" in markdown
    assert len(markdown) <= 5_000


def test_a_plan_that_fits_is_not_cut():
    markdown = render_markdown(plan(unshares=3, deletes=2, refusals=2, warnings=2))
    assert "… and" not in markdown
    assert markdown.count("> - unshare") == 3 and markdown.count("> - delete") == 2
    assert "left out" not in markdown


def test_a_refusal_keeps_its_hint_when_kept():
    markdown = render_markdown(plan(refusals=500), max_chars=3_000)
    kept = markdown.count("- **protected_undeclared**")
    assert kept >= 1 and markdown.count("  - hint: do what the message says") == kept
    assert more_lines(markdown) == {"refusals": 500 - kept}


def test_the_partial_note_stays_small_under_any_budget():
    document = plan(unshares=300, partial=True)
    document["info"]["partial"]["description"] = "only " + ", ".join(f"key-{n}" for n in range(2_000))
    markdown = render_markdown(document, max_chars=MIN_MAX_CHARS)
    assert len(markdown) <= MIN_MAX_CHARS
    assert "> Partial plan (only key-0, key-1," in markdown
    assert_essentials(markdown, document)


@pytest.mark.parametrize("max_chars", [0, 1_000, MIN_MAX_CHARS - 1])
def test_a_budget_below_the_minimum_is_refused(max_chars):
    with pytest.raises(ValueError, match=f"at least {MIN_MAX_CHARS:,}"):
        render_markdown(plan(updates=1), max_chars=max_chars)


def test_the_minimum_budget_is_accepted():
    assert len(render_markdown(plan(updates=1), max_chars=MIN_MAX_CHARS)) <= MIN_MAX_CHARS
