"""The command line: parses arguments, runs one command, and maps errors to exit codes in one place.

Exit codes (design.md section 5): 0 success, 1 error, 2 changes present (plan --detailed-exitcode),
3 the plan has refusals. Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler import __version__, target
from reconciler.connect import open_cloud
from reconciler.errors import ReconcilerError, UsageError
from reconciler.planner import build_plan
from reconciler.render.json import render_json
from reconciler.render.text import colorize, render_text
from reconciler.simulator import cli as simulator_cli
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3


def _global_options(*, for_subcommand: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand.

    The same options are declared on the top-level parser and on every subparser; on subparsers their
    default is SUPPRESS so that a flag given before the subcommand is not reset by the subparser.
    """
    default = argparse.SUPPRESS if for_subcommand else None
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--sim-state",
        metavar="FILE",
        default=default,
        help="use the embedded simulator with this state file, overriding the root's cloud: section",
    )
    parent.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if for_subcommand else 0,
        help="log to stderr (repeat for more detail)",
    )
    parent.add_argument(
        "--no-color",
        action="store_true",
        default=argparse.SUPPRESS if for_subcommand else False,
        help="never colour the output (NO_COLOR is honoured too)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Manage NHN Cloud Compute images from Git: plan, review, apply.",
        parents=[_global_options(for_subcommand=False)],
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subcommand_options = [_global_options(for_subcommand=True)]
    validate = subparsers.add_parser(
        "validate",
        parents=subcommand_options,
        help="check a root's files offline",
        description="Check reconciler.yaml and every manifest under ROOT; report every problem as file:line:column.",
    )
    validate.add_argument(
        "root", nargs="?", default=".", type=Path, metavar="ROOT", help="the root folder (default: .)"
    )
    validate.set_defaults(handler=run_validate)
    plan = subparsers.add_parser(
        "plan",
        parents=subcommand_options,
        help="compare the manifests with the cloud and show what apply would do",
        description="Read the live cloud, compare it with ROOT's manifests and print an ordered, explained plan. "
        "Nothing is changed.",
    )
    plan.add_argument("root", nargs="?", default=".", type=Path, metavar="ROOT", help="the root folder (default: .)")
    plan.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for a terminal, json for machines"
    )
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when the plan has changes, 0 when it has none"
    )
    plan.add_argument("--max-deletions", type=int, metavar="N", help="override settings.max_deletions")
    plan.set_defaults(handler=run_plan)
    simulator_cli.add_parser(subparsers, subcommand_options)
    return parser


def run_plan(args: argparse.Namespace) -> int:
    if args.max_deletions is not None and args.max_deletions < 0:
        raise UsageError("--max-deletions must be 0 or more")
    desired = load_desired_state(args.root)
    sim_state = Path(args.sim_state) if args.sim_state else None
    cloud = target.effective_cloud(desired.root, sim_state)
    # The target first, before anything is read: a run never guesses it (design.md 5).
    heading = f"reconciler plan · {target.describe(desired.root, cloud, os.environ)}"
    print(heading, file=sys.stderr if args.format == "json" else sys.stdout, flush=True)
    with open_cloud(desired.root, cloud, os.environ) as (client, plan_target):
        snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, plan_target, max_deletions=args.max_deletions)
    document = plan.to_json()
    if args.format == "json":
        sys.stdout.write(render_json(document))
    else:
        text = render_text(document).split("\n", 1)[1]  # the target line was printed already
        sys.stdout.write(colorize(text) if _use_colour(args) else text)
    if plan.refusals:
        return EXIT_REFUSED
    if args.detailed_exitcode and plan.actions:
        return EXIT_CHANGES
    return EXIT_OK


def _use_colour(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")


def run_validate(args: argparse.Namespace) -> int:
    state = load_desired_state(args.root)
    sim_state = Path(args.sim_state) if args.sim_state else None
    cloud = target.effective_cloud(state.root, sim_state)
    print(f"reconciler validate · {target.describe(state.root, cloud, os.environ)}")
    print(f"OK: {_count(len(state.images), 'image')} in {_count(len(state.files), 'file')}")
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.handler(args)
    except ReconcilerError as err:
        for line in err.details:
            print(line, file=sys.stderr)
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
