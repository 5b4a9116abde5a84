"""Hostile text (issue 17): a string that holds a character the reader does not see (a control character,
an ESC sequence, a bidi override, a zero-width space, a line break) is refused in every manifest and in
reconciler.yaml, as a located problem naming the field; descriptions are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
        "control and format characters (Unicode Cc and Cf, tab and line breaks included) are refused in every "
        "string, since they can hide or rewrite what a reviewer reads"
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
