"""Compute API v2 (Nova, as NHN Cloud serves it under `/v2/{tenantId}`): servers, flavors, volume
attachments, server metadata, and the actions the reconciler uses: `os-stop`, `os-start`, `createImage`.

NHN's rules: `createImage` is only for local-disk instances (u2) and only
when stopped (`SHUTOFF`); a volume-rooted instance is imaged through Cinder. The answers NHN does not
document (a running u2, a volume root) are knobs (docs/simulator.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from reconciler.simulator import image_records
from reconciler.simulator.http import HttpError, Request, Response, Route, empty_response, json_response
from reconciler.simulator.state import Transaction

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

PREFIX = "/compute/{region}/v2/{tenant_id}"
VM_STATES = {
    "ACTIVE": "active",
    "BUILD": "building",
    "SHUTOFF": "stopped",
    "SUSPENDED": "suspended",
    "PAUSED": "paused",
    "ERROR": "error",
}
POWER_STATES = {"ACTIVE": 1, "BUILD": 0, "SHUTOFF": 4, "SUSPENDED": 7, "PAUSED": 3, "ERROR": 0}
# A new server's disk holds this much (MiB) of content, as a seeded server's does by default.
NEW_SERVER_DISK_MB = 16


def check_scope(txn: Transaction, req: Request) -> str:
    """The region of this request, after Nova's and Cinder's checks of the URL's region and project."""
    region = req.params["region"]
    if region not in txn.doc["regions"]:
        raise HttpError(404, f"The resource could not be found: no endpoint in region {region}")
    tenant = req.params["tenant_id"]
    if tenant != req.token.project:
        raise HttpError(
            400,
            f"Malformed request URL: URL's project_id '{tenant}' doesn't match "
            f"Context's project_id '{req.token.project}'",
        )
    return region


# -- volume attachments (Nova attaches; Cinder shows them) ----------------------------------------


def attach(volume: dict[str, Any], server_id: str, device: str) -> None:
    """Attach a volume: Cinder then shows it `in-use`, with the server and device in `attachments`."""
    volume.update(attached_to=server_id, device=device, status="in-use")


def detach(volume: dict[str, Any]) -> None:
    """Detach a volume: `available` again, with no attachments."""
    volume.update(attached_to=None, device=None, status="available")


def attached_volumes(volumes: Any, server_id: str) -> list[dict[str, Any]]:
    """The volumes attached to a server, by device (the root, /dev/vda, first)."""
    return sorted((v for v in volumes if v.get("attached_to") == server_id), key=lambda v: v["device"])


def next_free_device(volumes: Any, server_id: str) -> str:
    """The first of /dev/vdb, /dev/vdc, ... no volume of the server is attached on (vda is the root's)."""
    taken = {v["device"] for v in attached_volumes(volumes, server_id)}
    return next(f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{letter}" not in taken)


def _server(txn: Transaction, req: Request) -> dict[str, Any]:
    region = check_scope(txn, req)
    server_id = req.params["server_id"]
    server = txn.doc["servers"].get(server_id)
    if server is None or server["region"] != region or server["project"] != req.token.project:
        raise HttpError(404, f"Instance {server_id} could not be found.")
    image_records.settle_snapshot(txn, server)
    return server


def _advance(txn: Transaction, app: SimulatorApp, server: dict[str, Any]) -> None:
    """Count one poll of a server in transition, after the poll was answered: with
    `server_ready_after_polls: N` the first N polls see it in transition, poll N+1 at its target. A
    snapshot task (createImage) moves with its image instead (image_records.advance_snapshot)."""
    task = server.get("task")
    if not task:
        return
    if task.get("image_id"):
        record = txn.doc["images"].get(task["image_id"])
        if record is None:
            image_records.settle_snapshot(txn, server)
        else:
            image_records.advance_snapshot(txn, app, server, record)
        return
    task["polls_left"] -= 1
    if task["polls_left"] <= 0:
        server["status"] = task["target"]
        server["task"] = None
        server["updated"] = txn.utc_now()
    txn.changed()


def _start_transition(
    txn: Transaction, app: SimulatorApp, server: dict[str, Any], task_state: str, target: str
) -> None:
    polls = app.behaviour.server_ready_after_polls
    server["updated"] = txn.utc_now()
    if polls <= 0:
        server["status"] = target
        server["task"] = None
    else:
        server["task"] = {"task_state": task_state, "target": target, "polls_left": polls}


def _links(app: SimulatorApp, server: dict[str, Any], kind: str, item_id: str) -> list[dict[str, str]]:
    base = app.compute_endpoint(server["region"], server["project"])
    bookmark = f"{app.base_url}/compute/{server['region']}/{server['project']}/{kind}/{item_id}"
    return [{"rel": "self", "href": f"{base}/{kind}/{item_id}"}, {"rel": "bookmark", "href": bookmark}]


def _view(app: SimulatorApp, txn: Transaction, server: dict[str, Any]) -> dict[str, Any]:
    task = server.get("task") or {}
    local = server["root"] == "local"
    image: Any = ""
    if local and server.get("base_image_id"):
        image = {"id": server["base_image_id"], "links": _links(app, server, "images", server["base_image_id"])[1:]}
    return {
        "id": server["id"],
        "name": server["name"],
        "status": server["status"],
        "tenant_id": server["project"],
        "user_id": "",
        "metadata": dict(server["metadata"]),
        # Nova (before microversion 2.47) and NHN show only the flavor's id: map it via flavors/detail.
        "flavor": {"id": server["flavor_id"], "links": _links(app, server, "flavors", server["flavor_id"])[1:]},
        "image": image,
        "created": server["created"],
        "updated": server["updated"],
        "addresses": {},
        "accessIPv4": "",
        "accessIPv6": "",
        "key_name": None,
        "config_drive": "",
        "hostId": "",
        "progress": 0,
        "security_groups": [{"name": "default"}],
        "links": _links(app, server, "servers", server["id"]),
        "OS-EXT-STS:task_state": task.get("task_state"),
        "OS-EXT-STS:vm_state": VM_STATES.get(server["status"], server["status"].lower()),
        "OS-EXT-STS:power_state": POWER_STATES.get(server["status"], 0),
        "OS-EXT-AZ:availability_zone": f"{server['region'].lower()}-pub-a",
        "OS-DCF:diskConfig": "MANUAL",
        "os-extended-volumes:volumes_attached": [
            {"id": v["id"]} for v in attached_volumes(txn.doc["volumes"].values(), server["id"])
        ],
    }


# -- servers --------------------------------------------------------------------------------------


def _list(app: SimulatorApp, req: Request, detail: bool) -> Response:
    name_filter = req.arg("name")
    status_filter = req.arg("status")
    try:
        name_pattern = re.compile(name_filter) if name_filter else None  # Nova matches names as a regex
    except re.error:
        raise HttpError(400, f"Invalid filter field: name: {name_filter!r} is not a valid regular expression") from None
    limit_raw = req.arg("limit")
    try:
        limit = int(limit_raw) if limit_raw is not None else None
    except ValueError:
        raise HttpError(400, "limit param must be an integer") from None
    if limit is not None and limit < 0:
        raise HttpError(400, "limit param must be positive")
    with app.store.transaction() as txn:
        region = check_scope(txn, req)
        servers = sorted(
            (s for s in txn.doc["servers"].values() if s["region"] == region and s["project"] == req.token.project),
            key=lambda s: (s["created"], s["id"]),
            reverse=True,
        )
        servers = [
            s
            for s in servers
            if (name_pattern is None or name_pattern.search(s["name"]))
            and (status_filter is None or s["status"] == status_filter.upper())
        ]
        marker = req.arg("marker")
        if marker is not None:
            ids = [s["id"] for s in servers]
            if marker not in ids:
                raise HttpError(400, f"marker [{marker}] not found")
            servers = servers[ids.index(marker) + 1 :]
        page = servers[:limit] if limit is not None else servers
        for server in page:
            image_records.settle_snapshot(txn, server)
        views = [
            _view(app, txn, s)
            if detail
            else {"id": s["id"], "name": s["name"], "links": _links(app, s, "servers", s["id"])}
            for s in page
        ]
        if detail:
            for server in page:
                _advance(txn, app, server)
    body: dict[str, Any] = {"servers": views}
    if limit is not None and views and len(views) == limit:
        base = app.compute_endpoint(region, req.token.project)
        suffix = "/detail" if detail else ""
        body["servers_links"] = [
            {"rel": "next", "href": f"{base}/servers{suffix}?limit={limit}&marker={views[-1]['id']}"}
        ]
    return json_response(200, body)


def _list_servers(app: SimulatorApp, req: Request) -> Response:
    return _list(app, req, detail=False)


def _list_servers_detail(app: SimulatorApp, req: Request) -> Response:
    return _list(app, req, detail=True)


def _get_server(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        server = _server(txn, req)
        view = _view(app, txn, server)
        _advance(txn, app, server)
        return json_response(200, {"server": view})


def _volume_attachments(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        server = _server(txn, req)
        attachments = [
            {"id": v["id"], "volumeId": v["id"], "serverId": server["id"], "device": v["device"]}
            for v in attached_volumes(txn.doc["volumes"].values(), server["id"])
        ]
    return json_response(200, {"volumeAttachments": attachments})


# -- create and delete: how images gain and lose users ---------------------------------------------

# nova/exception.py InvalidBDMBootSequence
BOOT_SEQUENCE_INVALID = (
    "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping "
    "combination is not valid."
)


def _invalid_input(field: str, value: Any, reason: str) -> HttpError:
    """Nova's schema refusal (nova/api/validation/validators.py)."""
    return HttpError(400, f"Invalid input for field/attribute {field}. Value: {value}. {reason}")


def _id_from_href(ref: Any) -> str:
    """Nova takes an id or a link to one (nova/api/openstack/common.py get_id_from_href)."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def _create_request(req: Request) -> dict[str, Any]:
    """The `server` object of a create, with the shapes Nova's schema checks (servers.py `create`)."""
    body = req.json_object()
    server = body.get("server")
    if not isinstance(server, dict):
        raise _invalid_input("server", server, "'server' is a required property")
    for key in ("name", "flavorRef"):
        if key not in server:
            raise _invalid_input("server", server, f"'{key}' is a required property")
    name = server["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid_input("name", name, "It must be a string of 1 to 255 characters, not only spaces.")
    if not isinstance(server["flavorRef"], (str, int)) or server["flavorRef"] == "":
        raise _invalid_input("flavorRef", server["flavorRef"], "It must be a non-empty string or an integer.")
    if not isinstance(server.get("imageRef", ""), str):
        raise _invalid_input("imageRef", server["imageRef"], "It must be a string.")
    metadata = server.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _invalid_input("metadata", metadata, "Values must be strings.")
    mappings = server.get("block_device_mapping_v2")
    if mappings is not None and (not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings)):
        raise _invalid_input("block_device_mapping_v2", mappings, "It must be a list of objects.")
    return server


def _boot_mapping(server: dict[str, Any]) -> dict[str, Any] | None:
    """The root (boot_index 0) of `block_device_mapping_v2`, if any."""
    for mapping in server.get("block_device_mapping_v2") or []:
        if str(mapping.get("boot_index")) == "0":
            return mapping
    return None


def usable_image(txn: Transaction, project: str, region: str, image_id: str) -> dict[str, Any] | None:
    """The image `project` may boot from or copy in `region`, as Glance lets it read it; None otherwise."""
    record = txn.doc["images"].get(image_id)
    if record is None or record["region"] != region or not image_records.can_see(record, project):
        return None
    return record


def _boot_image(txn: Transaction, project: str, region: str, image_ref: str) -> dict[str, Any]:
    """The active image a server boots from (ComputeAPI.create: ImageNotFound, ImageNotActive)."""
    image_id = _id_from_href(image_ref)
    record = usable_image(txn, project, region, image_id)
    if record is None:
        raise HttpError(400, "Can not find requested image")
    if record["fields"]["status"] != "active":
        raise HttpError(400, f"Image {image_id} is not active.")
    return record


def _boot_volume(txn: Transaction, project: str, region: str, mapping: dict[str, Any]) -> dict[str, Any]:
    """The available, bootable volume of the project a server boots from (Nova's _validate_bdm)."""
    if mapping.get("source_type") != "volume" or mapping.get("destination_type", "volume") != "volume":
        raise HttpError(
            400,
            "Block Device Mapping is Invalid: the simulator boots only from an existing volume "
            "(source_type: volume, destination_type: volume).",
        )
    volume_id = str(mapping.get("uuid") or "")
    volume = txn.doc["volumes"].get(volume_id)
    if volume is None or volume["region"] != region or volume["project"] != project:
        raise HttpError(400, f"Block Device Mapping is Invalid: failed to get volume {volume_id}.")
    if volume["status"] != "available" or volume.get("task"):
        status = "creating" if volume.get("task") else volume["status"]
        # Cinder's attachment_create, as Nova reports it (InvalidVolume).
        raise HttpError(
            400,
            f"Invalid volume: Volume {volume_id} status must be available or downloading to reserve, "
            f"but the current status is {status}.",
        )
    if volume["bootable"] != "true":
        raise HttpError(400, f"Block Device {volume_id} is not bootable.")
    return volume


def _new_server(
    txn: Transaction, project: str, region: str, request: dict[str, Any], flavor_id: str, image: dict[str, Any] | None
) -> dict[str, Any]:
    """A server record booted from `image` (None: unknown, as a blank volume's), inheriting its os_*."""
    fields = image["fields"] if image is not None else {}
    now = txn.utc_now()
    metadata = {"os_type": fields.get("os_type") or "linux"}
    metadata.update({k: fields[k] for k in ("os_distro", "os_version") if isinstance(fields.get(k), str)})
    if fields.get("name"):
        metadata["image_name"] = fields["name"]
    metadata.update(request.get("metadata") or {})
    return {
        "id": txn.new_uuid("server"),
        "project": project,
        "region": region,
        "name": request["name"],
        "flavor_id": flavor_id,
        "status": "ACTIVE",
        "task": None,
        "os_type": metadata["os_type"],
        "os_distro": metadata.get("os_distro"),
        "os_version": metadata.get("os_version"),
        "base_image": fields.get("name"),
        "base_image_id": fields.get("id"),
        "disk_mb": NEW_SERVER_DISK_MB,
        "root": "local",
        "root_volume_id": None,
        "metadata": metadata,
        "created": now,
        "updated": now,
    }


def _create_server(app: SimulatorApp, req: Request) -> Response:
    """Nova's boot: from an image (`imageRef`) onto a local disk, or from an existing volume
    (`imageRef: ""` and a `block_device_mapping_v2` root of source_type volume). 202 with the new server's
    id and links; it is BUILD (task_state spawning) for `server_ready_after_polls` polls, then ACTIVE."""
    request = _create_request(req)
    image_ref = request.get("imageRef") or ""
    mapping = _boot_mapping(request)
    if not image_ref and not request.get("block_device_mapping_v2"):
        raise HttpError(400, "Missing imageRef attribute")
    if bool(image_ref) == bool(mapping):  # neither root, or both: the simulator takes one of them
        raise HttpError(400, BOOT_SEQUENCE_INVALID)
    with app.store.transaction() as txn:
        region = check_scope(txn, req)
        project = req.token.project
        flavor_id = _id_from_href(request["flavorRef"])
        flavor = txn.doc["flavors"].get(flavor_id)
        if flavor is None:
            raise HttpError(400, f"Flavor {flavor_id} could not be found.")
        if image_ref:
            image = _boot_image(txn, project, region, image_ref)
            if not flavor["disk"]:  # NHN's volume-rooted flavors have no local disk
                raise HttpError(403, "Only volume-backed servers are allowed for flavors with zero disk.")
            server = _new_server(txn, project, region, request, flavor_id, image)
        else:
            assert mapping is not None
            volume = _boot_volume(txn, project, region, mapping)
            image = txn.doc["images"].get(volume.get("image_id") or "")
            server = _new_server(txn, project, region, request, flavor_id, image)
            server.update(root="volume", root_volume_id=volume["id"], base_image_id=volume.get("image_id"))
            attach(volume, server["id"], "/dev/vda")
        _start_transition(txn, app, server, "spawning", "ACTIVE")
        if server["task"]:
            server["status"] = "BUILD"
        txn.doc["servers"][server["id"]] = server
        txn.changed()
        links = _links(app, server, "servers", server["id"])
        admin_pass = txn.new_uuid("admin-pass").replace("-", "")[:12]
    view = {
        "id": server["id"],
        "links": links,
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": request.get("security_groups") or [{"name": "default"}],
        "adminPass": admin_pass,
    }
    return json_response(202, {"server": view}, {"Location": links[0]["href"]})


def _delete_server(app: SimulatorApp, req: Request) -> Response:
    """Nova's delete, carried out at once (Nova's `deleting` task is not modelled): the server is gone
    from the listings and its volumes are detached (`available`), its boot volume included (Nova keeps a
    volume it did not create: delete_on_termination is false)."""
    with app.store.transaction() as txn:
        server = _server(txn, req)
        for volume in attached_volumes(txn.doc["volumes"].values(), server["id"]):
            detach(volume)
        snapshot = txn.doc["images"].get((server.get("task") or {}).get("image_id") or "")
        if snapshot is not None:
            snapshot.pop("snapshot_of", None)  # its image goes on being made without the server
        del txn.doc["servers"][server["id"]]
        txn.changed()
    return empty_response(204)


# -- metadata -------------------------------------------------------------------------------------


def _metadata_body(req: Request, key: str) -> dict[str, str]:
    body = req.json_object()
    values = body.get(key)
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise HttpError(400, f"Invalid input for field/attribute {key}: expected an object of strings")
    for k, v in values.items():
        if not k or len(k) > 255 or len(v) > 255:
            raise HttpError(400, "Metadata keys and values must be 1 to 255 characters long")
    return values


def _get_metadata(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        server = _server(txn, req)
        return json_response(200, {"metadata": dict(server["metadata"])})


def _update_metadata(app: SimulatorApp, req: Request) -> Response:
    """POST merges the given keys into the metadata (Nova's "update metadata items")."""
    values = _metadata_body(req, "metadata")
    with app.store.transaction() as txn:
        server = _server(txn, req)
        server["metadata"] = {**server["metadata"], **values}
        server["updated"] = txn.utc_now()
        txn.changed()
        return json_response(200, {"metadata": dict(server["metadata"])})


def _replace_metadata(app: SimulatorApp, req: Request) -> Response:
    """PUT replaces all metadata (Nova's "replace metadata items")."""
    values = _metadata_body(req, "metadata")
    with app.store.transaction() as txn:
        server = _server(txn, req)
        server["metadata"] = dict(values)
        server["updated"] = txn.utc_now()
        txn.changed()
        return json_response(200, {"metadata": dict(server["metadata"])})


def _get_metadata_item(app: SimulatorApp, req: Request) -> Response:
    key = req.params["key"]
    with app.store.transaction() as txn:
        server = _server(txn, req)
        if key not in server["metadata"]:
            raise HttpError(404, "Metadata item was not found")
        return json_response(200, {"meta": {key: server["metadata"][key]}})


def _set_metadata_item(app: SimulatorApp, req: Request) -> Response:
    key = req.params["key"]
    values = _metadata_body(req, "meta")
    if list(values) != [key]:
        raise HttpError(400, "Request body and URI mismatch")
    with app.store.transaction() as txn:
        server = _server(txn, req)
        server["metadata"] = {**server["metadata"], **values}
        server["updated"] = txn.utc_now()
        txn.changed()
        return json_response(200, {"meta": values})


def _delete_metadata_item(app: SimulatorApp, req: Request) -> Response:
    key = req.params["key"]
    with app.store.transaction() as txn:
        server = _server(txn, req)
        if key not in server["metadata"]:
            raise HttpError(404, "Metadata item was not found")
        server["metadata"] = {k: v for k, v in server["metadata"].items() if k != key}
        server["updated"] = txn.utc_now()
        txn.changed()
    return empty_response(204)


# -- actions --------------------------------------------------------------------------------------


def _check_state(action: str, server: dict[str, Any], vm_states: tuple[str, ...]) -> None:
    """Nova's check_instance_state (nova/compute/api.py): the vm_state first, then no task may be under
    way; either refusal is a 409 worded by raise_http_conflict_for_instance_invalid_state."""
    vm_state = VM_STATES.get(server["status"], server["status"].lower())
    if vm_state not in vm_states:
        raise HttpError(409, f"Cannot '{action}' instance {server['id']} while it is in vm_state {vm_state}")
    task = server.get("task")
    if task:
        raise HttpError(
            409, f"Cannot '{action}' instance {server['id']} while it is in task_state {task['task_state']}"
        )


def _action(app: SimulatorApp, req: Request) -> Response:
    body = req.json_object()
    if len(body) != 1:
        raise HttpError(400, "Malformed request body: expected exactly one action")
    action, args = next(iter(body.items()))
    with app.store.transaction() as txn:
        server = _server(txn, req)
        if action == "os-stop":
            # A stopping server is still ACTIVE (task_state powering-off): its task refuses a second stop.
            _check_state("stop", server, ("active", "error"))
            _start_transition(txn, app, server, "powering-off", "SHUTOFF")
            txn.changed()
            return empty_response(202)
        if action == "os-start":
            _check_state("start", server, ("stopped",))
            _start_transition(txn, app, server, "powering-on", "ACTIVE")
            txn.changed()
            return empty_response(202)
        if action == "createImage":
            return _create_image(app, txn, server, args)
    raise HttpError(400, f"There is no such action: {action}")


def _create_image(app: SimulatorApp, txn: Transaction, server: dict[str, Any], args: Any) -> Response:
    if not isinstance(args, dict) or not isinstance(args.get("name"), str) or not args["name"].strip():
        raise HttpError(400, "Invalid input for field/attribute name. Value: None. None is not of type 'string'")
    metadata = args.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HttpError(400, "Invalid input for field/attribute metadata: values must be strings")
    refused = sorted(k for k in metadata if k in image_records.BASE_ATTRIBUTES or k in image_records.RESERVED)
    if refused:
        # Nova passes metadata to Glance as image properties; Glance refuses its own attributes.
        raise HttpError(400, f"Invalid image metadata: {', '.join(refused)} cannot be set as properties")
    if server["root"] == "volume":
        # NHN: only local-disk (u2) instances use createImage [doc]; others answer 400 [3p] (a knob).
        raise HttpError(
            app.behaviour.create_image_volume_root_status,
            f"Instance {server['id']} boots from a volume: create its image with the Block Storage API "
            "(os-volume_upload_image) instead.",
        )
    # Nova's own check (snapshot allows active, stopped, paused, suspended; no task under way: a second
    # createImage meets the first one's image_* task_state) ...
    _check_state("createImage", server, ("active", "stopped", "paused", "suspended"))
    if server["status"] != "SHUTOFF":
        # ... then NHN's: its console guide allows imaging a u2 only when stopped [doc]; the API's answer
        # for a running one is undocumented ([inferred] 409, a knob).
        vm_state = VM_STATES.get(server["status"], server["status"].lower())
        raise HttpError(
            app.behaviour.create_image_running_status,
            f"Cannot 'createImage' instance {server['id']} while it is in vm_state {vm_state}",
        )
    flavor = txn.doc["flavors"].get(server["flavor_id"], {})
    record = image_records.create_from_server(
        app, txn, server, name=args["name"], min_disk=flavor.get("disk", 0), properties=dict(metadata)
    )
    image_records.start_snapshot(app, server, record)
    server["updated"] = txn.utc_now()
    image_id = record["fields"]["id"]
    # Nova before microversion 2.45 answers with no body and the image's URL in Location.
    return empty_response(202, {"Location": f"{app.image_endpoint(server['region'])}/images/{image_id}"})


# -- flavors --------------------------------------------------------------------------------------


def _flavor_view(
    app: SimulatorApp, req: Request, flavor_id: str, flavor: dict[str, Any], detail: bool
) -> dict[str, Any]:
    base = app.compute_endpoint(req.params["region"], req.token.project)
    view: dict[str, Any] = {
        "id": flavor_id,
        "name": flavor["name"],
        "links": [{"rel": "self", "href": f"{base}/flavors/{flavor_id}"}],
    }
    if detail:
        view.update(
            ram=flavor["ram"],
            vcpus=flavor["vcpus"],
            disk=flavor["disk"],
            swap="",
            rxtx_factor=1.0,
            **{"OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False, "os-flavor-access:is_public": True},
        )
    return view


def _list_flavors(app: SimulatorApp, req: Request, detail: bool) -> Response:
    with app.store.transaction() as txn:
        check_scope(txn, req)
        flavors = sorted(txn.doc["flavors"].items(), key=lambda item: item[1]["name"])
        views = [_flavor_view(app, req, fid, f, detail) for fid, f in flavors]
    return json_response(200, {"flavors": views})


def _flavors(app: SimulatorApp, req: Request) -> Response:
    return _list_flavors(app, req, detail=False)


def _flavors_detail(app: SimulatorApp, req: Request) -> Response:
    return _list_flavors(app, req, detail=True)


def _get_flavor(app: SimulatorApp, req: Request) -> Response:
    flavor_id = req.params["flavor_id"]
    with app.store.transaction() as txn:
        check_scope(txn, req)
        flavor = txn.doc["flavors"].get(flavor_id)
        if flavor is None:
            raise HttpError(404, f"Flavor {flavor_id} could not be found.")
        return json_response(200, {"flavor": _flavor_view(app, req, flavor_id, flavor, detail=True)})


# -- versions -------------------------------------------------------------------------------------


def _version_doc(app: SimulatorApp, region: str) -> dict[str, Any]:
    # NHN's catalog points at /v2/{tenantId}: the legacy v2.0 API, without microversions.
    return {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": f"{app.base_url}/compute/{region}/v2/"}],
    }


def _versions(app: SimulatorApp, req: Request) -> Response:
    return json_response(200, {"versions": [_version_doc(app, req.params["region"])]})


def _version(app: SimulatorApp, req: Request) -> Response:
    return json_response(200, {"version": _version_doc(app, req.params["region"])})


def routes() -> list[Route]:
    def r(method: str, path: str, handler, auth: bool = True) -> Route:
        return Route(method, PREFIX + path, "compute", handler, auth)

    return [
        Route("GET", "/compute/{region}", "compute", _versions, auth=False),
        Route("GET", "/compute/{region}/v2", "compute", _version, auth=False),
        r("GET", "", _version, auth=False),
        r("GET", "/servers", _list_servers),
        r("POST", "/servers", _create_server),
        r("GET", "/servers/detail", _list_servers_detail),
        r("GET", "/servers/{server_id}", _get_server),
        r("DELETE", "/servers/{server_id}", _delete_server),
        r("POST", "/servers/{server_id}/action", _action),
        r("GET", "/servers/{server_id}/os-volume_attachments", _volume_attachments),
        r("GET", "/servers/{server_id}/metadata", _get_metadata),
        r("POST", "/servers/{server_id}/metadata", _update_metadata),
        r("PUT", "/servers/{server_id}/metadata", _replace_metadata),
        r("GET", "/servers/{server_id}/metadata/{key}", _get_metadata_item),
        r("PUT", "/servers/{server_id}/metadata/{key}", _set_metadata_item),
        r("DELETE", "/servers/{server_id}/metadata/{key}", _delete_metadata_item),
        r("GET", "/flavors", _flavors),
        r("GET", "/flavors/detail", _flavors_detail),
        r("GET", "/flavors/{flavor_id}", _get_flavor),
    ]
