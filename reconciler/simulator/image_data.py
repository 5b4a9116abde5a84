"""Image data (Glance v2 `/v2/images/{id}/file`): uploads and downloads, streamed, never held whole.

Uploads are written to a blob file while md5 and sha512 are computed on the way; downloads stream a blob
or regenerate a generated image's qcow2. NHN gates downloads on `nhncloud_allow_download` [doc] (the
`download_gating` knob; Glance has no gate).

Bytes that are not the image's `disk_format` get 415, as on Glance 33, which then leaves the image
`queued` with the refused bytes' checksum and hash, and their file in its store: a second upload fails
with 500 (the store's "already exists"). The simulator does the same.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from reconciler.simulator.http import BODY_CHUNK, HttpError, Request, Response, Route, empty_response
from reconciler.simulator.image_records import (
    PREFIX,
    note_change,
    owned_image,
    start_processing,
    visible_image,
)

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

from reconciler.simulator.qcow2 import QCOW2_MAGIC, generated_image


def _upload(app: SimulatorApp, req: Request) -> Response:
    if req.content_type != "application/octet-stream":
        raise HttpError(415, f"Invalid content type {req.content_type or None}", media_type=req.content_type or None)
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "upload data to")
        fields = record["fields"]
        image_id = fields["id"]
        if fields["status"] != "queued":
            raise HttpError(409, f"Image status transition from {fields['status']} to saving is not allowed")
        if record.get("refused_data"):
            # Glance 33's filesystem store still holds the refused upload's file: "already exists", a 500.
            raise HttpError(500, "The server has either erred or is incapable of performing the requested operation.")
        missing = [k for k in ("disk_format", "container_format") if not fields.get(k)]
        if missing:
            noun = "Properties" if len(missing) > 1 else "Property"
            raise HttpError(400, f"{noun} {', '.join(missing)} must be set prior to saving data.")
        before = dict(fields)
        fields["status"] = "saving"
        note_change(txn, app, record, before)
        txn.changed()
        disk_format = fields["disk_format"]

    blob_name = image_id
    part = app.store.blob_path_for_write(f"{blob_name}.part")
    try:
        size, md5, sha512, virtual_size = _receive(req, part, disk_format, app.behaviour.upload_keeps_bytes)
    except _Refused as refused:
        part.unlink(missing_ok=True)
        # Glance 33: back to queued, showing the refused bytes' checksum and hash, and unusable for
        # another upload (the module docstring).
        with app.store.transaction() as txn:
            record = txn.doc["images"].get(image_id)
            if record is not None and record["fields"]["status"] == "saving":
                before = dict(record["fields"])
                record["fields"].update(
                    status="queued",
                    checksum=refused.md5,
                    os_hash_algo="sha512",
                    os_hash_value=refused.sha512,
                    updated_at=txn.utc_now(),
                )
                record["refused_data"] = True
                note_change(txn, app, record, before)
                txn.changed()
        raise refused.error from None
    except BaseException:
        part.unlink(missing_ok=True)
        # A broken transfer returns the image to queued so the upload can be retried.
        with app.store.transaction() as txn:
            record = txn.doc["images"].get(image_id)
            if record is not None and record["fields"]["status"] == "saving":
                before = dict(record["fields"])
                record["fields"]["status"] = "queued"
                note_change(txn, app, record, before)
                txn.changed()
        raise
    part.replace(app.store.blob_path_for_write(blob_name))
    with app.store.transaction() as txn:
        record = txn.doc["images"].get(image_id)
        if record is None:
            app.store.blob_path_for_write(blob_name).unlink(missing_ok=True)
            raise HttpError(
                410,
                f"Image {image_id} could not be found after upload. The image may have been deleted during the upload.",
            )
        record["data"] = {"kind": "blob", "name": blob_name}
        before = dict(record["fields"])
        record["fields"].update(
            size=size,
            virtual_size=virtual_size,
            checksum=md5,
            os_hash_algo="sha512",
            os_hash_value=sha512,
            updated_at=txn.utc_now(),
        )
        # NHN describes `queued` as "converting": the image stays saving for a few polls.
        start_processing(app, record, "saving")
        note_change(txn, app, record, before)
        txn.changed()
    return empty_response(204)


class _Refused(Exception):
    """The upload's bytes are not its disk_format: the 415 to answer, and the digests of what came."""

    def __init__(self, error: HttpError, md5: str, sha512: str) -> None:
        super().__init__(error.message)
        self.error, self.md5, self.sha512 = error, md5, sha512


def _receive(req: Request, part, disk_format: str, keep_bytes: bool) -> tuple[int, str, str, int]:
    """Stream the body into `part`, hashing as it goes; check it is an image of `disk_format`.

    Glance 33 inspects the whole stream and refuses it at the end [glance33]; so does this."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    head = b""
    with open(part, "wb") as out:
        for chunk in req.stream():
            if len(head) < 32:
                head += chunk[: 32 - len(head)]
            out.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
        if disk_format == "qcow2" and (len(head) < 32 or not head.startswith(QCOW2_MAGIC)):
            # Glance 33's message names the format its inspector saw: raw for anything unrecognised.
            error = HttpError(
                415, "Image disk_format qcow2 does not match stream data raw", media_type="application/octet-stream"
            )
            raise _Refused(error, md5.hexdigest(), sha512.hexdigest())
        if not keep_bytes:
            # Knob: NHN describes queued as "converting"; whether stored bytes equal the uploaded ones is
            # unverified. Trailing padding keeps the qcow2 valid but changes
            # its checksums, so a copy's verification has something to catch.
            padding = b"\0" * 512
            out.write(padding)
            md5.update(padding)
            sha512.update(padding)
            size += len(padding)
    virtual_size = struct.unpack(">Q", head[24:32])[0] if disk_format == "qcow2" else size
    return size, md5.hexdigest(), sha512.hexdigest(), virtual_size


def _download(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = visible_image(txn, req)
        fields = record["fields"]
        gated = app.behaviour.download_gating
        if gated and str(fields.get("nhncloud_allow_download", "false")).lower() != "true":
            # NHN allows downloads only when nhncloud_allow_download is true [doc]; the status of the
            # refusal is undocumented, hence a knob (default 403).
            raise HttpError(
                app.behaviour.download_refused_status,
                f"Image {fields['id']} is not allowed to be downloaded: nhncloud_allow_download is not true.",
            )
        if fields["status"] == "deactivated":
            raise HttpError(403, "The requested image has been deactivated. Image data download is forbidden.")
        data = record.get("data")
        if fields["status"] != "active" or data is None:
            return empty_response(204)
        data = dict(data)
        checksum, size = fields["checksum"], fields["size"]
    if data["kind"] == "generated":
        chunks: Iterator[bytes] = generated_image(data["size_mb"], data["content"]).iter_chunks()
    else:
        path = app.store.blob_path_for_read(data["name"])
        try:
            # Opened before answering: a delete racing this download cannot truncate a 200.
            handle = open(path, "rb") if path is not None else None  # noqa: SIM115 - closed by _read_file
        except FileNotFoundError:
            handle = None
        if handle is None:
            raise HttpError(404, f"Image {req.params['image_id']} has no data in the simulator's blob store.")
        chunks = _read_file(handle)
    headers = {"Content-Type": "application/octet-stream", "Content-MD5": checksum}
    return Response(200, chunks, headers, length=size)


def _read_file(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(BODY_CHUNK):
            yield chunk


def routes() -> list[Route]:
    return [
        Route("PUT", PREFIX + "/v2/images/{image_id}/file", "image", _upload, stream=True),
        Route("GET", PREFIX + "/v2/images/{image_id}/file", "image", _download, stream=True),
    ]
