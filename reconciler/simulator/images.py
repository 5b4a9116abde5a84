"""Image API v2 (Glance, as NHN Cloud runs it), per region, with NHN's own rules.

Messages and statuses follow upstream Glance (glance/api/v2/images.py, image_members.py, image_data.py);
NHN's additions (nhn-cloud-api.md section 2): `os_type` is required on create, `_`-prefixed tags are
refused, downloads need `nhncloud_allow_download`. Behaviours NHN does not document are knobs
(behaviour.py). Handlers validate a request completely before they change the state.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from reconciler.simulator.http import (
    BODY_CHUNK,
    HttpError,
    Request,
    Response,
    Route,
    empty_response,
    json_response,
)
from reconciler.simulator.qcow2 import QCOW2_MAGIC, generated_digests, generated_image
from reconciler.simulator.state import Transaction, utc_now

if TYPE_CHECKING:
    from reconciler.simulator.server import SimulatorApp

PREFIX = "/image/{region}"
PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
# glance/api/v2/images.py RequestDeserializer
READ_ONLY = frozenset(
    {"created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self", "file",
     "schema", "id", "os_hash_algo", "os_hash_value"}
)
RESERVED = frozenset({"location", "locations", "deleted", "deleted_at", "stores"})
BASE_ATTRIBUTES = frozenset(
    {"checksum", "created_at", "container_format", "disk_format", "id", "min_disk", "min_ram", "name", "size",
     "virtual_size", "status", "tags", "owner", "updated_at", "visibility", "protected", "os_hidden",
     "os_hash_algo", "os_hash_value"}
)
VISIBILITIES = ("community", "public", "private", "shared")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
LIST_PARAMS = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "name", "status", "owner",
                         "visibility", "member_status", "tag", "os_hidden"})
MEMBER_STATUSES = ("pending", "accepted", "rejected")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_LIMIT = 100  # [doc] NHN: default 100, max 1000 (upstream Glance defaults to 25)
MAX_LIMIT = 1000
IN_PROGRESS = ("queued", "saving")


# -- lookups --------------------------------------------------------------------------------------


def _region(txn: Transaction, req: Request) -> str:
    region = req.params["region"]
    if region not in txn.doc["regions"]:
        raise HttpError(404, f"The resource could not be found: no image endpoint in region {region}")
    return region


def _can_see(record: dict[str, Any], project: str) -> bool:
    fields = record["fields"]
    return (
        fields["owner"] == project
        or fields["visibility"] in ("public", "community")
        or (fields["visibility"] == "shared" and project in record["members"])
    )


def _visible(txn: Transaction, req: Request, image_id: str | None = None) -> dict[str, Any]:
    """The image if this project may see it in this region; 404 as Glance answers otherwise."""
    region = _region(txn, req)
    image_id = image_id or req.params["image_id"]
    record = txn.doc["images"].get(image_id)
    if record is None or record["region"] != region or not _can_see(record, req.token.project):
        raise HttpError(404, f"No image found with ID {image_id}")
    return record


def _owned(txn: Transaction, req: Request, action: str) -> dict[str, Any]:
    record = _visible(txn, req)
    if record["fields"]["owner"] != req.token.project:
        raise HttpError(403, f"You are not permitted to {action} this image.")
    return record


def present(record: dict[str, Any]) -> dict[str, Any]:
    """The image as Glance shows it: base attributes, custom properties flattened, and links."""
    image = {"os_hidden": False, **record["fields"]}
    image_id = image["id"]
    image.update(self=f"/v2/images/{image_id}", file=f"/v2/images/{image_id}/file", schema="/v2/schemas/image")
    return image


def _advance(txn: Transaction, app: SimulatorApp, record: dict[str, Any]) -> None:
    """Count one poll of an image being made, after the poll was answered.

    With `image_ready_after_polls: N` the first N polls see it unfinished (a new image from a server
    `queued`, then `saving`) and poll N+1 sees it `active`.
    """
    if record["fields"]["status"] not in IN_PROGRESS or record.get("polls_left", 0) <= 0:
        return
    record["polls_left"] -= 1
    record["fields"]["status"] = "active" if record["polls_left"] <= 0 else "saving"
    if record["fields"]["status"] == "active":
        record["fields"].update(record.pop("ready_fields", {}), updated_at=utc_now())
    txn.changed()


def start_processing(app: SimulatorApp, record: dict[str, Any], first_status: str) -> None:
    """Mark a new image as being made; it becomes active after the configured number of polls."""
    polls = app.behaviour.image_ready_after_polls
    record["polls_left"] = polls
    record["fields"]["status"] = first_status if polls > 0 else "active"


# -- validation of image attributes ---------------------------------------------------------------


def _schema_error(reason: str) -> HttpError:
    return HttpError(400, f"Provided object does not match schema 'image': {reason}")


def _check_value(name: str, value: Any) -> None:
    """Validate one attribute's value as Glance's image schema does (400 on a mismatch)."""
    if name == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _schema_error(f"{value!r} is not valid under any of the given schemas")
    elif name == "visibility":
        if value not in VISIBILITIES:
            raise _schema_error(f"{value!r} is not one of {list(VISIBILITIES)}")
    elif name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise _schema_error(f"{value!r} is not of type 'boolean'")
    elif name in ("min_disk", "min_ram"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _schema_error(f"{value!r} is not of type 'integer' or is less than the minimum of 0")
    elif name == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise _schema_error(f"{value!r} is not one of {list(DISK_FORMATS)}")
    elif name == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise _schema_error(f"{value!r} is not one of {list(CONTAINER_FORMATS)}")
    elif name == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise _schema_error(f"{value!r} is not of type 'array' of strings")
        for tag in value:
            _check_tag(tag)
    elif name == "owner":
        if value is not None and not isinstance(value, str):
            raise _schema_error(f"{value!r} is not of type 'string'")
    else:
        if len(name) > 255:
            raise HttpError(400, "Custom property should not be greater than 255 characters.")
        if not isinstance(value, str):
            raise _schema_error(f"{value!r} is not of type 'string'")


def _check_tag(tag: str) -> None:
    if tag.startswith("_"):
        # NHN uses `_`-prefixed tags itself (e.g. `_AVAILABLE_`) and refuses them from users [doc].
        raise HttpError(400, f"Tag {tag} is not allowed: tags starting with '_' are reserved.")
    if len(tag) > 255:
        raise HttpError(400, "Tag should not be greater than 255 characters.")


def _check_attribute_name(name: str) -> None:
    if name in READ_ONLY:
        raise HttpError(403, f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith("os_glance"):
        raise HttpError(403, f"Attribute '{name}' is reserved.")


# -- list and get ---------------------------------------------------------------------------------


def _list_images(app: SimulatorApp, req: Request) -> Response:
    project = req.token.project
    limit = _limit(req)
    sort = _sort_spec(req)
    visibility = req.arg("visibility")
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise HttpError(400, f"Invalid visibility value: {visibility}")
    member_status = req.arg("member_status") or "accepted"
    if member_status not in (*MEMBER_STATUSES, "all"):
        raise HttpError(400, f"Invalid status: {member_status}")
    os_hidden = (req.arg("os_hidden") or "false").lower()
    if os_hidden not in ("true", "false"):
        raise HttpError(400, f"Invalid value '{os_hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.")
    filters = {k: req.arg(k) for k in ("name", "status", "owner") if req.arg(k) is not None}
    tags = req.query.get("tag", [])
    # Glance treats every other parameter as a custom-property filter (upstream; unverified on NHN,
    # so the reconciler itself filters by owner only and reads markers client-side).
    properties = {k: v[-1] for k, v in req.query.items() if k not in LIST_PARAMS}

    with app.store.transaction() as txn:
        region = _region(txn, req)

        def listed(record: dict[str, Any]) -> bool:
            fields = record["fields"]
            if record["region"] != region or fields.get("os_hidden", False) != (os_hidden == "true"):
                return False
            if not _matches_visibility(record, project, visibility, member_status):
                return False
            if any(str(fields.get(k)) != v for k, v in filters.items()):
                return False
            if any(t not in fields["tags"] for t in tags):
                return False
            return all(k in fields and str(fields[k]) == v for k, v in properties.items())

        candidates = sorted(
            (r for r in txn.doc["images"].values() if listed(r)),
            key=functools.cmp_to_key(lambda a, b: _compare(a["fields"], b["fields"], sort)),
        )
        marker = req.arg("marker")
        if marker is not None:
            marker_record = txn.doc["images"].get(marker)
            if marker_record is None or marker_record["region"] != region:
                raise HttpError(400, f"No image found with ID {marker}")
            if not _can_see(marker_record, project):
                raise HttpError(403, f"Forbidding request, image {marker} not visible")
            candidates = [r for r in candidates if _compare(r["fields"], marker_record["fields"], sort) > 0]
        page = candidates[:limit]
        images = [present(r) for r in page]
        for record in page:
            _advance(txn, app, record)

    params = [(k, v) for k, values in req.query.items() if k != "marker" for v in values]
    body: dict[str, Any] = {"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"}
    if params:
        body["first"] = f"/v2/images?{urlencode(params)}"
    if images and len(images) == limit:
        body["next"] = f"/v2/images?{urlencode([*params, ('marker', images[-1]['id'])])}"
    return json_response(200, body)


def _matches_visibility(record: dict[str, Any], project: str, visibility: str | None, member_status: str) -> bool:
    fields = record["fields"]
    owned = fields["owner"] == project
    member = record["members"].get(project)
    shared_to_us = (
        fields["visibility"] == "shared"
        and member is not None
        and (member_status == "all" or member["status"] == member_status)
    )
    if visibility is None:
        # Glance's default list: owned, public, community ones we own, and shared ones we accepted.
        return owned or fields["visibility"] == "public" or shared_to_us
    if visibility == "all":
        return owned or fields["visibility"] in ("public", "community") or shared_to_us
    if fields["visibility"] != visibility:
        return False
    if visibility in ("public", "community"):
        return True
    if visibility == "shared":
        return owned or shared_to_us
    return owned


def _limit(req: Request) -> int:
    raw = req.arg("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise HttpError(400, "limit param must be an integer") from None
    if limit < 0:
        raise HttpError(400, "limit param must be positive")
    return min(limit, MAX_LIMIT)


def _sort_spec(req: Request) -> list[tuple[str, str]]:
    """[(key, dir)], with Glance's tie-breakers created_at and id appended."""
    keys: list[str] = []
    dirs: list[str] = []
    if req.arg("sort"):
        for part in req.arg("sort").split(","):
            key, _, direction = part.strip().partition(":")
            keys.append(key)
            dirs.append(direction or "desc")
    else:
        for value in req.query.get("sort_key", []):
            keys.extend(k.strip() for k in value.split(","))
        for value in req.query.get("sort_dir", []):
            dirs.extend(d.strip() for d in value.split(","))
    for key in keys:
        if key not in SORT_KEYS:
            raise HttpError(400, f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise HttpError(400, f"Invalid sort direction: {direction}")
    default_dir = dirs[0] if len(dirs) == 1 else "desc"
    while len(dirs) < len(keys):
        dirs.append(default_dir)
    for key in ("created_at", "id"):
        if key not in keys:
            keys.append(key)
            dirs.append(default_dir)
    return list(zip(keys, dirs, strict=True))


def _compare(a: dict[str, Any], b: dict[str, Any], sort: list[tuple[str, str]]) -> int:
    for key, direction in sort:
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        # Nulls sort first ascending, as in Glance's SQL backends.
        result = -1 if x is None else 1 if y is None else (-1 if x < y else 1)
        return result if direction == "asc" else -result
    return 0


def _get_image(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = _visible(txn, req)
        image = present(record)
        _advance(txn, app, record)
        return json_response(200, image)


# -- create, update, delete -----------------------------------------------------------------------


def _create_image(app: SimulatorApp, req: Request) -> Response:
    body = req.json_object()
    project = req.token.project
    for name in ("direct_url", "self", "file", "schema", "stores"):
        if name in body:
            raise HttpError(403, f"Attribute '{name}' is read-only.")
    for name, value in body.items():
        if name == "id":
            if not isinstance(value, str) or not UUID.match(value):
                raise _schema_error(f"{value!r} does not match the uuid pattern")
            continue
        _check_attribute_name(name)
        _check_value(name, value)
    if body.get("visibility") == "public":
        raise HttpError(403, "You are not authorized to complete publicize_image action.")
    if body.get("owner") not in (None, project):
        raise HttpError(403, "You are not permitted to create images owned by another project.")
    if not body.get("os_type"):
        # NHN requires os_type on create [doc]; upstream Glance does not.
        raise HttpError(400, "os_type is required: set the os_type property to linux or windows.")

    now = utc_now()
    with app.store.transaction() as txn:
        region = _region(txn, req)
        image_id = body.get("id")
        if image_id is not None and image_id in txn.doc["images"]:
            raise HttpError(409, f"Image ID {image_id} already exists!")
        image_id = image_id or txn.new_uuid("image")
        fields: dict[str, Any] = {
            "id": image_id,
            "name": None,
            "status": "queued",
            # Glance 33 defaults new images to shared [glance33]; a careful client sends private.
            "visibility": "shared",
            "protected": False,
            "owner": project,
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
        }
        fields.update({k: v for k, v in body.items() if k != "owner"})
        record = {"region": region, "fields": fields, "data": None, "members": {}, "polls_left": 0}
        txn.doc["images"][image_id] = record
        txn.changed()
        return json_response(201, present(record), {"Location": f"{app.image_endpoint(region)}/v2/images/{image_id}"})


def _parse_patch(req: Request) -> list[tuple[str, str, Any]]:
    if req.content_type not in PATCH_TYPES:
        raise HttpError(
            415,
            f"Invalid content type {req.content_type or None}",
            headers={"Accept-Patch": ", ".join(reversed(PATCH_TYPES))},
        )
    body = req.json()
    if not isinstance(body, list):
        raise HttpError(400, "Request body must be a JSON array of operation objects.")
    ops = []
    for op in body:
        if not isinstance(op, dict):
            raise HttpError(400, "Operations must be JSON objects.")
        kind = op.get("op")
        if kind not in ("add", "remove", "replace"):
            raise HttpError(400, f"Invalid operation: `{kind}`. It must be one of the following: add, remove, replace.")
        path = op.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise HttpError(400, f'Pointer `{path}` does not start with "/".')
        parts = path[1:].split("/")
        if len(parts) != 1 or not parts[0]:
            raise HttpError(400, f"Invalid JSON pointer for this resource: '{path}'")
        name = parts[0].replace("~1", "/").replace("~0", "~")
        if kind != "remove" and "value" not in op:
            raise HttpError(400, f'Operation "{kind}" requires a member named "value".')
        ops.append((kind, name, op.get("value")))
    return ops


def _update_image(app: SimulatorApp, req: Request) -> Response:
    ops = _parse_patch(req)
    with app.store.transaction() as txn:
        record = _visible(txn, req)
        if record["fields"]["owner"] != req.token.project:
            raise HttpError(403, "You are not permitted to modify this image.")
        fields = dict(record["fields"])
        if (
            app.behaviour.protected_patch == "strict"
            and fields["protected"]
            and any(name != "protected" for _, name, _ in ops)
        ):
            # NHN's docs say a protected image "cannot be modified" [doc]; the strict knob enforces it
            # (design.md section 3.4): only the PATCH that changes `protected` itself gets through.
            raise HttpError(403, f"Image {fields['id']} is protected and cannot be modified.")
        for kind, name, value in ops:
            _check_attribute_name(name)
            if name == "owner":
                raise HttpError(403, "Owner can't be updated by non admin.")
            if kind == "remove":
                if name in BASE_ATTRIBUTES:
                    raise HttpError(403, f"Property {name} may not be removed.")
                if name not in fields:
                    raise HttpError(409, f"Property {name} does not exist.")
                del fields[name]
                continue
            if kind == "replace" and name not in BASE_ATTRIBUTES and name not in fields:
                raise HttpError(409, f"Property {name} does not exist.")
            _check_value(name, value)
            if name == "visibility" and value == "public" and fields["visibility"] != "public":
                raise HttpError(403, "You are not authorized to complete publicize_image action.")
            if name in ("disk_format", "container_format") and fields["status"] != "queued" and value != fields[name]:
                raise HttpError(403, f"Attribute {name} can be only replaced for a queued image.")
            fields[name] = value
        if fields != record["fields"]:
            fields["updated_at"] = utc_now()
            record["fields"] = fields
            txn.changed()
        return json_response(200, present(record))


def _delete_image(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = _owned(txn, req, "delete")
        fields = record["fields"]
        if fields["protected"]:
            raise HttpError(403, f"Image {fields['id']} is protected and cannot be deleted.")
        if fields["visibility"] == "public":
            raise HttpError(403, "Images with public visibility cannot be deleted.")
        del txn.doc["images"][fields["id"]]
        txn.changed()
        blob = record.get("data") or {}
    if blob.get("kind") == "blob":
        path = app.store.blob_path_for_write(blob["name"])
        path.unlink(missing_ok=True)
    return empty_response(204)


# -- tags -----------------------------------------------------------------------------------------


def _add_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    _check_tag(tag)
    with app.store.transaction() as txn:
        record = _owned(txn, req, "modify")
        if tag not in record["fields"]["tags"]:
            record["fields"]["tags"] = [*record["fields"]["tags"], tag]
            record["fields"]["updated_at"] = utc_now()
            txn.changed()
    return empty_response(204)


def _delete_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    with app.store.transaction() as txn:
        record = _owned(txn, req, "modify")
        if tag not in record["fields"]["tags"]:
            raise HttpError(404, f"Tag {tag} not found.")
        record["fields"]["tags"] = [t for t in record["fields"]["tags"] if t != tag]
        record["fields"]["updated_at"] = utc_now()
        txn.changed()
    return empty_response(204)


# -- members --------------------------------------------------------------------------------------


def _member_view(image_id: str, member_id: str, member: dict[str, Any]) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "member_id": member_id,
        "status": member["status"],
        "created_at": member["created_at"],
        "updated_at": member["updated_at"],
        "schema": "/v2/schemas/member",
    }


def _member_image(txn: Transaction, req: Request) -> dict[str, Any]:
    region = _region(txn, req)
    image_id = req.params["image_id"]
    record = txn.doc["images"].get(image_id)
    if record is None or record["region"] != region or not _can_see(record, req.token.project):
        raise HttpError(404, f"Image {image_id} not found.")
    return record


def _add_member(app: SimulatorApp, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, 'Expected a member in the form: {"member": "image_id"}')
    if "member" not in body:
        raise HttpError(400, "Member to be added not specified")
    member_id = body["member"]
    if not isinstance(member_id, str) or not member_id:
        raise HttpError(400, "Member can't be empty")
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        image_id = fields["id"]
        # NHN: members only on shared images, added by the owner [doc]; Glance hides the reason.
        if fields["visibility"] != "shared" or fields["owner"] != req.token.project:
            raise HttpError(403, f"Not allowed to create members for image {image_id}.")
        if member_id in record["members"]:
            raise HttpError(409, f"Member {member_id} is duplicated for image {image_id}")
        now = utc_now()
        member = {"status": "pending", "created_at": now, "updated_at": now}
        record["members"][member_id] = member
        txn.changed()
        return json_response(200, _member_view(image_id, member_id, member))


def _list_members(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        if fields["visibility"] != "shared":
            raise HttpError(403, f"Not allowed to list members for image {fields['id']}: Only shared images have members.")
        project = req.token.project
        # The owner sees every member; a member project sees only its own record (Glance's db filter).
        members = [
            _member_view(fields["id"], member_id, member)
            for member_id, member in sorted(record["members"].items())
            if fields["owner"] == project or member_id == project
        ]
    return json_response(200, {"members": members, "schema": "/v2/schemas/members"})


def _get_member(app: SimulatorApp, req: Request) -> Response:
    member_id = req.params["member_id"]
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        if fields["visibility"] != "shared":
            raise HttpError(404, "Only shared images have members.")
        member = record["members"].get(member_id)
        if member is None or req.token.project not in (fields["owner"], member_id):
            raise HttpError(404, f"{member_id} not found in the member list of the image {fields['id']}.")
        return json_response(200, _member_view(fields["id"], member_id, member))


def _update_member(app: SimulatorApp, req: Request) -> Response:
    member_id = req.params["member_id"]
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, 'Expected a status in the form: {"status": "status"}')
    if "status" not in body:
        raise HttpError(400, "Status not specified")
    status = body["status"]
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        if fields["visibility"] != "shared":
            raise HttpError(403, f"Not allowed to update members for image {fields['id']}.")
        member = record["members"].get(member_id)
        if member is None:
            raise HttpError(404, f"{member_id} not found in the member list of the image {fields['id']}.")
        # Only the member project itself may accept or reject a share; the owner gets 403 [doc].
        if req.token.project != member_id:
            raise HttpError(403, f"Not allowed to update members for image {fields['id']}.")
        if status not in MEMBER_STATUSES:
            raise HttpError(400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".')
        if member["status"] != status:
            member["status"] = status
            member["updated_at"] = utc_now()
            txn.changed()
        return json_response(200, _member_view(fields["id"], member_id, member))


def _remove_member(app: SimulatorApp, req: Request) -> Response:
    member_id = req.params["member_id"]
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        if fields["visibility"] != "shared" or fields["owner"] != req.token.project:
            raise HttpError(403, f"Not allowed to delete members for image {fields['id']}.")
        if member_id not in record["members"]:
            raise HttpError(404, f"{member_id} not found in the member list of the image {fields['id']}.")
        del record["members"][member_id]
        txn.changed()
    return empty_response(204)


# -- data -----------------------------------------------------------------------------------------


def _upload(app: SimulatorApp, req: Request) -> Response:
    if req.content_type != "application/octet-stream":
        raise HttpError(415, f"Invalid content type {req.content_type or None}")
    with app.store.transaction() as txn:
        record = _owned(txn, req, "upload data to")
        fields = record["fields"]
        image_id = fields["id"]
        if fields["status"] != "queued":
            raise HttpError(409, f"Image status transition from {fields['status']} to saving is not allowed")
        missing = [k for k in ("disk_format", "container_format") if not fields.get(k)]
        if missing:
            noun = "Properties" if len(missing) > 1 else "Property"
            raise HttpError(400, f"{noun} {', '.join(missing)} must be set prior to saving data.")
        fields["status"] = "saving"
        txn.changed()
        disk_format = fields["disk_format"]

    blob_name = image_id
    part = app.store.blob_path_for_write(f"{blob_name}.part")
    try:
        size, md5, sha512, virtual_size = _receive(req, part, disk_format, app.behaviour.upload_keeps_bytes)
    except BaseException as err:
        part.unlink(missing_ok=True)
        # A refused format leaves the image unusable, as Glance 33 does; a broken transfer returns it to
        # queued so the upload can be retried.
        final = "killed" if isinstance(err, HttpError) and err.status == 415 else "queued"
        with app.store.transaction() as txn:
            record = txn.doc["images"].get(image_id)
            if record is not None and record["fields"]["status"] == "saving":
                record["fields"]["status"] = final
                txn.changed()
        raise
    part.replace(app.store.blob_path_for_write(blob_name))
    with app.store.transaction() as txn:
        record = txn.doc["images"].get(image_id)
        if record is None:
            app.store.blob_path_for_write(blob_name).unlink(missing_ok=True)
            raise HttpError(410, f"Image {image_id} could not be found after upload. The image may have been deleted during the upload.")
        record["data"] = {"kind": "blob", "name": blob_name}
        record["fields"].update(
            size=size, virtual_size=virtual_size, checksum=md5, os_hash_algo="sha512", os_hash_value=sha512,
            updated_at=utc_now(),
        )
        # NHN describes `queued` as "converting": the image stays saving for a few polls.
        start_processing(app, record, "saving")
        txn.changed()
    return empty_response(204)


def _receive(req: Request, part, disk_format: str, keep_bytes: bool) -> tuple[int, str, str, int]:
    """Stream the body into `part`, hashing as it goes; check it is an image of `disk_format`."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    head = b""
    with open(part, "wb") as out:
        for chunk in req.stream():
            if len(head) < 32:
                head += chunk[: 32 - len(head)]
                if len(head) >= 4 and disk_format == "qcow2" and not head.startswith(QCOW2_MAGIC):
                    # Glance 33 inspects uploads and refuses bytes that don't match disk_format [glance33].
                    raise HttpError(415, "Image data does not match the disk_format qcow2.")
            out.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
        if size == 0 or (disk_format == "qcow2" and len(head) < 32):
            if disk_format == "qcow2":
                raise HttpError(415, "Image data does not match the disk_format qcow2.")
        if not keep_bytes:
            # Knob: NHN describes queued as "converting"; whether stored bytes equal the uploaded ones is
            # unverified (nhn-cloud-api.md section 4). Trailing padding keeps the qcow2 valid but changes
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
        record = _visible(txn, req)
        fields = record["fields"]
        if str(fields.get("nhncloud_allow_download", "false")).lower() != "true":
            # NHN allows downloads only when nhncloud_allow_download is true [doc]; the status of the
            # refusal is undocumented, hence a knob (default 403).
            raise HttpError(app.behaviour.download_refused_status, f"Image {fields['id']} is not allowed to be downloaded: nhncloud_allow_download is not true.")
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
        if path is None:
            raise HttpError(404, f"Image {req.params['image_id']} has no data in the simulator's blob store.")
        chunks = _read_file(path)
    headers = {"Content-Type": "application/octet-stream", "Content-MD5": checksum}
    return Response(200, chunks, headers, length=size)


def _read_file(path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(BODY_CHUNK):
            yield chunk


# -- versions -------------------------------------------------------------------------------------


def _versions(app: SimulatorApp, req: Request) -> Response:
    base = app.image_endpoint(req.params["region"])
    versions = [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == 9 else "SUPPORTED",
         "links": [{"rel": "self", "href": f"{base}/v2/"}]}
        for minor in range(9, -1, -1)
    ]
    status = 200 if req.path.rstrip("/").endswith("/versions") else 300
    return json_response(status, {"versions": versions})


def routes() -> list[Route]:
    def r(method: str, path: str, handler, auth: bool = True) -> Route:
        return Route(method, PREFIX + path, "image", handler, auth)

    return [
        r("GET", "", _versions, auth=False),
        r("GET", "/versions", _versions, auth=False),
        r("GET", "/v2/images", _list_images),
        r("POST", "/v2/images", _create_image),
        r("GET", "/v2/images/{image_id}", _get_image),
        r("PATCH", "/v2/images/{image_id}", _update_image),
        r("DELETE", "/v2/images/{image_id}", _delete_image),
        r("PUT", "/v2/images/{image_id}/tags/{tag}", _add_tag),
        r("DELETE", "/v2/images/{image_id}/tags/{tag}", _delete_tag),
        r("GET", "/v2/images/{image_id}/members", _list_members),
        r("POST", "/v2/images/{image_id}/members", _add_member),
        r("GET", "/v2/images/{image_id}/members/{member_id}", _get_member),
        r("PUT", "/v2/images/{image_id}/members/{member_id}", _update_member),
        r("DELETE", "/v2/images/{image_id}/members/{member_id}", _remove_member),
        r("PUT", "/v2/images/{image_id}/file", _upload),
        r("GET", "/v2/images/{image_id}/file", _download),
    ]


# -- images made from servers (Nova createImage, Cinder os-volume_upload_image) ------------------

# Properties NHN's own images carry and that images made from an instance inherit from its base image
# (seen on a real NHN image: nhn-cloud-api research notes; NHN documents only some of them).
SERVER_OWNED_DEFAULTS = {
    "hypervisor_type": "qemu",
    "os_architecture": "amd64",
    "hw_qemu_guest_agent": "yes",
    "nhncloud_product": "compute",
    "nhncloud_allow_download": "false",
}
INHERITED_PREFIXES = ("nhncloud_", "hw_")
INHERITED_KEYS = ("os_type", "os_distro", "os_version", "os_architecture", "hypervisor_type", "login_username", "description")


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
    now = utc_now()
    inherited: dict[str, Any] = dict(SERVER_OWNED_DEFAULTS)
    base = txn.doc["images"].get(server.get("base_image_id") or "")
    if base is not None:
        inherited.update(
            {k: v for k, v in base["fields"].items()
             if isinstance(v, str) and (k.startswith(INHERITED_PREFIXES) or k in INHERITED_KEYS)}
        )
    for key in ("os_type", "os_distro", "os_version"):
        if server.get(key):
            inherited[key] = server[key]
    content = {"kind": "generated", "size_mb": server["disk_mb"], "content": image_id}
    qcow2 = generated_image(content["size_mb"], content["content"])
    md5, sha512 = generated_digests(content["size_mb"], content["content"])
    fields: dict[str, Any] = {
        **inherited,
        "instance_uuid": server["id"],
        "image_type": "snapshot",
        **properties,
        "id": image_id,
        "name": name,
        "status": "queued",
        "visibility": visibility,
        "protected": protected,
        "owner": server["project"],
        "min_disk": min_disk,
        "min_ram": 0,
        "size": None,
        "virtual_size": None,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "container_format": container_format,
        "disk_format": disk_format,
        "tags": [],
        "created_at": now,
        "updated_at": now,
    }
    record = {"region": server["region"], "fields": fields, "data": content, "members": {}, "polls_left": 0}
    start_processing(app, record, "queued")
    # Size and checksums are known now (the content is generated) but shown only once active, as Glance.
    record["ready_fields"] = {
        "size": qcow2.file_size, "virtual_size": qcow2.virtual_size, "checksum": md5,
        "os_hash_algo": "sha512", "os_hash_value": sha512,
    }
    if fields["status"] == "active":
        fields.update(record.pop("ready_fields"))
    txn.doc["images"][image_id] = record
    txn.changed()
    return record
