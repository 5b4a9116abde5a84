"""Copy an image to another region with documented calls only: there is no
copy API, so the data goes through this process, streamed, never held whole and never in a file.

1. Create the destination: private, unprotected, with the markers and the source's disk/container format and
   `os_type` (NHN requires it), then every other source property that is not read-only, reserved or a
   marker; properties the destination refuses are reported, not fatal.
2. Stream `GET {source}/file` into `PUT {destination}/file`, computing md5 and sha512 on the way.
3. Wait for the destination to be active and verify: the bytes streamed must match the source's checksums,
   and the destination's checksums must match the bytes streamed (NHN calls `queued` "converting": that it
   keeps uploaded bytes unchanged is unverified, so this is checked, not assumed).
4. Anything that goes wrong after the destination exists deletes it: the copy's own unfinished work never
   stays behind to be taken for a good copy. (A process killed mid-copy leaves a destination that is not
   `active` or has no checksum; the next plan recognises it as incomplete and replaces it.)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import markers
from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudApiError, CloudError
from reconciler.cloud.records import IMAGE_BASE_ATTRIBUTES, Image, PatchOp

log = logging.getLogger(__name__)

# Attributes the destination is created with; the rest of the source's properties follow in a PATCH.
CREATE_ATTRIBUTES = ("disk_format", "container_format", "min_disk", "min_ram")
ESSENTIAL_PROPERTIES = ("os_type",)
# Never copied: the tool's markers (the copy gets its own), the download flag (the source's is on only
# for the copy), and properties the image service sets itself.
NOT_COPIED_PREFIXES = ("reconciler_", "os_hash_", "os_glance")
NOT_COPIED = frozenset({markers.DOWNLOAD_FLAG, "image_type", "instance_uuid", "base_image_ref"})

ProgressCallback = Callable[["CopyProgress"], None]


@dataclass
class CopyProgress:
    """How far a copy is: bytes so far of `total` (when the source says), since `started`."""

    copied: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.copied / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.copied) / self.rate)


@dataclass(frozen=True)
class CopyResult:
    destination_id: str
    bytes: int
    md5: str
    sha512: str
    seconds: float
    refused_properties: tuple[str, ...] = ()


def copyable_properties(source: Image) -> dict[str, str]:
    """The source's custom properties a copy carries: all but markers, the download flag and
    server-set ones."""
    return {
        name: value
        for name, value in source.properties.items()
        if isinstance(value, str)
        and name not in NOT_COPIED
        and name not in IMAGE_BASE_ATTRIBUTES
        and not name.startswith(NOT_COPIED_PREFIXES)
    }


def copy_image(
    client: CloudClient,
    source: Image,
    destination_region: str,
    *,
    name: str,
    marks: Mapping[str, str],
    timeout: float,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CopyResult:
    """Copy `source` (active) into `destination_region`; see the module docstring."""
    started = clock()
    properties = copyable_properties(source)
    if markers.PROPS in source.properties:
        properties[markers.PROPS] = str(source.properties[markers.PROPS])
    attributes: dict[str, Any] = {n: getattr(source, n) for n in CREATE_ATTRIBUTES if getattr(source, n) is not None}
    attributes.update({n: properties.pop(n) for n in ESSENTIAL_PROPERTIES if n in properties})
    attributes.update(marks)
    attributes.update(name=name, visibility="private", protected=False)
    destination = client.create_image(destination_region, attributes)
    try:
        refused = _add_properties(client, destination, properties)
        state = CopyProgress(total=source.size, clock=clock)
        hashing = _Hashing(state, progress)
        client.prepare_transfer(source.size)
        with client.download_image_data(source.region, source.id) as download:
            client.upload_image_data(destination_region, destination.id, hashing.wrap(download.chunks()))
        md5, sha512 = hashing.md5.hexdigest(), hashing.sha512.hexdigest()
        _verify_streamed(source, md5, sha512, state.copied)
        copied = client.wait_for_image(destination_region, destination.id, status="active", timeout=timeout)
        if copied.checksum != md5 or (copied.os_hash_value and copied.os_hash_value != sha512):
            raise CloudError(
                f"the copy in {destination_region} does not match the bytes sent: its checksum is {copied.checksum} "
                f"(sha512 {short(copied.os_hash_value)}), the bytes sent have {md5} (sha512 {short(sha512)}); "
                "the copy was deleted",
                hint="the destination region changed the image's bytes (NHN may convert uploads): see docs/copies.md",
            )
    except BaseException:
        # The copy's own unfinished work: never leave it to be taken for a good copy.
        discard(client, destination_region, destination.id, "copy")
        raise
    return CopyResult(destination.id, state.copied, md5, sha512, clock() - started, refused)


def discard(client: CloudClient, region: str, image_id: str, what: str) -> None:
    """Delete an image this process made and did not finish (a copy, an upload) after a failure: a failed
    delete is logged, never raised over the failure that caused it."""
    try:
        client.delete_image(region, image_id)
    except CloudError as cleanup:
        log.warning("could not delete the failed %s %s in %s: %s", what, image_id, region, cleanup)


def short(digest: str | None) -> str:
    """A digest's first 12 hex digits, for a message."""
    return f"{digest[:12]}…" if digest else "(none)"


class _Hashing:
    def __init__(self, state: CopyProgress, progress: ProgressCallback | None) -> None:
        self.state = state
        self.progress = progress
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()

    def wrap(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.md5.update(chunk)
            self.sha512.update(chunk)
            self.state.copied += len(chunk)
            if self.progress is not None:
                self.progress(self.state)
            yield chunk


def _verify_streamed(source: Image, md5: str, sha512: str, size: int) -> None:
    problems = []
    if source.size is not None and size != source.size:
        problems.append(f"{size} bytes streamed, the source has {source.size}")
    if source.checksum and md5 != source.checksum:
        problems.append(f"md5 {md5} streamed, the source's checksum is {source.checksum}")
    if source.os_hash_value and sha512 != source.os_hash_value:
        problems.append(f"sha512 {short(sha512)} streamed, the source's is {short(source.os_hash_value)}")
    if problems:
        raise CloudError(f"the bytes read from {source.region} do not match the source image: " + "; ".join(problems))


def _add_properties(client: CloudClient, destination: Image, properties: Mapping[str, str]) -> tuple[str, ...]:
    """Set the source's properties on the destination; one refused property does not lose the others."""
    wanted = {n: v for n, v in properties.items() if destination.properties.get(n) != v}
    if not wanted:
        return ()
    ops = [PatchOp("add", n, v) for n, v in sorted(wanted.items())]
    try:
        client.update_image(destination.region, destination.id, ops)
        return ()
    except CloudApiError as err:
        if err.status not in (400, 403, 409):
            raise
    refused = []
    for op in ops:
        try:
            client.update_image(destination.region, destination.id, [op])
        except CloudApiError as err:
            if err.status not in (400, 403, 409):
                raise
            refused.append(op.name)
            log.warning("the copy in %s refused property %s: %s", destination.region, op.name, err.server_message)
    return tuple(refused)
