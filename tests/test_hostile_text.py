"""Hostile text (issue 17): a string that holds a character the reader does not see (a control character,
an ESC sequence, a bidi override, a zero-width space, a line break) is refused in every manifest and in
reconciler.yaml, as a located problem naming the field; descriptions are one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import github_markdown
import pytest

from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from reconciler.validate import InvalidRootError, load_desired_state

CONFIG = (
    "version: 1\nset: web\ncloud: {kind: nhn, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b}\ndefaults: {region: KR1}\n"
)
HEAD = "version: 1\nimages:\n  web:\n    source: {instance: web-golden-01}\n"


def problems_of(root: Path, manifest: str, config: str = CONFIG) -> list[str]:
    (root / "reconciler.yaml").write_text(config)
    (root / "web.yaml").write_text(manifest)
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    return [str(p) for p in caught.value.problems]


HIDDEN_VALUES = [
    ('    name: "web\\e[31m"\n', "web.yaml:5:11: images.web.name: the value contains \\x1b (control): "),
    ('    name: "web\\u202eesab"\n', "web.yaml:5:11: images.web.name: the value contains \\u202e (invisible format): "),
    ('    name: "web\\u200b"\n', "web.yaml:5:11: images.web.name: the value contains \\u200b (invisible format): "),
    ('    name: "web\\n  - delete x"\n', "web.yaml:5:11: images.web.name: the value contains \\x0a (control): "),
    ('    name: "web\\x85"\n', "web.yaml:5:11: images.web.name: the value contains \\x85 (control): "),
    ('    name: "web\\u2028"\n', "web.yaml:5:11: images.web.name: the value contains \\u2028 (line separator): "),
    (
        '    properties:\n      distro: "ubuntu\\e]8;;http://x\\e\\\\"\n',
        "web.yaml:6:15: images.web.properties.distro: the value contains \\x1b (control): ",
    ),
    (
        '    properties:\n      "os\\u200bdistro": ubuntu\n',
        "web.yaml:6:7: images.web.properties.os\\u200bdistro: the key contains \\u200b (invisible format): ",
    ),
    (
        '    share: ["8989447062e04a818baf9e073fd04fa7\\u202e"]\n',
        "web.yaml:5:13: images.web.share[0]: the value contains \\u202e (invisible format): ",
    ),
    (
        '    copies: [{region: JP1, name: "web\\x07"}]\n',
        "web.yaml:5:34: images.web.copies[0].name: the value contains \\x07 (control): ",
    ),
]


@pytest.mark.parametrize(("line", "problem"), HIDDEN_VALUES)
def test_a_hidden_character_anywhere_in_a_manifest_is_a_located_problem(tmp_path, line, problem):
    problems = problems_of(tmp_path, HEAD + line)
    assert any(p.startswith(problem) for p in problems), problems
    assert all(p.isprintable() for p in problems)


def test_the_message_says_why_and_that_tab_and_line_breaks_are_included(tmp_path):
    (problem,) = problems_of(tmp_path, HEAD + '    name: "web\\e[2J"\n')
    assert problem.endswith(
        "control and format characters (Unicode Cc and Cf, tab and line breaks included) and letters that show "
        "as nothing are refused in every string, since they can hide or rewrite what a reviewer reads"
    )


def test_a_tab_is_refused_and_the_message_says_so(tmp_path):
    (problem,) = problems_of(tmp_path, HEAD + '    properties: {distro: "ubuntu\\t22.04"}\n')
    assert problem == (
        "web.yaml:5:26: images.web.properties.distro: the value contains a tab (\\x09): tabs are refused like every "
        "control character, since a tab shows as a different width wherever it is read; use spaces"
    )


@pytest.mark.parametrize(
    "description",
    [
        "    description: |\n      typo fix\n\n      <!--\n",
        "    description: >\n      typo fix\n",
        '    description: "a\\nb"\n',
    ],
)
def test_a_description_is_one_line(tmp_path, description):
    (problem,) = problems_of(tmp_path, HEAD + description)
    assert problem.startswith("web.yaml:5:18: images.web.description: a description is one line, and this one has")
    assert "plain scalar or a folded `>-` scalar" in problem


def test_a_folded_description_without_a_final_newline_is_fine(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(CONFIG)
    (tmp_path / "web.yaml").write_text(HEAD + "    description: >-\n      Golden image\n      for the web tier\n")
    state = load_desired_state(tmp_path)
    assert state.images[0].description == "Golden image for the web tier"


def test_every_hidden_string_is_reported_not_only_the_first(tmp_path):
    manifest = HEAD + '    name: "a\\e"\n    description: "b\\u202e"\n    properties: {"c\\t": d}\n'
    problems = problems_of(tmp_path, manifest)
    assert [p.split(": ")[1] for p in problems] == [
        "images.web.name",
        "images.web.description",
        "images.web.properties.c\\x09",
    ]


def test_reconciler_yaml_is_checked_too(tmp_path):
    config = CONFIG + 'settings: {max_deletions: 1}\n"colour\\e[8m": red\n'
    problems = problems_of(tmp_path, HEAD, config)
    assert any(p.startswith("reconciler.yaml:6:1: colour\\x1b[8m: the key contains \\x1b (control)") for p in problems)
    assert all(p.isprintable() for p in problems)


def test_printable_unicode_is_fine(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(CONFIG)
    (tmp_path / "web.yaml").write_text(HEAD + "    description: 웹 골든 이미지 — ubuntu « 22.04 » 🚀\n")
    assert load_desired_state(tmp_path).images[0].description == "웹 골든 이미지 — ubuntu « 22.04 » 🚀"


def test_validate_exits_1_and_prints_no_raw_control_character(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(CONFIG)
    (tmp_path / "web.yaml").write_text(HEAD + '    name: "web\\e[2K\\r  - delete web-old"\n')
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "web.yaml:5:11: images.web.name: the value contains \\x1b (control), \\x0d (control)" in result.stderr
    assert all(ch == "\n" or ch.isprintable() for ch in result.stderr + result.stdout)


# -- what the renderers show (issue 17) --------------------------------------------------------------

CASES = Path(__file__).resolve().parent / "cases"


def hostile_plan(case: str = "hostile-cloud-text") -> dict:
    return json.loads((CASES / case / "plan.json").read_text(encoding="utf-8"))


def test_the_hostile_plan_text_holds_no_control_byte_and_one_line_per_plan_line():
    document = hostile_plan()
    text = render_text(document)
    assert not [b for b in text.encode() if b < 0x20 and b != 0x0A]
    assert "\x1b" not in text and "\u202e" not in text
    # target, regions read, blank; two lines per action (no waits); blank, one warning; blank; summary;
    # "Nothing was changed."
    assert len(document["actions"]) == 3 and not any(a["depends_on"] for a in document["actions"])
    assert len(document["warnings"]) == 1
    assert len(text.splitlines()) == 3 + 2 * 3 + 2 + 3


def test_a_newline_in_a_name_never_prints_a_line_of_its_own():
    document = hostile_plan()
    lines = render_text(document).splitlines()
    deletes = [line for line in lines if line.lstrip().startswith("- delete")]
    assert len(deletes) == 2  # the real ones: the fake "- delete prod-db" stays inside its quotes
    assert not any(line.lstrip().startswith("~ update         web-base  KR1   nothing") for line in lines)


def test_warnings_refusals_and_hints_are_escaped_in_text():
    text = render_text(hostile_plan("hostile-cloud-text-warning"))
    assert not [b for b in text.encode() if b < 0x20 and b != 0x0A]
    assert "instance:web\\x1b[31m\\x0a  - delete" in text
    assert "[protected_undeclared] db-base\\x1b[2J\\x0a  hint: set protected: false on prod-db" in text
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("hint:")] == [
        "hint: to keep it, unmanaged, list db-base under removed: with destroy: false; to delete it, set protected: "
        "false on db-base, apply, then remove it and apply"
    ]


@pytest.mark.parametrize("case", ["hostile-cloud-text", "hostile-cloud-text-warning"])
def test_the_hostile_plan_markdown_holds_no_live_markup(case):
    markdown = render_markdown(hostile_plan(case))
    assert not [b for b in markdown.encode() if b < 0x20 and b != 0x0A]
    # As GitHub renders it: only the renderer's own elements, no comment that hides the rest, and nothing
    # outside code that GitHub would turn into a mention, a reference or a link.
    rendered = github_markdown.render(markdown)
    assert github_markdown.tags(rendered) <= github_markdown.RENDERER_TAGS
    assert "<!--" not in rendered
    assert not github_markdown.LINKED_BY_GITHUB.findall(github_markdown.text_outside_code(rendered))
    table_rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert all(line.count("|") - line.count("\\|") == table_rows[0].count("|") for line in table_rows)


def test_markdown_summary_html_is_escaped():
    # Keys from the cloud that the tool never writes are nobody's (invalid_markers), but the renderer does
    # not rely on it.
    document = hostile_plan()
    document["actions"][1]["key"] = "old-base`` | @everyone <!-- "
    markdown = render_markdown(document)
    assert "<summary><b><code>old-base`` | @everyone &lt;!-- </code></b>: delete</summary>" in markdown
    assert "<!--" not in github_markdown.render(markdown)


def test_mermaid_labels_hold_no_markup():
    markdown = render_markdown(hostile_plan())
    graph = markdown.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert graph.count("```") == 0 and all(line.count('"') in (0, 2) for line in graph.splitlines())


# -- verdicts: an unprotect is a risky change ---------------------------------------------------------


def with_actions(*kinds: str) -> dict:
    document = hostile_plan("protect-unprotect")
    template = document["actions"][0]
    document["actions"] = [
        {
            **template,
            "id": f"{kind}:k{i}:KR1",
            "kind": kind,
            "key": f"k{i}",
            "member": "8989447062e04a818baf9e073fd04fa7",
        }
        for i, kind in enumerate(kinds)
    ]
    document["summary"]["actions"] = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    return document


@pytest.mark.parametrize("kinds", [("unprotect",), ("protect", "unprotect", "unprotect"), ("delete",), ("unshare",)])
def test_safe_to_apply_never_covers_an_unprotect_a_delete_or_an_unshare(kinds):
    markdown = render_markdown(with_actions(*kinds))
    assert "Safe to apply" not in markdown
    assert "**Review the risky changes**" in markdown


def test_the_verdict_counts_and_the_banner_names_each_unprotect():
    markdown = render_markdown(with_actions("protect", "unprotect", "unprotect", "delete"))
    assert "**Review the risky changes**: 4 actions, 1 deletion, 2 unprotects" in markdown
    assert "> This plan deletes and unprotects:" in markdown
    assert (
        "> - unprotect image `00000000-0000-4000-8000-000000000012` of `k1` in KR1: protected: false is declared"
        in (markdown)
    )
    assert markdown.count("> - unprotect image") == 2


def test_a_plan_without_risky_changes_is_safe_to_apply():
    assert "**Safe to apply**: 1 action" in render_markdown(with_actions("protect"))


# -- hidden characters in the raw text (issue 17, second pass) ------------------------------------

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"


def quickstart_problems(tmp_path: Path, edit: dict[str, tuple[str, str]]) -> list[str]:
    """The problems of a copy of the quickstart with `edit` (file -> (old, new)) applied, read as bytes so
    that no line ending is translated."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    for name, (old, new) in edit.items():
        text = (root / name).read_bytes().decode("utf-8")
        assert old in text
        (root / name).write_bytes(text.replace(old, new).encode("utf-8"))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    return [str(p) for p in caught.value.problems]


COMMENT = "with a warning\n"
SMUGGLED = "with a warning{0}    download: true{0}    min_disk: 999\n"
LINE_BREAK = "a line break only YAML sees ({0}): YAML starts a new line there, so what follows it (even in a comment)"


@pytest.mark.parametrize(
    ("char", "shown"), [("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x85", "\\x85"), ("\r", "\\x0d")]
)
def test_a_line_break_only_yaml_sees_in_a_comment_is_refused_where_an_editor_puts_it(tmp_path, char, shown):
    """Text after U+2028 (or NEL, U+2029, a lone CR) in a comment is real YAML that a diff shows as part of
    the comment: the quickstart's instance comment would turn downloads on. Refused, on the line an editor
    shows, at the first of them."""
    problems = quickstart_problems(tmp_path, {"images/web.yaml": (COMMENT, SMUGGLED.format(char))})
    assert problems == [f"images/web.yaml:7:91: {LINE_BREAK.format(shown)}" + problems[0].split("comment)", 1)[1]]


def test_a_bidi_override_in_a_comment_is_refused(tmp_path):
    edit = (COMMENT, "with a warning \u202e }esab-ipa{ \u2066x\u2069\n")
    problems = quickstart_problems(tmp_path, {"images/web.yaml": edit})
    assert len(problems) == 1, problems
    assert problems[0].startswith("images/web.yaml:7:")
    assert "an invisible format character (\\u202e, \\u2066, \\u2069): a bidi override" in problems[0]


def test_one_problem_per_kind_and_line_and_lines_counted_as_an_editor_does(tmp_path):
    text = "# a\x07b\x07 c\x1b d\u200b\u2028e\n# fine\n# \x85\n"
    problems = quickstart_problems(tmp_path, {"images/api.yaml": ("version: 1\n", text + "version: 1\n")})
    located = [(p.split(": ", 1)[0], p.split(": ", 1)[1].split(" (")[0]) for p in problems]
    assert located == [
        ("images/api.yaml:2:4", "a control character"),
        ("images/api.yaml:2:12", "an invisible format character"),
        ("images/api.yaml:2:13", "a line break only YAML sees"),
        ("images/api.yaml:4:3", "a line break only YAML sees"),
    ]
    assert "(\\x07, \\x1b)" in problems[0]


@pytest.mark.parametrize(("char", "shown"), [("\r", "\\x0d"), ("\x85", "\\x85")])
def test_a_raw_cr_or_nel_inside_a_quoted_string_is_refused_not_folded_into_a_space(tmp_path, char, shown):
    edit = ("Golden image for the web tier", f'"Golden image{char}for the web tier"')
    problems = quickstart_problems(tmp_path, {"images/web.yaml": edit})
    assert problems == [f"images/web.yaml:5:31: {LINE_BREAK.format(shown)}" + problems[0].split("comment)", 1)[1]]


def test_reconciler_yaml_raw_text_is_checked_too(tmp_path):
    problems = quickstart_problems(
        tmp_path, {"reconciler.yaml": ("kind: simulator\n", "kind: simulator # \u2028x: 1\n")}
    )
    assert len(problems) == 1 and problems[0].startswith("reconciler.yaml:7:")
    assert "a line break only YAML sees (\\u2028)" in problems[0]


def test_crlf_line_ends_tabs_in_comments_and_korean_are_fine(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    web = root / "images" / "web.yaml"
    text = web.read_text().replace("with a warning", "with a warning\t# 웹 서버 골든 이미지")
    text = text.replace("Golden image for the web tier", "웹 티어용 골든 이미지")
    web.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    assert [image.description for image in load_desired_state(root).images if image.key == "web-base-2026-11"] == [
        "웹 티어용 골든 이미지"
    ]


def test_the_smuggled_comment_exits_1_from_the_command(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    web = root / "images" / "web.yaml"
    web.write_text(web.read_text().replace(COMMENT, SMUGGLED.format("\u2028")))
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(root)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("images/web.yaml:7:91: a line break only YAML sees (\\u2028)")
    assert "\u2028" not in result.stderr and "plan" not in result.stdout


# -- letters that show as nothing -----------------------------------------------------------------

INVISIBLE_LETTERS = [
    ("\u3164", "\\u3164"),
    ("\u115f", "\\u115f"),
    ("\u1160", "\\u1160"),
    ("\uffa0", "\\uffa0"),
    ("\u2800", "\\u2800"),
]


@pytest.mark.parametrize(("char", "shown"), INVISIBLE_LETTERS)
def test_a_letter_that_shows_as_nothing_is_refused_in_a_value(tmp_path, char, shown):
    problems = problems_of(tmp_path, HEAD + f"    name: web{char}\n")
    assert problems == [
        f"web.yaml:5:11: images.web.name: the value contains {shown} (shows as nothing): "
        + problems[0].split("(shows as nothing): ", 1)[-1]
    ]


@pytest.mark.parametrize(("char", "shown"), INVISIBLE_LETTERS)
def test_a_letter_that_shows_as_nothing_is_refused_in_a_key(tmp_path, char, shown):
    problems = problems_of(tmp_path, HEAD + f"    properties:\n      os{char}: linux\n")
    assert any(
        p.startswith(f"web.yaml:6:7: images.web.properties.os{shown}: the key contains {shown} (shows as nothing)")
        for p in problems
    ), problems


def test_ordinary_hangul_passes(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(CONFIG)
    (tmp_path / "web.yaml").write_text(
        HEAD + "    name: 웹-서버\n    description: 한글 설명 ㄱㄴㄷ 가\n    properties:\n      담당: 개발팀\n"
    )
    (image,) = load_desired_state(tmp_path).images
    assert (image.name, image.description, dict(image.properties or {})) == (
        "웹-서버",
        "한글 설명 ㄱㄴㄷ 가",
        {"담당": "개발팀"},
    )


# -- a byte order mark (issue 17) -------------------------------------------------------------------

BOM = "\ufeff"


def test_one_byte_order_mark_at_the_start_of_each_file_is_fine(tmp_path):
    """Windows editors begin UTF-8 files with U+FEFF, and YAML allows it there: every file of the quickstart
    so written (CRLF too) validates, plans, and reads as without it."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    for path in [root / "reconciler.yaml", root / "seed.yaml", *sorted((root / "images").glob("*.yaml"))]:
        text = path.read_bytes().decode("utf-8")
        path.write_bytes((BOM + text.replace("\n", "\r\n")).encode("utf-8"))
    state = load_desired_state(root)
    assert state.root.set == "quickstart" and [i.key for i in state.images] == ["api-base", "web-base-2026-11"]
    for command in ("validate", "plan"):
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", command, str(root)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode in (0, 2), result.stderr
        assert "Traceback" not in result.stderr


def api_problems(tmp_path: Path, text_of) -> list[str]:
    """The problems of a copy of the quickstart whose images/api.yaml is `text_of(its text)`."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    api = root / "images" / "api.yaml"
    api.write_bytes(text_of(api.read_bytes().decode("utf-8")).encode("utf-8"))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    return [str(p) for p in caught.value.problems]


def test_line_one_of_a_file_with_a_byte_order_mark_keeps_an_editors_columns(tmp_path):
    problems = api_problems(tmp_path, lambda text: f"{BOM}# \u200b{text}")
    assert len(problems) == 1 and problems[0].startswith("images/api.yaml:1:3: an invisible format character (\\u200b)")


@pytest.mark.parametrize(
    ("text_of", "where"),
    [
        (lambda text: f"{BOM}{BOM}{text}", "images/api.yaml:1:1: "),  # a second one, at the start
        (lambda text: f"{BOM}{text}{BOM}", "images/api.yaml:8:1: "),  # at the start of another line
        (lambda text: f"{BOM}{text.replace('version: 1', f'version: 1 {BOM}')}", "images/api.yaml:2:12: "),
    ],
    ids=["twice", "later-line", "mid-line"],
)
def test_a_byte_order_mark_anywhere_else_is_still_refused(tmp_path, text_of, where):
    problems = api_problems(tmp_path, text_of)
    assert len(problems) == 1 and problems[0].startswith(where + "an invisible format character (\\ufeff)"), problems
