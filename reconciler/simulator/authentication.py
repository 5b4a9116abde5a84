"""The authentication step in front of every service but identity, as keystonemiddleware does it on NHN:
the request's `X-Auth-Token` must name a live, project-scoped token, or the answer is a 401 in identity's
error body, before the service itself runs. The `revoke_tokens_every` knob expires every token now and then
here, so a client's re-authentication is exercised mid-run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.simulator.http import HttpError, Request
from reconciler.simulator.tokens import Token, TokenStore

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp

# Counted like a route, so that the knob's "every N calls" spans all the authenticated routes.
AUTHENTICATED_CALLS = "(authenticated calls)"


def authenticate(app: SimulatorApp, route_name: str, req: Request) -> Token:
    """The token of this call to `route_name`, or an HttpError (401) with identity's body."""
    _revoke_by_the_knob(app, route_name)
    try:
        return _valid_token(app, req)
    except HttpError as err:
        err.service = "identity"  # keystonemiddleware rejects before the service runs: its body
        raise


def _revoke_by_the_knob(app: SimulatorApp, route_name: str) -> None:
    every = app.behaviour.revoke_tokens_every
    if every and app.count(AUTHENTICATED_CALLS) % every == 0:
        app.tokens = TokenStore()  # every token issued so far expires now
        app.record_fault(route_name, "token_revoked")


def _valid_token(app: SimulatorApp, req: Request) -> Token:
    token_id = req.headers.get("X-Auth-Token")
    token = app.tokens.find(token_id, app.now()) if token_id else None
    if token is None or token.project is None:
        raise HttpError(
            401,
            "The request you have made requires authentication.",
            headers={"WWW-Authenticate": f"Keystone uri='{app.base_url}/v2.0'"},
        )
    return token
