"""Golden runs over several roots: each folder in tests/roots_cases/ holds `entries.json` (a one-sentence
`reason` and the roots' entries in order: a planned root names the tests/cases/ folder whose `plan.json` is its
plan, an errored root is written out) and the expected `plans.txt`, `plans.md` (default --max-chars) and
`plans.json`. Pure: no server.

Regenerate after a deliberate change with `RECONCILER_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_roots.py`
and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import github_markdown
import pytest

from reconciler import roots_document
from reconciler.render import DEFAULT_MAX_CHARS
from reconciler.render.json import render_json
from reconciler.render.markdown import budget_for
from reconciler.render.roots import render_roots_markdown, render_roots_text, section_heading

TESTS = Path(__file__).resolve().parent
CASES, ROOTS_CASES = TESTS / "cases", TESTS / "roots_cases"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"


def case_names() -> list[str]:
    return sorted(p.name for p in ROOTS_CASES.iterdir() if (p / "entries.json").is_file())


def load_entries(case: str) -> list[dict[str, Any]]:
    spec = json.loads((ROOTS_CASES / case / "entries.json").read_text(encoding="utf-8"))
    assert spec["reason"] and "\n" not in spec["reason"], "the reason is one sentence"
    return [_entry(item) for item in spec["entries"]]


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    if "case" in item:
        plan = json.loads((CASES / item["case"] / "plan.json").read_text(encoding="utf-8"))
        return {"root": item["root"], "plan": plan}
    return {"root": item["root"], "target": item["target"], "error": item["error"]}


def compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with RECONCILER_UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", case_names())
def test_golden_roots(case):
    entries = load_entries(case)

    document = roots_document.document(entries)
    compare(ROOTS_CASES / case / "plans.json", render_json(document))
    assert roots_document.validate(document) == []
    assert roots_document.entries(json.loads(render_json(document))) == entries

    text = render_roots_text(entries)
    compare(ROOTS_CASES / case / "plans.txt", text)
    for index, entry in enumerate(entries, start=1):
        assert section_heading(index, len(entries), entry["root"]) in text
    assert text.count("Nothing was changed.") == 1

    markdown = render_roots_markdown(entries, max_chars=DEFAULT_MAX_CHARS)
    compare(ROOTS_CASES / case / "plans.md", markdown)
    assert len(markdown) <= budget_for(DEFAULT_MAX_CHARS)
    assert markdown.count("Nothing was changed.") == 1


def test_there_are_golden_runs():
    assert len(case_names()) >= 3


@pytest.mark.parametrize("case", case_names())
def test_hostile_text_never_reaches_the_output_raw(case):
    """The roots' names and the errors' texts hold `<!--`, `@`, `|`, tags and ESC: no ESC or BEL is ever
    printed; as GitHub renders the comment, no comment, link or image appears, no tag the renderer does not
    write, and nothing GitHub would link or mention is left outside code."""
    entries = load_entries(case)
    text = render_roots_text(entries)
    markdown = render_roots_markdown(entries, max_chars=DEFAULT_MAX_CHARS)
    for output in (text, markdown):
        assert "\x1b" not in output and "\x07" not in output
    html = github_markdown.render(markdown)
    assert "<!--" not in html and "<a " not in html and "<img" not in html
    assert github_markdown.tags(html) <= github_markdown.RENDERER_TAGS
    rest = github_markdown.text_outside_code(html)
    assert not github_markdown.LINKED_BY_GITHUB.findall(rest), rest
    # Each root's table row is one row: a `|` in a name or a message does not add a cell.
    rows = [line for line in markdown.splitlines() if line.startswith("| `") or line.startswith("| ``")]
    assert len(rows) == len(entries)


def test_the_goldens_cover_the_runs_the_cli_meets():
    """(a) changes beside no changes, (b) a refusal, an error and changes, (c) hostile cloud text and a share."""
    used = {case: load_entries(case) for case in case_names()}
    kinds = [{("error" if "error" in e else "plan") for e in entries} for entries in used.values()]
    assert any(k == {"plan", "error"} for k in kinds)
    assert any(
        any(e.get("plan", {}).get("refusals") for e in entries) and any("error" in e for e in entries)
        for entries in used.values()
    )
