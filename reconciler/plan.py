"""The plan: plain, frozen data. Renderers and apply read only this.

Its JSON document (plan_codec.py) is the versioned contract (`format_version` "1", or "1.1" for a plan
holding what "1.1" added: the kinds accept and reject, and a create that uploads; `format_needed`); the text
and Markdown
renderings are made from that same document, so they can never disagree with it. The kinds of action
and every fact about them are in plan_kinds.py; action ids and `expects` references are `ActionId` and
`Ref` below, each with its one parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reconciler.plan_kinds import ACTION_KINDS, KINDS

__all__ = [
    "ACTION_KINDS",
    "Action",
    "ActionId",
    "Change",
    "Dependency",
    "Finding",
    "Plan",
    "Reason",
    "Ref",
    "Target",
    "format_needed",
]

FORMAT_VERSION = "1"  # a plan whose kinds a reader of "1" knows
# Every format_version this tool writes and reads (apply, saved plans): "1.1" only adds the kinds accept and
# reject (plan_kinds.Kind.since) and the create that uploads a file or a URL (UPLOAD_FORMAT); a reader of
# "1" treats an unknown kind as a change.
FORMAT_VERSIONS = ("1", "1.1")
# A create that uploads has `file` or `url` and no `server`: a reader of "1" assumes every create images an
# instance, so a plan holding one is "1.1".
UPLOAD_FORMAT = "1.1"
UPLOAD_DETAILS = ("file", "url")


def _keyless(kind: str) -> bool:
    return kind in KINDS and not KINDS[kind].keyed


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ActionId:
    """An action's id, `kind:key:region[:phase]`: unique in a plan and the same in every plan of the same
    intent (a saved plan is matched by it). Keys and regions hold no ':' (the manifest schema's patterns),
    so the phase is everything after the third one: "release", "download-restore", a member's id, an image's
    id (a leftover's delete, whose key is `~rc-<16 hex>`), ...

    A keyless kind (accept, reject: a consumer's member status on an image another project shares) has no
    key and one action per image and region: its id is `kind:<image id>:<region>`, read as the key "" and
    the image id as its phase."""

    kind: str
    key: str
    region: str
    phase: str | None = None

    @classmethod
    def parse(cls, text: str) -> ActionId:
        parts = text.split(":", 3)
        if len(parts) < 3:
            raise ValueError(f"not an action id (kind:key:region[:phase]): {text!r}")
        if _keyless(parts[0]):
            if len(parts) != 3:
                raise ValueError(f"not an action id ({parts[0]}:image id:region): {text!r}")
            return cls(parts[0], "", parts[2], parts[1])
        return cls(*parts)

    @classmethod
    def of_image(cls, kind: str, image_id: str, region: str) -> ActionId:
        """The id of a keyless kind's action on one image in one region."""
        assert _keyless(kind), kind
        return cls(kind, "", region, image_id)

    def __str__(self) -> str:
        if _keyless(self.kind):
            return f"{self.kind}:{self.phase}:{self.region}"
        head = f"{self.kind}:{self.key}:{self.region}"
        return head if self.phase is None else f"{head}:{self.phase}"


SERVER_REF = "server/"


@dataclass(frozen=True, slots=True)
class Ref:
    """A key of an action's `expects`: the object whose live fields the action relies on. Exactly one of
    `image_id` (`<region>/<image id>`: a live image), `made_by` (`<region>/<<action id>>`: the image an
    earlier action of the plan makes, not yet known by id) and `server_id` (`<region>/server/<server id>`)."""

    region: str
    image_id: str | None = None
    made_by: str | None = None
    server_id: str | None = None

    @classmethod
    def image(cls, region: str, image_id: str) -> Ref:
        return cls(region, image_id=image_id)

    @classmethod
    def made(cls, region: str, action_id: str) -> Ref:
        return cls(region, made_by=action_id)

    @classmethod
    def server(cls, region: str, server_id: str) -> Ref:
        return cls(region, server_id=server_id)

    @classmethod
    def parse(cls, text: str) -> Ref:
        region, slash, rest = text.partition("/")
        if not (region and slash and rest):
            raise ValueError(f"not an expects reference (region/id): {text!r}")
        if rest.startswith(SERVER_REF):
            return cls.server(region, rest[len(SERVER_REF) :])
        if len(rest) > 2 and rest.startswith("<") and rest.endswith(">"):
            return cls.made(region, rest[1:-1])
        return cls.image(region, rest)

    def __str__(self) -> str:
        if self.server_id is not None:
            return f"{self.region}/{SERVER_REF}{self.server_id}"
        if self.made_by is not None:
            return f"{self.region}/<{self.made_by}>"
        return f"{self.region}/{self.image_id}"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an action exists, for humans: apply never branches on it."""

    code: str
    message: str
    source: str | None = None  # the manifest line ("images/web.yaml:3"), or None (e.g. a deletion)


@dataclass(frozen=True, slots=True)
class Dependency:
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Change:
    before: Any
    after: Any


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
    # Kind-specific details: source_region and bytes (copy), server (create from an instance, stop/start),
    # file or url, disk_format, bytes, artifact and artifact_note (create that uploads), temporary_name
    # (create), member (share/unshare), name (create; accept/reject: the shared image's name), owner
    # (accept/reject: the project that shares the image), compensates (an action that runs even after a
    # failure).
    details: Mapping[str, Any] = field(default_factory=_frozen)

    def to_json(self) -> dict[str, Any]:
        """This action's part of the plan's JSON document."""
        from reconciler import plan_codec  # the codec reads these types: imported here, not at the top

        return plan_codec.action_to_json(self)


def format_needed(action: Action) -> str:
    """The oldest format_version whose readers know what `action` is: its kind's, or UPLOAD_FORMAT for a
    create that uploads."""
    if action.kind == "create" and any(name in action.details for name in UPLOAD_DETAILS):
        return UPLOAD_FORMAT
    return KINDS[action.kind].since


@dataclass(frozen=True, slots=True)
class Finding:
    """A refusal (the plan cannot be applied) or a warning (it can, but read this)."""

    code: str
    key: str | None
    region: str | None
    message: str
    source: str | None = None
    hint: str | None = None
    # What the one-line message cannot hold, for the JSON and Markdown renderings (a warning's `steps`
    # become a list under it in Markdown); empty for most findings, and then not written.
    details: Mapping[str, Any] = field(default_factory=_frozen, hash=False)


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "nhn" | "simulator"
    project: str
    identity: str  # the identity URL (a simulator's is on loopback)
    regions: tuple[str, ...]
    state: str | None = None  # simulator: the state file

    def to_json(self) -> dict[str, Any]:
        from reconciler import plan_codec

        return plan_codec.target_to_json(self)


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

    def without(self, action_ids: Collection[str]) -> Plan:
        """This plan less the actions `action_ids`, and every dependency on them (a saved plan's apply leaves
        out a retirement the review deferred: nothing of the plan waits for a delete)."""
        if not action_ids:
            return self
        kept = tuple(
            dataclasses.replace(a, depends_on=tuple(d for d in a.depends_on if d.id not in action_ids))
            for a in self.actions
            if a.id not in action_ids
        )
        return dataclasses.replace(self, actions=kept)

    def to_json(self) -> dict[str, Any]:
        """The plan's JSON document, the versioned contract (plan_codec.py)."""
        from reconciler import plan_codec

        return plan_codec.plan_to_json(self)
