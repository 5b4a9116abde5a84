"""The command line: parses arguments, wires each command's steps together, prints, and maps errors to exit
codes in one place. It holds no rule of its own: what a scope may name is reconciler.scope, what a saved
plan must satisfy (whole, same tool, target and set, not partly applied, matched by the fresh plan) and
its journal are reconciler.saved_plan (the matching itself reconciler.plan_match), apply's progress lines
reconciler.render.progress. tests/unit/test_cli_rules.py keeps it that way.

Exit codes: 0 success, 1 error (a usage error too: argparse's own 2 is turned into 1), 2 changes present
(plan --detailed-exitcode), 3 the plan has refusals. Data goes to stdout, diagnostics to stderr; every
string in them that the tool did not write itself (a name, a path, a server's message) is escaped first
(reconciler.render.escape).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.errors import ReconcilerError, UsageError
from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, escape
from reconciler.sources.access import DEFAULT_MAX_UPLOAD_BYTES

# Start-up time (issue 10): `reconciler --help` and `reconciler COMMAND --help` build only the parser, so
# this module imports nothing heavy at the top. Each command imports what it needs when it runs: the cloud
# client pulls in requests, validation jsonschema and yaml, the simulator all three. tests/test_startup.py
# fails if a heavy module comes back to the top level.

# reconciler.simulator.behaviour.PROTECTED_PATCH_MODES, written out so that the parser does not import the
# simulator; tests/test_startup.py checks that the two agree.
SIMULATOR_PROTECTED_PATCH_MODES = ("permissive", "strict")

# reconciler.lock_claims' DEFAULT_LEASE_S and LEASE_RANGE_S, written out so that `--help` imports nothing
# of the cloud client; tests/test_startup.py checks that they agree.
LOCK_LEASE_DEFAULT_S = 120
LOCK_LEASE_RANGE_S = (30, 900)

# Bounds of numeric flags beyond argparse's types: a float flag takes "nan" and "inf", an int flag any size.
MAX_WAIT_S = 7 * 24 * 3600  # --timeout, --lock-timeout: a week
MAX_DELETIONS = 1_000_000  # --max-deletions: more images than a project holds
PARALLELISM_RANGE = (1, 64)  # --parallelism, --region-parallelism: settings.parallelism's (root.schema.json)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors that exit 1, like every other error: argparse's own 2 is also what
    `plan --detailed-exitcode` means by "changes present", so a typo in CI would read as a plan with changes.
    Subparsers are made of the same class (add_subparsers passes it on)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        # The message quotes what was typed (an unknown option, a bad value): shown, never obeyed by the terminal.
        self.exit(EXIT_ERROR, f"{self.prog}: error: {escape.text(message)}\n")


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


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", default=".", type=Path, metavar="ROOT", help="the root folder (default: .)")


def _add_roots(parser: argparse.ArgumentParser) -> None:
    """validate, plan and apply take several roots, each its own target, set and lock (reconciler.roots)."""
    parser.add_argument(
        "roots",
        nargs="*",
        default=[Path(".")],
        type=Path,
        metavar="ROOT",
        help="the root folders, handled in this order (default: .)",
    )


def _add_scope(parser: argparse.ArgumentParser) -> None:
    """What plan and apply share: the deletion limit and the keys they cover."""
    parser.add_argument("--max-deletions", type=int, metavar="N", help="override settings.max_deletions")
    parser.add_argument("--target", action="append", default=[], metavar="KEY", help="only this image key (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="KEY", help="leave this key out (repeatable)")


def _add_sources(parser: argparse.ArgumentParser, *, validate_only: bool = False) -> None:
    """Where an upload (source.file, source.url) may read from: the operator's word, never a manifest's
    (reconciler/sources/access.py)."""
    group = parser.add_argument_group("uploads from a file or a URL")
    group.add_argument(
        "--allow-http-loopback",
        action="store_true",
        help="admit a plain-http source.url to a loopback address (tests; never a redirect)",
    )
    if validate_only:
        return
    group.add_argument(
        "--artifacts",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="look source.file up in DIR too, after the root (repeatable, in order)",
    )
    group.add_argument(
        "--allow-url-host",
        action="append",
        default=[],
        metavar="HOST",
        help="connect to HOST whatever addresses it resolves to (repeatable)",
    )
    group.add_argument(
        "--url-header-env",
        metavar="NAME",
        help="send the 'Header: value' line held in $NAME to the source URL's own origin only",
    )
    group.add_argument(
        "--url-proxy", metavar="URL", help="the proxy for source URLs (the environment's proxies are not used)"
    )
    group.add_argument(
        "--fetch-sources", action="store_true", help="let the plan contact source URLs (one HEAD each, for the size)"
    )
    group.add_argument(
        "--max-upload-bytes",
        type=int,
        default=DEFAULT_MAX_UPLOAD_BYTES,
        metavar="N",
        help=f"the largest upload (default {DEFAULT_MAX_UPLOAD_BYTES}, 256 GiB)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _add_roots(validate)
    _add_sources(validate, validate_only=True)
    validate.set_defaults(handler=run_validate, format="text")
    plan = subparsers.add_parser(
        "plan",
        parents=subcommand_options,
        help="compare the manifests with the cloud and show what apply would do",
        description="Read the live cloud, compare it with ROOT's manifests and print an ordered, explained plan. "
        "Nothing is changed.",
    )
    _add_roots(plan)
    plan.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text for a terminal, json for machines, markdown for a pull-request comment",
    )
    plan.add_argument(
        "--max-chars",
        type=int,
        default=DEFAULT_MAX_CHARS,
        metavar="N",
        help=f"markdown: the comment uses at most 95%% of N characters, 5%% is left for the CI wrapper "
        f"(default {DEFAULT_MAX_CHARS}; GitHub's limit is 65536)",
    )
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when the plan has changes, 0 when it has none"
    )
    _add_scope(plan)
    _add_sources(plan)
    plan.add_argument("--out", type=Path, metavar="FILE", help="also save the plan, to apply exactly it later")
    plan.set_defaults(handler=run_plan)

    apply = subparsers.add_parser(
        "apply",
        parents=subcommand_options,
        help="plan, then carry the plan out",
        description="Make a plan as `plan` does, show it, ask for confirmation, and carry it out. "
        "A plan with refusals is never applied; a protected image is never deleted.",
    )
    _add_roots(apply)
    apply.add_argument("--auto-approve", action="store_true", help="apply without asking (needed without a terminal)")
    apply.add_argument(
        "--parallelism", type=int, metavar="N", help="concurrent actions (default: settings.parallelism)"
    )
    apply.add_argument(
        "--region-parallelism",
        type=int,
        metavar="N",
        help="at most N of them in one region (default: settings.region_parallelism, else no cap of its own)",
    )
    apply.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="longest wait for one image or server (default 3600)",
    )
    _add_scope(apply)
    _add_sources(apply)
    apply.add_argument("--format", choices=("text", "json"), default="text", help="text, or a JSON report on stdout")
    apply.add_argument(
        "--lock-lease",
        type=float,
        default=LOCK_LEASE_DEFAULT_S,
        metavar="SECONDS",
        help=f"the apply lock's lease, renewed while the apply runs ({LOCK_LEASE_RANGE_S[0]}-{LOCK_LEASE_RANGE_S[1]}, "
        f"default {LOCK_LEASE_DEFAULT_S}): how long a killed apply blocks the next one",
    )
    apply.add_argument(
        "--lock-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another apply of the set to finish (default 0: give up at once, naming it)",
    )
    apply.add_argument("--plan", type=Path, metavar="FILE", help="apply exactly this saved plan (plan --out)")
    apply.add_argument("--resume", action="store_true", help="with --plan: finish a partial apply of that plan")
    apply.set_defaults(handler=run_apply)
    importer_parser = subparsers.add_parser(
        "import",
        parents=subcommand_options,
        help="write manifests for the project's existing unmanaged images",
        description="Write a manifest for the unmanaged images of one region, as they are, so that the "
        "first plan only adopts them. Never overwrites a file.",
    )
    _add_root(importer_parser)
    _add_sources(importer_parser, validate_only=True)  # the root is validated as `validate` would
    importer_parser.add_argument("--region", required=True, help="the region whose images to import")
    importer_parser.add_argument("--name-prefix", metavar="P", help="only images whose names start with P")
    importer_parser.set_defaults(handler=run_import, format="text")
    unlock = subparsers.add_parser(
        "unlock",
        parents=subcommand_options,
        help="delete a stuck apply-lock claim of this root's set",
        description="Show an apply-lock claim of ROOT's set (its holder and lease) and delete it on confirmation. "
        "Only for a claim whose apply is known to be gone: a killed apply's claim also frees itself when its "
        "lease ends. Refuses an id that is not a claim (or v1 lock) of this root's project and set.",
    )
    _add_root(unlock)
    _add_sources(unlock, validate_only=True)  # the root is validated as `validate` would
    unlock.add_argument("--claim", required=True, metavar="ID", help="the claim's image id (apply's error names it)")
    unlock.add_argument("--auto-approve", action="store_true", help="delete without asking (needed without a terminal)")
    unlock.set_defaults(handler=run_unlock, format="text")
    doctor = subparsers.add_parser(
        "doctor",
        parents=subcommand_options,
        help="check that the target behaves as the tool relies on",
        description="Check, with short-lived scratch images, the behaviours of the target's image service that "
        "the tool relies on and that NHN's documents do not settle; say what to set where it differs. "
        "Exits 1 only when a check the tool cannot work safely without fails.",
    )
    _add_root(doctor)
    _add_sources(doctor, validate_only=True)  # the root is validated as `validate` would
    doctor.add_argument(
        "--region", action="append", default=[], metavar="R", help="check only this region (repeatable)"
    )
    doctor.add_argument("--format", choices=("text", "json"), default="text", help="text, or a JSON report on stdout")
    doctor.set_defaults(handler=run_doctor)
    _add_simulator(subparsers, subcommand_options)
    return parser


def run_unlock(args: argparse.Namespace) -> int:
    from reconciler.connect import open_cloud
    from reconciler.lock import read_claim, server_now
    from reconciler.lock_claims import legacy_lock_id

    desired, cloud = start_command(args, "unlock")
    set_name = desired.root.set
    with open_cloud(desired.root, cloud, os.environ) as (client, plan_target):
        legacy_region = plan_target.regions[0] if plan_target.regions else None
        claim = read_claim(client, set_name, args.claim, legacy_region=legacy_region)
        if claim is None:
            raise UsageError(
                f"{args.claim} is not an apply-lock claim of set {set_name} in project {client.project_id}",
                hint="the id comes from apply's error (claim ID); nothing was deleted",
            )
        now = server_now(client, claim.region, set_name)
        state = "live" if claim.live(now) else "expired"
        # The holder is whatever the claim's properties say: anyone in the project can write them.
        print(f"{escape.text(claim.describe())}: {state} by the server's clock, in {escape.text(claim.region)}")
        if not args.auto_approve:
            if not sys.stdin.isatty():
                raise UsageError("no terminal to confirm on", hint="run again with --auto-approve")
            sys.stdout.write(
                "Delete it? If its apply is still running, two applies may then run at once. Only 'yes' is accepted: "
            )
            sys.stdout.flush()
            if sys.stdin.readline().strip() != "yes":
                print("Nothing was deleted.")
                return EXIT_ERROR
        gone = client.delete_image(claim.region, claim.id)
    kind = "legacy lock" if claim.id == legacy_lock_id(client.project_id, set_name) else "claim"
    claim_id = escape.text(claim.id)
    print(f"Deleted the {kind} {claim_id}." if gone else f"The {kind} {claim_id} was already gone.")
    return EXIT_OK


def run_doctor(args: argparse.Namespace) -> int:
    from reconciler import doctor

    return doctor.run(args)


def _add_simulator(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """`reconciler simulator init|serve`. Built here, not in reconciler.simulator.cli, because importing that
    module loads the simulator's server, the seed schema and YAML, which `--help` must not."""
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
    init.set_defaults(handler=run_simulator_init)

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
        "--protected-patch",
        choices=SIMULATOR_PROTECTED_PATCH_MODES,
        help="what a PATCH of a protected image may do",
    )
    knobs.add_argument(
        "--fault",
        action="append",
        metavar="SPEC",
        help="inject a fault, as YAML, e.g. '{route: \"GET /image/{region}/v2/images\", on_call: 1, status: 503}'"
        " (repeatable)",
    )
    serve.set_defaults(handler=run_simulator_serve)


def run_simulator_init(args: argparse.Namespace) -> int:
    from reconciler.simulator import cli as simulator_cli

    return simulator_cli.run_init(args)


def run_simulator_serve(args: argparse.Namespace) -> int:
    from reconciler.simulator import cli as simulator_cli

    return simulator_cli.run_serve(args)


def run_import(args: argparse.Namespace) -> int:
    from reconciler import importer
    from reconciler.connect import open_cloud

    desired, cloud = start_command(args, "import")
    with open_cloud(desired.root, cloud, os.environ) as (client, _):
        document, notes = importer.build_manifest(client, desired, args.region, args.name_prefix)
    path = desired.root.path / f"imported-{args.region.lower()}.yaml"
    region = escape.text(args.region)
    for note in notes:
        print(f"  {escape.text(note)}", file=sys.stderr)  # notes quote the cloud's image names
    if not document["images"]:
        print(f"No unmanaged image to import in {region}; nothing was written.")
        return EXIT_OK
    importer.write_manifest(path, document, args.region)
    count = len(document["images"])
    print(f"Wrote {escape.text(str(path.relative_to(desired.root.path)))}: {count} image{'s' if count != 1 else ''}.")
    print("Review it, then: reconciler plan (it should only adopt).")
    return EXIT_OK


def start_command(args: argparse.Namespace, command: str) -> tuple[Any, Any]:
    """Validate the root and print the target line first: a run never guesses its target."""
    from reconciler.commands import output

    return output.start(args, command, args.root)


def _check_max_deletions(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_DELETIONS:
        raise UsageError(
            f"--max-deletions must be between 0 and {MAX_DELETIONS:,}",
            hint="it is the most images one plan may delete",
        )


def _check_wait(flag: str, value: float, *, zero: bool) -> None:
    """A number of seconds to wait: finite (argparse's float takes nan and inf), at most a week."""
    low = "0 or more" if zero else "more than 0"
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero) or value > MAX_WAIT_S:
        raise UsageError(f"{flag} must be a number of seconds, {low} and at most {MAX_WAIT_S:,} (a week)")


def _check_plan_flags(args: argparse.Namespace) -> None:
    """plan's bounds, before anything is read."""
    if args.max_chars < MIN_MAX_CHARS:
        raise UsageError(
            f"--max-chars must be at least {MIN_MAX_CHARS:,}: the Markdown rendering needs that much for its "
            "heading, verdict and summary",
        )


def _check_apply_flags(args: argparse.Namespace) -> None:
    """apply's bounds, before anything is read."""
    low, high = PARALLELISM_RANGE
    for flag, value in (("--parallelism", args.parallelism), ("--region-parallelism", args.region_parallelism)):
        if value is not None and not low <= value <= high:
            raise UsageError(f"{flag} must be between {low} and {high}")
    _check_wait("--timeout", args.timeout, zero=False)
    if args.resume and args.plan is None:
        raise UsageError("--resume needs --plan FILE: it finishes a partial apply of a saved plan")
    low, high = LOCK_LEASE_RANGE_S
    if not low <= args.lock_lease <= high:  # False for nan too
        raise UsageError(f"--lock-lease must be between {low} and {high} seconds")
    _check_wait("--lock-timeout", args.lock_timeout, zero=True)


def run_plan(args: argparse.Namespace) -> int:
    from reconciler.commands import plan

    _check_max_deletions(args.max_deletions)
    _check_plan_flags(args)
    return plan.run(args)


def run_apply(args: argparse.Namespace) -> int:
    from reconciler import saved_plan
    from reconciler.commands import apply

    _check_max_deletions(args.max_deletions)
    _check_apply_flags(args)
    if args.plan is not None:
        # Saved plans cover the whole root (saved_plan.refuse_narrowing).
        saved_plan.refuse_narrowing(
            "apply --plan", targets=args.target, excludes=args.exclude, max_deletions=args.max_deletions
        )
    return apply.run(args)


def run_validate(args: argparse.Namespace) -> int:
    from reconciler.commands import validate

    return validate.run(args)


def _configure_logging(verbosity: int) -> None:
    import logging  # here, not at the top: `--help` exits before it is needed

    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG

    class EscapingFormatter(logging.Formatter):
        """Log lines quote servers' messages, property names and claim holders: shown, never obeyed. The
        line is escaped; a traceback after it keeps its lines."""

        def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
            return escape.text(super().formatMessage(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # urllib3 warns on each retry of a dropped connection ("Retrying (Retry(total=...)) after connection
    # broken by ..."): the transport retries by design, and what still fails after the retries the tool
    # reports itself. Those lines are for -v; without it they read like a failure of a run that succeeded.
    logging.getLogger("urllib3").setLevel(logging.NOTSET if verbosity > 0 else logging.ERROR)


def entry() -> None:
    """The console script: `main`, then exit. After a cancelled apply, worker threads may still be inside
    a call (they had their grace period): exit without waiting for them."""
    from reconciler.commands.output import CANCELLED

    code = main()
    if CANCELLED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


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
        from reconciler.commands.output import print_error

        print_error(err)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
