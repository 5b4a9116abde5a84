"""A local stand-in for NHN Cloud's identity, Image, Compute and Block Storage APIs.

`SimulatorServer` serves a `StateStore` over real HTTP on loopback; `running_simulator` starts one
in-process for the CLI's `--sim-state` flag and for tests.
"""

from reconciler.simulator.embedded import running_simulator
from reconciler.simulator.request_log import in_flight_at
from reconciler.simulator.server import SimulatorServer

__all__ = ["SimulatorServer", "in_flight_at", "running_simulator"]
