"""The plan's JSON document (`format_version` "1" or "1.1", schemas/plan.schema.json) and its inverse, in
one place. Pure: no I/O.

A plan is written as "1" unless it holds a kind a later format_version added (plan_kinds.Kind.since: accept
and reject are "1.1"); "1.1" only adds, so a plan without those kinds is byte-identical to what "1" wrote.

`plan_to_json` writes the document every output is made from (render/json.py gives its bytes, the text
and Markdown renderings read it, `plan --out` saves it with a `saved` section); `plan_from_json` reads a
document valid against the schema back into the plan it was written from, so that
`plan_to_json(plan_from_json(doc)) == doc`. The layout is stable: an action's fixed fields first, then its
kind-specific details sorted by name, then its changes, expects, reason and dependencies; every mapping
sorted. A warning's hint is not written (refusals carry theirs), so it reads back as None.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from reconciler.plan import (
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    Action,
    Change,
    Dependency,
    Finding,
    Plan,
    Reason,
    Target,
    format_needed,
)
from reconciler.plan_kinds import ACTION_KINDS

# The fields every action has; any other field of an action's document is one of its details.
ACTION_FIELDS = frozenset({"id", "kind", "key", "region", "image_id", "changes", "expects", "reason", "depends_on"})


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


# -- to JSON --------------------------------------------------------------------------------------


def format_version(plan: Plan) -> str:
    """The oldest format_version whose readers know every kind of the plan's actions."""
    needed = {format_needed(action) for action in plan.actions} | {FORMAT_VERSION}
    return max(needed, key=FORMAT_VERSIONS.index)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": format_version(plan),
        "set": plan.set,
        "target": target_to_json(plan.target),
        "actions": [action_to_json(action) for action in plan.actions],
        "refusals": [finding_to_json(r, with_hint=True) for r in plan.refusals],
        "warnings": [finding_to_json(w, with_hint=False) for w in plan.warnings],
        "info": {k: plan.info[k] for k in sorted(plan.info)},
        "summary": summary(plan),
    }


def target_to_json(target: Target) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": target.kind,
        "project": target.project,
        "identity": target.identity,
        "regions": list(target.regions),
    }
    if target.state is not None:
        doc["state"] = target.state
    return doc


def action_to_json(action: Action) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": action.id,
        "kind": action.kind,
        "key": action.key,
        "region": action.region,
        "image_id": action.image_id,
    }
    doc.update({k: action.details[k] for k in sorted(action.details)})
    doc["changes"] = {k: _change_to_json(action.changes[k]) for k in sorted(action.changes)}
    doc["expects"] = {k: dict(sorted(action.expects[k].items())) for k in sorted(action.expects)}
    doc["reason"] = {"code": action.reason.code, "message": action.reason.message, "source": action.reason.source}
    doc["depends_on"] = [{"id": d.id, "reason": d.reason} for d in action.depends_on]
    return doc


def _change_to_json(change: Change) -> dict[str, Any]:
    return {"before": change.before, "after": change.after}


def finding_to_json(finding: Finding, *, with_hint: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": finding.code,
        "key": finding.key,
        "region": finding.region,
        "message": finding.message,
    }
    if with_hint:
        doc["hint"] = finding.hint
    doc["source"] = finding.source
    if finding.details:
        doc["details"] = {k: finding.details[k] for k in sorted(finding.details)}
    return doc


def summary(plan: Plan) -> dict[str, Any]:
    """The counts a reader sees first: actions by kind (in the vocabulary's order), refusals, warnings,
    and the bytes the copies move as far as known now (an image made in this plan has no size yet)."""
    counts = Counter(action.kind for action in plan.actions)
    copies = [a.details.get("bytes") for a in plan.actions if a.kind == "copy"]
    doc: dict[str, Any] = {
        "actions": {kind: counts[kind] for kind in ACTION_KINDS if counts[kind]},
        "refusals": len(plan.refusals),
        "warnings": len(plan.warnings),
    }
    if copies:
        doc["copy_bytes"] = sum(b for b in copies if b is not None)
        doc["copy_bytes_unknown"] = sum(1 for b in copies if b is None)
    return doc


# -- from JSON ------------------------------------------------------------------------------------


def plan_from_json(doc: Mapping[str, Any]) -> Plan:
    """The plan a document valid against the plan schema was written from (its summary is derived, and
    a `saved` section is not part of the plan)."""
    return Plan(
        set=doc["set"],
        target=target_from_json(doc["target"]),
        actions=tuple(action_from_json(a) for a in doc["actions"]),
        refusals=tuple(finding_from_json(r) for r in doc["refusals"]),
        warnings=tuple(finding_from_json(w) for w in doc["warnings"]),
        info=_frozen(doc["info"]),
    )


def target_from_json(doc: Mapping[str, Any]) -> Target:
    return Target(doc["kind"], doc["project"], doc["identity"], tuple(doc["regions"]), doc.get("state"))


def action_from_json(doc: Mapping[str, Any]) -> Action:
    reason = doc["reason"]
    return Action(
        id=doc["id"],
        kind=doc["kind"],
        key=doc["key"],
        region=doc["region"],
        reason=Reason(reason["code"], reason["message"], reason["source"]),
        image_id=doc["image_id"],
        changes=_frozen({k: Change(v["before"], v["after"]) for k, v in doc["changes"].items()}),
        expects=_frozen({k: _frozen(v) for k, v in doc["expects"].items()}),
        depends_on=tuple(Dependency(d["id"], d["reason"]) for d in doc["depends_on"]),
        details=_frozen({k: v for k, v in doc.items() if k not in ACTION_FIELDS}),
    )


def finding_from_json(doc: Mapping[str, Any]) -> Finding:
    details = _frozen(doc.get("details", {}))
    return Finding(doc["code"], doc["key"], doc["region"], doc["message"], doc["source"], doc.get("hint"), details)
