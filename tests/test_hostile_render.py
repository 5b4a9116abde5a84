"""What a hostile review found in the renderings after the first pass of issue 17: autolinks in Markdown,
hidden characters left raw in JSON, a `"` that closes a quoted value in text, a stop that passed as
"Safe to apply", and a partial plan that claimed the whole cloud matches the manifests."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import github_markdown
import pytest

from reconciler.cli import main
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

CASES = Path(__file__).resolve().parent / "cases"
HOSTILE_CASES = ["hostile-cloud-text", "hostile-cloud-text-warning"]
EVIL = "![img](http://evil.example/p.png) www.evil.example HTTPS://x.example mailto:a@b.example ops@example.com"


def golden(case: str) -> dict:
    return json.loads((CASES / case / "plan.json").read_text(encoding="utf-8"))


def with_evil_messages(document: dict) -> dict:
    """`document` with a cloud name quoted in every message, as the planner quotes them."""
    document = copy.deepcopy(document)
    for item in [a["reason"] for a in document["actions"]] + document["refusals"] + document["warnings"]:
        item["message"] += f' (image "{EVIL}")'
    for refusal in document["refusals"]:
        refusal["hint"] = f"{refusal['hint'] or ''} see {EVIL}"
    return document


# -- 1. autolinks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_no_autolink_mark_is_left_outside_code(case):
    # GitHub's autolink extension links `://`, `www.` and emails after Markdown's escapes are gone.
    markdown = render_markdown(with_evil_messages(golden(case)))
    rest = github_markdown.text_outside_code(github_markdown.render(markdown))
    assert not github_markdown.LINKED_BY_GITHUB.findall(rest), rest


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_github_renders_no_link_image_or_comment_from_cloud_text(case):
    for markdown in (render_markdown(golden(case)), render_markdown(with_evil_messages(golden(case)))):
        html = github_markdown.render(markdown)
        assert "<a " not in html and "<img" not in html and "<!--" not in html, html


# -- 3. JSON: hidden characters escaped ----------------------------------------------------------

HIDDEN = "\u202e\u200b\ufeff\u2028\x85\x9b\x7f\u3164\U000e0001"


def test_json_escapes_every_hidden_character_and_keeps_the_value():
    document = golden("hostile-cloud-text")
    document["actions"][0]["name"] = f"웹 이미지 {HIDDEN} 🚀"
    document["set"] = "x\u2028y"
    text = render_json(document)
    assert json.loads(text) == document
    assert not [c for c in text if c in HIDDEN]
    assert "웹 이미지 \\u202e\\u200b\\ufeff\\u2028\\u0085\\u009b\\u007f\\u3164\\udb40\\udc01 🚀" in text
    assert '"set": "x\\u2028y"' in text


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_the_hostile_plan_json_holds_no_raw_bidi_override(case):
    text = render_json(golden(case))
    assert "\u202e" not in text and "\\u202e" in text
    assert json.loads(text) == golden(case)


def test_json_without_hidden_characters_is_unchanged():
    document = golden("protect-unprotect")
    assert render_json(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# -- 5. text: a quote inside a quoted value ------------------------------------------------------


def test_a_quote_in_a_value_cannot_close_it_and_fake_more_changes():
    document = golden("hostile-cloud-text")
    update = next(a for a in document["actions"] if a["kind"] == "update")
    update["changes"] = {"name": {"before": 'x" -> "y"; protected true -> false; z "', "after": "web-base"}}
    line = next(line for line in render_text(document).splitlines() if line.lstrip().startswith("~ update"))
    assert line.endswith('name "x\\" -> \\"y\\"; protected true -> false; z \\"" -> "web-base"')
    # Between the tool's own quotes, every `"` is escaped: the value is one token.
    quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', line.split("name ", 1)[1])
    assert quoted == ['x\\" -> \\"y\\"; protected true -> false; z \\"', "web-base"]


def test_a_backslash_in_a_value_is_doubled_so_every_escape_is_unambiguous():
    document = golden("hostile-cloud-text")
    update = next(a for a in document["actions"] if a["kind"] == "update")
    update["changes"] = {"name": {"before": "a\\x1b b\x1b", "after": 'c\\"'}}
    text = render_text(document)
    assert 'name "a\\\\x1b b\\x1b" -> "c\\\\\\""' in text


# -- 6. a stop is a risky change -----------------------------------------------------------------


def test_stopping_an_instance_is_never_safe_to_apply():
    markdown = render_markdown(golden("running-u2-stop"))
    assert "Safe to apply" not in markdown
    assert "**Review the risky changes**: 3 actions, 1 instance stop" in markdown
    assert "> This plan stops instances:" in markdown
    assert "> - stop_instance instance `web-golden-01` of `web-base` in KR1: " in markdown


# -- 7. a partial plan without changes -----------------------------------------------------------


def partial_without_changes() -> dict:
    document = golden("protect-unprotect")
    document["actions"] = []
    document["summary"] = {"actions": {}, "refusals": 0, "warnings": 1}
    document["info"]["partial"] = {
        "targets": [],
        "excludes": ["api-base", "web-base"],
        "description": "excluding api-base, web-base",
    }
    document["warnings"] = [
        {
            "code": "partial_plan",
            "key": None,
            "region": None,
            "message": "partial plan (excluding api-base, web-base): other images were not considered",
            "source": None,
        }
    ]
    return document


def test_a_partial_plan_without_changes_never_says_the_cloud_matches():
    text = render_text(partial_without_changes())
    assert "the cloud matches the manifests" not in text
    assert "No changes among the images in scope (excluding api-base, web-base). 1 warning." in text


def test_a_partial_plan_without_changes_in_markdown():
    markdown = render_markdown(partial_without_changes())
    assert "the cloud matches the manifests" not in markdown
    assert "**No changes among the images in scope**: 0 actions" in markdown
    assert "No changes among the images in scope (excluding api-base, web-base). 1 warning." in markdown


def test_a_whole_plan_without_changes_still_says_the_cloud_matches():
    document = partial_without_changes()
    del document["info"]["partial"]
    assert "No changes: the cloud matches the manifests." in render_text(document)
    assert "**No changes**: 0 actions" in render_markdown(document)


def test_plan_excluding_every_changed_key_says_so(tmp_path, capsys, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "root"
    shutil.copytree(CASES / "protect-unprotect" / "root", root)
    main(["plan", str(root), "--no-color", "--exclude", "api-base", "--exclude", "web-base"])
    out = capsys.readouterr().out
    assert "the cloud matches the manifests" not in out
    assert "No changes among the images in scope (excluding api-base, web-base)." in out
