"""Block Storage API v2 (Cinder, as NHN Cloud serves it under `/v2/{tenantId}`): volumes and the
`os-volume_upload_image` action that images a volume-rooted instance.

Imaging an attached (in-use) volume needs `force: true`; NHN allows it while the instance runs, with no
guarantee of consistency [doc].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.simulator import image_records
from reconciler.simulator.compute import check_scope
from reconciler.simulator.http import HttpError, Request, Response, Route, json_response
from reconciler.simulator.state import Transaction

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

PREFIX = "/volume/{region}/v2/{tenant_id}"


def _volume(txn: Transaction, req: Request) -> dict[str, Any]:
    region = check_scope(txn, req)
    volume_id = req.params["volume_id"]
    volume = txn.doc["volumes"].get(volume_id)
    if volume is None or volume["region"] != region or volume["project"] != req.token.project:
        raise HttpError(404, f"Volume {volume_id} could not be found.")
    return volume


def _status(txn: Transaction, volume: dict[str, Any]) -> str:
    """Cinder shows a volume `uploading` while the image it is making (os-volume_upload_image) is not yet
    active, then its status before the upload again."""
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
        "name": None,
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
    if limit is not None and page and len(page) == limit:
        base = app.volume_endpoint(region, req.token.project)
        body["volumes_links"] = [
            {"rel": "next", "href": f"{base}/volumes/detail?limit={limit}&marker={page[-1]['id']}"}
        ]
    return json_response(200, body)


def _get_volume(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        return json_response(200, {"volume": _view(_volume(txn, req), txn)})


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
        Route("GET", PREFIX + "/volumes/detail", "volume", _list_volumes_detail),
        Route("GET", PREFIX + "/volumes/{volume_id}", "volume", _get_volume),
        Route("POST", PREFIX + "/volumes/{volume_id}/action", "volume", _action),
    ]
