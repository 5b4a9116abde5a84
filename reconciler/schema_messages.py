"""JSON Schema errors in words a user can act on, each at the file:line:column it is about.

jsonschema's own messages quote Python reprs ("'yes' is not of type 'boolean'") and say nothing about
intent. This module turns each error into one located `Problem`: unknown keys at the key itself with a
"did you mean", wrong types naming what was expected, patterns explained by what they stand for, and
quoted forms suggested for YAML scalars that were not meant as numbers or booleans.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

import jsonschema

from reconciler.render import escape
from reconciler.yaml_source import DocPath, LocatedDocument, Problem, format_path

# How much of an over-long value a message shows: enough to find it, never the whole value (it may be
# thousands of characters, and it is not the tool's text).
SHOWN_PREFIX = 40

# The schema keyword naming keys left out of an object on purpose, each with why (an annotation: JSON Schema
# ignores it, this module reads it).
REFUSED = "x-refused"

# The schema keyword saying why a key needs others beside it: by key beside a dependentRequired, or as one
# string in a schema that dependentSchemas applies when a key is given. Read by this module.
REQUIRES = "x-requires"
DEPENDENT_SCHEMAS = "dependentSchemas"

# What a pattern stands for, by the $defs name the schemas give it.
PATTERN_MEANINGS = {
    "^[A-Z][A-Z0-9_]{0,30}$": (
        "an environment prefix like PARTNER: an uppercase letter, then uppercase letters, digits or '_', at most "
        "31 characters"
    ),
    "^[A-Z]{2,3}[0-9]+$": "a region name like KR1 or JP1",
    "^[0-9a-f]{32}$": "a project id (32 lowercase hexadecimal characters)",
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$": (
        "a key: letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters"
    ),
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$": "a set name: letters, digits, '.', '_' or '-', at most 63 characters",
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": "an image id (a UUID)",
    "^[0-9a-fA-F]{64}$": "a SHA-256 digest (64 hexadecimal characters, 0-9 and a-f)",
    "^[0-9a-fA-F]{128}$": "a SHA-512 digest (128 hexadecimal characters, 0-9 and a-f)",
}
# Patterns whose only length limit is a bounded repetition at the end: a value of allowed characters that
# fails only by its length is told its length and the limit (the longest value the pattern matches), not
# that its characters are wrong.
PATTERN_MAX_LENGTHS = {
    "^[A-Z][A-Z0-9_]{0,30}$": 31,
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$": 128,
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$": 63,
}
_BOUNDED_END = re.compile(r"\{0,\d+\}\$$")
TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _yaml_scalar(value: Any) -> str:
    """A value as YAML writes it where that differs from Python (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _yaml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return type(value).__name__


def problems(validator: jsonschema.Validator, doc: LocatedDocument) -> Iterator[Problem]:
    """Every schema problem of `doc`, one per error (one per unknown key)."""
    for error in validator.iter_errors(doc.data):
        yield from _describe(error, doc)


def _describe(error: jsonschema.ValidationError, doc: LocatedDocument) -> Iterator[Problem]:
    path: DocPath = tuple(error.absolute_path)
    where = format_path(path) or "document"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        yield from _unknown_key_problems(error, doc, path)
        return
    if error.validator == "not" and "propertyNames" in error.absolute_schema_path:
        # A key excluded in this context, e.g. `state` for kind: nhn; the schema says why.
        key = error.instance
        why = error.schema.get("description") if isinstance(error.schema, dict) else None
        message = f"{format_path(path + (key,))}: not allowed here" + (f" ({why})" if why else "")
        yield Problem(doc.key_location_of(path + (key,)), message)
        return
    if error.validator == "propertyNames":
        yield Problem(doc.location_of(path), f"{where}: {error.message}")
        return
    if DEPENDENT_SCHEMAS in error.absolute_schema_path and isinstance(error.instance, dict):
        yield _dependent_schema_problem(error, doc, path)
        return
    asked = _asked_keys_problems(error, doc, path)
    if asked is not None:
        yield from asked
        return
    if error.validator == "oneOf" and isinstance(error.instance, dict) and error.context:
        # A mapping meant for the object form (e.g. a copy {region: ..., protected: ...}): report what is
        # wrong inside it rather than "matches no form".
        inner = _object_branch_errors(error)
        if inner:
            for sub in inner:
                yield from _describe(sub, doc)
            return
    if list(error.absolute_schema_path)[-2:-1] == ["propertyNames"] or "propertyNames" in error.absolute_schema_path:
        key = error.instance
        # The key is what is wrong here: the path names at most its start, the message says the rest.
        shown = key[:SHOWN_PREFIX] + "..." if isinstance(key, str) and len(key) > SHOWN_PREFIX else key
        yield Problem(
            doc.key_location_of(path + (key,)), f"{format_path(path + (shown,))}: {_pattern_message(error, key)}"
        )
        return
    yield Problem(doc.location_of(path), f"{where}: {_message(error, doc, path)}")


def _unknown_key_problems(error: jsonschema.ValidationError, doc: LocatedDocument, path: DocPath) -> Iterator[Problem]:
    """Each key the mapping may not hold, at the key: why it is refused, or the key meant, or those allowed."""
    allowed = list(error.schema.get("properties", {}))
    # Keys a schema leaves out on purpose (a family's image has no `protected`: the family owns it) say why.
    refused = error.schema.get(REFUSED, {})
    for key in sorted(set(error.instance) - set(allowed), key=str):
        message = f"{format_path(path + (key,))}: unknown key"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if key in refused:
            message = f"{format_path(path + (key,))}: not allowed here: {refused[key]}"
        elif close:
            message += f" (did you mean {close[0]!r}?)"
        elif allowed:
            message += f" (expected one of: {', '.join(allowed)})"
        yield Problem(doc.key_location_of(path + (key,)), message)


def _asked_keys_problems(
    error: jsonschema.ValidationError, doc: LocatedDocument, path: DocPath
) -> list[Problem] | None:
    """The problems of a keyword that only asks a mapping for keys, when it has its own words here; None for
    every other error (and for a oneOf of keys asked of a mapping: _message words it)."""
    if not _requires_keys_only(error):
        return None
    if not isinstance(error.instance, dict):
        return []  # a value that is no mapping has its type reported, and no keys to ask for
    if error.validator == "dependentRequired":
        return list(_dependent_problems(error, doc, path))
    return None


def _requires_keys_only(error: jsonschema.ValidationError) -> bool:
    """Whether the keyword only asks for keys (a oneOf of `required` branches, a dependentRequired)."""
    if error.validator == "dependentRequired":
        return True
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    return bool(branches) and all(isinstance(b, dict) and set(b) <= {"required", "not"} for b in branches)


def _dependent_problems(error: jsonschema.ValidationError, doc: LocatedDocument, path: DocPath) -> Iterator[Problem]:
    """A key given without the keys it needs (a rule's set: without family:): at that key, saying which are
    missing and, when the schema says, why."""
    why = error.schema.get(REQUIRES, {}) if isinstance(error.schema, dict) else {}
    for key, needed in error.validator_value.items():
        missing = [name for name in needed if name not in error.instance]
        if key not in error.instance or not missing:
            continue
        message = f"{format_path(path + (key,))}: given without {' and '.join(missing)}"
        if key in why:
            message += f"; {why[key]}"
        yield Problem(doc.key_location_of(path + (key,)), message)


def _dependent_schema_problem(error: jsonschema.ValidationError, doc: LocatedDocument, path: DocPath) -> Problem:
    """A key given without what it needs beside it, asked by a dependentSchemas schema (an upload's file: without
    disk_format, a sha256 without file: or url:): at that key, or at the later of two keys given where one is
    allowed, saying which keys and, when the schema says, why."""
    schema_path = list(error.absolute_schema_path)
    key = schema_path[len(schema_path) - schema_path[::-1].index(DEPENDENT_SCHEMAS)]
    given, missing = _keys_asked(error)
    at, words = (given[-1], f"{' and '.join(given)} are both given") if len(given) > 1 else (key, missing)
    why = error.schema.get(REQUIRES) if isinstance(error.schema, dict) else None
    message = f"{format_path(path + (at,))}: {words}" + (f"; {why}" if isinstance(why, str) else "")
    return Problem(doc.key_location_of(path + (at,)), message)


def _keys_asked(error: jsonschema.ValidationError) -> tuple[list[str], str]:
    """The keys a `required` or a oneOf/anyOf of `required` branches asks for that the mapping gives, and the
    words for those it lacks ("given without a and b", or "given without a or b" for alternatives)."""
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [], f"given without {' and '.join(missing)}"
    names = [b["required"][0] for b in error.validator_value if isinstance(b, dict) and b.get("required")]
    return [name for name in names if name in error.instance], f"given without {' or '.join(names)}"


def _object_branch_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors of the one oneOf branch that takes a mapping (the others fail on the type at the top),
    written inline or by $ref; none when no single branch does."""
    by_branch: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(list(sub.relative_schema_path)[:1][0], []).append(sub)
    mapping_branches = [
        errors
        for errors in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errors)
    ]
    return mapping_branches[0] if len(mapping_branches) == 1 else []


def _parses_as(text: str, expected: Any) -> bool:
    """Whether `text` would be the expected type if written without quotes."""
    if expected == "integer":
        return text.strip().lstrip("-").isdigit()
    if expected == "number":
        try:
            float(text)
        except ValueError:
            return False
        return True
    if expected == "boolean":
        return text.strip().lower() in ("true", "false")
    return False


def _pattern_message(error: jsonschema.ValidationError, value: Any) -> str:
    if error.validator in ("maxLength", "minLength"):  # of a key, under propertyNames
        return _length_message(error)
    pattern = str(error.validator_value) if error.validator == "pattern" else ""
    limit = _length_limit(pattern, value)
    if limit is not None:
        return f"too long: {len(value)} characters, at most {limit} allowed (starts {_quoted(value)})"
    meaning = PATTERN_MEANINGS.get(pattern)
    if meaning:
        return f"{_quoted(value)} is not {meaning}"
    return error.message


def _length_limit(pattern: str, value: Any) -> int | None:
    """The pattern's length limit when `value` breaks only that: every character allowed, too many of them."""
    limit = PATTERN_MAX_LENGTHS.get(pattern)
    if limit is None or not isinstance(value, str) or len(value) <= limit:
        return None
    unbounded = _BOUNDED_END.sub("*$", pattern)
    return limit if re.search(unbounded, value) else None


def quoted(value: Any) -> str:
    """A value as a message quotes it: escaped, and cut to its first SHOWN_PREFIX characters."""
    return _quoted(value)


def _quoted(value: Any) -> str:
    """A value as a message quotes it: escaped, and cut to its first SHOWN_PREFIX characters."""
    if not isinstance(value, str):
        return repr(value)
    if len(value) <= SHOWN_PREFIX:
        return f"'{escape.text(value)}'"
    return f"'{escape.text(value[:SHOWN_PREFIX])}...'"


def _length_message(error: jsonschema.ValidationError) -> str:
    """jsonschema says "'<the whole value>' is too long": say the limit and the length instead."""
    limit, value = error.validator_value, error.instance
    if error.validator == "maxLength":
        return f"too long: {len(value)} characters, at most {limit} allowed (starts {_quoted(value)})"
    if error.validator.startswith("min") and limit == 1:
        return "must not be empty"
    if error.validator == "minLength":
        return f"too short: {len(value)} characters, at least {limit} needed"
    noun = "items" if error.validator.endswith("Items") else "keys"
    relation = "at most" if error.validator.startswith("max") else "at least"
    return f"{len(value)} {noun}, {relation} {limit} allowed"


def _message(error: jsonschema.ValidationError, doc: LocatedDocument, path: DocPath) -> str:
    validator, expected, value = error.validator, error.validator_value, error.instance
    if validator == "type":
        wanted = " or ".join(TYPE_NAMES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
        written = doc.scalar_text.get(path)
        message = f"expected {wanted}, got {_yaml_kind(value)}"
        if expected == "string" and written and not isinstance(value, (dict, list)):
            # YAML read `1.0`, `yes`, `on` as a number or boolean; the user meant the text.
            message += f" ({written}); quote it: '{written}'"
        elif isinstance(value, str) and _parses_as(value, expected):
            message += f" ({value!r}); remove the quotes"
        return message
    if validator == "pattern":
        return _pattern_message(error, value)
    if validator == "enum":
        return f"{_quoted(value)} is not one of: {', '.join(str(v) for v in expected)}"
    if validator == "const":
        return f"must be {_yaml_scalar(expected)}, not {_yaml_scalar(value)}"
    if validator == "required":
        return error.message.replace("is a required property", "is required")
    if validator in ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties"):
        return _length_message(error)
    if validator in ("minimum", "maximum", "uniqueItems"):
        return error.message
    if validator == "oneOf":
        return _one_of_message(error, value)
    if validator == "anyOf":
        return _any_of_message(error)
    return error.message


def _any_of_message(error: jsonschema.ValidationError) -> str:
    """Branches that each require one key (a manifest needs images:, families:, removed:, or several): name
    the keys."""
    required = [b.get("required", [None])[0] for b in error.validator_value if isinstance(b, dict)]
    if all(required) and len(required) > 1:
        more = "or both" if len(required) == 2 else "or several"
        return f"give {', '.join(f'{name}:' for name in required[:-1])} or {required[-1]}: ({more})"
    return "does not match any of the accepted forms"


def _one_of_message(error: jsonschema.ValidationError, value: Any) -> str:
    branches = error.validator_value
    required = [b.get("required", [None])[0] for b in branches if isinstance(b, dict)]
    if all(required) and len(required) > 1:
        given = [name for name in required if isinstance(value, dict) and name in value]
        if len(given) > 1:  # say which, not only that the mapping matches no form
            written = f"{', '.join(given[:-1])} and {given[-1]} are {'both' if len(given) == 2 else 'all'} given: "
            return f"{written}give exactly one of: {', '.join(required)}"
        return f"give exactly one of: {', '.join(required)}"
    refs = [b.get("$ref", "") for b in branches if isinstance(b, dict)]
    if any(ref.endswith("/region") for ref in refs):
        return "expected a region name like KR1, or a mapping with region: and optional name, protected, image"
    return "does not match any of the accepted forms"
