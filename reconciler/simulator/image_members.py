"""Image members (Glance v2 `/v2/images/{id}/members`): how an image is shared with other projects.

NHN's rules: members only on `shared` images, added and removed by the owner;
a duplicate is 409; only the member project's own token may accept or reject (never the owner's, even
as a member of its own image). Messages are upstream
Glance's (glance/api/v2/image_members.py), which hides the inner reason of most refusals. Member changes
leave the image's own `updated_at` alone (seen on Glance 33); a member's `updated_at` moves only when its
status changes. Glance 33 accepts any member id, even one no project has; the `unknown_member` knob can
refuse those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.simulator.http import HttpError, Request, Response, Route, empty_response, json_response
from reconciler.simulator.image_records import (
    MEMBER_STATUSES,
    PREFIX,
    can_see,
    region_of,
)
from reconciler.simulator.state import Transaction

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp


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
    region = region_of(txn, req)
    image_id = req.params["image_id"]
    record = txn.doc["images"].get(image_id)
    if record is None or record["region"] != region or not can_see(record, req.token.project):
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
        if app.behaviour.unknown_member == "refuse" and member_id not in txn.doc["projects"]:
            # Knob: a cloud that checks member ids against its identity service (Glance 33 does not).
            raise HttpError(404, f"Project {member_id} not found: a member must be an existing project.")
        now = txn.utc_now()
        member = {"status": "pending", "created_at": now, "updated_at": now}
        record["members"][member_id] = member
        txn.changed()
        return json_response(200, _member_view(image_id, member_id, member))


def _list_members(app: SimulatorApp, req: Request) -> Response:
    with app.store.transaction() as txn:
        record = _member_image(txn, req)
        fields = record["fields"]
        if fields["visibility"] != "shared":
            raise HttpError(
                403, f"Not allowed to list members for image {fields['id']}: Only shared images have members."
            )
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
        project = req.token.project
        # As Glance 33 answers (checked against a real one): a member project sees only its own membership,
        # so another member's is 404 to it; the owner sees every member but may not set a status, even its
        # own as a member of its image (403 [doc], Glance's policy message, before a bad status's 400).
        if member is None or project not in (fields["owner"], member_id):
            raise HttpError(404, f"{member_id} not found in the member list of the image {fields['id']}.")
        if project == fields["owner"]:
            raise HttpError(403, "You are not authorized to complete modify_member action.")
        if status not in MEMBER_STATUSES:
            raise HttpError(400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".')
        if member["status"] != status:
            member["status"] = status
            member["updated_at"] = txn.utc_now()
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


def routes() -> list[Route]:
    return [
        Route("GET", PREFIX + "/v2/images/{image_id}/members", "image", _list_members),
        Route("POST", PREFIX + "/v2/images/{image_id}/members", "image", _add_member),
        Route("GET", PREFIX + "/v2/images/{image_id}/members/{member_id}", "image", _get_member),
        Route("PUT", PREFIX + "/v2/images/{image_id}/members/{member_id}", "image", _update_member),
        Route("DELETE", PREFIX + "/v2/images/{image_id}/members/{member_id}", "image", _remove_member),
    ]
