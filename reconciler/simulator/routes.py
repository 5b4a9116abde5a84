"""The routing table: every route the simulator serves, by service. All under `http://127.0.0.1:PORT`:

    /v2.0                                  identity (Keystone v2): tokens, version document
    /image/{region}                        Glance's endpoint (bare, as on NHN: no /v2 in the catalog URL)
    /compute/{region}/v2/{tenant_id}       Nova
    /volume/{region}/v2/{tenant_id}        Cinder
    /_simulator/...                        the simulator's own: stats, clock, request log (admin.py)

A route's name ("METHOD template") is what `/_simulator/stats` counts and what a seed's faults name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.simulator import admin, compute, identity, images, volumes
from reconciler.simulator.http import Route, Router

if TYPE_CHECKING:
    from reconciler.simulator.behaviour import Behaviour


def all_routes() -> list[Route]:
    return [*identity.routes(), *images.routes(), *compute.routes(), *volumes.routes(), *admin.routes()]


def router() -> Router:
    return Router(all_routes())


def check_fault_routes(behaviour: Behaviour) -> None:
    """A fault on a route the simulator does not serve would silently never fire: refuse it."""
    known = {route.name for route in all_routes()}
    unknown = sorted({fault.route for fault in behaviour.faults} - known)
    if unknown:
        raise ValueError(
            f"no such route: {', '.join(unknown)} (routes are named like 'GET /image/{{region}}/v2/images'; "
            "GET /_simulator/stats lists the ones called)"
        )
