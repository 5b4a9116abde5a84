"""`reconciler plan ROOT [ROOT ...]`: read each root's cloud, plan, print; change nothing.

One root prints the plan document as it always has (text, JSON, Markdown). Several roots are planned in
the order given, each against its own target; a root that cannot be planned (invalid files, a cloud error)
keeps its error and the others are still planned and shown: one verdict on top, one section per root
(reconciler.render.roots), or one `reconciler-plans` JSON document (reconciler.roots_document). The exit
code combines the roots' (reconciler.exit_codes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from reconciler import exit_codes
from reconciler.commands import output
from reconciler.errors import ReconcilerError, UsageError
from reconciler.render import escape


def run(args: argparse.Namespace) -> int:
    from reconciler import saved_plan

    args.access = source_access(args)

    if args.out is not None:
        saved_plan.refuse_narrowing(
            "plan --out", targets=args.target, excludes=args.exclude, max_deletions=args.max_deletions
        )
        saved_plan.check_destination(args.out)  # before the cloud is read: a typo costs no round trips
    if len(args.roots) == 1:
        return _plan_one(args, args.roots[0])
    return _plan_several(args)


def plan_options(args: argparse.Namespace, desired: Any, snapshot: Any) -> dict[str, Any]:
    """--max-deletions, --target and --exclude; a key that names nothing is an error, not a no-op. apply's
    --timeout too: a temporary-name image creating for longer is a leftover (plan: the planner's default)."""
    from reconciler import scope

    # A family's name stands for its keys (reconciler.scope): the planner sees keys only.
    targets, excludes = scope.named_scope(args.target, args.exclude, desired, snapshot.all_images())
    return {
        "max_deletions": args.max_deletions,
        "targets": targets,
        "excludes": excludes,
        "timeout": getattr(args, "timeout", None),
    }


def source_access(args: argparse.Namespace) -> Any:
    """The operator's options for uploads (reconciler/sources/access.py), checked before anything is read:
    a mistake in them is a usage error, and the header's value is never shown."""
    import re
    from urllib.parse import urlsplit

    from reconciler.sources.access import SourceAccess

    if args.max_upload_bytes < 1:
        raise UsageError(f"--max-upload-bytes must be at least 1, not {args.max_upload_bytes}")
    name = args.url_header_env
    if name is not None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"--url-header-env takes the name of an environment variable, not {escape.text(name)!r}")
        value = os.environ.get(name)
        if value is None:
            raise UsageError(f"--url-header-env: the environment variable {name} is not set")
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*[\x20-\x7e\t]*", value):
            raise UsageError(
                f"--url-header-env: {name} must hold one 'Header: value' line of visible ASCII characters "
                "(its value is not shown)",
                hint=f"for example: export {name}='Authorization: Bearer ...'",
            )
    proxy = args.url_proxy
    if proxy is not None:
        try:
            parts = urlsplit(proxy)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port is not None
        except ValueError:
            valid = False
        if not valid:
            raise UsageError(
                "--url-proxy takes an http or https URL with a host and a port, e.g. http://proxy.internal:3128"
            )
    return SourceAccess(
        artifacts=tuple(args.artifacts),
        allowed_hosts=frozenset(host.strip("[]").lower() for host in args.allow_url_host),
        allow_http_loopback=args.allow_http_loopback,
        header_env=name,
        proxy=proxy,
        fetch_sources=args.fetch_sources,
        max_upload_bytes=args.max_upload_bytes,
    )


def plan_code(plan: Any, args: argparse.Namespace) -> int:
    """A plan's own exit code: 3 with refusals, 2 with changes under --detailed-exitcode, else 0."""
    if plan.refusals:
        return exit_codes.REFUSED
    if args.detailed_exitcode and plan.actions:
        return exit_codes.CHANGES
    return exit_codes.OK


def _plan_one(args: argparse.Namespace, root: Path) -> int:
    from reconciler import saved_plan
    from reconciler.connect import open_cloud
    from reconciler.planning import plan_live
    from reconciler.render.json import render_json
    from reconciler.render.markdown import render_markdown

    desired, cloud = output.start(args, "plan", root)
    with open_cloud(desired.root, cloud, os.environ) as (client, plan_target):
        _, plan = plan_live(
            client, desired, plan_target, lambda snapshot: plan_options(args, desired, snapshot), access=args.access
        )
    if args.out is not None:
        saved_plan.save(args.out, plan, cloud)
        _say_saved(args)
    if args.format == "json":
        sys.stdout.write(render_json(plan.to_json()))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(plan.to_json(), max_chars=args.max_chars))
    else:
        output.show_plan(plan, args, sys.stdout)
    return plan_code(plan, args)


def _say_saved(args: argparse.Namespace) -> None:
    from reconciler import saved_plan

    command = saved_plan.apply_command(args.out, roots=[str(r) for r in args.roots] if len(args.roots) > 1 else None)
    print(
        f"Saved the plan to {escape.text(str(args.out))}; apply it with: {command} "
        "(it runs only if a fresh plan still matches it)",
        file=sys.stderr,
    )


def _plan_several(args: argparse.Namespace) -> int:
    from reconciler import saved_plan
    from reconciler.connect import Simulators
    from reconciler.roots import load_roots

    if args.target or args.exclude:
        raise UsageError(
            "--target and --exclude narrow the plan of one root, and this run names several",
            hint="plan the root whose keys they name on its own",
        )
    roots = load_roots(
        args.roots, Path(args.sim_state) if args.sim_state else None, allow_http_loopback=args.allow_http_loopback
    )
    output.root_headings(args, "plan", roots)
    entries: list[dict[str, Any]] = []
    codes: list[int] = []
    saved: list[tuple[str, Any, Any]] = []
    with Simulators() as simulators:
        for root in roots:
            entry, code, plan = _plan_root(args, root, simulators)
            entries.append(entry)
            codes.append(code)
            if plan is not None:
                saved.append((root.given, plan, root.cloud))
    if args.out is not None:
        if len(saved) == len(roots):
            saved_plan.save_roots(args.out, saved)
            _say_saved(args)
        else:
            print(
                f"No plan was saved to {escape.text(str(args.out))}: not every root could be planned, and a saved "
                "plan covers every root of the run.",
                file=sys.stderr,
            )
    _print_several(args, entries)
    return exit_codes.combined(codes)


def _plan_root(args: argparse.Namespace, root: Any, simulators: Any) -> tuple[dict[str, Any], int, Any]:
    """One root's entry (its plan's document, or its error), exit code, and plan (None on an error)."""
    from reconciler.connect import open_cloud
    from reconciler.planning import plan_live

    if root.error is not None:
        return error_entry(root, root.error), root.error.exit_code, None
    try:
        with open_cloud(root.desired.root, root.cloud, os.environ, simulators) as (client, plan_target):
            options = lambda snapshot: plan_options(args, root.desired, snapshot)  # noqa: E731
            _, plan = plan_live(client, root.desired, plan_target, options, access=args.access)
    except ReconcilerError as err:
        return error_entry(root, err), err.exit_code, None
    return {"root": root.given, "plan": plan.to_json()}, plan_code(plan, args), plan


def error_entry(root: Any, err: ReconcilerError) -> dict[str, Any]:
    return {
        "root": root.given,
        "target": root.describe(os.environ),
        "error": {"message": err.message, "hint": err.hint, "details": list(err.details)},
    }


def _print_several(args: argparse.Namespace, entries: list[dict[str, Any]]) -> None:
    from reconciler import roots_document
    from reconciler.render.json import render_json
    from reconciler.render.roots import render_roots_markdown, render_roots_text
    from reconciler.render.text import colorize

    if args.format == "json":
        sys.stdout.write(render_json(roots_document.document(entries)))
    elif args.format == "markdown":
        sys.stdout.write(render_roots_markdown(entries, max_chars=args.max_chars))
    else:
        text = render_roots_text(entries)
        sys.stdout.write(colorize(text) if output.use_colour(args) else text)
