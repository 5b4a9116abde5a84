"""The Markdown rendering keeps its size budget whatever the plan holds (issues 17 and 19). The comment uses at
most 95% of --max-chars (the rest is the CI recipe's wrapper's). The verdict, one line per risky change
(delete, unshare, unprotect, instance stop) and every refusal with its hint are never cut; the rest goes in
order: the detail blocks, then the warnings (counted by code), then the other changes' short lines (counted
by kind). A closing line says what went; a comment whose never-cut part is over the budget says so. Plans
are generated here: no server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS
from reconciler.render.markdown import render_markdown

GITHUB_LIMIT = 65_536
CAUTION = "> [!CAUTION]"
CLOSING = "_Left out to stay under "


def action(kind: str, key: str, number: int, region: str = "KR1") -> dict[str, Any]:
    return {
        "id": f"{kind}:{key}:{region}:{number}",
        "kind": kind,
        "key": key,
        "region": region,
        "image_id": None if kind == "create" else f"00000000-0000-4000-8000-{number:012d}",
        "name": f"{key}-2026-{number}",
        "member": f"{number:032x}",
        "server": f"10000000-0000-4000-8000-{number:012d}",
        "server_name": f"web-golden-{number:02d}",
        "flavor": "m2.c4m8",
        "root_device": "volume",
        "running": True,
        "temporary_name": f"{key}-2026-{number}~rc-0123456789abcdef",
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


WARNING_CODES = ("running_instance", "linux_machine_id")  # what a create from a running Linux instance warns


def plan(
    *,
    unshares: int = 0,
    deletes: int = 0,
    unprotects: int = 0,
    stops: int = 0,
    creates: int = 0,
    updates: int = 0,
    refusals: int = 0,
    warnings: int = 0,
    partial: bool = False,
) -> dict[str, Any]:
    """A plan document: one image (`web-base`) losing `unshares` members, and the rest one per key, in two
    regions. Warnings alternate between two codes."""
    actions = [action("unshare", "web-base", n) for n in range(unshares)]
    for kind, count in (
        ("delete", deletes),
        ("unprotect", unprotects),
        ("stop_instance", stops),
        ("create", creates),
        ("update", updates),
    ):
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
        "warnings": [said(WARNING_CODES[n % 2], n) for n in range(warnings)],
        "info": info,
        "summary": {"actions": counts, "refusals": refusals, "warnings": warnings},
    }


def the_issue_plan(**more: int) -> dict[str, Any]:
    """Issue 19's plan: 450 images created from running instances, each warned twice (900 warnings)."""
    return plan(creates=450, warnings=900, **more)


def assert_essentials(markdown: str, document: dict[str, Any]) -> None:
    lines = markdown.splitlines()
    assert lines[0].startswith("#### reconciler plan · set web-platform")
    assert re.match(r"\*\*(Cannot be applied|Review the risky changes|Safe to apply|No changes)\*\*: ", lines[2])
    assert markdown.endswith("\n\nNothing was changed.\n")
    assert markdown.count("<details>") == markdown.count("</details>")  # never cut inside a block


def within_budget(markdown: str, max_chars: int) -> bool:
    return len(markdown) <= 0.95 * max_chars and CAUTION not in markdown


def risky_lines(document: dict[str, Any]) -> list[str]:
    """The start of the banner line each risky action must keep, reasons aside."""
    starts = []
    for item in document["actions"]:
        where = f"of `{item['key']}` in {item['region']}"
        if item["kind"] == "unshare":
            starts.append(f"> - unshare the share with `{item['member']}` of image `{item['name']}` {where}")
        elif item["kind"] == "stop_instance":
            starts.append(f"> - stop_instance instance `{item['server_name']}` {where}")
        elif item["kind"] in ("delete", "unprotect"):
            starts.append(f"> - {item['kind']} image `{item['name']}` {where}")
    return starts


def assert_never_cut(markdown: str, document: dict[str, Any]) -> None:
    lines = markdown.splitlines()
    for start in risky_lines(document):
        assert sum(line.startswith(start) for line in lines) == 1, start
    for refusal in document["refusals"]:
        assert sum(line.startswith(f"- **protected_undeclared** `{refusal['key']}` KR1: ") for line in lines) == 1
        assert f"  - hint: do what the message says for {refusal['key']}, then plan again" in lines


BUDGETS = [MIN_MAX_CHARS, 3_000, 5_000, 12_345, 30_000, DEFAULT_MAX_CHARS]


@pytest.mark.parametrize("max_chars", BUDGETS)
def test_450_creates_and_900_warnings_fit_95_percent_of_every_budget(max_chars):
    # Issue 19: 131,514 characters, with or without --max-chars 3000.
    document = the_issue_plan(deletes=3, refusals=2)
    markdown = render_markdown(document, max_chars=max_chars)
    assert within_budget(markdown, max_chars), len(markdown)
    assert_essentials(markdown, document)
    assert_never_cut(markdown, document)
    assert CLOSING in markdown


def test_the_default_budget_leaves_the_wrapper_room_under_githubs_limit():
    assert DEFAULT_MAX_CHARS < GITHUB_LIMIT
    markdown = render_markdown(the_issue_plan())
    assert len(markdown) <= 0.95 * DEFAULT_MAX_CHARS
    assert "_Left out to stay under 57,000 characters (95% of --max-chars 60,000;" in markdown


def test_at_3000_characters_the_warnings_and_the_creates_are_counted():
    markdown = render_markdown(the_issue_plan(), max_chars=3_000)
    assert "- 900 warnings: 450 linux_machine_id, 450 running_instance" in markdown
    listed = markdown.count("- `+ create` `create-")
    assert 0 < listed < 450  # the first ones are listed, the rest counted by kind
    assert f"- … and {450 - listed} more: {450 - listed} to create" in markdown
    assert "<details>" not in markdown
    assert (
        "_Left out to stay under 2,850 characters (95% of --max-chars 3,000; the rest is room for the CI job's "
        f"wrapper): 450 of 450 detail blocks, 900 of 900 warnings and {450 - listed} of 450 other changes. The "
        "saved plan (`reconciler plan --out`) and `reconciler plan --format text` show everything._"
    ) in markdown


def shown(markdown: str) -> dict[str, int]:
    """What a comment of the_issue_plan() shows of what can be cut."""
    return {
        "blocks": markdown.count("<details>"),
        "warnings": len(re.findall(r"^- (running_instance|linux_machine_id) `", markdown, re.M)),
        "warnings counted": len(
            re.findall(r"^- (… and [\d,]+ more|[\d,]+ warnings): [\d,]+ (running|linux)", markdown, re.M)
        ),
        "other lines": markdown.count("- `+ create` `"),
        "others counted": len(
            re.findall(r"^- (… and [\d,]+ more|[\d,]+ other changes): [\d,]+ to create", markdown, re.M)
        ),
    }


@pytest.mark.parametrize("max_chars", range(MIN_MAX_CHARS, 300_001, 7_919))
def test_what_goes_goes_in_order_blocks_then_warnings_then_other_changes(max_chars):
    markdown = render_markdown(the_issue_plan(), max_chars=max_chars)
    assert within_budget(markdown, max_chars)
    seen = shown(markdown)
    block_lines = 450 - seen["other lines"]  # a create is listed in its block or on a line of its own
    if seen["blocks"]:
        assert seen["warnings"] == 900 and not seen["warnings counted"]
        assert seen["blocks"] == block_lines and not seen["others counted"]
    if seen["others counted"]:
        assert seen["blocks"] == 0 and seen["warnings"] == 0 and seen["warnings counted"]
    elif seen["warnings counted"]:
        assert seen["blocks"] == 0 and seen["other lines"] == 450
    if CLOSING not in markdown:  # nothing was cut: the whole plan, as it always was
        assert seen == {"blocks": 450, "warnings": 900, "warnings counted": 0, "other lines": 0, "others counted": 0}


def test_each_stage_of_the_cut_is_reached():
    stages = set()
    for max_chars in range(MIN_MAX_CHARS, 300_001, 15_000):
        seen = shown(render_markdown(the_issue_plan(), max_chars=max_chars))
        stages.add(
            "whole" if seen["blocks"] == 450 else
            "some blocks" if seen["blocks"] else
            "warnings counted" if not seen["others counted"] else
            "others counted"
        )  # fmt: skip
    assert stages == {"whole", "some blocks", "warnings counted", "others counted"}


@pytest.mark.parametrize("max_chars", [MIN_MAX_CHARS, 3_000])
def test_every_risky_line_and_every_refusal_hint_survive_a_tiny_budget(max_chars):
    document = the_issue_plan(deletes=40, unprotects=40, unshares=40, stops=5, refusals=30)
    markdown = render_markdown(document, max_chars=max_chars)
    assert_never_cut(markdown, document)
    assert "**Cannot be applied**: 575 actions, 40 deletions, 40 unshares, 40 unprotects, 5 instance stops" in markdown


@pytest.mark.parametrize("max_chars", BUDGETS)
@pytest.mark.parametrize(
    "counts",
    [
        {"unshares": 3, "deletes": 2, "refusals": 1},
        {"deletes": 2, "unprotects": 1, "stops": 1, "refusals": 1, "warnings": 700, "updates": 300},
        {"refusals": 4, "creates": 450, "warnings": 900},
        {"updates": 400, "partial": True},
        {},
    ],
    ids=["few", "everything", "refusals", "updates", "empty"],
)
def test_the_output_stays_within_95_percent_when_what_must_stay_fits(max_chars, counts):
    document = plan(**counts)
    markdown = render_markdown(document, max_chars=max_chars)
    assert within_budget(markdown, max_chars), len(markdown)
    assert_essentials(markdown, document)
    assert_never_cut(markdown, document)


@pytest.mark.parametrize("max_chars", BUDGETS)
@pytest.mark.parametrize(
    "counts",
    [
        {"unshares": 300, "deletes": 40, "unprotects": 40, "stops": 5, "refusals": 60, "warnings": 80},
        {"refusals": 500},
        {"unshares": 1_000, "creates": 450, "warnings": 900},
    ],
    ids=["everything", "refusals", "unshares"],
)
def test_the_output_either_fits_or_says_it_does_not(max_chars, counts):
    document = plan(**counts)
    markdown = render_markdown(document, max_chars=max_chars)
    assert_essentials(markdown, document)
    assert_never_cut(markdown, document)
    if len(markdown) > 0.95 * max_chars:
        assert f"> This comment is {len(markdown):,} characters long, over its budget of " in markdown
    else:
        assert CAUTION not in markdown


def test_over_the_budget_the_comment_says_so_and_keeps_only_what_must_stay():
    document = plan(unshares=300, refusals=2, creates=20, warnings=40)
    markdown = render_markdown(document, max_chars=MIN_MAX_CHARS)
    lines = markdown.splitlines()
    assert lines[2] == "**Cannot be applied**: 320 actions, 300 unshares, 2 refused"
    assert lines[4:6] == [
        CAUTION,
        f"> This comment is {len(markdown):,} characters long, over its budget of 1,900 (95% of --max-chars "
        "2,000): it lists every risky change and every refusal, which are never cut, and leaves out everything "
        "else (see the end).",
    ]
    assert_never_cut(markdown, document)
    # As short as it can be: no table, warning, other change or detail block, and no reason on the banner.
    for gone in ("| region |", "### Warnings", "### Other changes", "<details>", "planned for web-base"):
        assert gone not in markdown
    assert (
        "_Left out to come as close as it can to 1,900 characters (95% of --max-chars 2,000; the rest is room for "
        "the CI job's wrapper): the table, the reasons of the risky changes, 21 of 21 detail blocks, 40 of 40 "
        "warnings and 20 of 20 other changes. The saved plan (`reconciler plan --out`) and `reconciler plan "
        "--format text` show everything._"
    ) in markdown


def test_reasons_go_before_the_table_and_the_counts():
    # The review's case of issue 17: one image with 400 accepted members and `share: []`.
    document = plan(unshares=400, warnings=10)
    markdown = render_markdown(document)
    assert within_budget(markdown, DEFAULT_MAX_CHARS)
    assert_never_cut(markdown, document)
    assert "planned for web-base" not in markdown  # no reason on the banner's lines
    assert "| region | unshare |" in markdown and "- 10 warnings: 5 linux_machine_id, 5 running_instance" in markdown
    assert "the reasons of the risky changes" in markdown


def test_a_plan_that_fits_is_shown_whole():
    document = plan(unshares=3, deletes=2, refusals=2, warnings=2, creates=2)
    markdown = render_markdown(document)
    assert CLOSING not in markdown and CAUTION not in markdown and "… and" not in markdown
    assert "### Other changes" not in markdown
    assert markdown.count("<details>") == 6  # one block per key (web-base, 2 deletes, 2 creates) and the graph
    assert markdown.count("- running_instance `") == 1 and markdown.count("- linux_machine_id `") == 1


def test_the_minimum_budget_holds_a_plan_with_nothing_that_must_stay():
    # MIN_MAX_CHARS means something: every plan without risky changes or refusals fits 95% of it.
    document = plan(creates=450, updates=450, warnings=900, partial=True)
    document["info"]["partial"]["description"] = "only " + ", ".join(f"key-{n}" for n in range(2_000))
    for region in ("KR2", "JP2", "US1", "US2"):
        document["actions"].append(action("copy", "web-base", 1, region=region) | {"source_region": "KR1", "bytes": 1})
    document["summary"]["actions"]["copy"] = 4
    markdown = render_markdown(document, max_chars=MIN_MAX_CHARS)
    assert within_budget(markdown, MIN_MAX_CHARS), len(markdown)
    assert "> Partial plan (only key-0, key-1," in markdown
    assert_essentials(markdown, document)


@pytest.mark.parametrize("max_chars", [0, 1_000, MIN_MAX_CHARS - 1])
def test_a_budget_below_the_minimum_is_refused(max_chars):
    with pytest.raises(ValueError, match=f"at least {MIN_MAX_CHARS:,}"):
        render_markdown(plan(updates=1), max_chars=max_chars)


def test_the_minimum_budget_is_accepted():
    assert within_budget(render_markdown(plan(updates=1), max_chars=MIN_MAX_CHARS), MIN_MAX_CHARS)
