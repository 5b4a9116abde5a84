"""The compiled schema checks (reconciler/schemas.py, `quick_check`) answer exactly as jsonschema does.

Validation asks jsonschema for messages only when the quick check does not vouch for a document, so a
check that said "valid" to a document jsonschema refuses would let a broken manifest through unreported.
The property tested: on every document, the quick check either gives up (_Unsure) or says what
jsonschema's Draft202012Validator says: valid exactly when it yields no error. Documents: every YAML
file of the repository against every schema compiled, and Hypothesis mutations of valid ones (a value
anywhere replaced by any other, floats, NaN, booleans and numbers included), since a check that errs on
the lenient side under a `not` or a `oneOf` is wrong in both directions.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import schemas
from reconciler.schemas import _Unsure, load_schema, quick_check
from reconciler.yaml_source import load_located

REPO = Path(__file__).resolve().parents[2]
COMPILED = ["manifest", "root", "seed", "plan"]
YAML_FILES = sorted(
    path
    for folder in ("examples", "tests")
    for path in (REPO / folder).rglob("*.y*ml")
    if path.is_file() and not path.is_symlink() and path.stat().st_size < 200_000
)


def jsonschema_valid(name: str, document: Any) -> bool:
    return not any(True for _ in jsonschema.Draft202012Validator(load_schema(name)).iter_errors(document))


def quick(name: str, document: Any) -> bool | None:
    """The quick check's answer, None when it gives up."""
    check = quick_check(name)
    assert check is not None, f"{name} should compile"
    try:
        return check(document)
    except _Unsure:
        return None


def agrees(name: str, document: Any) -> None:
    answer = quick(name, document)
    if answer is not None:
        assert answer == jsonschema_valid(name, document), (name, document)


@pytest.mark.parametrize("name", COMPILED)
def test_the_schemas_validation_reads_compile(name: str) -> None:
    assert quick_check(name) is not None


def test_the_corpus_is_not_empty() -> None:
    assert len(YAML_FILES) > 100


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_yaml_file_of_the_repository_is_judged_as_jsonschema_judges_it(path: Path) -> None:
    doc = load_located(path.read_text(encoding="utf-8", errors="replace"), path.name)
    for name in COMPILED:
        agrees(name, doc.data)


def test_a_valid_manifest_is_vouched_for() -> None:
    doc = load_located((REPO / "examples/quickstart/images/web.yaml").read_text(encoding="utf-8"), "web.yaml")
    assert jsonschema_valid("manifest", doc.data)
    assert schemas.surely_valid("manifest", doc.data)


UUID = "00000000-0000-4000-8000-000000000001"
PROJECT = "8989447062e04a818baf9e073fd04fa7"
VALID_MANIFEST = {
    "version": 1,
    "images": {
        "web": {
            "name": "web",
            "region": "KR1",
            "source": {"image": UUID, "takeover": False},
            "min_disk": 10,
            "download": True,
            "properties": {"os_type": "linux"},
            "copies": ["JP1", {"region": "KR2", "name": "web-kr2", "protected": True}],
            "share": [PROJECT],
        },
        "up": {"source": {"file": "build/up.qcow2", "sha256": "a" * 64, "disk_format": "qcow2"}},
        "made": {"source": {"instance": "golden", "running": "stop"}},
    },
    "families": {
        "base": {
            "versions": ["2026-10", {"version": "2026-11", "source": {"image": UUID}}],
            "keep": 2,
            "protect_newest": 1,
            "image": {"source": {"instance": "golden-{version}"}, "name": "base-{version}", "copies": ["JP1"]},
        }
    },
    "removed": [{"key": "old", "destroy": False}],
    "accept": [{"owner": PROJECT, "family": "web-base", "set": "platform"}],
    "reject": [{"owner": PROJECT, "name": "*"}],
}
VALID_ROOT = {
    "version": 1,
    "set": "platform",
    "cloud": {"kind": "nhn", "project": "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b", "regions": ["KR1", "JP1"]},
    "defaults": {"region": "KR1"},
}


@pytest.mark.parametrize(("name", "document"), [("manifest", VALID_MANIFEST), ("root", VALID_ROOT)])
def test_the_mutations_start_from_valid_documents(name: str, document: dict[str, Any]) -> None:
    assert jsonschema_valid(name, document)
    assert quick(name, document) is True


# Values that differ by what jsonschema's equality and type checks make of Python's types: 1 and True,
# 1.0 (an integer to it), NaN (never less than a minimum), 0, empty containers, lists of lists.
replacements = st.one_of(
    st.sampled_from([None, True, False, 0, 1, -1, 1.0, 0.5, math.nan, math.inf, "", "1", "KR1", "JP1", UUID, PROJECT]),
    st.sampled_from(["image", "instance", "file", "url", "running", "takeover", "region", "version", "set", "family"]),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.lists(st.sampled_from(["JP1", "KR1", PROJECT, 1, True, [1]]), max_size=3),
    st.dictionaries(st.sampled_from(["region", "image", "instance", "file", "x"]), st.sampled_from([UUID, "a", 1]), max_size=2),
)  # fmt: skip


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value`, its own () included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(paths(item, prefix + (i,)))
    return found


def mutated(document: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> Any:
    """`document` with the value at `path` replaced, deleted, or given a new key `value` beside it."""
    result = copy.deepcopy(document)
    if not path:
        return value
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict) and isinstance(value, str):
        parent[value] = copy.deepcopy(parent[path[-1]])
    else:
        parent[path[-1]] = value
    return result


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name_and_document=st.sampled_from([("manifest", VALID_MANIFEST), ("root", VALID_ROOT)]),
    choice=st.data(),
    action=st.sampled_from(["replace", "replace", "delete", "add"]),
    value=replacements,
)
def test_a_mutated_document_is_judged_as_jsonschema_judges_it(
    name_and_document: tuple[str, dict[str, Any]], choice: st.DataObject, action: str, value: Any
) -> None:
    name, document = name_and_document
    path = choice.draw(st.sampled_from(paths(document)))
    agrees(name, mutated(document, path, action, value))


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"not": {"minimum": 0}}, math.nan, False),  # NaN is never less than the minimum: valid under it
        ({"not": {"maximum": 0}}, math.nan, False),
        ({"const": 1}, True, False),  # a boolean is no number
        ({"const": True}, 1, False),
        ({"const": 1}, 1.0, True),
        ({"enum": ["a", None]}, None, True),
        ({"not": {"type": "integer"}}, True, True),
        ({"oneOf": [{"type": "string"}, {"minLength": 2}]}, "abc", False),  # valid under both
        ({"type": "object", "dependentRequired": {"set": ["family"]}}, {"set": "x"}, False),
        ({"propertyNames": {"pattern": "^a"}}, {"b": 1}, False),
        ({"contains": {"const": 1}}, [], False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
        ({"then": {"required": ["b"]}}, {"a": 1}, True),  # then without if is no keyword
    ],
)
def test_keywords_where_python_and_json_schema_differ(schema: dict[str, Any], value: Any, expected: bool) -> None:
    assert jsonschema_valid_schema(schema, value) is expected
    assert schemas._Compiler(schema).compile(schema)(value) is expected


def jsonschema_valid_schema(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize(("schema", "value"), [({"type": "integer"}, 3.0), ({"uniqueItems": True}, [[1], [1]])])
def test_what_the_checks_cannot_judge_exactly_goes_to_jsonschema(schema: dict[str, Any], value: Any) -> None:
    with pytest.raises(_Unsure):
        schemas._Compiler(schema).compile(schema)(value)


@pytest.mark.parametrize("keyword", [{"patternProperties": {"^a": {}}}, {"format": "uri"}, {"$ref": "other.json"}])
def test_a_schema_with_a_keyword_the_checks_do_not_know_is_left_to_jsonschema(keyword: dict[str, Any]) -> None:
    with pytest.raises(schemas._Unsupported):
        schemas._Compiler(keyword).compile(keyword)


def test_validating_a_valid_root_never_walks_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the checks: a valid root's documents are not walked by jsonschema (most of the time
    `reconciler validate` took on 10,000 keys); an invalid one still is, for its messages."""
    from reconciler import validate

    def walked(name: str) -> None:
        raise AssertionError(f"jsonschema walked a valid {name} document")

    monkeypatch.setattr(validate, "_validator", walked)
    state = validate.load_desired_state(REPO / "examples/quickstart")
    assert state.images
