"""The plan: plain, frozen data. Renderers and apply read only this.

`Plan.to_json()` is the versioned contract (`format_version` "1"); the text and Markdown renderings are
made from that same document, so they can never disagree with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FORMAT_VERSION = "1"
# Closed vocabulary of action kinds, in the order a summary lists them.
ACTION_KINDS = (
    "create",
    "adopt",
    "copy",
    "update",
    "protect",
    "unprotect",
    "share",
    "unshare",
    "delete",
    "stop_instance",
    "start_instance",
)


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an action exists, for humans: apply never branches on it."""

    code: str
    message: str
    source: str | None = None  # the manifest line ("images/web.yaml:3"), or None (e.g. a deletion)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "source": self.source}


@dataclass(frozen=True, slots=True)
class Dependency:
    id: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Change:
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    kind: str
    key: str
    region: str
    reason: Reason
    image_id: str | None = None  # the live image acted on; None for one not yet made
    changes: Mapping[str, Change] = field(default_factory=_frozen)
    # Preconditions: live fields this action relies on, as they will be once its dependencies ran,
    # keyed "<region>/<image id>" or "<region>/server/<server id>".
    expects: Mapping[str, Mapping[str, Any]] = field(default_factory=_frozen)
    depends_on: tuple[Dependency, ...] = ()
    # Kind-specific details: source_region and bytes (copy), server (create, stop/start), member
    # (share/unshare), name (create), compensates (an action that runs even after a failure).
    details: Mapping[str, Any] = field(default_factory=_frozen)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "region": self.region,
            "image_id": self.image_id,
        }
        doc.update({k: self.details[k] for k in sorted(self.details)})
        doc["changes"] = {k: self.changes[k].to_json() for k in sorted(self.changes)}
        doc["expects"] = {k: dict(sorted(self.expects[k].items())) for k in sorted(self.expects)}
        doc["reason"] = self.reason.to_json()
        doc["depends_on"] = [d.to_json() for d in self.depends_on]
        return doc


@dataclass(frozen=True, slots=True)
class Finding:
    """A refusal (the plan cannot be applied) or a warning (it can, but read this)."""

    code: str
    key: str | None
    region: str | None
    message: str
    source: str | None = None
    hint: str | None = None

    def to_json(self, *, with_hint: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": self.code, "key": self.key, "region": self.region, "message": self.message}
        if with_hint:
            doc["hint"] = self.hint
        doc["source"] = self.source
        return doc


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "nhn" | "simulator"
    project: str
    identity: str  # the identity URL (a simulator's is on loopback)
    regions: tuple[str, ...]
    state: str | None = None  # simulator: the state file

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "project": self.project,
            "identity": self.identity,
            "regions": list(self.regions),
        }
        if self.state is not None:
            doc["state"] = self.state
        return doc


@dataclass(frozen=True, slots=True)
class Plan:
    set: str
    target: Target
    actions: tuple[Action, ...]
    refusals: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    info: Mapping[str, Any] = field(default_factory=_frozen)

    @property
    def applicable(self) -> bool:
        return not self.refusals

    def summary(self) -> dict[str, Any]:
        counts = Counter(action.kind for action in self.actions)
        copies = [a.details.get("bytes") for a in self.actions if a.kind == "copy"]
        summary: dict[str, Any] = {
            "actions": {kind: counts[kind] for kind in ACTION_KINDS if counts[kind]},
            "refusals": len(self.refusals),
            "warnings": len(self.warnings),
        }
        if copies:
            # Bytes the copies move, as far as known now (an image made in this plan has no size yet).
            summary["copy_bytes"] = sum(b for b in copies if b is not None)
            summary["copy_bytes_unknown"] = sum(1 for b in copies if b is None)
        return summary

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "set": self.set,
            "target": self.target.to_json(),
            "actions": [action.to_json() for action in self.actions],
            "refusals": [r.to_json(with_hint=True) for r in self.refusals],
            "warnings": [w.to_json(with_hint=False) for w in self.warnings],
            "info": {k: self.info[k] for k in sorted(self.info)},
            "summary": self.summary(),
        }
