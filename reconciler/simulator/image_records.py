"""The simulator's image records: how an image is stored, who may see it, how it is shown, and how a
new image goes from `queued` to `active`. Shared by the Image API handlers (images.py, image_members.py,
image_data.py), by Nova's createImage and Cinder's os-volume_upload_image, and by seeds.

A record is `{"region", "fields", "data", "members", "polls_left"}`: `fields` are Glance's attributes with
custom properties flattened in, `data` says where the bytes come from (see state.py), `members` maps a
project id to its membership. With the `listing_lag_s` knob a record also keeps `since` (when its
current fields took effect, on the simulator's clock) and `history` (earlier fields, each with its own
`since`), so listings can show an image as it was that many seconds ago.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.simulator.http import HttpError, Request
from reconciler.simulator.qcow2 import background_digests, generated_digests, generated_image
from reconciler.simulator.state import Transaction

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

PREFIX = "/image/{region}"  # Glance's endpoint per region; its paths start with /v2

# glance/api/v2/images.py RequestDeserializer
READ_ONLY = frozenset(
    {
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
        "id",
        "os_hash_algo",
        "os_hash_value",
    }
)
RESERVED = frozenset({"location", "locations", "deleted", "deleted_at", "stores"})
BASE_ATTRIBUTES = frozenset(
    {
        "checksum",
        "created_at",
        "container_format",
        "disk_format",
        "id",
        "min_disk",
        "min_ram",
        "name",
        "size",
        "virtual_size",
        "status",
        "tags",
        "owner",
        "updated_at",
        "visibility",
        "protected",
        "os_hidden",
        "os_hash_algo",
        "os_hash_value",
    }
)
VISIBILITIES = ("community", "public", "private", "shared")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
IN_PROGRESS = ("queued", "saving")


def new_image_fields(image_id: str, owner: str, now: str, **attributes: Any) -> dict[str, Any]:
    """Glance's attributes of a new image: every base attribute present, unknown ones null.

    `attributes` override the defaults and add custom properties.
    """
    return {
        "id": image_id,
        "name": None,
        "status": "queued",
        # Glance 33 defaults new images to shared [glance33]; a careful client sends private.
        "visibility": "shared",
        "protected": False,
        "owner": owner,
        "min_disk": 0,
        "min_ram": 0,
        "size": None,
        "virtual_size": None,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "container_format": None,
        "disk_format": None,
        "tags": [],
        "created_at": now,
        "updated_at": now,
        **attributes,
    }


def new_record(region: str, fields: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"region": region, "fields": fields, "data": data, "members": {}, "polls_left": 0}


# -- lookups --------------------------------------------------------------------------------------


def region_of(txn: Transaction, req: Request) -> str:
    region = req.params["region"]
    if region not in txn.doc["regions"]:
        raise HttpError(404, f"The resource could not be found: no image endpoint in region {region}")
    return region


def can_see(record: dict[str, Any], project: str) -> bool:
    fields = record["fields"]
    return (
        fields["owner"] == project
        or fields["visibility"] in ("public", "community")
        or (fields["visibility"] == "shared" and project in record["members"])
    )


def visible_image(txn: Transaction, req: Request, image_id: str | None = None) -> dict[str, Any]:
    """The image if this project may see it in this region; 404 as Glance answers otherwise."""
    region = region_of(txn, req)
    image_id = image_id or req.params["image_id"]
    record = txn.doc["images"].get(image_id)
    if record is None or record["region"] != region or not can_see(record, req.token.project):
        raise HttpError(404, f"No image found with ID {image_id}")
    return record


def owned_image(txn: Transaction, req: Request, action: str) -> dict[str, Any]:
    record = visible_image(txn, req)
    if record["fields"]["owner"] != req.token.project:
        raise HttpError(403, f"You are not permitted to {action} this image.")
    return record


def present(record: dict[str, Any], fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The image as Glance shows it: base attributes, custom properties flattened, and links.
    `fields` replace the record's current ones (a lagging listing shows older fields)."""
    image = {"os_hidden": False, **(record["fields"] if fields is None else fields)}
    image_id = image["id"]
    image.update(self=f"/v2/images/{image_id}", file=f"/v2/images/{image_id}/file", schema="/v2/schemas/image")
    return image


# -- change tracking: what a lagging listing shows ------------------------------------------------


def note_created(txn: Transaction, app: SimulatorApp, record: dict[str, Any]) -> None:
    """Stamp a new record with the time its fields took effect (only needed while listings lag)."""
    if app.behaviour.listing_lag_s > 0:
        record["since"] = txn.now()


def note_change(txn: Transaction, app: SimulatorApp, record: dict[str, Any], before: dict[str, Any]) -> None:
    """Record that `record["fields"]` replaced `before` just now, for `listing_lag_s`.

    Keeps the earlier versions a listing lagging by `listing_lag_s` may still show, and drops older ones.
    Records without `since` (seeded, or made while no lag was set) count as changed long ago.
    """
    lag = app.behaviour.listing_lag_s
    if lag <= 0:
        return
    now = txn.now()
    history = [*record.get("history", []), [record.get("since", 0), before]]
    # The newest version at or before the lag horizon is the oldest any listing can still show.
    horizon = now - lag
    keep_from = max((i for i, (since, _) in enumerate(history) if since <= horizon), default=0)
    record["history"] = history[keep_from:]
    record["since"] = now


def lagged_fields(record: dict[str, Any], horizon: float) -> dict[str, Any] | None:
    """The record's fields as they were at `horizon` (epoch seconds), or None if it did not exist yet."""
    if record.get("since", 0) <= horizon:
        return record["fields"]
    for since, fields in reversed(record.get("history", [])):
        if since <= horizon:
            return fields
    return None


# -- deleted ids ----------------------------------------------------------------------------------


def remember_deleted(txn: Transaction, record: dict[str, Any]) -> None:
    """Glance soft-deletes: the row stays, so its id can never be used again (OSSN-0075: `glance-manage
    db purge` skips the images table by default). Tombstones live in the state's `deleted_images`."""
    tombstones = txn.doc.setdefault("deleted_images", {})
    tombstones[record["fields"]["id"]] = {"region": record["region"], "deleted_at": txn.utc_now()}
    txn.changed()


def id_taken(txn: Transaction, app: SimulatorApp, image_id: str) -> bool:
    """Whether a create with this id conflicts: a live image has it, or a deleted one had it (unless the
    `deleted_ids_reusable` knob says ids come back after a delete)."""
    if image_id in txn.doc["images"]:
        return True
    return not app.behaviour.deleted_ids_reusable and image_id in txn.doc.get("deleted_images", {})


def advance(txn: Transaction, app: SimulatorApp, record: dict[str, Any]) -> None:
    """Count one poll of an image being made, after the poll was answered.

    With `image_ready_after_polls: N` the first N polls see it unfinished (a new image from a server
    `queued`, then `saving`) and poll N+1 sees it `active`. An image a server's createImage is still
    making moves with that server's snapshot task instead (`advance_snapshot`).
    """
    server = snapshotting_server(txn, record)
    if server is not None:
        advance_snapshot(txn, app, server, record)
        return
    _advance_image(txn, app, record)


def _advance_image(txn: Transaction, app: SimulatorApp, record: dict[str, Any]) -> None:
    if record["fields"]["status"] not in IN_PROGRESS or record.get("polls_left", 0) <= 0:
        return
    record["polls_left"] -= 1
    txn.changed()
    ready = dict(record.get("ready_fields") or {})
    if record["polls_left"] <= 0:
        data = record.get("data") or {}
        if data.get("kind") == "generated" and "checksum" not in ready:
            digests = background_digests.result(data["size_mb"], data["content"])
            if digests is None:
                # Still hashing: stay saving and look again at the next poll.
                record["polls_left"] = 1
            else:
                ready.update(checksum=digests[0], os_hash_algo="sha512", os_hash_value=digests[1])
    before = dict(record["fields"])
    if record["polls_left"] > 0:
        if before["status"] != "saving":
            record["fields"]["status"] = "saving"
            note_change(txn, app, record, before)
        return
    record.pop("ready_fields", None)
    record["fields"].update(ready, status="active", updated_at=txn.utc_now())
    note_change(txn, app, record, before)


# -- Nova's snapshot task: the server's task_state while createImage makes its image ---------------

# nova/compute: the API sets image_snapshot_pending, which the compute host replaces with image_snapshot
# as soon as it takes the job (too briefly for a poll to see); the libvirt driver then moves to
# image_pending_upload and image_uploading; the manager sets null once Glance has the image.
SNAPSHOT_TASK_STATES = ("image_snapshot", "image_pending_upload", "image_uploading")


def start_snapshot(app: SimulatorApp, server: dict[str, Any], record: dict[str, Any]) -> None:
    """Give `server` the snapshot task that makes `record` (a createImage). An image already active
    (`image_ready_after_polls: 0`) needs no task."""
    if record["fields"]["status"] not in IN_PROGRESS:
        return
    polls = app.behaviour.image_task_polls
    record["snapshot_of"] = server["id"]
    server["task"] = {
        "task_state": SNAPSHOT_TASK_STATES[0] if polls > 0 else SNAPSHOT_TASK_STATES[-1],
        "image_id": record["fields"]["id"],
        "polls_left": polls,
    }


def snapshotting_server(txn: Transaction, record: dict[str, Any]) -> dict[str, Any] | None:
    """The server whose snapshot task is making this image, if any."""
    server_id = record.get("snapshot_of")
    server = txn.doc["servers"].get(server_id) if server_id else None
    task = (server or {}).get("task") or {}
    return server if task.get("image_id") == record["fields"]["id"] else None


def advance_snapshot(txn: Transaction, app: SimulatorApp, server: dict[str, Any], record: dict[str, Any]) -> None:
    """Count one poll of a snapshotting server or of its image (one process, either poll moves it).

    `image_snapshot` and `image_pending_upload` each last `image_task_polls` polls, the image `queued`
    meanwhile; then `image_uploading` while the image goes on as any new image does (`saving`, and
    `active` after `image_ready_after_polls`); the task ends (null) as the image becomes active.
    """
    task = server["task"]
    txn.changed()
    if task["task_state"] != SNAPSHOT_TASK_STATES[-1]:
        task["polls_left"] -= 1
        if task["polls_left"] <= 0:
            task["task_state"] = SNAPSHOT_TASK_STATES[SNAPSHOT_TASK_STATES.index(task["task_state"]) + 1]
            task["polls_left"] = app.behaviour.image_task_polls
        return
    _advance_image(txn, app, record)
    settle_snapshot(txn, server)


def settle_snapshot(txn: Transaction, server: dict[str, Any]) -> None:
    """End a server's snapshot task whose image is done: active, failed, or deleted (Nova resets the
    task_state when Glance no longer has the image)."""
    task = server.get("task") or {}
    image_id = task.get("image_id")
    if not image_id:
        return
    record = txn.doc["images"].get(image_id)
    if record is not None and record["fields"]["status"] in IN_PROGRESS:
        return
    server["task"] = None
    server["updated"] = txn.utc_now()
    if record is not None:
        record.pop("snapshot_of", None)
    txn.changed()


def start_processing(app: SimulatorApp, record: dict[str, Any], first_status: str) -> None:
    """Mark a new image as being made; it becomes active after the configured number of polls."""
    polls = app.behaviour.image_ready_after_polls
    record["polls_left"] = polls
    record["fields"]["status"] = first_status if polls > 0 else "active"


# -- images made from servers (Nova createImage, Cinder os-volume_upload_image) ------------------

# Properties NHN's own images carry and that images made from an instance inherit from its base image
# (seen on a real NHN image; NHN documents only some of them).
SERVER_OWNED_DEFAULTS = {
    "hypervisor_type": "qemu",
    "os_architecture": "amd64",
    "hw_qemu_guest_agent": "yes",
    "nhncloud_product": "compute",
    "nhncloud_allow_download": "false",
}
# Images made from servers up to this size are hashed inside the request; larger ones in the background.
INLINE_DIGEST_MAX_MB = 64
INHERITED_PREFIXES = ("nhncloud_", "hw_")
INHERITED_KEYS = (
    "os_type",
    "os_distro",
    "os_version",
    "os_architecture",
    "hypervisor_type",
    "login_username",
    "description",
)


def create_from_server(
    app: SimulatorApp,
    txn: Transaction,
    server: dict[str, Any],
    *,
    name: str,
    min_disk: int,
    properties: dict[str, str],
    disk_format: str = "qcow2",
    container_format: str = "bare",
    visibility: str = "private",
    protected: bool = False,
) -> dict[str, Any]:
    """Add the image an instance's disk becomes: queued at first, active after a few polls.

    It inherits the instance's `os_type` (and distro/version where known) and its base image's
    server-owned properties, and holds `disk_mb` of generated content.
    """
    image_id = txn.new_uuid("image")
    now = txn.utc_now()
    inherited: dict[str, Any] = dict(SERVER_OWNED_DEFAULTS)
    base = txn.doc["images"].get(server.get("base_image_id") or "")
    if base is not None:
        inherited.update(
            {
                k: v
                for k, v in base["fields"].items()
                if isinstance(v, str) and (k.startswith(INHERITED_PREFIXES) or k in INHERITED_KEYS)
            }
        )
    for key in ("os_type", "os_distro", "os_version"):
        if server.get(key):
            inherited[key] = server[key]
    content = {"kind": "generated", "size_mb": server["disk_mb"], "content": image_id}
    attributes = {
        **inherited,
        "instance_uuid": server["id"],
        "image_type": "snapshot",
        # The caller's properties win over inherited ones; callers refuse base and read-only names.
        **properties,
        "name": name,
        "visibility": visibility,
        "protected": protected,
        "min_disk": min_disk,
        "container_format": container_format,
        "disk_format": disk_format,
    }
    fields = new_image_fields(image_id, server["project"], now, **attributes)
    record = new_record(server["region"], fields, content)
    qcow2 = generated_image(content["size_mb"], content["content"])
    # Size is known at once (the content is generated); checksums are computed in the background and
    # shown, as Glance does, only once the image is active.
    record["ready_fields"] = {"size": qcow2.file_size, "virtual_size": qcow2.virtual_size}
    start_processing(app, record, "queued")
    if fields["status"] == "active" or content["size_mb"] <= INLINE_DIGEST_MAX_MB:
        # Small (about 0.1 s per 64 MiB), or no polls configured: hash now, deterministically.
        md5, sha512 = generated_digests(content["size_mb"], content["content"])
        record["ready_fields"].update(checksum=md5, os_hash_algo="sha512", os_hash_value=sha512)
        if fields["status"] == "active":
            fields.update(record.pop("ready_fields"))
    else:
        background_digests.result(content["size_mb"], content["content"])
    txn.doc["images"][image_id] = record
    note_created(txn, app, record)
    txn.changed()
    return record
