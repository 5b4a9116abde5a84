"""The apply lock's claims as data, and the decisions taken on them: pure, no I/O, no clock.

A claim is an empty image named `reconciler-lock-<set>` that carries who made it (`holder`), whether it is
still `probing` or `held`, and its lease. Images are never created with a fixed id: Glance soft-deletes,
so a deleted id can never be created again (docs/safety.md, "The apply lock"). Liveness is judged on the
server's clock only: a claim is live while `server_now - updated_at <= lease_s + LIVENESS_SLACK_S`, with
`server_now` the `Date` of the listing's first page and `updated_at` the server's own timestamp.

v1 used one image with an id derived from (project, set) and an expiry time in a property: such a legacy
lock is still recognised, and counts as a live `held` claim until its expiry (by the server's clock).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler import markers
from reconciler.cloud.records import Image, parse_server_time

# The claim's property names, which live with every other marker name (reconciler/markers.py).
CLAIM = markers.LOCK_CLAIM
HOLDER = markers.LOCK_HOLDER
STATE = markers.LOCK_STATE
LEASE = markers.LOCK_LEASE
RENEWAL = markers.LOCK_RENEWAL
LEGACY = markers.LOCK_LEGACY
LEGACY_EXPIRES = markers.LOCK_LEGACY_EXPIRES
DOCTOR = markers.DOCTOR

PROBING, HELD = "probing", "held"
LIVENESS_SLACK_S = 5.0
LEASE_RANGE_S = (30, 900)
DEFAULT_LEASE_S = 120


def claim_name(set_name: str) -> str:
    return f"reconciler-lock-{set_name}"


def legacy_lock_id(project: str, set_name: str) -> str:
    """The id v1 gave its lock image: only ever read and deleted, never created again."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reconciler-lock:{project}:{set_name}"))


def is_lock_image(properties: Mapping[str, Any]) -> bool:
    """A claim or a legacy lock, of any set: bookkeeping, never an image of anyone's."""
    return CLAIM in properties or LEGACY in properties


def is_bookkeeping(properties: Mapping[str, Any]) -> bool:
    """Images the tool keeps for itself (lock claims, legacy locks, doctor's scratch images): plans count
    them apart, import never writes them, and nothing else ever changes them."""
    return is_lock_image(properties) or DOCTOR in properties


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim (or the legacy lock) of a set, as the server showed it."""

    id: str
    region: str
    holder: str
    state: str
    lease_s: float
    updated_at: float | None  # the server's, seconds since the epoch
    legacy_expires: float | None = None  # a legacy lock's end of lease; None for a claim

    @property
    def legacy(self) -> bool:
        return self.legacy_expires is not None

    @property
    def lease_end(self) -> float | None:
        """When the claim stops being live, on the server's clock."""
        if self.legacy_expires is not None:
            return self.legacy_expires
        if self.updated_at is None:
            return None
        return self.updated_at + self.lease_s + LIVENESS_SLACK_S

    def live(self, server_now: float | None) -> bool:
        """Live until its lease ends by the server's clock. A claim whose time cannot be read, or an answer
        without a Date, is taken as live: doubt keeps the lock, it never breaks it."""
        end = self.lease_end
        if end is None or server_now is None:
            return True
        return server_now <= end

    def describe(self) -> str:
        end = self.lease_end
        lease = f"lease until {iso(end)}" if end is not None and end != float("inf") else "lease end unknown"
        kind = f"legacy lock {self.id}" if self.legacy else f"claim {self.id}"
        return f"{kind} of holder {self.holder} ({self.state}, {lease})"


def claim_of(image: Image, set_name: str) -> Claim | None:
    """The claim `image` is, if it is one of `set_name`'s (claims of other sets share no name, but a name
    is anyone's to give: the property decides)."""
    props = image.properties
    if props.get(CLAIM) == set_name:
        try:
            lease = float(props.get(LEASE, DEFAULT_LEASE_S))
        except (TypeError, ValueError):
            lease = float(DEFAULT_LEASE_S)
        state = props.get(STATE)
        return Claim(
            id=image.id,
            region=image.region,
            holder=str(props.get(HOLDER, "?")),
            state=state if state in (PROBING, HELD) else HELD,  # unknown state: the cautious reading
            lease_s=min(max(lease, 0.0), float(LEASE_RANGE_S[1])),
            updated_at=parse_server_time(image.updated_at),
        )
    if props.get(LEGACY) == set_name:
        expires = parse_server_time(str(props.get(LEGACY_EXPIRES, "")))
        return Claim(
            id=image.id,
            region=image.region,
            holder=str(props.get(HOLDER, "?")),
            state=HELD,
            lease_s=0.0,
            updated_at=parse_server_time(image.updated_at),
            legacy_expires=expires if expires is not None else float("inf"),
        )
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one round of the acquisition protocol decided.

    `outcome`: "hold" (no other live claim: ours wins), "absent" (our claim is not in the listing yet:
    retry as for probing), "held_elsewhere" (a live held claim exists: wait or give up), "contended" (only
    probing claims compete: back off at random and try again). `expired` lists claims of the set that are
    not live: the winner deletes them.
    """

    outcome: str
    blocking: tuple[Claim, ...] = ()
    expired: tuple[Claim, ...] = ()


def decide(own_id: str | None, claims: Iterable[Claim], server_now: float | None) -> Verdict:
    """One round: given our claim's id and every claim of the set the listing showed (legacy lock
    included), hold, wait, or back off. Creation order is never used: only liveness and state."""
    claims = tuple(claims)
    expired = tuple(c for c in claims if c.id != own_id and not c.live(server_now))
    others = tuple(c for c in claims if c.id != own_id and c.live(server_now))
    held = tuple(c for c in others if c.state == HELD)
    if held:
        return Verdict("held_elsewhere", held, expired)
    if own_id is None or all(c.id != own_id for c in claims):
        return Verdict("absent", others, expired)
    if others:
        return Verdict("contended", others, expired)
    return Verdict("hold", (), expired)


def holders_message(set_name: str, blocking: Iterable[Claim]) -> str:
    described = "; ".join(c.describe() for c in blocking)
    return f"another apply of set {set_name} has the lock: {described}"
