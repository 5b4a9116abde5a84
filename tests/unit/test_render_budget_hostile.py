"""The lines a tight budget writes instead of what it cuts (the other changes' short lines, the counts, the
closing line, the over-budget note, the banner without reasons) are as safe as the rest of the comment:
cloud text in a key, a region or a message makes no link, image, HTML comment or mention on GitHub."""

from __future__ import annotations

from typing import Any

import github_markdown
import pytest
from test_render_budget import plan

from reconciler.render import MIN_MAX_CHARS
from reconciler.render.markdown import render_markdown

EVIL = "![img](http://evil.example/p.png) <!-- www.evil.example @someone #12 ops@example.com"


def hostile(document: dict[str, Any]) -> dict[str, Any]:
    for action in document["actions"]:
        action["key"] = f"{action['key']} {EVIL}"
        action["region"] = f"{action['region']} {EVIL}"
        action["name"] = f"{action['name']} {EVIL}"
        action["reason"]["message"] += f" {EVIL}"
    for item in document["warnings"] + document["refusals"]:
        item["key"] = f"{item['key']} {EVIL}"
        item["message"] += f" {EVIL}"
    for refusal in document["refusals"]:
        refusal["hint"] += f" {EVIL}"
    return document


@pytest.mark.parametrize(
    ("counts", "max_chars"),
    [
        ({"creates": 60, "updates": 60, "warnings": 200}, 30_000),  # the other changes' lines
        ({"creates": 450, "warnings": 900}, 3_000),  # the counts
        ({"deletes": 30, "unshares": 30, "stops": 3, "refusals": 3, "creates": 20}, MIN_MAX_CHARS),  # over budget
    ],
    ids=["other-lines", "counts", "over-budget"],
)
def test_what_a_cut_writes_makes_no_link_image_comment_or_mention(counts, max_chars):
    markdown = render_markdown(hostile(plan(**counts)), max_chars=max_chars)
    assert "_Left out to " in markdown  # the budget did cut
    html = github_markdown.render(markdown)
    assert "<a " not in html and "<img" not in html and "<!--" not in html
    assert github_markdown.tags(html) <= github_markdown.RENDERER_TAGS
    rest = github_markdown.text_outside_code(html)
    assert not github_markdown.LINKED_BY_GITHUB.findall(rest), rest
