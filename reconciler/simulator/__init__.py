"""A local stand-in for NHN Cloud's identity, Image, Compute and Block Storage APIs.

`SimulatorServer` serves a `StateStore` over real HTTP on loopback; `running_simulator` starts one
in-process for the CLI's `--sim-state` flag and for tests.

The names below load their module on first use: importing one piece of the package (the qcow2 builder that
`reconciler doctor` uploads to a real cloud) does not start the server, the seed schema or YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.simulator.embedded import running_simulator
    from reconciler.simulator.request_log import in_flight_at
    from reconciler.simulator.server import SimulatorServer

__all__ = ["SimulatorServer", "in_flight_at", "running_simulator"]

_MODULE_OF = {
    "SimulatorServer": "reconciler.simulator.server",
    "in_flight_at": "reconciler.simulator.request_log",
    "running_simulator": "reconciler.simulator.embedded",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
