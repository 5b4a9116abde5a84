"""Block Storage API v2 (Cinder, as NHN Cloud serves it under `/v2/{tenantId}`): volumes (listed, made
from an image or blank, deleted) and the `os-volume_upload_image` action that images a volume-rooted
instance. A volume made from an image names it in `volume_image_metadata`: it is one of the image's users.

Imaging an attached (in-use) volume needs `force: true`; NHN allows it while the instance runs, with no
guarantee of consistency [doc].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.simulator import image_records
from reconciler.simulator.compute import check_scope, usable_image
from reconciler.simulator.http import HttpError, Request, Response, Route, empty_response, json_response
from reconciler.simulator.state import Transaction

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

PREFIX = "/volume/{region}/v2/{tenant_id}"
# cinder/volume/api.py `delete`: the refusal of a volume that is attached, or in a status being changed.
DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or error_extending or "
    "error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a "
    "transfer, or be disassociated from snapshots after volume transfer."
)


def volume_record(
    volume_id: str,
    project: str,
    region: str,
    *,
    name: str | None,
    size: int,
    image_id: str | None,
    created_at: str,
    bootable: bool | None = None,
) -> dict[str, Any]:
    """A detached volume (`available`); made from `image_id` when given, which makes it bootable."""
    return {
        "id": volume_id,
        "project": project,
        "region": region,
        "name": name,
        "size": size,
        "status": "available",
        "attached_to": None,
        "device": None,
        "bootable": "true" if (image_id is not None if bootable is None else bootable) else "false",
        "created_at": created_at,
        "image_id": image_id,
    }


def _volume(txn: Transaction, req: Request) -> dict[str, Any]:
    region = check_scope(txn, req)
    volume_id = req.params["volume_id"]
    volume = txn.doc["volumes"].get(volume_id)
    if volume is None or volume["region"] != region or volume["project"] != req.token.project:
        raise HttpError(404, f"Volume {volume_id} could not be found.")
    return volume


def _status(txn: Transaction, volume: dict[str, Any]) -> str:
    """Cinder shows a new volume `creating` until it is made, and a volume `uploading` while the image it
    is making (os-volume_upload_image) is not yet active, then its status before the upload again."""
    if volume.get("task"):
        return "creating"
    upload = txn.doc["images"].get(volume.get("upload_image_id") or "")
    if upload is not None and upload["fields"]["status"] in ("queued", "saving"):
        return "uploading"
    return volume["status"]


def _view(volume: dict[str, Any], txn: Transaction | None = None) -> dict[str, Any]:
    attachments = []
    if volume.get("attached_to"):
        attachments.append(
            {
                "server_id": volume["attached_to"],
                "device": volume["device"],
                "volume_id": volume["id"],
                "attachment_id": volume["id"],
                "id": volume["id"],
            }
        )
    return {
        "id": volume["id"],
        "name": volume.get("name"),
        "status": _status(txn, volume) if txn is not None else volume["status"],
        "size": volume["size"],
        "bootable": volume["bootable"],
        "attachments": attachments,
        "availability_zone": f"{volume['region'].lower()}-pub-a",
        "created_at": volume["created_at"],
        "volume_type": "General HDD",
        "metadata": {},
        **({"volume_image_metadata": {"image_id": volume["image_id"]}} if volume.get("image_id") else {}),
    }


def _list_volumes_detail(app: SimulatorApp, req: Request) -> Response:
    """Cinder's paged detail list: newest first, `limit` / `marker`, a `volumes_links` next link when a page
    is full."""
    limit_raw = req.arg("limit")
    try:
        limit = int(limit_raw) if limit_raw is not None else None
    except ValueError:
        raise HttpError(400, f"Invalid input received: limit={limit_raw!r}") from None
    with app.store.transaction() as txn:
        region = check_scope(txn, req)
        volumes = sorted(
            (v for v in txn.doc["volumes"].values() if v["region"] == region and v["project"] == req.token.project),
            key=lambda v: (v["created_at"], v["id"]),
            reverse=True,
        )
        marker = req.arg("marker")
        if marker is not None:
            ids = [v["id"] for v in volumes]
            if marker not in ids:
                raise HttpError(404, f"Marker {marker} could not be found.")
            volumes = volumes[ids.index(marker) + 1 :]
        page = volumes[:limit] if limit is not None else volumes
        body: dict[str, Any] = {"volumes": [_view(v, txn) for v in page]}
        for volume in page:
            _advance(txn, volume)
    if limit is not None and page and len(page) == limit:
        base = app.volume_endpoint(region, req.token.project)
        body["volumes_links"] = [
            {"rel": "next", "href": f"{base}/volumes/detail?limit={limit}&marker={page[-1]['id']}"}
        ]
    return json_response(200, body)


def _get_volume(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        volume = _volume(txn, req)
        view = _view(volume, txn)
        _advance(txn, volume)
        return json_response(200, {"volume": view})


def _advance(txn: Transaction, volume: dict[str, Any]) -> None:
    """Count one poll of a volume being created (a GET of it, or a list page showing it): with
    `server_ready_after_polls: N` the first N polls see it `creating`, the next one `available`."""
    task = volume.get("task")
    if not task:
        return
    task["polls_left"] -= 1
    if task["polls_left"] <= 0:
        volume["task"] = None
    txn.changed()


# -- create and delete: how images gain and lose users ---------------------------------------------


def _create_request(req: Request) -> dict[str, Any]:
    """The `volume` object of a create, with the shapes Cinder checks (api/v3/volumes.py `create`)."""
    body = req.json_object()
    request = body.get("volume")
    if not isinstance(request, dict):
        raise HttpError(400, "Missing required element 'volume' in request body.")
    size = request.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise HttpError(
            400,
            f"Invalid input received: Invalid volume size provided for create request: {request.get('size')} "
            "(size argument must be an integer (or string representation of an integer) and greater than zero).",
        )
    name = request.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise HttpError(400, "Invalid input received: name must be a string of at most 255 characters.")
    image_ref = request.get("imageRef")
    if image_ref is not None and not isinstance(image_ref, str):
        raise HttpError(400, "Invalid imageRef provided.")
    return {"size": size, "name": name, "imageRef": image_ref}


def _source_image(txn: Transaction, project: str, region: str, image_ref: str) -> dict[str, Any]:
    """The image a new volume copies (api/v3/volumes.py `_image_uuid_from_ref`: an id, else a name the
    project can see; volume_utils.check_image_metadata: active, and no larger than the volume)."""
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    record = usable_image(txn, project, region, image_id)
    if record is None:
        named = [
            r
            for r in txn.doc["images"].values()
            if r["region"] == region and r["fields"]["name"] == image_ref and image_records.can_see(r, project)
        ]
        if len(named) > 1:
            raise HttpError(409, f"Multiple matches found for '{image_ref}', use an ID to be more specific.")
        if not named:
            raise HttpError(400, "Invalid image identifier or unable to access requested image.")
        record = named[0]
    if record["fields"]["status"] != "active":
        raise HttpError(400, f"Invalid input received: Image {record['fields']['id']} is not active.")
    return record


def _create_volume(app: SimulatorApp, req: Request) -> Response:
    """Cinder's create: blank, or from an image (`imageRef`, whose id the volume then shows in
    `volume_image_metadata`). 202 with the volume, `creating` for `server_ready_after_polls` polls."""
    request = _create_request(req)
    with app.store.transaction() as txn:
        region = check_scope(txn, req)
        project = req.token.project
        image = _source_image(txn, project, region, request["imageRef"]) if request["imageRef"] else None
        if image is not None and image["fields"]["min_disk"] > request["size"]:
            raise HttpError(
                400,
                f"Invalid input received: Volume size {request['size']}GB cannot be smaller than the image "
                f"minDisk size {image['fields']['min_disk']}GB.",
            )
        volume = volume_record(
            txn.new_uuid("volume"),
            project,
            region,
            name=request["name"],
            size=request["size"],
            image_id=image["fields"]["id"] if image is not None else None,
            created_at=txn.utc_now(),
        )
        polls = app.behaviour.server_ready_after_polls
        volume["task"] = {"polls_left": polls} if polls > 0 else None
        txn.doc["volumes"][volume["id"]] = volume
        txn.changed()
        view = _view(volume, txn)
    return json_response(202, {"volume": view})


def _delete_volume(app: SimulatorApp, req: Request) -> Response:
    """Cinder's delete, carried out at once (its `deleting` status is not modelled): 202, and the volume
    is gone. An attached (`in-use`), `creating` or `uploading` volume is refused (400)."""
    with app.store.transaction() as txn:
        volume = _volume(txn, req)
        if volume.get("attached_to") or _status(txn, volume) not in ("available", "error"):
            raise HttpError(400, DELETE_REFUSED)
        del txn.doc["volumes"][volume["id"]]
        txn.changed()
    return empty_response(202)


def _truthy(value: Any) -> bool | None:
    """Cinder accepts booleans and their string forms for `force`; None means invalid."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    return None


def _action(app: SimulatorApp, req: Request) -> Response:
    body = req.json_object()
    args = body.get("os-volume_upload_image")
    if not isinstance(args, dict):
        raise HttpError(400, "There is no such action: " + ", ".join(body) if body else "Malformed request body")
    image_name = args.get("image_name")
    if not isinstance(image_name, str) or not image_name:
        raise HttpError(400, "No image_name was specified in request.")
    force = _truthy(args.get("force", False))
    if force is None:
        raise HttpError(400, f"Invalid value for 'force': '{args.get('force')}'")
    disk_format = args.get("disk_format", "raw")
    container_format = args.get("container_format", "bare")
    visibility = args.get("visibility", "private")
    protected = args.get("protected", False)
    if disk_format not in image_records.DISK_FORMATS or container_format not in image_records.CONTAINER_FORMATS:
        raise HttpError(400, f"Invalid disk_format or container_format: {disk_format}, {container_format}")
    if visibility not in ("private", "shared", "community", "public") or not isinstance(protected, bool):
        raise HttpError(400, "Invalid visibility or protected value")
    with app.store.transaction() as txn:
        volume = _volume(txn, req)
        if volume["status"] == "in-use" and not force:
            raise HttpError(400, f"Invalid volume: Volume {volume['id']} status must be available")
        if _status(txn, volume) not in ("available", "in-use"):
            raise HttpError(400, f"Invalid volume: Volume {volume['id']} status must be available or in-use")
        server = txn.doc["servers"].get(volume.get("attached_to") or "")
        if server is None:
            raise HttpError(400, f"Invalid volume: Volume {volume['id']} holds no instance's root disk")
        record = image_records.create_from_server(
            app,
            txn,
            server,
            name=image_name,
            min_disk=volume["size"],
            properties={},
            disk_format=disk_format,
            container_format=container_format,
            visibility=visibility,
            protected=protected,
        )
        fields = record["fields"]
        volume["upload_image_id"] = fields["id"]
        txn.changed()
        response = {
            "id": volume["id"],
            "updated_at": fields["created_at"],
            "status": "uploading",
            "display_description": None,
            "size": volume["size"],
            "volume_type": {"name": "General HDD"},
            "image_id": fields["id"],
            "container_format": container_format,
            "disk_format": disk_format,
            "image_name": image_name,
            "protected": protected,
            "visibility": visibility,
        }
    return json_response(202, {"os-volume_upload_image": response})


def _version_doc(app: SimulatorApp, region: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2017-02-25T12:00:00Z",
        "links": [{"rel": "self", "href": f"{app.base_url}/volume/{region}/v2/"}],
    }


def _versions(app: SimulatorApp, req: Request) -> Response:
    return json_response(300, {"versions": [_version_doc(app, req.params["region"])]})


def _version(app: SimulatorApp, req: Request) -> Response:
    return json_response(200, {"version": _version_doc(app, req.params["region"])})


def routes() -> list[Route]:
    return [
        Route("GET", "/volume/{region}", "volume", _versions, auth=False),
        Route("GET", "/volume/{region}/v2", "volume", _version, auth=False),
        Route("GET", PREFIX, "volume", _version, auth=False),
        Route("POST", PREFIX + "/volumes", "volume", _create_volume),
        Route("GET", PREFIX + "/volumes/detail", "volume", _list_volumes_detail),
        Route("GET", PREFIX + "/volumes/{volume_id}", "volume", _get_volume),
        Route("DELETE", PREFIX + "/volumes/{volume_id}", "volume", _delete_volume),
        Route("POST", PREFIX + "/volumes/{volume_id}/action", "volume", _action),
    ]
