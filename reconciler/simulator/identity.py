"""Identity v2 (Keystone's v2.0 API, which NHN Cloud serves): tokens, service catalog, version documents.

`POST /v2.0/tokens` with `passwordCredentials` and a `tenantId` returns a
project-scoped token with an expiry and a catalog whose `image` endpoints are bare hosts and whose
`compute` / `volumev2` endpoints end in `/v2/{tenantId}`. Every other service checks `X-Auth-Token`
(authentication.py); the tokens themselves live in tokens.py.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reconciler.simulator.http import HttpError, Request, Response, Route, json_response
from reconciler.simulator.tokens import Token, TokenStore

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

# Callers (tests) reset a simulator's tokens with `identity.TokenStore()`: the names stay importable here.
__all__ = ["Token", "TokenStore", "routes"]

VERSION_UPDATED = "2014-04-17T00:00:00Z"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_document(app: SimulatorApp) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "deprecated",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": f"{app.base_url}/v2.0/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}],
    }


def _get_versions(app: SimulatorApp, req: Request) -> Response:
    return json_response(300, {"versions": {"values": [_version_document(app)]}})


def _get_version(app: SimulatorApp, req: Request) -> Response:
    return json_response(200, {"version": _version_document(app)})


def _find_user(
    doc: dict[str, Any], tenant_id: str | None, tenant_name: str | None, username: str, password: str
) -> tuple[str, dict[str, Any]] | None:
    for project_id, project in doc["projects"].items():
        if tenant_id and project_id != tenant_id:
            continue
        if tenant_name and project["name"] != tenant_name:
            continue
        for user in project["users"]:
            # Constant-time compare: the simulator is a stand-in, but it should not teach bad habits.
            if user["username"] == username and hmac.compare_digest(user["api_password"], password):
                return project_id, user
    return None


def _post_tokens(app: SimulatorApp, req: Request) -> Response:
    body = req.json_object()
    auth = body.get("auth")
    credentials = auth.get("passwordCredentials") if isinstance(auth, dict) else None
    if not isinstance(credentials, dict):
        raise HttpError(
            400,
            "Expecting to find passwordCredentials in auth. The server could not comply with the request "
            "since it is either malformed or otherwise incorrect.",
        )
    username, password = credentials.get("username"), credentials.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise HttpError(400, "Expecting to find username and password in passwordCredentials.")
    with app.store.transaction() as txn:
        found = _find_user(txn.doc, auth.get("tenantId"), auth.get("tenantName"), username, password)
        if found is None:
            # One message for every failure: never tell which of user, password or tenant was wrong.
            raise HttpError(401, "The request you have made requires authentication.")
        project_id, user = found
        project = txn.doc["projects"][project_id]
        regions = list(txn.doc["regions"])
        issued = txn.now()
    # Keystone v2 without tenantId or tenantName issues an unscoped token: no tenant, an empty catalog,
    # and no service accepts it. A client that forgets the tenant must fail here as it would on NHN.
    scoped = bool(auth.get("tenantId") or auth.get("tenantName"))
    token = app.tokens.issue(
        project_id if scoped else None, user["id"], username, app.behaviour.token_lifetime_s, issued
    )
    token_doc: dict[str, Any] = {
        "id": token.id,
        "issued_at": _iso(issued),
        "expires": _iso(token.expires_at),
        "audit_ids": [secrets.token_urlsafe(16)],
    }
    if scoped:
        token_doc["tenant"] = {"id": project_id, "name": project["name"], "enabled": True, "description": None}
    access = {
        "token": token_doc,
        "serviceCatalog": _catalog(app, project_id, regions) if scoped else [],
        "user": {
            "id": user["id"],
            "name": username,
            "username": username,
            "roles": [{"name": "member"}],
            "roles_links": [],
        },
        "metadata": {"is_admin": 0, "roles": []},
    }
    return json_response(200, {"access": access})


def _catalog(app: SimulatorApp, project_id: str, regions: list[str]) -> list[dict[str, Any]]:
    def service(kind: str, name: str, url_for) -> dict[str, Any]:
        endpoints = []
        for region in regions:
            url = url_for(region)
            endpoints.append({"region": region, "publicURL": url, "internalURL": url, "adminURL": url})
        return {"type": kind, "name": name, "endpoints": endpoints, "endpoints_links": []}

    return [
        service("identity", "keystone", lambda region: f"{app.base_url}/v2.0"),
        service("image", "glance", app.image_endpoint),
        service("compute", "nova", lambda region: app.compute_endpoint(region, project_id)),
        service("volumev2", "cinderv2", lambda region: app.volume_endpoint(region, project_id)),
    ]


def routes() -> list[Route]:
    return [
        Route("GET", "/", "identity", _get_versions, auth=False),
        Route("GET", "/v2.0", "identity", _get_version, auth=False),
        Route("POST", "/v2.0/tokens", "identity", _post_tokens, auth=False),
    ]
