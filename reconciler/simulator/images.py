"""Image API v2 (Glance, as NHN Cloud runs it), per region, with NHN's own rules.

Messages and statuses follow upstream Glance (glance/api/v2/images.py); NHN's additions
(nhn-cloud-api.md section 2): `os_type` is required on create, `_`-prefixed tags are refused. Members
and data have modules of their own, as in Glance: image_members.py, image_data.py. Behaviours NHN does
not document are knobs (behaviour.py). Handlers validate a request completely before they change the
state.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from reconciler.simulator import image_data, image_members
from reconciler.simulator.http import HttpError, Request, Response, Route, empty_response, json_response
from reconciler.simulator.image_records import (
    BASE_ATTRIBUTES,
    CONTAINER_FORMATS,
    DISK_FORMATS,
    MEMBER_STATUSES,
    PREFIX,
    READ_ONLY,
    RESERVED,
    VISIBILITIES,
    advance,
    can_see,
    new_image_fields,
    new_record,
    owned_image,
    present,
    region_of,
    visible_image,
)
from reconciler.simulator.state import utc_now

if TYPE_CHECKING:
    from reconciler.simulator.server import SimulatorApp

PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
LIST_PARAMS = frozenset(
    {
        "limit",
        "marker",
        "sort_key",
        "sort_dir",
        "sort",
        "name",
        "status",
        "owner",
        "visibility",
        "member_status",
        "tag",
        "os_hidden",
    }
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_LIMIT = 100  # [doc] NHN: default 100, max 1000 (upstream Glance defaults to 25)
MAX_LIMIT = 1000


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
        region = region_of(txn, req)

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

        candidates = _sorted([r for r in txn.doc["images"].values() if listed(r)], sort)
        marker = req.arg("marker")
        if marker is not None:
            marker_record = txn.doc["images"].get(marker)
            if marker_record is None or marker_record["region"] != region:
                raise HttpError(400, f"No image found with ID {marker}")
            if not can_see(marker_record, project):
                raise HttpError(403, f"Forbidding request, image {marker} not visible")
            # The order is total (id breaks ties), so when the marker is listed itself, what sorts after
            # it is what follows it.
            at = next((i for i, r in enumerate(candidates) if r is marker_record), None)
            if at is not None:
                candidates = candidates[at + 1 :]
            else:
                candidates = [r for r in candidates if _compare(r["fields"], marker_record["fields"], sort) > 0]
        page = candidates[:limit]
        images = [present(r) for r in page]
        for record in page:
            advance(txn, app, record)

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
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise HttpError(400, "The number of sort_key and sort_dir values must be the same.")
    default_dir = dirs[0] if len(dirs) == 1 else "desc"
    dirs = dirs[: len(keys)]  # a lone sort_dir with no sort_key applies to the default keys below
    while len(dirs) < len(keys):
        dirs.append(default_dir)
    for key in ("created_at", "id"):
        if key not in keys:
            keys.append(key)
            dirs.append(default_dir)
    return list(zip(keys, dirs, strict=True))


def _sorted(records: list[dict[str, Any]], sort: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The records in `_compare`'s order, by stable sorts from the last key to the first: a comparison
    function made each page of a 30,000-image listing cost about 100 ms under the state lock."""
    for key, direction in reversed(sort):
        # Nulls first ascending (so last descending), as in `_compare`.
        records.sort(
            key=lambda r: (r["fields"].get(key) is not None, r["fields"].get(key)), reverse=direction == "desc"
        )
    return records


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
        record = visible_image(txn, req)
        image = present(record)
        advance(txn, app, record)
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
        region = region_of(txn, req)
        image_id = body.get("id")
        if image_id is not None and image_id in txn.doc["images"]:
            raise HttpError(409, f"Image ID {image_id} already exists!")
        image_id = image_id or txn.new_uuid("image")
        fields = new_image_fields(image_id, project, now, **{k: v for k, v in body.items() if k != "owner"})
        record = new_record(region, fields)
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
        record = visible_image(txn, req)
        if record["fields"]["owner"] != req.token.project:
            raise HttpError(403, "You are not permitted to modify this image.")
        fields = dict(record["fields"])
        if any(name != "protected" for _, name, _ in ops):
            # Only the PATCH that changes `protected` itself gets through in strict mode.
            _refuse_if_protected_in_strict_mode(app, record)
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
        record = owned_image(txn, req, "delete")
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


def _refuse_if_protected_in_strict_mode(app: SimulatorApp, record: dict[str, Any]) -> None:
    # NHN's docs say a protected image "cannot be modified" [doc]; the strict knob enforces that for
    # every attribute, tags included (design.md section 3.4). Members are not image attributes.
    if app.behaviour.protected_patch == "strict" and record["fields"]["protected"]:
        raise HttpError(403, f"Image {record['fields']['id']} is protected and cannot be modified.")


def _add_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    _check_tag(tag)
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "modify")
        _refuse_if_protected_in_strict_mode(app, record)
        if tag not in record["fields"]["tags"]:
            record["fields"]["tags"] = [*record["fields"]["tags"], tag]
            record["fields"]["updated_at"] = utc_now()
            txn.changed()
    return empty_response(204)


def _delete_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "modify")
        _refuse_if_protected_in_strict_mode(app, record)
        if tag not in record["fields"]["tags"]:
            raise HttpError(404, f"Tag {tag} not found.")
        record["fields"]["tags"] = [t for t in record["fields"]["tags"] if t != tag]
        record["fields"]["updated_at"] = utc_now()
        txn.changed()
    return empty_response(204)


# -- versions -------------------------------------------------------------------------------------


def _versions(app: SimulatorApp, req: Request) -> Response:
    base = app.image_endpoint(req.params["region"])
    versions = [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == 9 else "SUPPORTED",
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        }
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
        *image_members.routes(),
        *image_data.routes(),
    ]
