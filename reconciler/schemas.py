"""Find the JSON Schemas shipped with the package, in a wheel and in an editable install alike.

There is one copy of each schema, in the repository's top-level `schemas/` folder. A wheel carries it as
`reconciler/_schemas` (hatchling `force-include`, see pyproject.toml); an editable install does not (the
force-include is not applied), so we fall back to the folder beside the package. Tested for both.
"""

from __future__ import annotations

import json
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
