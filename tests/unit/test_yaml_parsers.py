"""libyaml's parser and PyYAML's own give the same located documents (issue 26): values, locations (line and
column), the text of each scalar, duplicate keys, bounds and every message. libyaml reads a text only when it
reads it as PyYAML does; deep nesting and alias bombs are refused on the parser's events, before any composer
recurses."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_parsers import yaml_parser  # noqa: F401  (a fixture)

from reconciler.yaml_source import MAX_DEPTH, LocatedDocument, load_located

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")


def located(text: str, parser: str, monkeypatch: pytest.MonkeyPatch, **options) -> tuple:
    """Everything `load_located` says about `text`, read with `parser`."""
    with monkeypatch.context() as patch:
        patch.setattr(yaml, "__with_libyaml__", parser == "libyaml")
        doc = load_located(text, "f.yaml", **options)
    return everything(doc)


def everything(doc: LocatedDocument) -> tuple:
    return (repr(doc.data), doc.locations, doc.key_locations, doc.scalar_text, [str(p) for p in doc.problems])


def assert_parsers_agree(text: str, monkeypatch: pytest.MonkeyPatch, **options) -> tuple:
    pure = located(text, "pure", monkeypatch, **options)
    assert located(text, "libyaml", monkeypatch, **options) == pure
    return pure


def generated_manifest(keys: int) -> str:
    """A manifest as people write them: block and flow style, quotes, comments, Hangul, a block scalar,
    an anchor merged into later keys, nulls and one duplicate key."""
    lines = ["# generated", "version: 1", "defaults: &defaults {min_disk: 20, properties: {os_type: linux}}", "images:"]
    for i in range(keys):
        if i % 3 == 0:
            lines += [f"  img-{i:05d}:", "    <<: *defaults", f'    name: "이미지 {i}"  # 한글',
                      f"    source: {{image: 00000000-0000-4000-8000-{i:012d}}}", "    copies: [KR2, {region: JP1}]",
                      "    description: |", "      two lines", "      of text", "    protected: yes"]  # fmt: skip
        elif i % 3 == 1:
            lines.append(f"  img-{i:05d}: {{source: {{instance: web-{i}}}, download: null, min_ram: 0x10}}")
        else:
            lines += [f"  'img-{i:05d}':", f"    source: {{image: 00000000-0000-4000-8000-{i:012d}}}",
                      "    share:", "      - 8989447062e04a818baf9e073fd04fa7", "    min_disk: 1.5e1"]  # fmt: skip
    lines += ["  img-00001: {source: {image: again}}"]
    return "\n".join(lines) + "\n"


@needs_libyaml
def test_the_two_parsers_agree_on_a_generated_manifest(monkeypatch):
    data, locations, _, _, problems = assert_parsers_agree(generated_manifest(300), monkeypatch)
    assert problems == ["f.yaml:1505:3: duplicate key 'img-00001' (first defined at line 14)"]
    assert "'name': '이미지 0'" in data and len(locations) > 2000


@needs_libyaml
def test_libyaml_reads_a_plain_manifest(monkeypatch):
    """The C parser is what reads an ordinary manifest when PyYAML has it, and it composes it once."""
    made = []

    class Spy(yaml.CSafeLoader):
        def __init__(self, stream):
            made.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(yaml, "CSafeLoader", Spy)
    text = generated_manifest(30)
    doc = load_located(text, "f.yaml")
    assert made == [text, text]  # its events checked, then composed
    assert doc.data["images"]["img-00000"]["name"] == "이미지 0"


def test_without_libyaml_the_pure_parser_reads_everything(monkeypatch):
    """A PyYAML built without libyaml: the fallback, with the same result."""

    class Refused:
        def __init__(self, stream):
            raise AssertionError("libyaml used although PyYAML says it was built without it")

    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    monkeypatch.setattr(yaml, "CSafeLoader", Refused, raising=False)
    doc = load_located(generated_manifest(30), "f.yaml")
    assert doc.data["images"]["img-00002"]["min_disk"] == "1.5e1"  # YAML 1.1: a float needs a dot
    assert str(doc.location_of(("images", "img-00000", "description"))) == "f.yaml:10:18"


# Texts on which libyaml and PyYAML's own parser disagree when used directly (values, marks or whether
# the text is YAML at all): the located document is PyYAML's whichever parser is present.
CORNERS = {
    "a tab after a colon": "a:\tb\n",
    "a bare ! tag": "a: !\n",
    "an explicit key with no value": "? x\n",
    "an empty document after ---": "---\n",
    "a block scalar header with a comment": "a: >#\n  x\n",
    "a byte order mark inside the text": "a\ufeffb: 1\n",
    "a line break only YAML sees": "a: 1\u2028b: 2\n",
    "a lone CR": "a: 1\rb: 2\n",
    "an undefined alias": "a: *nowhere\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "a YAML directive": "%YAML 1.1\n---\na: 1\n",
    "a flow sequence holding an empty key": "[? ]\n",
    "a tag libyaml refuses": "!]]\n",
    "a syntax error": "a: [1, 2\nb: 3\n",
    "a control character": "a: \x08\n",
    "a lone surrogate": "a: \udc80\n",
    "an unreadable !!int": 'a: !!int "12x"\n',
    "a duplicate key after a merge": "a:\n  name: x\n  <<: {other: 1}\n  name: y\n",
}


@needs_libyaml
@pytest.mark.parametrize("text", CORNERS.values(), ids=CORNERS.keys())
def test_where_the_parsers_disagree_the_pure_one_reads(monkeypatch, text):
    assert_parsers_agree(text, monkeypatch)


# -- bounds on the event stream ----------------------------------------------------------------------------


@pytest.mark.usefixtures("yaml_parser")
def test_deep_nesting_is_refused_at_the_level_past_the_limit():
    """On the events, before the composer recurses: located at the first collection nested too deep (it
    was `1:1: nested too deeply to read`, the composer's RecursionError, at thousands of levels)."""
    for depth in (MAX_DEPTH + 1, 5000):
        doc = load_located("a: " + "[" * depth + "]" * depth + "\n", "f.yaml")
        assert [str(p) for p in doc.problems] == ["f.yaml:1:68: YAML too complex: nested more than 64 levels deep"]
    assert load_located("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n", "f.yaml").problems == []


@needs_libyaml
def test_libyaml_never_composes_deep_nesting(monkeypatch):
    """libyaml's composer recurses in C: a deeply nested text is refused on its events, never composed."""
    composed = []

    class Spy(yaml.CSafeLoader):
        def get_single_node(self):
            composed.append(self)
            return super().get_single_node()

    monkeypatch.setattr(yaml, "CSafeLoader", Spy)
    doc = load_located("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "f.yaml")
    assert composed == [] and "nested more than 64 levels deep" in doc.problems[0].message


def alias_bomb(levels: int) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@needs_libyaml
def test_an_alias_bomb_ends_in_the_same_located_error_on_both_parsers(monkeypatch):
    *_, problems = assert_parsers_agree(alias_bomb(9), monkeypatch)
    assert problems == ["f.yaml:5:5: YAML too complex: more than 200,000 values once aliases are expanded"]
    *_, problems = assert_parsers_agree(alias_bomb(4), monkeypatch, max_values=1000)
    assert problems == ["f.yaml:2:5: YAML too complex: more than 1,000 values once aliases are expanded"]


@needs_libyaml
def test_the_value_limit_counts_values_not_keys_on_both_parsers(monkeypatch):
    """Exactly `max_values` values pass (keys are not values), one more is refused where it starts."""
    text = "".join(f"k{i}: v\n" for i in range(99))  # the mapping and 99 values
    assert assert_parsers_agree(text, monkeypatch, max_values=100)[-1] == []
    assert assert_parsers_agree(text + "last: v\n", monkeypatch, max_values=100)[-1] == [
        "f.yaml:100:7: YAML too complex: more than 100 values once aliases are expanded"
    ]


# -- agreement on anything (Hypothesis) ----------------------------------------------------------------------

TOKENS = list("ab1: -[]{},\n#&*!|>'\"?%@`.\\") + [
    "  ", "\n  ", "\n- ", "é", "한", "😀", "\t", "\r\n", "\x85", "\u2028", "\ufeff", "---", "...", "<<: ", "&a ",
    "*a", "a: ", "0o7", "1e3", "yes", "~", "null", "2001-01-01", ": |\n  x", "\\x41", "\\N", "%YAML 1.1\n",
]  # fmt: skip
token_soups = st.lists(st.sampled_from(TOKENS), max_size=20).map("".join)
dumped = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
).flatmap(lambda doc: st.sampled_from([None, True, False]).map(lambda flow: yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)))  # fmt: skip


@needs_libyaml
@settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(token_soups, dumped, st.text(max_size=40)))
def test_the_two_parsers_agree_on_any_text(monkeypatch, text):
    assert_parsers_agree(text, monkeypatch)
