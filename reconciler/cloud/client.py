"""`CloudClient`: the one interface through which the planner and apply read and change the cloud.

Contract, for every implementation:

- Every call names its region; a region's endpoints come from the service catalog.
- "Not found" is `NotFound` (404): the object does not exist *or* this project cannot see it; the two
  are indistinguishable by design of the APIs. `find_*` methods return None instead.
- Reads (`list_*`, `get_*`, `find_*`) are idempotent and safe to retry; the transport retries them.
- Idempotent changes, safe to repeat after a lost answer: `update_image` (each operation sets a value),
  `delete_image` and `remove_member` (return False when the object is already gone), `add_member`
  (returns the existing membership on a duplicate), `set_member_status`, `set_server_metadata`,
  `stop_server` / `start_server` (a server already in, or on its way to, the target status is fine).
- Not idempotent, never retried after a lost answer: `create_image`, `create_image_from_server`.
  A caller that lost the answer re-observes (lists images and looks for the name it chose) instead of
  repeating the call.
- Waiting (`wait_for_image`, `wait_for_server`) polls with backoff until a status or the timeout, and
  fails early when the object reaches a failed status.
- Errors are `reconciler.cloud.errors` types carrying the server's message; never a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.cloud.records import Image, ImageListing, Member, PatchOp, Server, Volume


class ImageDownload(Protocol):
    """An open download: `size` (bytes, when the server says) and the body as chunks."""

    size: int | None
    checksum: str | None

    def chunks(self) -> Iterator[bytes]: ...


class CloudClient(Protocol):
    project_id: str

    # -- catalog --------------------------------------------------------------------------------------
    def image_regions(self) -> tuple[str, ...]:
        """Regions whose catalog offers the image service, sorted."""

    # -- images ---------------------------------------------------------------------------------------
    def list_images(
        self,
        region: str,
        *,
        owner: str | None = None,
        name: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[Image]:
        """Every image the project can list in `region` (all pages), filtered on the server by `owner`, an
        exact `name` and any other Glance list filter in `filters` (e.g. `visibility` and `member_status`
        for a consumer's view of what is shared with it). Custom-property filters are not relied on: NHN
        may ignore them."""

    def list_images_dated(
        self,
        region: str,
        *,
        owner: str | None = None,
        name: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> ImageListing:
        """As `list_images`, with the server's clock (the first page's `Date`) at the time of the answer."""

    def get_image(self, region: str, image_id: str) -> Image:
        """The image; NotFound if it does not exist or is not visible."""

    def find_image(self, region: str, image_id: str) -> Image | None:
        """The image, or None."""

    def create_image(self, region: str, attributes: Mapping[str, Any]) -> Image:
        """A new, empty (queued) image. Not idempotent."""

    def update_image(self, region: str, image_id: str, ops: Sequence[PatchOp]) -> Image:
        """Apply JSON-patch operations; returns the updated image."""

    def delete_image(self, region: str, image_id: str) -> bool:
        """Delete; False if it was already gone. A protected image is Forbidden."""

    def upload_image_data(self, region: str, image_id: str, chunks: Iterable[bytes]) -> None:
        """Stream bytes into a queued image. Never retried (the body cannot be replayed)."""

    def prepare_transfer(self, size: int | None) -> None:
        """Before streaming `size` bytes: re-authenticate now if the token could expire during the transfer."""

    def download_image_data(self, region: str, image_id: str) -> AbstractContextManager[ImageDownload]:
        """Open a streamed download; the connection closes when the context ends."""

    def wait_for_image(
        self,
        region: str,
        image_id: str,
        *,
        status: str = "active",
        timeout: float,
        stop: Callable[[], bool] | None = None,
    ) -> Image:
        """Poll until the image has `status`; CloudTimeout, or CloudError if it fails or disappears;
        CloudCancelled as soon as `stop()` is true."""

    # -- members --------------------------------------------------------------------------------------
    def list_members(self, region: str, image_id: str) -> list[Member]:
        """The image's members (as its owner sees them)."""

    def add_member(self, region: str, image_id: str, member_id: str) -> Member:
        """Share with a project (the image must be `shared`); returns the existing one on a duplicate."""

    def remove_member(self, region: str, image_id: str, member_id: str) -> bool:
        """Unshare; False if the project was not a member."""

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        """Accept or reject a share *as the member project*: call it on that project's client."""

    def list_shared_images(self, region: str) -> list[tuple[Image, str]]:
        """The consumer side: every image another project shares with this one in `region` (all pages),
        with this project's member status for it ("pending", "accepted" or "rejected"), sorted by id."""

    # -- servers --------------------------------------------------------------------------------------
    def list_servers(self, region: str) -> list[Server]:
        """Every server of the project in the region, from paged detail lists: status and metadata, but
        no root device or flavor name (those cost a read per server: get_server)."""

    def get_volume(self, region: str, volume_id: str) -> Volume:
        """One volume (its `status`: `uploading` while Cinder makes an image of it); NotFound if unknown."""

    def list_volumes(self, region: str) -> list[Volume]:
        """Every block-storage volume of the project in the region (paged), with the image each was made
        from: with `Server.image_id`, who uses an image."""

    def get_server(self, region: str, server_id: str) -> Server:
        """The server with its flavor name and root device; NotFound if unknown."""

    def stop_server(self, region: str, server_id: str) -> None:
        """Ask an ACTIVE server to stop (then wait_for_server SHUTOFF)."""

    def start_server(self, region: str, server_id: str) -> None:
        """Ask a SHUTOFF server to start (then wait_for_server ACTIVE)."""

    def set_server_metadata(self, region: str, server_id: str, metadata: Mapping[str, str]) -> None:
        """Merge keys into the server's metadata."""

    def delete_server_metadata(self, region: str, server_id: str, key: str) -> bool:
        """Remove one metadata key; False if it was not set."""

    def create_image_from_server(
        self, region: str, server: Server, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Image the server's root disk; returns the new image's id. The call follows the root device:
        Cinder os-volume_upload_image for a volume root, Nova createImage for a local disk. Not idempotent.
        """

    def wait_for_server(
        self, region: str, server_id: str, *, status: str, timeout: float, stop: Callable[[], bool] | None = None
    ) -> Server:
        """Poll until the server has `status` and no task; CloudTimeout or CloudError (ERROR) otherwise;
        CloudCancelled as soon as `stop()` is true."""

    def close(self) -> None:
        """Release connections."""
