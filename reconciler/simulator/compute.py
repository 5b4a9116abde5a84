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
VM_STATES = {"ACTIVE": "active", "SHUTOFF": "stopped", "SUSPENDED": "suspended", "PAUSED": "paused", "ERROR": "error"}
POWER_STATES = {"ACTIVE": 1, "SHUTOFF": 4, "SUSPENDED": 7, "PAUSED": 3, "ERROR": 0}


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


def _view(app: SimulatorApp, server: dict[str, Any]) -> dict[str, Any]:
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
        "os-extended-volumes:volumes_attached": [] if local else [{"id": server["root_volume_id"]}],
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
            _view(app, s) if detail else {"id": s["id"], "name": s["name"], "links": _links(app, s, "servers", s["id"])}
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
        view = _view(app, server)
        _advance(txn, app, server)
        return json_response(200, {"server": view})


def _volume_attachments(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        server = _server(txn, req)
        attachments = []
        if server["root"] == "volume":
            volume_id = server["root_volume_id"]
            attachments.append({"id": volume_id, "volumeId": volume_id, "serverId": server["id"], "device": "/dev/vda"})
    return json_response(200, {"volumeAttachments": attachments})


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
        r("GET", "/servers/detail", _list_servers_detail),
        r("GET", "/servers/{server_id}", _get_server),
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
