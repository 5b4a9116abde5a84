"""Make an image from a file's or a URL's bytes (`source: {file | url, sha256 | sha512, disk_format}`) with
documented calls only: the bytes go through this process, streamed, never held whole and never written to a
temporary file.

1. Create the image under its temporary name with no markers: private, unprotected, its disk format, and
   `os_type` (NHN requires it). Until step 4 no plan takes it for the key's image.
2. Stream the bytes into `PUT /v2/images/{id}/file`, computing md5, sha512 and the declared digest on the way
   (the token is renewed first when it may not outlive the transfer).
3. Wait for the image to be active, then verify: the bytes sent have the manifest's digest, and the image's
   size, `checksum` (md5) and `os_hash_value` are those of the bytes sent.
4. Only then one PATCH gives it its final name and the markers.

Anything that goes wrong after step 1 (a mismatch, a broken read, a refused or failed upload, a
cancellation) deletes the image: an upload is never finished by a later run. A process killed mid-upload
leaves a temporary-name image with no markers, which the next plan deletes as a leftover before uploading
again from byte 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import markers
from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudApiError, CloudError
from reconciler.cloud.records import PatchOp
from reconciler.desired import Source, content_digest
from reconciler.plan import Action
from reconciler.region_copy import CopyProgress, discard, short
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import EMPTY, SourceError, open_source

CONTAINER_FORMAT = "bare"
EMPTY_HINT = "check the build that made it: a failed build may still write an empty output"
ProgressCallback = Callable[[CopyProgress], None]


@dataclass(frozen=True, slots=True)
class UploadResult:
    image_id: str
    bytes: int
    sha: str  # the declared algorithm's digest of the bytes sent
    where: str  # what was read, for the report
    # The image's os_hash_algo when it is one this upload did not compute (its os_hash_value unchecked).
    unchecked_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """What one create uploads: the source as the manifest declares it and the image it makes."""

    source: Source
    temporary_name: str
    os_type: str

    @property
    def algorithm(self) -> str:
        digest = self.source.digest
        assert digest is not None, "an upload declares its digest (validation)"
        return digest[0]


def upload_source(action: Action) -> Source:
    """The source a create action uploads: its file or URL and disk format, and the digest its
    `reconciler_source` marker records (`sha256:<hex>` or `sha512:<hex>`)."""
    details = action.details
    change = action.changes.get(markers.SOURCE)
    digest = content_digest(str(change.after if change is not None else ""))
    if digest is None:
        raise CloudError(f"{action.id}: an upload's {markers.SOURCE} must be sha256:<hex> or sha512:<hex>")
    return Source(
        file=details.get("file"),
        url=details.get("url"),
        disk_format=details.get("disk_format"),
        **{digest[0]: digest[1]},
    )


def upload_image(
    client: CloudClient,
    region: str,
    upload: Upload,
    *,
    root: Path,
    access: SourceAccess,
    timeout: float,
    ops: Callable[[Any], list[PatchOp]],
    progress: ProgressCallback | None = None,
    made: Callable[[str], None] | None = None,
) -> UploadResult:
    """Upload `upload.source` into a new image in `region`; see the module docstring. `ops(live image)` gives
    the final PATCH; `made(image id)` is told the image's id as soon as it exists."""
    with open_source(upload.source, root, access) as opened:
        if opened.size == 0:
            raise SourceError(f"{opened.where} is {EMPTY}: an image of no bytes is never uploaded", hint=EMPTY_HINT)
        attributes = {
            "name": upload.temporary_name,
            "disk_format": upload.source.disk_format,
            "container_format": CONTAINER_FORMAT,
            "visibility": "private",
            "protected": False,
            "os_type": upload.os_type,
        }
        image = client.create_image(region, attributes)
        if made is not None:
            made(image.id)
        try:
            state = CopyProgress(total=opened.size)
            hashing = _Hashing(upload.algorithm, state, progress)
            client.prepare_transfer(opened.size)
            try:
                client.upload_image_data(region, image.id, hashing.wrap(opened.chunks()))
            except CloudApiError as err:
                if err.status != 415:
                    raise
                raise CloudError(
                    f"the image service refused the bytes of {opened.where} as {upload.source.disk_format} (415: "
                    f"{err.server_message}); the image was deleted",
                    hint="the service inspects what is uploaded: declare the disk_format the file really has "
                    "(qemu-img info shows it)",
                ) from None
            sent = hashing.digests()
            if state.copied == 0:
                raise SourceError(
                    f"{opened.where} gave no bytes: an image of no bytes is never kept; the image was deleted",
                    hint=EMPTY_HINT,
                )
            _verify_declared(upload, sent, opened.where)
            live = client.wait_for_image(region, image.id, status="active", timeout=timeout)
            unchecked = _verify_stored(live, sent, state.copied, region)
            client.update_image(region, image.id, ops(live))
        except BaseException:
            # The upload's own unfinished work: never left to be taken for the key's image.
            discard(client, region, image.id, "upload")
            raise
        return UploadResult(image.id, state.copied, sent[upload.algorithm], opened.where, unchecked)


class _Hashing:
    """md5 (Glance's `checksum`), sha512 (its default `os_hash_algo`) and the declared algorithm, each once."""

    def __init__(self, declared: str, state: CopyProgress, progress: ProgressCallback | None) -> None:
        self.state = state
        self.progress = progress
        self.hashes = {name: hashlib.new(name) for name in dict.fromkeys(("md5", "sha512", declared))}

    def wrap(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        updates = [h.update for h in self.hashes.values()]
        for chunk in chunks:
            for update in updates:
                update(chunk)
            self.state.copied += len(chunk)
            if self.progress is not None:
                self.progress(self.state)
            yield chunk

    def digests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self.hashes.items()}


def _verify_declared(upload: Upload, sent: Mapping[str, str], where: str) -> None:
    algorithm, declared = upload.source.digest or ("", "")
    if sent[algorithm] != declared:
        raise CloudError(
            f"the bytes read from {where} do not have the declared {algorithm}: they have {short(sent[algorithm])}, "
            f"the manifest says {short(declared)}; the image was deleted",
            hint="the artifact changed since its digest was written: declare the digest of the bytes you mean "
            "to ship (a new version, in a family)",
        )


def _verify_stored(live: Any, sent: Mapping[str, str], size: int, region: str) -> str | None:
    """The image holds the bytes sent: size, md5 and, when its algorithm is one computed here, os_hash_value.
    Returns the image's algorithm when it is not one computed here (its hash then unchecked)."""
    problems = []
    if live.size is not None and live.size != size:
        problems.append(f"its size is {live.size:,} bytes, {size:,} were sent")
    if live.checksum != sent["md5"]:
        problems.append(f"its checksum is {live.checksum}, the bytes sent have {sent['md5']}")
    algorithm = live.os_hash_algo
    unchecked = None
    if live.os_hash_value and algorithm in sent:
        if live.os_hash_value != sent[algorithm]:
            problems.append(
                f"its {algorithm} is {short(live.os_hash_value)}, the bytes sent have {short(sent[algorithm])}"
            )
    elif live.os_hash_value:
        unchecked = algorithm
    if problems:
        raise CloudError(
            f"the image uploaded in {region} does not hold the bytes sent: " + "; ".join(problems) + "; it was deleted",
            hint="the region changed the image's bytes (NHN may convert uploads): see docs/copies.md",
        )
    return unchecked
