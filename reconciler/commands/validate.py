"""`reconciler validate ROOT [ROOT ...]`: check each root's files offline, and that the roots of one run
can run together (reconciler.roots). Each root's problems are reported as file:line:column, under its name
when there are several; the run fails when any root is invalid."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reconciler import exit_codes
from reconciler.commands import output
from reconciler.desired import DesiredState
from reconciler.render import escape


def run(args: argparse.Namespace) -> int:
    from reconciler.roots import load_roots

    if len(args.roots) == 1:
        state, _ = output.start(args, "validate", args.roots[0])
        print(_counts(state))
        return exit_codes.OK
    roots = load_roots(
        args.roots, Path(args.sim_state) if args.sim_state else None, allow_http_loopback=args.allow_http_loopback
    )
    from reconciler.render.roots import section_heading

    print(f"reconciler validate · {len(roots)} roots")
    for index, root in enumerate(roots, start=1):
        print(section_heading(index, len(roots), root.given), flush=True)
        if root.error is not None:
            output.print_error(root.error)
            continue
        described = root.describe(os.environ)
        print(f"reconciler validate · {escape.text(described or '')}")
        print(_counts(root.desired), flush=True)
    invalid = [root.given for root in roots if root.error is not None]
    if invalid:
        names = ", ".join(escape.text(name) for name in invalid)
        print(f"error: {output.count(len(invalid), 'root')} of {len(roots)} invalid: {names}", file=sys.stderr)
        return exit_codes.ERROR
    print(f"OK: all {len(roots)} roots are valid.")
    return exit_codes.OK


def _counts(state: DesiredState) -> str:
    removed = f", {output.count(len(state.removed), 'removed key')}" if state.removed else ""
    images = output.count(len(state.images), "image")
    if state.families:
        versions = sum(1 for spec in state.images if spec.family is not None)
        families = f"{len(state.families)} famil{'y' if len(state.families) == 1 else 'ies'}"
        images += f" ({versions} of them kept versions of {families})"
    rules = ""
    if state.rules:
        accepts = sum(1 for rule in state.rules if rule.wants == "accepted")
        rules = f", {output.count(accepts, 'accept rule')}, {output.count(len(state.rules) - accepts, 'reject rule')}"
    return f"OK: {images}{removed}{rules} in {output.count(len(state.files), 'file')}"
