"""`reconciler simulator init` and `reconciler simulator serve`.

Their arguments are declared in reconciler.cli, which imports this module only when one of them runs: this
module loads the server, the seed schema and YAML (start-up time, issue 10).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import yaml

from reconciler.errors import UsageError
from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.seed import init_state_file
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore


def run_init(args: argparse.Namespace) -> int:
    state = init_state_file(args.state, args.seed, force=args.force)
    print(
        f"Created simulator state {args.state}: {len(state['projects'])} projects, {len(state['servers'])} servers, "
        f"{len(state['images'])} images in {', '.join(state['regions'])}."
    )
    return 0


def _faults(specs: list[str] | None) -> list[dict[str, Any]] | None:
    """`--fault` values as mappings; `Behaviour` validates them like a seed's faults."""
    if not specs:
        return None
    faults = []
    for spec in specs:
        try:
            raw = yaml.safe_load(spec)
        except yaml.YAMLError as err:
            raise UsageError(f"--fault {spec!r} is not YAML: {err}") from None
        if not isinstance(raw, dict):
            raise UsageError(f"--fault {spec!r} must be a mapping like {{route: ..., on_call: 1, status: 503}}")
        faults.append(raw)
    return faults


def run_serve(args: argparse.Namespace) -> int:
    if not args.state.exists():
        raise UsageError(
            f"simulator state {args.state} does not exist",
            hint=f"create it first: reconciler simulator init {args.state} --seed SEED.yaml",
        )
    store = StateStore.open(args.state, in_memory=args.in_memory)
    with store.transaction() as txn:
        try:
            behaviour = Behaviour.from_dict(txn.doc.get("behaviour")).with_overrides(
                latency_ms=args.latency_ms,
                image_ready_after_polls=args.image_ready_after_polls,
                server_ready_after_polls=args.server_ready_after_polls,
                token_lifetime_s=args.token_lifetime_s,
                protected_patch=args.protected_patch,
                faults=_faults(args.fault),
            )
        except ValueError as err:
            raise UsageError(f"simulator behaviour: {err}") from None
    try:
        server = SimulatorServer(store, behaviour, port=args.port)
    except OSError as err:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {err.strerror}") from None
    except ValueError as err:  # e.g. a fault on a route the simulator does not serve
        raise UsageError(f"simulator behaviour: {err}") from None
    # The identity URL is the first line on stdout, so scripts can read it.
    print(server.identity_url, flush=True)
    mode = "in memory" if args.in_memory else f"persisting to {args.state}"
    print(f"Simulator serving {args.state} ({mode}); stop with Ctrl-C.", file=sys.stderr, flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0
