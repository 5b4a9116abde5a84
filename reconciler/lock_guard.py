"""The CloudClient apply uses: it checks the apply lock, and a cancellation, before every change.

Every mutating call first asks the lock session whether the lock is still ours (`LockSession.check`)
and whether the run was cancelled (then it starts nothing new: CloudCancelled); an upload asks again
before each chunk, so a copy stops streaming soon after the lock is lost or a signal comes; waits on
statuses end at once on a cancellation. Reads pass straight through. Exempt: calls made inside a
compensation (undoing this run's own work: `LockSession.compensation()`, `cancel.compensating()`) and
deleting an image this run created (an unfinished copy target, a temporary image: this run's own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from reconciler.cancel import Cancellation
from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudCancelled
from reconciler.cloud.records import Image, Member, PatchOp, Server
from reconciler.lock import LockSession


class LockGuardedClient:
    """Forwards to `inner`; see the module docstring for what it checks."""

    def __init__(self, inner: CloudClient, session: LockSession, cancel: Cancellation | None = None) -> None:
        self._inner = inner
        self._session = session
        self._cancel = cancel
        self._created: set[tuple[str, str]] = set()
        self._created_guard = threading.Lock()
        self.project_id = inner.project_id

    def __getattr__(self, name: str) -> Any:
        # Reads and anything not listed below: no change to the cloud, no check.
        return getattr(self._inner, name)

    def _check(self) -> None:
        if self._cancel is not None and self._cancel.stop_waiting():
            raise CloudCancelled("not started: the apply was cancelled")
        self._session.check()

    def _stop(self) -> Callable[[], bool] | None:
        return self._cancel.stop_waiting if self._cancel is not None else None

    def wait_for_image(self, region: str, image_id: str, *, status: str = "active", timeout: float) -> Image:
        return self._inner.wait_for_image(region, image_id, status=status, timeout=timeout, stop=self._stop())

    def wait_for_server(self, region: str, server_id: str, *, status: str, timeout: float) -> Server:
        return self._inner.wait_for_server(region, server_id, status=status, timeout=timeout, stop=self._stop())

    def _made(self, region: str, image_id: str) -> str:
        with self._created_guard:
            self._created.add((region, image_id))
        return image_id

    # -- images ---------------------------------------------------------------------------------------

    def create_image(self, region: str, attributes: Mapping[str, Any]) -> Image:
        self._check()
        image = self._inner.create_image(region, attributes)
        self._made(region, image.id)
        return image

    def update_image(self, region: str, image_id: str, ops: Sequence[PatchOp]) -> Image:
        self._check()
        return self._inner.update_image(region, image_id, ops)

    def delete_image(self, region: str, image_id: str) -> bool:
        with self._created_guard:
            ours = (region, image_id) in self._created
        if not ours:
            self._check()
        return self._inner.delete_image(region, image_id)

    def upload_image_data(self, region: str, image_id: str, chunks: Iterable[bytes]) -> None:
        self._check()

        def checked() -> Iterator[bytes]:
            sent = 0
            for chunk in chunks:
                # A lost lock or a cancellation aborts the stream between two chunks; the words say it began.
                if self._cancel is not None and self._cancel.stop_waiting():
                    raise CloudCancelled(f"stopped after {sent:,} bytes of the transfer: the apply was cancelled")
                self._session.check()
                sent += len(chunk)
                yield chunk

        self._inner.upload_image_data(region, image_id, checked())

    # -- members --------------------------------------------------------------------------------------

    def add_member(self, region: str, image_id: str, member_id: str) -> Member:
        self._check()
        return self._inner.add_member(region, image_id, member_id)

    def remove_member(self, region: str, image_id: str, member_id: str) -> bool:
        self._check()
        return self._inner.remove_member(region, image_id, member_id)

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        self._check()
        return self._inner.set_member_status(region, image_id, status)

    # -- servers --------------------------------------------------------------------------------------

    def stop_server(self, region: str, server_id: str) -> None:
        self._check()
        self._inner.stop_server(region, server_id)

    def start_server(self, region: str, server_id: str) -> None:
        self._check()
        self._inner.start_server(region, server_id)

    def set_server_metadata(self, region: str, server_id: str, metadata: Mapping[str, str]) -> None:
        self._check()
        self._inner.set_server_metadata(region, server_id, metadata)

    def delete_server_metadata(self, region: str, server_id: str, key: str) -> bool:
        self._check()
        return self._inner.delete_server_metadata(region, server_id, key)

    def create_image_from_server(
        self, region: str, server: Server, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> str:
        self._check()
        return self._made(region, self._inner.create_image_from_server(region, server, name, metadata=metadata))
