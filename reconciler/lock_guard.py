"""A CloudClient that checks the apply lock before every change it makes.

Apply talks to the cloud through this wrapper: every mutating call first asks the lock session whether
the lock is still ours (`LockSession.check`), and an upload asks again before each chunk, so a copy
stops streaming soon after the lock is lost. Reads pass straight through. Exempt: calls made inside
`LockSession.compensation()` (undoing this run's own work) and deleting an image this run created (an
unfinished copy target is this run's own leftover).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from reconciler.cloud.client import CloudClient
from reconciler.cloud.model import Image, Member, PatchOp, Server
from reconciler.lock import LockSession


class LockGuardedClient:
    """Forwards to `inner`; see the module docstring for what it checks."""

    def __init__(self, inner: CloudClient, session: LockSession) -> None:
        self._inner = inner
        self._session = session
        self._created: set[tuple[str, str]] = set()
        self._created_guard = threading.Lock()
        self.project_id = inner.project_id

    def __getattr__(self, name: str) -> Any:
        # Reads and anything not listed below: no change to the cloud, no check.
        return getattr(self._inner, name)

    def _made(self, region: str, image_id: str) -> str:
        with self._created_guard:
            self._created.add((region, image_id))
        return image_id

    # -- images ---------------------------------------------------------------------------------------

    def create_image(self, region: str, attributes: Mapping[str, Any]) -> Image:
        self._session.check()
        image = self._inner.create_image(region, attributes)
        self._made(region, image.id)
        return image

    def update_image(self, region: str, image_id: str, ops: Sequence[PatchOp]) -> Image:
        self._session.check()
        return self._inner.update_image(region, image_id, ops)

    def delete_image(self, region: str, image_id: str) -> bool:
        with self._created_guard:
            ours = (region, image_id) in self._created
        if not ours:
            self._session.check()
        return self._inner.delete_image(region, image_id)

    def upload_image_data(self, region: str, image_id: str, chunks: Iterable[bytes]) -> None:
        self._session.check()

        def checked() -> Iterator[bytes]:
            for chunk in chunks:
                self._session.check()  # a lost lock aborts the stream between two chunks
                yield chunk

        self._inner.upload_image_data(region, image_id, checked())

    # -- members --------------------------------------------------------------------------------------

    def add_member(self, region: str, image_id: str, member_id: str) -> Member:
        self._session.check()
        return self._inner.add_member(region, image_id, member_id)

    def remove_member(self, region: str, image_id: str, member_id: str) -> bool:
        self._session.check()
        return self._inner.remove_member(region, image_id, member_id)

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        self._session.check()
        return self._inner.set_member_status(region, image_id, status)

    # -- servers --------------------------------------------------------------------------------------

    def stop_server(self, region: str, server_id: str) -> None:
        self._session.check()
        self._inner.stop_server(region, server_id)

    def start_server(self, region: str, server_id: str) -> None:
        self._session.check()
        self._inner.start_server(region, server_id)

    def set_server_metadata(self, region: str, server_id: str, metadata: Mapping[str, str]) -> None:
        self._session.check()
        self._inner.set_server_metadata(region, server_id, metadata)

    def delete_server_metadata(self, region: str, server_id: str, key: str) -> bool:
        self._session.check()
        return self._inner.delete_server_metadata(region, server_id, key)

    def create_image_from_server(
        self, region: str, server: Server, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> str:
        self._session.check()
        return self._made(region, self._inner.create_image_from_server(region, server, name, metadata=metadata))
