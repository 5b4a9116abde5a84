"""The apply lock's decisions, as pure data: each case says why, and prints want vs got on failure."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from reconciler.cloud.records import Image
from reconciler.lock_claims import (
    CLAIM,
    HELD,
    HOLDER,
    LEASE,
    LEGACY,
    LEGACY_EXPIRES,
    PROBING,
    STATE,
    Claim,
    claim_of,
    decide,
    is_bookkeeping,
    iso,
)

NOW = 1_796_014_862.0  # 2026-11-30T05:01:02Z, the server's clock in every case


def claim(id_: str, state: str = PROBING, *, age: float = 0.0, lease: float = 120.0) -> Claim:
    return Claim(id_, "JP1", f"host:1:{id_}", state, lease, NOW - age)


CASES = [
    ("alone: ours is the only claim", "mine", [claim("mine")], "hold", [], []),
    ("ours not listed yet (a lagging listing): do not hold", "mine", [], "absent", [], []),
    ("another probing claim: both back off", "mine", [claim("mine"), claim("b")], "contended", ["b"], []),
    ("another held claim: wait or give up", "mine", [claim("mine"), claim("b", HELD)], "held_elsewhere", ["b"], []),
    (
        "a held claim wins over ours missing: the holder is named",
        "mine",
        [claim("b", HELD)],
        "held_elsewhere",
        ["b"],
        [],
    ),
    (
        "an expired held claim does not block, and is to be deleted",
        "mine",
        [claim("mine"), claim("b", HELD, age=126)],
        "hold",
        [],
        ["b"],
    ),
    (
        "live exactly up to lease + 5 s by the server's clock",
        "mine",
        [claim("mine"), claim("b", HELD, age=125)],
        "held_elsewhere",
        ["b"],
        [],
    ),
    (
        "a short lease expires sooner",
        "mine",
        [claim("mine"), claim("b", HELD, age=36, lease=30)],
        "hold",
        [],
        ["b"],
    ),
    (
        "waiting without a claim: no held claim left means try again",
        None,
        [claim("b", PROBING)],
        "absent",
        ["b"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("reason", "own", "claims", "outcome", "blocking", "expired"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(reason, own, claims, outcome, blocking, expired):
    verdict = decide(own, claims, NOW)
    got = (verdict.outcome, [c.id for c in verdict.blocking], [c.id for c in verdict.expired])
    assert got == (outcome, blocking, expired), f"{reason}: want {(outcome, blocking, expired)}, got {got}"


def test_without_the_servers_clock_every_claim_counts_as_live():
    """No Date header: doubt keeps the lock, it never breaks it."""
    verdict = decide("mine", [claim("mine"), claim("b", HELD, age=10_000)], None)
    assert verdict.outcome == "held_elsewhere" and not verdict.expired


def image(props: dict, *, updated: str | None = "2026-11-30T05:00:00Z", id_: str = "c1") -> Image:
    return Image(
        "JP1", id_, "reconciler-lock-web", "queued", "private", False, "p", 0, 0, None, None, None, None,
        "raw", "bare", (), updated, updated, MappingProxyType(props),
    )  # fmt: skip


def test_a_claim_is_read_from_its_properties_and_the_servers_updated_at():
    found = claim_of(image({CLAIM: "web", HOLDER: "h:1:t", STATE: HELD, LEASE: "30"}), "web")
    assert found == Claim("c1", "JP1", "h:1:t", HELD, 30.0, NOW - 62)
    assert found.lease_end == NOW - 62 + 35
    assert "claim c1 of holder h:1:t (held, lease until 2026-11-30T05:00:35Z)" == found.describe()


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({CLAIM: "api", HOLDER: "h"}, "another set's claim is not ours to judge or delete"),
        ({"name": "reconciler-lock-web"}, "the name alone is anyone's to give: the property decides"),
        ({LEGACY: "api", LEGACY_EXPIRES: "2999-01-01T00:00:00Z"}, "another set's legacy lock"),
    ],
)
def test_only_this_sets_claims_count(props, reason):
    assert claim_of(image(props), "web") is None, reason


def test_an_unknown_state_or_lease_is_read_cautiously():
    """A hand-edited claim: an unknown state counts as held, a garbage lease as the default, a huge one
    as the maximum (a claim cannot block a set for longer than 900 s past its last renewal)."""
    odd = claim_of(image({CLAIM: "web", STATE: "weird", LEASE: "soon"}), "web")
    assert (odd.state, odd.lease_s) == (HELD, 120.0)
    assert claim_of(image({CLAIM: "web", LEASE: "1e9"}), "web").lease_s == 900.0


def test_a_legacy_lock_counts_as_held_until_its_expiry():
    legacy = claim_of(image({LEGACY: "web", HOLDER: "h:1", LEGACY_EXPIRES: iso(NOW + 60)}), "web")
    assert legacy.legacy and legacy.state == HELD
    assert decide("mine", [claim("mine"), legacy], NOW).outcome == "held_elsewhere"
    expired = claim_of(image({LEGACY: "web", LEGACY_EXPIRES: iso(NOW - 1)}), "web")
    verdict = decide("mine", [claim("mine"), expired], NOW)
    assert verdict.outcome == "hold" and verdict.expired == (expired,)
    unreadable = claim_of(image({LEGACY: "web", LEGACY_EXPIRES: "never"}), "web")
    assert unreadable.live(NOW), "an unreadable expiry keeps the lock: doubt never breaks it"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({CLAIM: "web"}, True),
        ({LEGACY: "web"}, True),
        ({"reconciler_doctor": "run1"}, True),
        ({"reconciler_set": "web"}, False),
        ({}, False),
    ],
)
def test_bookkeeping_images(props, expected):
    assert is_bookkeeping(props) is expected
