"""The text and Markdown renderings of a run over several roots (issue 21): one verdict on top, one section
per root in the order given, "Nothing was changed." once; the Markdown comment shares one budget (95% of
--max-chars) between the roots, never cutting any root's head and verdict, risky lines, refusals with their
hints, summary or error, and cutting the rest fairly. Plans are built here: no server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.plan_kinds import ACTION_KINDS, RISKY_KINDS
from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, escape, roots
from reconciler.render.markdown import PlanSection, budget_for, head_text, prose, render_markdown
from reconciler.render.roots import render_roots_markdown, render_roots_text, section_heading
from reconciler.render.text import summary_line

CAUTION = "> [!CAUTION]"


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
            "message": f"{kind} planned for {key} number {number}: the manifest no longer lists it or asks for it",
            "source": f"images/web.yaml:{number}",
        },
        "depends_on": [],
    }


def finding(number: int, *, hint: bool) -> dict[str, Any]:
    item = {
        "code": "protected_undeclared" if hint else "running_instance",
        "key": f"image-{number}",
        "region": "KR1",
        "message": f"image-{number} is in a state this plan cannot change on its own ({number})",
        "source": f"images/web.yaml:{number}",
    }
    return {**item, "hint": f"do what the message says for image-{number}, then plan again"} if hint else item


def plan(set_name: str = "web", *, refusals: int = 0, warnings: int = 0, **counts: int) -> dict[str, Any]:
    """A plan document of set `set_name` with `counts[kind]` actions of each kind, one key each."""
    actions = [
        action(kind, f"{set_name}-{kind}-{n}", n, region=("KR1", "JP1")[n % 2])
        for kind in ACTION_KINDS
        for n in range(counts.get(kind, 0))
    ]
    summary_actions = {kind: counts[kind] for kind in ACTION_KINDS if counts.get(kind)}
    return {
        "format_version": "1",
        "set": set_name,
        "target": {
            "kind": "simulator",
            "project": "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b",
            "identity": "loopback",
            "regions": ["JP1", "KR1"],
            "state": ".reconciler/sim-state.json",
        },
        "actions": actions,
        "refusals": [finding(n, hint=True) for n in range(refusals)],
        "warnings": [finding(n, hint=False) for n in range(warnings)],
        "info": {"images": 1, "other_sets": 0, "pending_members": [], "this_set": 1, "unmanaged": 0},
        "summary": {"actions": summary_actions, "refusals": refusals, "warnings": warnings},
    }


def planned(root: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"root": root, "plan": document}


def errored(root: str, message: str = "the project does not exist", **more: Any) -> dict[str, Any]:
    error = {"message": message, "hint": more.get("hint"), "details": more.get("details", [])}
    return {"root": root, "target": more.get("target"), "error": error}


# -- What must stay ---------------------------------------------------------------------------------------


def risky_lines(document: dict[str, Any]) -> list[str]:
    """The start of the banner line each risky action keeps, reasons aside."""
    starts = []
    for item in document["actions"]:
        if item["kind"] in RISKY_KINDS:
            what = f"the share with {escape.code(item['member'])} of image" if item["kind"] == "unshare" else "image"
            if item["kind"] == "stop_instance":
                what = f"instance {escape.code(item['server_name'])}"
                starts.append(f"> - {item['kind']} {what} of {escape.code(item['key'])}")
                continue
            starts.append(f"> - {item['kind']} {what}")
    return starts


def assert_must_stay(markdown: str, entries: list[dict[str, Any]]) -> None:
    for index, entry in enumerate(entries, start=1):
        assert f"#### root {index} of {len(entries)}: {escape.code(entry['root'])}" in markdown
        if "plan" not in entry:
            assert f"**Could not be planned**: {prose(entry['error']['message'])}" in markdown
            if entry["error"]["hint"]:
                assert f"Hint: {prose(entry['error']['hint'])}" in markdown
            continue
        document = entry["plan"]
        assert summary_line(document, show=head_text) in markdown
        for start in risky_lines(document):
            assert start in markdown
        for refusal in document["refusals"]:
            assert prose(refusal["message"]) in markdown
            assert f"  - hint: {prose(refusal['hint'])}" in markdown
    assert markdown.count("<details>") == markdown.count("</details>")
    assert markdown.endswith("\n\nNothing was changed.\n") and markdown.count("Nothing was changed.") == 1


def must_stay_length(markdown: str, entries: list[dict[str, Any]], max_chars: int) -> int:
    """The length of the comment with every root's section at its least (what must stay of it): the run's
    head and table as `markdown` has them (without a caution note), each section's least, the closing."""
    head = markdown[: markdown.index("#### root 1 of")]
    if CAUTION in head:
        note = head[head.index(CAUTION) :]
        head = head.replace(note[: note.index("\n\n") + 2], "")
    sections = [
        roots._section(entry, f"root {i} of {len(entries)}: {escape.code(entry['root'])}", max_chars).least
        for i, entry in enumerate(entries, start=1)
    ]
    return len(head) + sum(length + 1 for length in sections) + len("Nothing was changed.\n")


# -- Text ---------------------------------------------------------------------------------------------------


def test_section_heading_names_the_root_and_its_place():
    assert section_heading(2, 3, "teams/apps") == "== root 2 of 3: teams/apps =="
    assert section_heading(1, 2, "a\x1b[2Jb\n== root 2 of 2: fake ==") == (
        "== root 1 of 2: a\\x1b[2Jb\\x0a== root 2 of 2: fake == =="
    )


def test_text_gives_one_verdict_then_each_root_in_order():
    entries = [planned("teams/platform", plan(delete=1, create=2)), planned("teams/apps", plan("apps"))]
    text = render_roots_text(entries)
    lines = text.splitlines()
    assert lines[0] == "2 roots: 3 actions (1 deletion)."
    assert lines.index("== root 1 of 2: teams/platform ==") < lines.index("== root 2 of 2: teams/apps ==")
    assert "No changes: the cloud matches the manifests." in text
    assert text.endswith("\nNothing was changed.\n") and text.count("Nothing was changed.") == 1
    assert "cannot be applied" not in text.lower()


def test_text_of_a_run_without_changes():
    text = render_roots_text([planned("a", plan()), planned("b", plan("b"))])
    assert text.splitlines()[0] == "2 roots: no changes."


def test_text_says_which_roots_cannot_be_applied_and_shows_errors_escaped():
    entries = [
        planned("teams/platform", plan(refusals=1, warnings=2)),
        errored("teams/x", "bad\x1b[31m", hint="fix\x1b]0;t\x07", details=["  a.yaml:1: \x1b[1mno", "raw line"]),
        planned("teams/apps", plan("apps", update=1)),
    ]
    text = render_roots_text(entries)
    assert text.splitlines()[0] == "3 roots: 1 action, 1 refused, 2 warnings; 1 root could not be planned."
    assert "\x1b" not in text and "\x07" not in text
    section = text[text.index("== root 2 of 3: teams/x ==") :]
    assert section.splitlines()[1:5] == [
        "error: bad\\x1b[31m",
        "  a.yaml:1: \\x1b[1mno",
        "  raw line",
        "hint: fix\\x1b]0;t\\x07",
    ]
    assert text.endswith(
        "Nothing was changed.\nCannot be applied until resolved: teams/platform (refused), teams/x (could not be planned).\n"
    )
    assert "This plan cannot be applied" not in text, "said once for the run, not per root"


def test_text_shows_an_errored_roots_target_when_known():
    text = render_roots_text([errored("a", target="set web · nhn api · project p1 · KR1"), errored("b")])
    assert "== root 1 of 2: a ==\nreconciler plan · set web · nhn api · project p1 · KR1\nerror: " in text
    assert "== root 2 of 2: b ==\nerror: " in text
    assert text.splitlines()[0] == "2 roots: 2 roots could not be planned."


def test_text_for_another_command_leaves_nothing_was_changed_out():
    text = render_roots_text([planned("a", plan(create=1)), planned("b", plan("b"))], command="apply")
    assert "Nothing was changed." not in text


# -- Markdown: the head -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "verdict"),
    [
        ([planned("a", plan()), planned("b", plan("b"))], "**No changes**: 0 actions"),
        ([planned("a", plan(create=2)), planned("b", plan("b"))], "**Safe to apply**: 2 actions"),
        (
            [planned("a", plan(create=1)), planned("b", plan("b", delete=2))],
            "**Review the risky changes**: 3 actions, 2 deletions",
        ),
        (
            [planned("a", plan(delete=1)), planned("b", plan("b", refusals=1))],
            "**Cannot be applied**: 1 action, 1 deletion, 1 refused",
        ),
        ([planned("a", plan(create=1)), errored("b")], "**Cannot be applied**: 1 action, 1 root not planned"),
    ],
)
def test_markdown_gives_one_verdict_for_the_run(entries, verdict):
    markdown = render_roots_markdown(entries, max_chars=DEFAULT_MAX_CHARS)
    lines = markdown.splitlines()
    assert lines[0] == f"### reconciler plan · {len(entries)} roots"
    assert lines[2] == verdict


def test_markdown_lists_the_roots_with_their_own_verdicts():
    entries = [
        planned("teams/a|b", plan(delete=1)),
        errored("teams/c", target="set x · nhn api · project p · KR1"),
        errored("d"),
    ]
    markdown = render_roots_markdown(entries, max_chars=DEFAULT_MAX_CHARS)
    assert "| root | target | verdict |" in markdown
    assert (
        "| `teams/a\\|b` | set web · SIMULATOR state .reconciler/sim-state.json · project 3f0c…6a7b · JP1 KR1 | "
        in markdown
    )
    assert "**Review the risky changes**: 1 action, 1 deletion |" in markdown
    assert "| `teams/c` | set x · nhn api · project p · KR1 | **Could not be planned** |" in markdown
    assert "| `d` | (not validated) | **Could not be planned** |" in markdown


def test_markdown_refuses_a_budget_under_the_floor():
    with pytest.raises(ValueError, match="at least 2,000"):
        render_roots_markdown([planned("a", plan()), planned("b", plan())], max_chars=MIN_MAX_CHARS - 1)


def test_a_section_is_the_single_root_rendering_under_its_root():
    document = plan(delete=2, create=3, warnings=2, refusals=1)
    markdown = render_roots_markdown([planned("a", document), planned("b", plan("b"))], max_chars=DEFAULT_MAX_CHARS)
    single = render_markdown(document)
    body = single.split("\n\n", 1)[1].removesuffix("\n\nNothing was changed.\n")  # after its `#### target` head
    assert body in markdown
    assert render_roots_markdown([planned("a", document), planned("b", plan("b"))], max_chars=DEFAULT_MAX_CHARS).count(
        "<details>"
    ) == single.count("<details>")


# -- Markdown: the shared budget ----------------------------------------------------------------------------


def big_run() -> list[dict[str, Any]]:
    return [
        planned("teams/builders", plan("builders", create=60, update=30, warnings=40)),
        planned("teams/cleanup", plan("cleanup", delete=6, unshare=4, create=20)),
        errored("teams/broken", "token refused <!-- @ops", hint="check the prefix", details=["line"] * 5),
        planned("teams/guarded", plan("guarded", refusals=3, update=25)),
    ]


@pytest.mark.parametrize("max_chars", [12_000, 20_000, 30_000])
def test_many_large_plans_share_a_small_budget(max_chars):
    entries = big_run()
    markdown = render_roots_markdown(entries, max_chars=max_chars)
    assert len(markdown) <= budget_for(max_chars) and CAUTION not in markdown
    assert_must_stay(markdown, entries)
    # Each root that lost something says so in its own closing line.
    assert markdown.count("_Left out to fit this root's share of the comment's") >= 2


def test_a_roots_detail_blocks_go_before_another_roots_risky_line():
    deleting = plan("cleanup", delete=12)
    creating = plan("builders", create=40)
    entries = [planned("teams/builders", creating), planned("teams/cleanup", deleting)]
    markdown = render_roots_markdown(entries, max_chars=9_000)
    assert len(markdown) <= budget_for(9_000) and CAUTION not in markdown
    assert all(start in markdown for start in risky_lines(deleting))
    assert markdown.count("<details><summary><b><code>builders-create-") < 40, "the creating root's blocks went"
    assert "of 40 detail blocks" in markdown  # one per image (no graph over 30 actions), counted where they went


def test_a_root_that_fits_in_a_fair_share_is_shown_whole():
    small = plan("small", create=2)
    entries = [planned("teams/small", small), planned("teams/huge", plan("huge", create=200, warnings=100))]
    markdown = render_roots_markdown(entries, max_chars=20_000)
    assert len(markdown) <= budget_for(20_000)
    small_section = markdown[markdown.index("#### root 1 of 2") : markdown.index("#### root 2 of 2")]
    assert small_section.count("<details>") == 3  # both images and the graph
    assert "Left out" not in small_section
    assert "Left out to fit this root's share" in markdown[markdown.index("#### root 2 of 2") :]


def test_the_budget_is_shared_fairly():
    """Two equal roots that cannot both be whole get about the same room."""
    entries = [planned("a", plan("a", create=40)), planned("b", plan("b", create=40))]
    markdown = render_roots_markdown(entries, max_chars=12_000)
    first = markdown[markdown.index("#### root 1 of 2") : markdown.index("#### root 2 of 2")]
    second = markdown[markdown.index("#### root 2 of 2") : markdown.index("\n\nNothing was changed.")]
    assert abs(first.count("<details>") - second.count("<details>")) <= 2
    assert first.count("<details>") > 0


def test_a_run_whose_must_stay_parts_do_not_fit_says_so_under_its_verdict():
    entries = [planned(f"teams/t{n}", plan(f"t{n}", unshare=25)) for n in range(3)]
    markdown = render_roots_markdown(entries, max_chars=MIN_MAX_CHARS)
    lines = markdown.splitlines()
    assert lines[4] == CAUTION
    assert f"> This comment is {len(markdown):,} characters long, over its budget of 1,900 " in markdown
    assert_must_stay(markdown, entries)


def test_the_sections_share_what_plan_section_says_must_stay():
    """PlanSection: whole and least are what it renders with no budget limit and with none at all."""
    section = PlanSection(plan(delete=3, create=10, warnings=4), title="root 1 of 2: `a`", max_chars=DEFAULT_MAX_CHARS)
    assert len(section.render(10**9)) == section.whole > section.least == len(section.render(0))
    assert len(section.render(section.least + 500)) <= section.least + 500
    assert "Nothing was changed." not in section.render(10**9), "said once, at the end of the comment"


roots_strategy = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "create": st.integers(0, 12),
                "update": st.integers(0, 6),
                "delete": st.integers(0, 4),
                "unshare": st.integers(0, 3),
                "stop_instance": st.integers(0, 2),
                "refusals": st.integers(0, 2),
                "warnings": st.integers(0, 8),
            }
        ),
        st.tuples(st.text(max_size=60), st.booleans(), st.integers(0, 4)),
    ),
    min_size=2,
    max_size=4,
)


def entries_from(drawn: list[Any]) -> list[dict[str, Any]]:
    entries = []
    for index, item in enumerate(drawn):
        root = f"teams/r{index}"
        if isinstance(item, dict):
            entries.append(planned(root, plan(f"s{index}", **item)))
        else:
            message, hint, details = item
            entries.append(errored(root, message, hint="a hint" if hint else None, details=["d"] * details))
    return entries


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=roots_strategy, max_chars=st.integers(MIN_MAX_CHARS, 16_000))
def test_the_shared_budget_holds_whenever_what_must_stay_fits(drawn, max_chars):
    entries = entries_from(drawn)
    markdown = render_roots_markdown(entries, max_chars=max_chars)
    assert_must_stay(markdown, entries)
    if must_stay_length(markdown, entries, max_chars) <= budget_for(max_chars):
        assert len(markdown) <= budget_for(max_chars) and CAUTION not in markdown
    else:
        assert f"> This comment is {len(markdown):,} characters long" in markdown
        assert len(markdown) - len(markdown.split("\n\n")[2]) - 2 == must_stay_length(markdown, entries, max_chars)


def test_a_closing_line_names_the_banners_reasons_only_when_there_is_a_banner():
    """A plan without a risky change cut to its least (here, refusals over the budget) has no reasons to leave
    out: its closing line, alone or as a section, does not say it left them out."""
    document = plan(create=5, refusals=30)
    single = render_markdown(document, max_chars=MIN_MAX_CHARS)
    assert CAUTION in single and "Left out" in single
    assert "the reasons of the risky changes" not in single
    section = PlanSection(document, title="root 1 of 2: `a`", max_chars=MIN_MAX_CHARS).render(0)
    assert "Left out" in section and "the reasons of the risky changes" not in section
