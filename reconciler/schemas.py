"""Find the JSON Schemas shipped with the package, in a wheel and in an editable install alike.

There is one copy of each schema, in the repository's top-level `schemas/` folder. A wheel carries it as
`reconciler/_schemas` (hatchling `force-include`, see pyproject.toml); an editable install does not (the
force-include is not applied), so we fall back to the folder beside the package. Tested for both.

Each schema also compiles to a quick check that says whether a document is surely valid, so that only
the documents it does not vouch for are walked by jsonschema (see "a quick yes" below).
"""

from __future__ import annotations

import json
import numbers
import re
import urllib.parse
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


def schema_dir() -> Path:
    """The folder holding the schema files."""
    packaged = resources.files("reconciler").joinpath("_schemas")
    if packaged.is_dir():
        return Path(str(packaged))
    source_tree = Path(__file__).resolve().parent.parent / "schemas"
    if source_tree.is_dir():
        return source_tree
    raise FileNotFoundError("reconciler's schemas are missing from this installation")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load `schemas/<name>.schema.json` (e.g. `load_schema("seed")`)."""
    path = schema_dir() / f"{name}.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def validator(name: str) -> Any:
    """A Draft 2020-12 validator for `schemas/<name>.schema.json` that resolves its references to the other
    schemas shipped with it by their `$id` (the plans schema refers to the plan schema), never over the
    network."""
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for path in sorted(schema_dir().glob("*.schema.json")):
        contents = load_schema(path.name.removesuffix(".schema.json"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    registry: Registry = Registry().with_resources(resources)
    return jsonschema.Draft202012Validator(load_schema(name), registry=registry)


# -- a quick yes: is a document surely valid? -------------------------------------------------------
#
# jsonschema walks a document keyword by keyword, making a validator per subschema and resolving each
# `$ref` through `referencing` as it goes: for a valid 10,000-image manifest that is most of what
# `reconciler validate` costs. Most documents are valid, and a valid one has no messages to word. So each
# schema is also compiled, once, into plain Python checks that answer one question, "surely valid?", and
# only a document they do not vouch for is walked by jsonschema, whose errors become the messages. The
# checks say yes only when jsonschema would find no error: a keyword they do not know makes the whole
# schema go to jsonschema, and a value they cannot judge exactly (a float where an integer is asked, a
# list of lists that must be unique) makes the document go to it.

Check = Callable[[Any], bool]

# Keywords that never make a document invalid: annotations, and the schemas' own (schema_messages reads
# x-refused and x-requires; jsonschema ignores them). `format` is not asserted by Draft202012Validator
# without a format checker, but no schema uses it: left out, it sends a schema to jsonschema.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default", "x-refused", "x-requires"}
)
OBJECT_KEYWORDS = frozenset(
    {"properties", "additionalProperties", "required", "propertyNames", "dependentRequired", "dependentSchemas"}
)


class _Unsupported(Exception):
    """The schema uses something the quick checks do not implement: jsonschema alone checks it."""


class _Unsure(Exception):
    """A value the quick checks cannot judge exactly as jsonschema does: jsonschema judges the document."""


def surely_valid(name: str, instance: Any) -> bool:
    """True only when `instance` is valid under `schemas/<name>.schema.json` (no error from jsonschema's
    Draft202012Validator); False when it may not be, for jsonschema to say why."""
    check = quick_check(name)
    if check is None:
        return False
    try:
        return check(instance)
    except (_Unsure, RecursionError):
        return False


@cache
def quick_check(name: str) -> Check | None:
    """The schema compiled to a check (see above), or None when it uses a keyword the checks do not know."""
    schema = load_schema(name)
    try:
        return _Compiler(schema).compile(schema)
    except _Unsupported:
        return None


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def every(value: Any) -> bool:
        for check in checks:
            if not check(value):
                return False
        return True

    return every


class _Compiler:
    """Compiles one schema document; `$ref`s point into it (`#/...`), each compiled once."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise _Unsupported(f"a schema that is {type(schema).__name__}")
        if "$id" in schema and schema is not self.root:
            raise _Unsupported("an embedded $id changes what $ref resolves against")
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in ANNOTATIONS or keyword in OBJECT_KEYWORDS or keyword in ("then", "else"):
                continue
            checks.append(self._keyword(keyword, value, schema))
        if OBJECT_KEYWORDS.intersection(schema):
            checks.append(self._object(schema))
        return _all(checks)

    def _keyword(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if keyword == "$ref":
            return self._ref(value)
        if keyword == "type":
            return _type(value)
        if keyword in ("const", "enum"):
            return _enum([value] if keyword == "const" else value)
        if keyword in ("pattern", "minLength", "maxLength"):
            return _string(keyword, value)
        if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return _number(keyword, value)
        if keyword in ("items", "minItems", "maxItems", "uniqueItems", "contains"):
            return self._array(keyword, value, schema)
        if keyword in ("allOf", "anyOf", "oneOf", "not", "if"):
            return self._logic(keyword, value, schema)
        raise _Unsupported(keyword)

    def _ref(self, ref: Any) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unsupported(f"$ref {ref!r}: only references within the schema are compiled")
        if ref not in self.refs:
            compiled: list[Check] = []
            self.refs[ref] = lambda value: compiled[0](value)  # a recursive reference meets this one
            compiled.append(self.compile(self._resolve(ref)))
            self.refs[ref] = compiled[0]
        return self.refs[ref]

    def _resolve(self, ref: str) -> Any:
        target: Any = self.root
        pointer = urllib.parse.unquote(ref[1:])
        for part in pointer.split("/")[1:] if pointer else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise _Unsupported(f"$ref {ref!r} points at nothing")
        return target

    def _object(self, schema: dict[str, Any]) -> Check:
        if "patternProperties" in schema:
            raise _Unsupported("patternProperties")
        properties = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        extra = self.compile(schema["additionalProperties"]) if "additionalProperties" in schema else _always
        required = tuple(schema.get("required", ()))
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None
        needs = {key: tuple(others) for key, others in schema.get("dependentRequired", {}).items()}
        dependent = {key: self.compile(sub) for key, sub in schema.get("dependentSchemas", {}).items()}

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            if any(key not in value for key in required):
                return False
            for key, item in value.items():
                if not properties.get(key, extra)(item) or (names is not None and not names(key)):
                    return False
            return _dependencies_hold(value, needs, dependent)

        return check

    def _array(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if "prefixItems" in schema or "minContains" in schema or "maxContains" in schema:
            raise _Unsupported("prefixItems, minContains or maxContains")
        if keyword in ("minItems", "maxItems"):
            bound = value
            fits = (lambda n: n >= bound) if keyword == "minItems" else (lambda n: n <= bound)
            return lambda items: not isinstance(items, list) or fits(len(items))
        if keyword == "uniqueItems":
            return _unique if value else _always
        each = self.compile(value)
        if keyword == "items":
            return lambda items: not isinstance(items, list) or all(each(item) for item in items)
        return lambda items: not isinstance(items, list) or any(each(item) for item in items)  # contains

    def _logic(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if keyword == "not":
            inner = self.compile(value)
            return lambda item: not inner(item)
        if keyword == "if":
            condition = self.compile(value)
            then = self.compile(schema.get("then", True))
            otherwise = self.compile(schema.get("else", True))
            return lambda item: then(item) if condition(item) else otherwise(item)
        subs = [self.compile(sub) for sub in value]
        if keyword == "allOf":
            return _all(subs)
        if keyword == "anyOf":
            return lambda item: any(sub(item) for sub in subs)
        return lambda item: sum(1 for sub in subs if sub(item)) == 1  # oneOf


TYPES: dict[str, Check] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def _type(names: Any) -> Check:
    wanted = [names] if isinstance(names, str) else list(names)
    if any(name not in (*TYPES, "integer", "number") for name in wanted):
        raise _Unsupported(f"type {names!r}")
    plain = [TYPES[name] for name in wanted if name in TYPES]
    numeric = [name for name in wanted if name in ("integer", "number")]

    def check(value: Any) -> bool:
        if any(test(value) for test in plain):
            return True
        return bool(numeric) and _is_numeric(value, "number" in numeric)

    return check


def _is_numeric(value: Any, any_number: bool) -> bool:
    """An integer (any number with `any_number`) as jsonschema's type checker says; _Unsure for a number
    it judges by more than its Python type (a float like 3.0 is an integer to it)."""
    if isinstance(value, bool):
        return False
    if type(value) is int:
        return True
    if type(value) is float:
        if any_number:
            return True
        raise _Unsure("a float where an integer is asked")
    if isinstance(value, numbers.Number):
        raise _Unsure(f"a {type(value).__name__}")
    return False


def _dependencies_hold(value: dict[Any, Any], needs: dict[str, tuple[str, ...]], dependent: dict[str, Check]) -> bool:
    """dependentRequired (`needs`) and dependentSchemas (`dependent`) of a mapping."""
    for key, others in needs.items():
        if key in value and any(other not in value for other in others):
            return False
    for key, sub in dependent.items():
        if key in value and not sub(value):
            return False
    return True


def _enum(allowed: list[Any]) -> Check:
    """jsonschema's equality: a boolean equals only itself (not 1 or 0), a string only a string."""
    if any(isinstance(each, (dict, list)) for each in allowed):
        raise _Unsupported("an enum or const holding a mapping or a list")

    def equal(value: Any, each: Any) -> bool:
        if value is each:
            return True
        if isinstance(value, str) or isinstance(each, str):
            return value == each
        if isinstance(value, bool) or isinstance(each, bool):
            return False  # a different boolean, or a boolean against a number or null
        if isinstance(value, (dict, list)):
            return False
        return bool(value == each)

    return lambda value: any(equal(value, each) for each in allowed)


def _string(keyword: str, bound: Any) -> Check:
    if keyword == "pattern":
        search = re.compile(bound).search
        return lambda value: not isinstance(value, str) or search(value) is not None
    if keyword == "minLength":
        return lambda value: not isinstance(value, str) or len(value) >= bound
    return lambda value: not isinstance(value, str) or len(value) <= bound


def _number(keyword: str, bound: Any) -> Check:
    # Written as jsonschema's test negated, so that NaN fares as it does there.
    compare = {
        "minimum": lambda value: not value < bound,
        "maximum": lambda value: not value > bound,
        "exclusiveMinimum": lambda value: not value <= bound,
        "exclusiveMaximum": lambda value: not value >= bound,
    }[keyword]

    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            return True
        if type(value) not in (int, float):
            raise _Unsure(f"a {type(value).__name__}")
        return compare(value)

    return check


def _unique(items: Any) -> bool:
    if not isinstance(items, list) or len(items) < 2:
        return True
    if not all(isinstance(item, str) for item in items):
        raise _Unsure("uniqueness of items other than strings")
    return len(set(items)) == len(items)
