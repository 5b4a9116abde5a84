"""The JSON document of a run over several roots (`reconciler plan ROOT ROOT ... --format json`, and what
`plan ROOT ROOT ... --out` saves): format "reconciler-plans", its own schema (schemas/plans.schema.json).
One root never uses it: its output is the plan document alone, unchanged.

An entry is one root's result, a plain dict, in the order the roots were given:
- planned: `{"root": <the root as given>, "plan": <the plan's JSON document>}`;
- errored: `{"root": ..., "target": <what it targets> | None, "error": {"message", "hint", "details"}}`
  (`target` is None when the root did not even validate).
The document's `roots[]` holds, in the same order, each plan document with `root` added first, or the
errored entry as it is; `summary` adds the roots' counts up. Pure: no I/O (but for reading the schema).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from reconciler.plan_kinds import ACTION_KINDS
from reconciler.render import escape

FORMAT = "reconciler-plans"
FORMAT_VERSION = "1"


def document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The document for the roots' `entries`, in their order."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "roots": [_item(entry) for entry in entries],
        "summary": summary(entries),
    }


def _item(entry: dict[str, Any]) -> dict[str, Any]:
    if "plan" in entry:
        return {"root": entry["root"], **{key: value for key, value in entry["plan"].items() if key != "root"}}
    return {"root": entry["root"], "target": entry["target"], "error": entry["error"]}


def summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The roots' counts added up: actions by kind (in the kinds' order, only kinds with actions)."""
    plans = [entry["plan"] for entry in entries if "plan" in entry]
    actions: Counter[str] = Counter()
    for plan in plans:
        actions.update(plan["summary"]["actions"])
    return {
        "roots": len(entries),
        "planned": len(plans),
        "errors": len(entries) - len(plans),
        "refusals": sum(plan["summary"]["refusals"] for plan in plans),
        "warnings": sum(plan["summary"]["warnings"] for plan in plans),
        "actions": {kind: actions[kind] for kind in ACTION_KINDS if actions[kind]},
        "changes": sum(actions.values()) > 0,
    }


def entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries a document was made from (a saved `reconciler-plans` file read back; validate first)."""
    return [_entry(item) for item in document["roots"]]


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    if "error" in item:
        return {"root": item["root"], "target": item.get("target"), "error": item["error"]}
    return {"root": item["root"], "plan": {key: value for key, value in item.items() if key != "root"}}


MESSAGE_MAX = 200  # characters of one schema message: it may quote a whole value from the file


def validate(document: Any) -> list[str]:
    """The document's schema problems, each `where: what` (`roots/1/actions/0/kind: 'zap' is not one of
    ...`, `(document)` for the top), sorted and escaped (the values quoted come from a file anyone may have
    edited); empty when it is valid. The plans schema checks each planned root against the plan schema."""
    from reconciler.schemas import validator

    return sorted(_problem(error) for error in validator("plans").iter_errors(document))


def _problem(error: Any) -> str:
    where = "/".join(escape.text(str(part)) for part in error.absolute_path) or "(document)"
    message = error.message if len(error.message) <= MESSAGE_MAX else error.message[: MESSAGE_MAX - 1] + "…"
    return f"{where}: {escape.text(message)}"
