"""The closed vocabulary of action kinds: every fact about a kind, in one table. Pure: no I/O.

The planner orders by `rank`, the renderers show `symbol` and `summary`, the Markdown verdict counts and
names the kinds with a `risk`, saved plans and apply ask what a kind `makes` and what it acts on, and
apply runs each kind through its executor (apply.py, EXECUTORS). The plan schema's kind enum
(schemas/plan.schema.json) lists the same names, in the same order: a test holds the two together.

Adding a kind: add its row here (and to the schema's enum), its executor in apply.py, and its line in
render/text.py's `describe_action`; the tests name what is missing. A kind a reader of an older
format_version does not know carries the version that introduced it (`since`): a plan holding it is
written with that version (plan_codec.format_version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# What an action acts on, and what it may make or take away.
IMAGE, SERVER = "image", "server"
MEMBER, PROTECTION, RUNNING = "member", "protection", "running"  # a partner's access, protected, a running instance
STATUS = "member status"  # this project's own member status on an image another project shares with it


@dataclass(frozen=True, slots=True)
class Risk:
    """How the Markdown verdict counts a risky kind ("2 deletions") and its banner says it ("deletes")."""

    noun: str
    verb: str


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    # Where the kind falls in "make before break": lower runs first among ready actions.
    rank: int
    symbol: str  # "+" adds, "~" changes, "-" takes away: the text rendering's first column
    summary: str  # the summary line's words after the count: "2 to create"
    subject: str  # what the action's checks read: IMAGE, or SERVER (imaging, stopping, starting an instance)
    makes: str | None  # what it adds: an IMAGE (apply remembers it for later actions), a MEMBER, ...
    removes: str | None  # what it takes away: what a reviewer must weigh
    risk: Risk | None  # present exactly when it removes something
    # False: the action has no key (a consumer's accept or reject of an image another project shares): its
    # `key` is "" and its id `kind:<image id>:<region>` (plan.ActionId).
    keyed: bool = True
    # The plan document's format_version that introduced the kind: a plan holding one is written with it.
    since: str = "1"

    @property
    def makes_image(self) -> bool:
        return self.makes == IMAGE

    @property
    def on_existing_image(self) -> bool:
        """It acts on an image it does not make: one live, or one an earlier action of the plan makes."""
        return self.subject == IMAGE and not self.makes_image


def _kinds(*rows: Kind) -> Mapping[str, Kind]:
    return MappingProxyType({row.name: row for row in rows})


# In the order a summary lists them (the schema's enum order).
KINDS: Mapping[str, Kind] = _kinds(
    Kind("create", 1, "+", "to create", SERVER, IMAGE, None, None),
    Kind("adopt", 1, "+", "to adopt", IMAGE, None, None, None),
    Kind("copy", 4, "+", "to copy", IMAGE, IMAGE, None, None),
    Kind("update", 3, "~", "to update", IMAGE, None, None, None),
    Kind("protect", 5, "~", "to protect", IMAGE, PROTECTION, None, None),
    Kind("unprotect", 2, "~", "to unprotect", IMAGE, None, PROTECTION, Risk("unprotect", "unprotects")),
    Kind("share", 6, "+", "to share", IMAGE, MEMBER, None, None),
    Kind("unshare", 8, "-", "to unshare", IMAGE, None, MEMBER, Risk("unshare", "unshares")),
    Kind("delete", 9, "-", "to delete", IMAGE, None, IMAGE, Risk("deletion", "deletes")),
    # Stopped for imaging, an instance is down until its image is active.
    Kind("stop_instance", 0, "~", "instance to stop", SERVER, None, RUNNING, Risk("instance stop", "stops instances")),
    Kind("start_instance", 7, "~", "instance to start", SERVER, RUNNING, None, None),
    # A consumer's own member status on an image another project shares with it (accept:/reject: rules): it
    # changes what this project's image list shows, never the image or anyone's access: no risk.
    Kind("accept", 6, "+", "to accept", IMAGE, STATUS, None, None, keyed=False, since="1.1"),
    Kind("reject", 6, "~", "to reject", IMAGE, STATUS, None, None, keyed=False, since="1.1"),
)
ACTION_KINDS: tuple[str, ...] = tuple(KINDS)
RANK: Mapping[str, int] = MappingProxyType({name: kind.rank for name, kind in KINDS.items()})
# The member status each keyless kind sets (the PUT apply makes with this project's own token).
MEMBER_STATUS: Mapping[str, str] = MappingProxyType({"accept": "accepted", "reject": "rejected"})
# The kinds a reviewer must weigh before applying (the Markdown verdict counts them, its banner names each
# action): each takes something away: an image, a partner's access, the protection that keeps an image
# from being deleted (a strict bracket's unprotect too: the image is unprotected while it runs), a running
# instance (stopped for imaging, it is down until the image is active). Listed by rank, last first: what
# runs last takes most away.
RISKY_KINDS: tuple[str, ...] = tuple(
    sorted((k.name for k in KINDS.values() if k.risk), key=RANK.__getitem__, reverse=True)
)
