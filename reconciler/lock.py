"""One apply at a time per (project, set), with a lock kept in the cloud itself (CI runners share no disk).

The protocol (docs/safety.md, "The apply lock"), in the claims region (the first image region of the
identity catalog in sorted order, never taken from the root, so a pull request cannot move the lock):

1. Create a claim: an empty image with a random id, named `reconciler-lock-<set>`, state `probing`.
2. List every claim of the set (all pages), with the server's `Date`.
3. Our claim absent from the listing: do not hold, try again. Another live claim: delete ours; if one of
   them is `held`, wait (`--lock-timeout`) or give up naming its holder; if all are `probing`, back off
   for a random 0.5-3 s and try again. No other live claim: hold, and mark ours `held`.

Why that is safe with read-after-write listings: if A holds, A's listing came after B's create or before
it; in the first case A saw B and backed off, in the second B's listing sees A and B backs off.

While held, a renewal thread PATCHes the claim every `lease_s / 4`. The lock is lost when no renewal has
succeeded within `lease_s - 10 s` of the last successful one's send (monotonic clock): others judge the
claim on the server's clock, `lease_s + 5 s` after its `updated_at`, which the server set after our send,
so we stop at least 15 s before anyone else can take over. Before each mutating call apply checks the lock
(`LockSession.check`); compensations are exempt, and after a loss run only on objects carrying this
run's token.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import (
    BadRequest,
    CloudApiError,
    CloudError,
    CloudTransportError,
    Conflict,
    Forbidden,
    NotFound,
)
from reconciler.cloud.records import Image, set_ops
from reconciler.errors import ReconcilerError
from reconciler.lock_claims import (
    CLAIM,
    DEFAULT_LEASE_S,
    HELD,
    HOLDER,
    LEASE,
    PROBING,
    RENEWAL,
    STATE,
    Claim,
    claim_name,
    claim_of,
    decide,
    holders_message,
    legacy_lock_id,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SAFETY_MARGIN_S = 10.0  # the lock is lost this long before the lease others see could end
RENEW_RETRY_S = 2.0
WAIT_POLL_S = 2.0
BACKOFF_S = (0.5, 3.0)
PROBING_ROUNDS = 5  # with --lock-timeout 0: rounds lost to other probing claims before giving up
CREATE_ATTEMPTS = 3
READ_ATTEMPTS = 3
RETRY_DELAY_S = 0.5
RELEASE_ATTEMPTS = 3


class LockedError(ReconcilerError):
    """Another apply of this set holds the lock, or the lock could not be taken."""


class LockLostError(ReconcilerError):
    """The lock's lease could not be renewed in time: this run must start nothing more."""


def claims_region(client: CloudClient) -> str:
    regions = sorted(client.image_regions())
    if not regions:
        raise LockedError("the identity catalog offers no image region: there is nowhere to keep the apply lock")
    return regions[0]


def new_token() -> str:
    """This run's token: host and pid alone are not unique (two containers on one host both run pid 1)."""
    return uuid.uuid4().hex[:12]


@dataclass
class LockSession:
    """A held lock: its claim, renewal bookkeeping, and the guard apply consults before each change."""

    set_name: str
    region: str
    claim_id: str
    holder: str
    token: str
    lease_s: float
    monotonic: Callable[[], float]
    last_renewal_sent: float
    lost_reason: str | None = None
    _exempt: threading.local = field(default_factory=threading.local)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def lost(self) -> bool:
        with self._guard:
            if self.lost_reason is None and self.monotonic() - self.last_renewal_sent >= self.lease_s - SAFETY_MARGIN_S:
                self.lost_reason = f"no renewal succeeded within {self.lease_s - SAFETY_MARGIN_S:.0f} s"
            return self.lost_reason is not None

    def mark_lost(self, reason: str) -> None:
        with self._guard:
            if self.lost_reason is None:
                self.lost_reason = reason

    def renewed(self, sent_at: float) -> None:
        with self._guard:
            if self.lost_reason is None:
                self.last_renewal_sent = max(self.last_renewal_sent, sent_at)

    def check(self) -> None:
        """Raise LockLostError unless the lock is still ours (compensations are exempt: `compensation`)."""
        if getattr(self._exempt, "active", False):
            return
        if self.lost:
            raise LockLostError(
                f"lock lost: the apply lock of set {self.set_name} ({self.lost_reason}); nothing more is started",
                hint="another apply may hold it now: plan again once it is done",
            )

    @contextlib.contextmanager
    def compensation(self) -> Iterator[None]:
        """Calls made inside run even after the lock is lost: they undo this run's own work."""
        previous = getattr(self._exempt, "active", False)
        self._exempt.active = True
        try:
            yield
        finally:
            self._exempt.active = previous


def _claim_attributes(set_name: str, holder: str, lease_s: float, claim_id: str | None) -> dict[str, object]:
    attributes: dict[str, object] = {
        "name": claim_name(set_name),
        "visibility": "private",
        "disk_format": "raw",
        "container_format": "bare",
        "os_type": "linux",  # NHN requires it on every image
        CLAIM: set_name,
        HOLDER: holder,
        STATE: PROBING,
        LEASE: str(int(lease_s)),
        RENEWAL: "0",
    }
    if claim_id is not None:
        attributes["id"] = claim_id
    return attributes


class _Acquirer:
    """One acquisition: the protocol's rounds, with every clock and random draw injected for tests."""

    def __init__(
        self,
        client: CloudClient,
        set_name: str,
        *,
        lease_s: float,
        timeout_s: float,
        legacy_region: str | None,
        token: str,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.client = client
        self.set_name = set_name
        self.region = claims_region(client)
        self.legacy_region = legacy_region
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.token = token
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{token}"
        self.monotonic = monotonic
        self.sleep = sleep
        self.rng = rng
        self.client_ids = True  # cleared when the server refuses client-chosen ids

    def run(self) -> LockSession:
        deadline = self.monotonic() + self.timeout_s
        probing_rounds = 0
        while True:
            sent = self.monotonic()
            own = self._create_claim()
            claims, server_now = self._list()
            verdict = decide(own.id, claims, server_now)
            if verdict.outcome == "hold":
                session = LockSession(
                    self.set_name, self.region, own.id, self.holder, self.token, self.lease_s, self.monotonic, sent
                )
                self._mark_held(session)
                self._delete_expired(verdict.expired)
                return session
            self._delete_own(own.id)
            if verdict.outcome == "held_elsewhere":
                if self.monotonic() >= deadline:
                    raise self._locked(verdict.blocking)
                self._wait_for_release(deadline)
                continue
            # "absent" (our claim not listed yet) or "contended" (only probing claims): back off, try again.
            probing_rounds += 1
            out_of_time = self.monotonic() >= deadline if self.timeout_s > 0 else probing_rounds >= PROBING_ROUNDS
            if out_of_time:
                raise LockedError(
                    f"could not take the apply lock of set {self.set_name}: other applies kept trying at the same "
                    f"time ({probing_rounds} rounds: {holders_message(self.set_name, verdict.blocking)}); nothing "
                    "was applied",
                    hint="try again, or pass --lock-timeout SECONDS to wait",
                )
            self.sleep(self.rng.uniform(*BACKOFF_S))

    # -- steps ----------------------------------------------------------------------------------------

    def _create_claim(self) -> Image:
        """POST a claim. The id is chosen here, so a lost answer is re-observed by reading that id and the
        create retried with the same id; a server that refuses client-chosen ids gets a POST without one,
        and the claim is then found by its holder token."""
        claim_id = str(uuid.uuid4()) if self.client_ids else None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return self.client.create_image(
                    self.region, _claim_attributes(self.set_name, self.holder, self.lease_s, claim_id)
                )
            except (BadRequest, Forbidden) as err:
                if claim_id is None:
                    raise LockedError(f"could not create the apply lock's claim: {err.message}") from None
                log.info("the server refuses client-chosen image ids (%s): claims get its ids", err.message)
                self.client_ids, claim_id = False, None
            except (CloudTransportError, Conflict) as err:
                # No answer, or (after such a retry) "already exists": the create may have been carried out.
                found = self._retrying(functools.partial(self._find_own, claim_id), "reading the lock's claim")
                if found is not None:
                    return found
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise LockedError(f"could not create the apply lock's claim in {self.region}: {err}") from None
            except CloudApiError as err:
                if err.status < 500 or attempt + 1 == CREATE_ATTEMPTS:
                    raise
                # A server error may still have created it: look before trying again (same id: no duplicate).
                found = self._retrying(functools.partial(self._find_own, claim_id), "reading the lock's claim")
                if found is not None:
                    return found
                self.sleep(RETRY_DELAY_S * 2**attempt)
        raise LockedError(f"could not create the apply lock's claim in {self.region}")

    def _retrying(self, read: Callable[[], T], what: str) -> T:
        """A read of the lock's own bookkeeping, tried again on a server error or no answer: one transient
        failure must not turn an apply away (reads are safe to repeat)."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return read()
            except (CloudTransportError, CloudApiError) as err:
                transient = isinstance(err, CloudTransportError) or err.status >= 500
                if not transient or attempt + 1 == READ_ATTEMPTS:
                    raise
                log.info("%s failed (%s): trying again", what, err)
                self.sleep(RETRY_DELAY_S * 2**attempt)
        raise AssertionError("unreachable")

    def _find_own(self, claim_id: str | None) -> Image | None:
        if claim_id is not None:
            return self.client.find_image(self.region, claim_id)
        for image in self.client.list_images(self.region, owner=self.client.project_id, name=claim_name(self.set_name)):
            if image.properties.get(HOLDER) == self.holder:
                return image
        return None

    def _list(self) -> tuple[list[Claim], float | None]:
        listing = self._retrying(
            lambda: self.client.list_images_dated(
                self.region, owner=self.client.project_id, name=claim_name(self.set_name)
            ),
            "listing the lock's claims",
        )
        claims = [c for c in (claim_of(i, self.set_name) for i in listing.images) if c is not None]
        legacy = self._legacy()
        if legacy is not None:
            claims.append(legacy)
        return claims, listing.server_time

    def _legacy(self) -> Claim | None:
        """v1's lock, at its fixed id in the root's first region: one read."""
        if self.legacy_region is None:
            return None
        legacy_id = legacy_lock_id(self.client.project_id, self.set_name)
        image = self._retrying(lambda: self.client.find_image(self.legacy_region, legacy_id), "reading v1's lock")
        return claim_of(image, self.set_name) if image is not None else None

    def _mark_held(self, session: LockSession) -> None:
        sent = self.monotonic()
        try:
            self.client.update_image(self.region, session.claim_id, set_ops({STATE: HELD, RENEWAL: "1"}))
        except CloudError as err:
            # Holding rests on the listing, not on this mark; others keep backing off from a live probing
            # claim, so this only makes them give up sooner. The renewal thread keeps trying.
            log.warning("could not mark the apply lock's claim held: %s", err)
            return
        session.renewed(sent)

    def _delete_own(self, claim_id: str) -> None:
        # Left behind, it blocks others (as a probing claim) until it expires; whoever holds next deletes it.
        _delete_claim(self.client, self.region, claim_id, self.sleep, "this apply's losing claim")

    def _delete_expired(self, expired: tuple[Claim, ...]) -> None:
        for claim in expired:
            try:
                self.client.delete_image(claim.region, claim.id)
                log.info("deleted an expired lock claim: %s", claim.describe())
            except CloudError as err:
                log.warning("could not delete the expired lock claim %s: %s", claim.id, err)

    def _wait_for_release(self, deadline: float) -> None:
        """Re-list every WAIT_POLL_S without a claim of our own until no live held claim remains."""
        while True:
            self.sleep(WAIT_POLL_S)
            claims, server_now = self._list()
            verdict = decide(None, claims, server_now)
            if verdict.outcome != "held_elsewhere":
                return
            if self.monotonic() >= deadline:
                raise self._locked(verdict.blocking)

    def _locked(self, blocking: tuple[Claim, ...]) -> LockedError:
        return LockedError(
            f"{holders_message(self.set_name, blocking)}; nothing was applied",
            hint="wait for it to finish and plan again (or pass --lock-timeout SECONDS to wait); a stuck claim: "
            "see `reconciler unlock`",
        )


def renew_once(client: CloudClient, session: LockSession, count: int) -> bool:
    """One renewal PATCH (its send time counts, on the monotonic clock); False if it failed. A claim that
    is gone was deleted by another apply that found it expired: the lock is lost at once."""
    sent = session.monotonic()
    try:
        # The state again too: a claim whose first mark as held failed becomes held with its renewal.
        client.update_image(session.region, session.claim_id, set_ops({STATE: HELD, RENEWAL: str(count)}))
    except NotFound:
        session.mark_lost("its claim was deleted: its lease had run out and another apply took over")
        log.warning("the apply lock's claim is gone: lock lost")
        return False
    except CloudError as err:
        log.warning("could not renew the apply lock: %s", err)
        return False
    session.renewed(sent)
    return True


def _renew(client: CloudClient, session: LockSession, stop: threading.Event) -> None:
    """Renew every lease/4; a failed renewal is retried every RENEW_RETRY_S, until stopped or lost."""
    count = 1
    delay = session.lease_s / 4
    while not stop.wait(delay) and not session.lost:
        count += 1
        delay = session.lease_s / 4 if renew_once(client, session, count) else RENEW_RETRY_S


def _delete_claim(client: CloudClient, region: str, claim_id: str, sleep: Callable[[float], None], what: str) -> None:
    """Delete a claim of ours, trying again on failure: a claim left behind blocks the set until it expires.
    Its id is ours alone (never reused), so repeating a delete whose answer was lost is harmless."""
    for attempt in range(RELEASE_ATTEMPTS):
        try:
            client.delete_image(region, claim_id)
            return
        except CloudError as err:
            if attempt + 1 == RELEASE_ATTEMPTS:
                log.warning("could not delete %s (%s): %s", what, claim_id, err)
                return
            sleep(0.5 * 2**attempt)


def _release(client: CloudClient, session: LockSession, sleep: Callable[[float], None]) -> None:
    _delete_claim(client, session.region, session.claim_id, sleep, "the apply lock's claim on release")


@contextlib.contextmanager
def apply_lock(
    client: CloudClient,
    set_name: str,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    timeout_s: float = 0.0,
    legacy_region: str | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Iterator[LockSession]:
    """Hold the apply lock of `set_name` for the duration of the block; LockedError if another apply has
    it. `legacy_region`: where v1 kept its fixed-id lock (the root's first region), read once per round."""
    acquirer = _Acquirer(
        client, set_name, lease_s=lease_s, timeout_s=timeout_s, legacy_region=legacy_region, token=new_token(),
        monotonic=monotonic, sleep=sleep, rng=rng or random.Random(),
    )  # fmt: skip
    session = acquirer.run()
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(client, session, stop), name="lock-renewal", daemon=True)
    try:
        renewer.start()
        yield session
    finally:
        stop.set()
        if renewer.is_alive():
            renewer.join(timeout=5)
        _release(client, session, sleep)


def read_claim(client: CloudClient, set_name: str, claim_id: str, *, legacy_region: str | None) -> Claim | None:
    """The claim (or legacy lock) of `set_name` with this id, in the claims region (or the legacy one);
    None if no such image is a claim of this set and project."""
    places = [claims_region(client)]
    if legacy_region is not None and claim_id == legacy_lock_id(client.project_id, set_name):
        places.append(legacy_region)
    for region in dict.fromkeys(places):
        image = client.find_image(region, claim_id)
        if image is None or image.owner not in (None, client.project_id):
            continue
        claim = claim_of(image, set_name)
        if claim is not None and (not claim.legacy or claim_id == legacy_lock_id(client.project_id, set_name)):
            return claim
    return None


def server_now(client: CloudClient, region: str, set_name: str) -> float | None:
    """The server's clock, from a listing of the set's claims (one small request)."""
    return client.list_images_dated(region, owner=client.project_id, name=claim_name(set_name)).server_time
