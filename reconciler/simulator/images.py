"""Image API v2 (Glance, as NHN Cloud runs it), per region, with NHN's own rules.

Messages and statuses follow upstream Glance (glance/api/v2/images.py) and were checked against a real
Glance 33; NHN's additions: `os_type` is required on create, `_`-prefixed
tags are refused. Members and data have modules of their own, as in Glance: image_members.py,
image_data.py. Behaviours NHN does not document are knobs (behaviour.py). Handlers validate a request
completely before they change the state.

Glance 33 facts kept here: a deleted image's id is never usable again (409); a JSON-patch `test` op is
400 (no compare-and-swap); every successful non-empty PATCH and every tag PUT moves `updated_at`, even
when nothing changes; list filters take `in:` / `eq:` operators on name, id, status and the formats, and
any other parameter filters on a custom property (a knob here, as NHN is unverified).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
    id_taken,
    lagged_fields,
    new_image_fields,
    new_record,
    note_change,
    note_created,
    owned_image,
    present,
    region_of,
    remember_deleted,
    visible_image,
)

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp
    from reconciler.simulator.state import Transaction

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
# Glance's image schema pattern for `id` (either case; ids are then matched exactly, case and all).
UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
UUID = re.compile(UUID_PATTERN)
# Filters on these attributes take Glance's `in:a,b` and `eq:a` operators (glance/db/sqlalchemy/api.py).
OPERATOR_FILTERS = ("name", "id", "status", "container_format", "disk_format")
RANGE_FILTERS = ("size", "virtual_size")
TIME_FILTERS = ("created_at", "updated_at")
TIME_OPERATORS: dict[str, Callable[[datetime, datetime], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
DEFAULT_LIMIT = 100  # [doc] NHN: default 100, max 1000 (upstream Glance defaults to 25)
MAX_LIMIT = 1000


# -- validation of image attributes ---------------------------------------------------------------


def _schema_error(reason: str) -> HttpError:
    return HttpError(400, f"Provided object does not match schema 'image': {reason}")


def _check_value(name: str, value: Any) -> None:  # noqa: C901 - one branch per attribute of Glance's image schema
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
    query = _ListQuery.of(app, req)
    with app.store.transaction() as txn:
        region = region_of(txn, req)
        lag = app.behaviour.listing_lag_s
        # The listing as the state is now, for every page (app.ListingCache): not with listing_lag_s, where
        # what is shown depends on the clock too.
        key = None if lag > 0 else _listing_key(req, region)
        listed = app.listings.get(key, app.store.generation) if key is not None else None
        if listed is None:
            listed = _sorted(_shown(txn, query, region, lag), query.sort)
            if key is not None:
                app.listings.put(key, app.store.generation, listed)
        candidates = _after_marker(txn, req, region, listed, query.sort)
        page = candidates[: query.limit]
        images = [present(r, f) for r, f in page]
        for record, _ in page:
            advance(txn, app, record)
    return json_response(200, _list_body(req, images, query.limit))


def _shown(txn: Transaction, query: _ListQuery, region: str, lag: float) -> list[Shown]:
    """The region's images the listing shows, with the fields it shows of each, unsorted."""
    horizon = txn.now() - lag
    shown: list[Shown] = []
    for record in txn.doc["images"].values():
        if record["region"] != region:
            continue
        # With listing_lag_s, a listing shows each image as it was that long ago.
        fields = lagged_fields(record, horizon) if lag > 0 else record["fields"]
        if fields is not None and query.lists(record, fields):
            shown.append((record, fields))
    return shown


_PAGE_PARAMS = ("marker", "limit")


def _listing_key(req: Request, region: str) -> tuple[Any, ...]:
    """What decides a listing but its page: who asks, where, and every parameter but marker and limit."""
    params = tuple(sorted((name, tuple(values)) for name, values in req.query.items() if name not in _PAGE_PARAMS))
    return req.token.project, region, params


@dataclass(frozen=True, slots=True)
class _ListQuery:
    """A listing's parameters, checked (400 on a malformed one before any work)."""

    project: str
    limit: int
    sort: list[tuple[str, str]]
    visibility: str | None
    member_status: str
    os_hidden: bool
    tags: list[str]
    filters: list[Callable[[dict[str, Any]], bool]]

    @classmethod
    def of(cls, app: SimulatorApp, req: Request) -> _ListQuery:
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
            raise HttpError(
                400, f"Invalid value '{os_hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'."
            )
        tags = req.query.get("tag", [])
        filters = _field_filters(app, req)
        return cls(project, limit, sort, visibility, member_status, os_hidden == "true", tags, filters)

    def lists(self, record: dict[str, Any], fields: dict[str, Any]) -> bool:
        """Whether the listing shows `record`, whose shown fields are `fields`."""
        if fields.get("os_hidden", False) != self.os_hidden:
            return False
        if not _matches_visibility(record, fields, self.project, self.visibility, self.member_status):
            return False
        return all(t in fields["tags"] for t in self.tags) and all(f(fields) for f in self.filters)


def _after_marker(
    txn: Transaction, req: Request, region: str, candidates: list[Shown], sort: list[tuple[str, str]]
) -> list[Shown]:
    """The sorted candidates that follow the request's `marker` image (all of them without one)."""
    marker = req.arg("marker")
    if marker is None:
        return candidates
    marker_record = txn.doc["images"].get(marker)
    if marker_record is None or marker_record["region"] != region:
        raise HttpError(400, f"No image found with ID {marker}")
    if not can_see(marker_record, req.token.project):
        raise HttpError(403, f"Forbidding request, image {marker} not visible")
    # The order is total (id breaks ties), so when the marker is listed itself, what sorts after it is
    # what follows it.
    at = next((i for i, (r, _) in enumerate(candidates) if r is marker_record), None)
    if at is not None:
        return candidates[at + 1 :]
    return [(r, f) for r, f in candidates if _compare(f, marker_record["fields"], sort) > 0]


def _list_body(req: Request, images: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A listing page, with links to the first page and, after a full page, the next one."""
    params = [(k, v) for k, values in req.query.items() if k != "marker" for v in values]
    body: dict[str, Any] = {"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"}
    if params:
        body["first"] = f"/v2/images?{urlencode(params)}"
    if images and len(images) == limit:
        body["next"] = f"/v2/images?{urlencode([*params, ('marker', images[-1]['id'])])}"
    return body


def _matches_visibility(
    record: dict[str, Any], fields: dict[str, Any], project: str, visibility: str | None, member_status: str
) -> bool:
    """Glance 33's visibility rules for a listing (checked against a real one): the owner sees its own
    images whatever `member_status` says; another project sees a shared image only as a member whose
    status matches `member_status` (default `accepted`, `all` for any)."""
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


def _field_filters(app: SimulatorApp, req: Request) -> list[Callable[[dict[str, Any]], bool]]:
    """Glance's list filters on image fields, as predicates; a malformed filter is 400 before any work.

    `name=` obeys the `name_filter` knob and custom-property filters the `property_filters` knob (Glance
    33 applies both; NHN is assumed not to filter on custom properties)."""
    filters: list[Callable[[dict[str, Any]], bool]] = []
    for key, values in req.query.items():
        value = values[-1]
        if key in LIST_PARAMS and key not in ("name", "status", "owner"):
            continue
        if key == "name" and not app.behaviour.name_filter:
            continue
        if key in OPERATOR_FILTERS:
            filters.append(_operator_filter(key, value))
        elif key.endswith(("_min", "_max")) and key[:-4] in RANGE_FILTERS:
            filters.append(_range_filter(key[:-4], key.endswith("_min"), value))
        elif key in TIME_FILTERS:
            filters.append(_time_filter(key, value))
        elif key in BASE_ATTRIBUTES:
            filters.append(_attribute_filter(key, value))
        elif app.behaviour.property_filters:
            filters.append(lambda f, k=key, v=value: f.get(k) == v)
    return filters


def _attribute_filter(key: str, value: str) -> Callable[[dict[str, Any]], bool]:
    """Equality on a base attribute, compared as the database would: booleans and numbers by their text."""
    wanted = value.lower() if key in ("protected", "os_hidden") else value

    def match(fields: dict[str, Any]) -> bool:
        have = fields.get(key)
        if isinstance(have, bool):
            return ("true" if have else "false") == wanted
        return have is not None and str(have) == wanted

    return match


def _split_operator(expression: str) -> tuple[str, str]:
    """Glance's split_filter_op: `op:value`, or `eq` when there is no colon or the whole is a time."""
    op, sep, rest = expression.partition(":")
    if not sep or _parse_time(expression) is not None:
        return "eq", expression
    return op, rest


def _operator_filter(key: str, expression: str) -> Callable[[dict[str, Any]], bool]:
    op, value = _split_operator(expression)
    if op == "in":
        wanted = {v.strip().strip('"') for v in value.split(",")}
        return lambda f: f.get(key) in wanted
    if op == "eq":
        return lambda f: f.get(key) == value
    raise HttpError(400, f"Unable to filter by unknown operator '{op}'.")


def _range_filter(key: str, minimum: bool, raw: str) -> Callable[[dict[str, Any]], bool]:
    try:
        bound = int(raw)
    except ValueError:
        raise HttpError(400, "Unable to filter on a range with a non-numeric value.") from None
    if minimum:
        return lambda f: f.get(key) is not None and f[key] >= bound
    return lambda f: f.get(key) is not None and f[key] <= bound


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time_filter(key: str, expression: str) -> Callable[[dict[str, Any]], bool]:
    op, value = _split_operator(expression)
    threshold = _parse_time(value)
    if threshold is None:
        raise HttpError(400, f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.')
    if op not in TIME_OPERATORS:
        raise HttpError(400, "Unable to filter on a unknown operator.")  # sic, Glance 33
    compare = TIME_OPERATORS[op]

    def match(fields: dict[str, Any]) -> bool:
        stamp = _parse_time(fields.get(key) or "")
        return stamp is not None and compare(stamp, threshold)

    return match


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
    keys, dirs = _sort_request(req)
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


def _sort_request(req: Request) -> tuple[list[str], list[str]]:
    """The sort keys and directions as asked, unchecked: `sort=key:dir,...` (a direction defaults to
    desc), else the `sort_key` and `sort_dir` lists."""
    keys: list[str] = []
    dirs: list[str] = []
    if req.arg("sort"):
        for part in req.arg("sort").split(","):
            key, _, direction = part.strip().partition(":")
            keys.append(key)
            dirs.append(direction or "desc")
        return keys, dirs
    for value in req.query.get("sort_key", []):
        keys.extend(k.strip() for k in value.split(","))
    for value in req.query.get("sort_dir", []):
        dirs.extend(d.strip() for d in value.split(","))
    return keys, dirs


Shown = tuple[dict[str, Any], dict[str, Any]]  # a record and the fields a listing shows of it


def _sorted(records: list[Shown], sort: list[tuple[str, str]]) -> list[Shown]:
    """The records in `_compare`'s order of their shown fields, by stable sorts from the last key to the
    first: a comparison function made each page of a 30,000-image listing cost about 100 ms under the
    state lock."""
    for key, direction in reversed(sort):
        # Nulls first ascending (so last descending), as in `_compare`.
        records.sort(key=lambda r: (r[1].get(key) is not None, r[1].get(key)), reverse=direction == "desc")
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
            if app.behaviour.client_image_ids == "refuse":
                # Knob: a cloud that lets only the server choose ids (Glance 33 accepts one).
                raise HttpError(403, "Attribute 'id' is read-only.")
            if not isinstance(value, str) or not UUID.match(value):
                raise _schema_error(f"{value!r} does not match '{UUID_PATTERN}'")
            continue
        _check_attribute_name(name)
        _check_value(name, value)
    if body.get("visibility") == "public":
        raise HttpError(403, "You are not authorized to complete publicize_image action.")
    if body.get("owner") not in (None, project):
        raise HttpError(403, "You are not permitted to create images owned by another project.")
    if app.behaviour.os_type_required and not body.get("os_type"):
        # NHN requires os_type on create [doc]; upstream Glance does not (knob os_type_required).
        raise HttpError(400, "os_type is required: set the os_type property to linux or windows.")

    with app.store.transaction() as txn:
        region = region_of(txn, req)
        image_id = body.get("id")
        if image_id is not None and id_taken(txn, app, image_id):
            # Also for a deleted image's id: Glance 33 keeps the row (soft delete), so 409, not a new image.
            raise HttpError(409, f"Image ID {image_id} already exists!")
        image_id = image_id or txn.new_uuid("image")
        fields = new_image_fields(image_id, project, txn.utc_now(), **{k: v for k, v in body.items() if k != "owner"})
        record = new_record(region, fields)
        txn.doc["images"][image_id] = record
        note_created(txn, app, record)
        txn.changed()
        return json_response(201, present(record), {"Location": f"{app.image_endpoint(region)}/v2/images/{image_id}"})


def _parse_patch(req: Request) -> list[tuple[str, str, Any]]:
    if req.content_type not in PATCH_TYPES:
        raise HttpError(
            415,
            f"Image PATCH expects Content-Type one of: {', '.join(reversed(PATCH_TYPES))}",
            headers={"Accept-Patch": ", ".join(reversed(PATCH_TYPES))},
            media_type=req.content_type or None,
        )
    body = req.json()
    if not isinstance(body, list):
        raise HttpError(400, "Request body must be a JSON array of operation objects.")
    ops = []
    for op in body:
        if not isinstance(op, dict):
            raise HttpError(400, "Operations must be JSON objects.")
        kind = op.get("op")
        if kind is None:
            raise HttpError(
                400, "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."
            )
        if kind not in ("add", "remove", "replace"):
            # `test` too: Glance has no compare-and-swap (design: mutual exclusion cannot rest on it).
            raise HttpError(400, f"Invalid operation: `{kind}`. It must be one of the following: add, remove, replace.")
        if "path" not in op:
            raise HttpError(400, "Unable to find 'path' in JSON Schema change")
        path = op["path"]
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
            _apply_op(app, fields, kind, name, value)
        # Glance 33 saves the image for every non-empty PATCH, so updated_at moves even when no value
        # changes (a lease renewal relies on that); the patch_moves_updated_at knob turns it off.
        if ops and app.behaviour.patch_moves_updated_at:
            fields["updated_at"] = txn.utc_now()
        if fields != record["fields"]:
            before = record["fields"]
            record["fields"] = fields
            note_change(txn, app, record, before)
            txn.changed()
        return json_response(200, present(record))


def _apply_op(app: SimulatorApp, fields: dict[str, Any], kind: str, name: str, value: Any) -> None:
    """Apply one JSON-patch op to `fields` (a copy), or refuse it as Glance does."""
    _check_attribute_name(name)
    if name == "owner":
        raise HttpError(403, "Owner can't be updated by non admin.")
    if kind == "remove":
        if name in BASE_ATTRIBUTES:
            raise HttpError(403, f"Property {name} may not be removed.")
        if name not in fields:
            raise HttpError(409, f"Property {name} does not exist.")
        del fields[name]
        return
    if kind == "replace" and name not in BASE_ATTRIBUTES and name not in fields:
        raise HttpError(409, f"Property {name} does not exist.")
    _check_value(name, value)
    if name == "visibility" and value == "public" and fields["visibility"] != "public":
        raise HttpError(403, "You are not authorized to complete publicize_image action.")
    if name in ("disk_format", "container_format") and fields["status"] != "queued" and value != fields[name]:
        raise HttpError(403, f"Attribute {name} can be only replaced for a queued image.")
    if name == "protected" and value is False and fields["protected"] and not app.behaviour.unprotect_allowed:
        # Knob: a cloud where a protected image stays protected (NHN: "cannot be modified").
        raise HttpError(403, f"Image {fields['id']} is protected and cannot be unprotected.")
    fields[name] = value


def _delete_image(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "delete")
        fields = record["fields"]
        if fields["protected"]:
            raise HttpError(403, f"Image {fields['id']} is protected and cannot be deleted.")
        if fields["visibility"] == "public":
            raise HttpError(403, "Images with public visibility cannot be deleted.")
        del txn.doc["images"][fields["id"]]
        remember_deleted(txn, record)
        txn.changed()
        blob = record.get("data") or {}
    if blob.get("kind") == "blob":
        path = app.store.blob_path_for_write(blob["name"])
        path.unlink(missing_ok=True)
    return empty_response(204)


# -- tags -----------------------------------------------------------------------------------------


def _refuse_if_protected_in_strict_mode(app: SimulatorApp, record: dict[str, Any]) -> None:
    # NHN's docs say a protected image "cannot be modified" [doc]; the strict knob enforces that for
    # every attribute, tags included. Members are not image attributes.
    if app.behaviour.protected_patch == "strict" and record["fields"]["protected"]:
        raise HttpError(403, f"Image {record['fields']['id']} is protected and cannot be modified.")


def _add_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    _check_tag(tag)
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "modify")
        _refuse_if_protected_in_strict_mode(app, record)
        # Glance 33 saves the image even when it has the tag already: updated_at moves either way.
        before = dict(record["fields"])
        if tag not in before["tags"]:
            record["fields"]["tags"] = [*before["tags"], tag]
        record["fields"]["updated_at"] = txn.utc_now()
        note_change(txn, app, record, before)
        txn.changed()
    return empty_response(204)


def _delete_tag(app: SimulatorApp, req: Request) -> Response:
    tag = req.params["tag"]
    with app.store.transaction() as txn:
        record = owned_image(txn, req, "modify")
        _refuse_if_protected_in_strict_mode(app, record)
        if tag not in record["fields"]["tags"]:
            raise HttpError(404, f"Tag {tag} not found.")
        before = dict(record["fields"])
        record["fields"]["tags"] = [t for t in before["tags"] if t != tag]
        record["fields"]["updated_at"] = txn.utc_now()
        note_change(txn, app, record, before)
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
