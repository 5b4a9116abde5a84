"""`reconciler simulator init` and `reconciler simulator serve`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import UsageError
from reconciler.simulator.behaviour import PROTECTED_PATCH_MODES, Behaviour
from reconciler.simulator.seed import init_state_file
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser(
        "simulator",
        parents=parents,
        help="run the built-in NHN Cloud simulator",
        description="A local stand-in for NHN Cloud's identity, Image, Compute and Block Storage APIs.",
    )
    commands = sim.add_subparsers(dest="simulator_command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", parents=parents, help="create a state file from a seed")
    init.add_argument("state", metavar="STATE", type=Path, help="the state file to create")
    init.add_argument("--seed", required=True, type=Path, metavar="SEED.yaml", help="the seed to start from")
    init.add_argument("--force", action="store_true", help="replace an existing state file")
    init.set_defaults(handler=run_init)

    serve = commands.add_parser("serve", parents=parents, help="serve a state file over HTTP on loopback")
    serve.add_argument("--state", required=True, type=Path, metavar="STATE", help="the state file to serve")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--in-memory", action="store_true", help="keep changes in memory; never write the state file")
    knobs = serve.add_argument_group("behaviour (overrides the state's behaviour: section)")
    knobs.add_argument("--latency-ms", type=int, help="delay every request by this much")
    knobs.add_argument("--image-ready-after-polls", type=int, help="polls until a new image is active")
    knobs.add_argument("--server-ready-after-polls", type=int, help="polls until a stop or start completes")
    knobs.add_argument("--token-lifetime-s", type=int, help="lifetime of issued tokens")
    knobs.add_argument(
        "--protected-patch", choices=PROTECTED_PATCH_MODES, help="what a PATCH of a protected image may do"
    )
    knobs.add_argument(
        "--fault",
        action="append",
        metavar="SPEC",
        help="inject a fault, as YAML, e.g. '{route: \"GET /image/{region}/v2/images\", on_call: 1, status: 503}'"
        " (repeatable)",
    )
    serve.set_defaults(handler=run_serve)


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
