"""Located YAML loading: values keep their file:line:column, duplicates and syntax errors are problems.
Every test runs with libyaml's parser and with PyYAML's own (tests/unit/yaml_parsers.py)."""

import pytest
from yaml_parsers import yaml_parser  # noqa: F401  (a fixture)

from reconciler.yaml_source import Location, Problem, format_path, hidden_text_problems, load_located

pytestmark = pytest.mark.usefixtures("yaml_parser")


def test_locations_of_nested_values():
    doc = load_located("a:\n  b: [1, 2]\n  c: x\n", "f.yaml")
    assert doc.problems == []
    assert doc.data == {"a": {"b": [1, 2], "c": "x"}}
    assert str(doc.location_of(("a", "c"))) == "f.yaml:3:6"
    assert str(doc.location_of(("a", "b", 1))) == "f.yaml:2:10"


def test_missing_path_falls_back_to_the_nearest_ancestor():
    doc = load_located("a:\n  b: 1\n", "f.yaml")
    assert str(doc.location_of(("a", "zzz"))) == "f.yaml:2:3"


def test_duplicate_keys_are_reported_with_both_lines():
    doc = load_located("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert [str(p) for p in doc.problems] == ["f.yaml:3:1: duplicate key 'a' (first defined at line 1)"]


def test_syntax_error_is_a_located_problem_not_an_exception():
    doc = load_located("a: [1, 2\nb: 3\n", "f.yaml")
    assert doc.data is None
    assert len(doc.problems) == 1
    assert doc.problems[0].message.startswith("YAML syntax error")
    assert doc.problems[0].location.line >= 2


def test_unsafe_tags_are_refused():
    doc = load_located("a: !!python/object/apply:os.system ['true']\n", "f.yaml")
    assert doc.problems and doc.data is None


def test_merge_keys_are_resolved():
    doc = load_located("base: &b {x: 1}\nthing:\n  <<: *b\n  y: 2\n", "f.yaml")
    assert doc.data["thing"] == {"x": 1, "y": 2}


def test_format_path():
    assert format_path(("servers", 0, "flavor")) == "servers[0].flavor"
    assert format_path(()) == ""


def test_a_control_character_is_a_located_problem():
    """Found by Hypothesis: PyYAML's reader refuses control characters before parsing starts."""
    doc = load_located("a: 1\nb: \x08\n", "f.yaml")
    assert [str(p) for p in doc.problems] == ["f.yaml:2:4: YAML syntax error: character U+0008 is not allowed in YAML"]


def test_a_recursive_alias_is_a_problem_not_a_crash():
    doc = load_located("images: &a {web: *a}\n", "f.yaml")
    assert doc.data is None and "recursive" in doc.problems[0].message


def test_deep_nesting_is_a_problem_not_a_crash():
    doc = load_located("a: " + "[" * 5000 + "]" * 5000 + "\n", "f.yaml")
    assert doc.data is None and "too" in doc.problems[0].message


def test_alias_expansion_is_bounded_in_time():
    """A small file whose aliases would expand to millions of values ("billion laughs")."""
    import time

    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    started = time.monotonic()
    doc = load_located("\n".join(lines) + "\n", "f.yaml")
    assert time.monotonic() - started < 2
    assert doc.data is None and "once aliases are expanded" in doc.problems[0].message
    # Modest reuse is fine.
    small = load_located("base: &b {x: 1}\na: *b\nb: *b\n", "f.yaml")
    assert small.problems == [] and small.data["a"] == {"x": 1}


def test_an_explicit_tag_on_unreadable_text_is_a_located_problem():
    """PyYAML's constructors raise plain ValueError, KeyError, ... here: it used to be a traceback."""
    cases = {
        'a: !!int "12x"\n': "f.yaml:1:4: YAML syntax error: cannot read '12x' as !!int",
        "a: !!int ''\n": "f.yaml:1:4: YAML syntax error: cannot read '' as !!int",
        "a: !!bool maybe\n": "f.yaml:1:4: YAML syntax error: cannot read 'maybe' as !!bool",
        "a: !!float abc\n": "f.yaml:1:4: YAML syntax error: cannot read 'abc' as !!float",
        "a: !!timestamp x\n": "f.yaml:1:4: YAML syntax error: cannot read 'x' as !!timestamp",
    }
    for text, want in cases.items():
        doc = load_located(text, "f.yaml")
        assert doc.data is None and [str(p) for p in doc.problems] == [want], text


# -- duplicate keys and merges (issue 17) -----------------------------------------------------------


def test_a_duplicate_key_cites_its_second_occurrence_and_the_line_of_the_first_key():
    """The first occurrence is where its key is written, not where its value starts."""
    doc = load_located("images:\n  a:\n    name: x\nimages:\n  b: {}\n", "f.yaml")
    assert [str(p) for p in doc.problems] == ["f.yaml:4:1: duplicate key 'images' (first defined at line 1)"]


def test_a_duplicate_written_after_a_merge_cites_the_later_key():
    """A merge puts its keys in front (PyYAML): the key written first in the file is not the duplicate."""
    doc = load_located("a:\n  name: x\n  <<: {other: 1}\n  name: y\n", "f.yaml")
    assert [str(p) for p in doc.problems] == ["f.yaml:4:3: duplicate key 'name' (first defined at line 2)"]


def test_a_key_overriding_a_merged_one_is_no_duplicate():
    doc = load_located("base: &b {name: x, y: 1}\nthing:\n  <<: *b\n  name: z\n", "f.yaml")
    assert doc.problems == []
    assert doc.data["thing"] == {"name": "z", "y": 1}
    doc = load_located("thing:\n  name: z\n  <<: {name: x}\n", "f.yaml")
    assert doc.problems == [] and doc.data["thing"] == {"name": "z"}


def test_the_first_of_several_merged_mappings_wins():
    doc = load_located("a: &a {k: 1}\nb: &b {k: 2, j: 3}\nc:\n  <<: [*a, *b]\n", "f.yaml")
    assert doc.problems == [] and doc.data["c"] == {"k": 1, "j": 3}


def test_merges_of_merges_stay_bounded():
    lines = ["l0: &l0 {k0: 1}"] + [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    doc = load_located("\n".join(lines) + "\n", "f.yaml")
    assert doc.data is None and "too complex" in doc.problems[0].message


def test_a_merge_of_a_scalar_is_a_problem():
    doc = load_located("a:\n  <<: 1\n", "f.yaml")
    assert doc.data is None and "merging" in doc.problems[0].message


def test_problems_show_hidden_characters_as_escapes():
    """A message quotes the file (a key, a value, the file's own name): a terminal shows it, never obeys it."""
    problem = Problem(Location("team\n- delete.yaml", 2, 1), "images.web\x1b[2J: unknown key \u202e")
    assert str(problem) == "team\\x0a- delete.yaml:2:1: images.web\\x1b[2J: unknown key \\u202e"


# -- hidden characters in the raw text (issue 17) -------------------------------------------------


def test_a_comment_hiding_yaml_after_a_line_separator_is_refused_before_parsing():
    doc = load_located("a: 1 # note\u2028b: 2\n", "f.yaml", refuse_hidden=True)
    assert doc.data is None
    assert [str(p).split(": ")[0] for p in doc.problems] == ["f.yaml:1:12"]
    assert load_located("a: 1 # note\u2028b: 2\n", "f.yaml").data == {"a": 1, "b": 2}  # what PyYAML reads


def test_crlf_and_tab_pass_a_lone_cr_does_not_even_last():
    assert hidden_text_problems("a: 1\r\nb: 2\t# x\r\n", "f.yaml") == []
    assert [str(p).split(": ")[0] for p in hidden_text_problems("a: 1\r\nb: 2\r", "f.yaml")] == ["f.yaml:2:5"]
    assert [str(p).split(": ")[0] for p in hidden_text_problems("a: 1\rb: 2\r\n", "f.yaml")] == ["f.yaml:1:5"]


def test_lines_are_counted_at_lf_only_so_locations_after_a_hidden_break_stay_right():
    text = "a: 1 \x85 x\nb: 2\n\u2029\nc: \u200b\n"
    assert [str(p).split(": ")[0] for p in hidden_text_problems(text, "f.yaml")] == [
        "f.yaml:1:6",
        "f.yaml:3:1",
        "f.yaml:4:4",
    ]


def test_one_problem_per_kind_and_line_naming_each_character_once():
    (problem,) = hidden_text_problems("# \x1b[31m \x07 \x1b[0m\n", "f.yaml")
    assert str(problem).startswith("f.yaml:1:3: a control character (\\x1b, \\x07): ")


def test_printable_text_in_any_script_passes():
    assert hidden_text_problems("이름: 웹 서버 # 한글 ㅎ\nname: café ✓ 日本\n", "f.yaml") == []


def test_a_file_may_start_with_one_byte_order_mark(tmp_path):
    """Windows editors write one; YAML allows it at the start. The locations are an editor's, without it."""
    from reconciler.yaml_source import load_located_file

    path = tmp_path / "f.yaml"
    path.write_bytes("\ufeffa:\r\n  b: x\r\n".encode())
    doc = load_located_file(path, "f.yaml", refuse_hidden=True)
    assert (doc.problems, doc.data) == ([], {"a": {"b": "x"}})
    assert str(doc.location_of(("a", "b"))) == "f.yaml:2:6" and str(doc.key_location_of(("a",))) == "f.yaml:1:1"
    path.write_bytes("\ufeff\ufeffa: 1\n".encode())
    assert [str(p).split(": ")[0] for p in load_located_file(path, "f.yaml", refuse_hidden=True).problems] == [
        "f.yaml:1:1"
    ]
