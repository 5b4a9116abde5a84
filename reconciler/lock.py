"""One apply at a time per set and project, with a lock kept in the cloud itself.

Glance creates an image with a client-chosen id atomically: a second create with the same id is 409.
The lock is such an image, with an id derived from (project, set), in the target's first region. It
records who holds it and until when (a lease, renewed while the apply runs). A lock whose lease ran out,
or whose holder on this same machine is no longer running, was left by a crash and is taken over.
The lock image is never data: the planner and import ignore it (`reconciler_lock`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudError, Conflict
from reconciler.cloud.model import Image, set_ops
from reconciler.errors import ReconcilerError

log = logging.getLogger(__name__)

LOCK = "reconciler_lock"
HOLDER = "reconciler_lock_holder"
EXPIRES = "reconciler_lock_expires"
LEASE_S = 600.0
RELEASE_ATTEMPTS = 3


class LockedError(ReconcilerError):
    """Another apply of this set holds the lock."""


def lock_id(project: str, set_name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reconciler-lock:{project}:{set_name}"))


def is_lock(image: Image) -> bool:
    """The apply lock is bookkeeping, not an image of anyone's: plans and imports ignore it."""
    return LOCK in image.properties


# This process, among all: host and pid alone are not unique (two containers on one host network both
# run as pid 1).
_PROCESS_TOKEN = uuid.uuid4().hex[:12]


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# The locks this process holds now: a lock naming this process as holder that is not among them was
# left by an earlier apply in this same process (run as a library, or a test) whose release failed.
# Acquisitions in one process are serialised, so a lock just created is registered before another
# thread can find it.
_HELD: set[str] = set()
_HELD_GUARD = threading.Lock()
_ACQUIRING = threading.Lock()


def _crashed_here(holder: str, image_id: str) -> bool:
    """Whether `holder` ran on this machine and is gone: this process, no longer holding the lock, or a
    process that no longer exists. A holder on another machine is never judged (its lease decides)."""
    host, _, rest = holder.partition(":")
    pid, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if token == _PROCESS_TOKEN:
        with _HELD_GUARD:
            return image_id not in _HELD
    if token and int(pid) == os.getpid():
        return False  # another process with our pid (another container): alive, as far as we can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextlib.contextmanager
def apply_lock(
    client: CloudClient,
    region: str,
    set_name: str,
    *,
    lease_s: float = LEASE_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    image_id = lock_id(client.project_id, set_name)
    with _ACQUIRING:
        _acquire(client, region, set_name, image_id, lease_s, clock)
        with _HELD_GUARD:
            _HELD.add(image_id)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, region, image_id, lease_s, clock, stop), name="lock-renewal", daemon=True
    )
    try:
        renewer.start()
        yield
    finally:
        stop.set()
        if renewer.is_alive():
            renewer.join(timeout=5)
        try:
            _release(client, region, image_id, sleep)
        finally:
            with _HELD_GUARD:
                _HELD.discard(image_id)


def _release(client: CloudClient, region: str, image_id: str, sleep: Callable[[float], None]) -> None:
    """Delete the lock, trying again on a failure: a lock left behind blocks every apply of the set until
    its lease ends (unless its holder ran on the same machine). Before trying again it checks the lock is
    still ours: a delete whose answer was lost may have worked, and another apply taken the lock since."""
    for attempt in range(RELEASE_ATTEMPTS):
        try:
            client.delete_image(region, image_id)
            return
        except CloudError as err:
            if attempt + 1 == RELEASE_ATTEMPTS:  # the lease runs out on its own
                log.warning("could not release the apply lock %s: %s", image_id, err)
                return
            sleep(0.5 * 2**attempt)
            try:
                held = client.find_image(region, image_id)
            except CloudError:
                continue
            if held is None or held.properties.get(HOLDER) != _holder():
                return  # released after all, and perhaps taken by another apply since


def _acquire(client: CloudClient, region: str, set_name: str, image_id: str, lease_s: float, clock) -> None:
    attributes = {
        "id": image_id,
        "name": f"reconciler-lock-{set_name}",
        "visibility": "private",
        "disk_format": "raw",
        "container_format": "bare",
        "os_type": "linux",  # NHN requires it on every image
        LOCK: set_name,
        HOLDER: _holder(),
        EXPIRES: _iso(clock() + lease_s),
    }
    for _attempt in range(2):
        try:
            client.create_image(region, attributes)
            return
        except Conflict:
            held = client.find_image(region, image_id)
            if held is None:
                continue  # released meanwhile: try again
            holder = str(held.properties.get(HOLDER, "?"))
            expires = str(held.properties.get(EXPIRES, ""))
            if _epoch(expires) < clock() or _crashed_here(holder, image_id):
                log.info("taking over the apply lock left by %s (lease %s)", holder, expires)
                client.delete_image(region, image_id)
                continue
            raise LockedError(
                f"another apply of set {set_name} is running ({holder}, lease until {expires}): nothing was applied",
                hint="wait for it to finish and plan again; a crashed apply's lock frees itself when its lease ends",
            ) from None
    raise LockedError(f"could not take the apply lock of set {set_name}: another apply keeps taking it")


def _renew(client: CloudClient, region: str, image_id: str, lease_s: float, clock, stop: threading.Event) -> None:
    while not stop.wait(lease_s / 3):
        try:
            client.update_image(region, image_id, set_ops({EXPIRES: _iso(clock() + lease_s)}))
        except CloudError as err:
            log.warning("could not renew the apply lock: %s", err)
