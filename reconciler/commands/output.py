"""What plan and apply print alike: the target line first, the plan as text, progress lines, an error.

Data goes to stdout, diagnostics to stderr; every string the tool did not write itself (a name, a path, a
server's message) is escaped first (reconciler.render.escape).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.render import escape

# Set when an apply was cancelled by a signal: `cli.entry` then exits without waiting for worker threads
# whose calls were still in flight (they were given their grace period already).
CANCELLED: list[int] = []


def human_stream(args: argparse.Namespace) -> Any:
    """Where the lines for a person go: stdout, unless stdout carries a document (JSON, Markdown)."""
    return sys.stdout if args.format == "text" else sys.stderr


def start(args: argparse.Namespace, command: str, root: Path) -> tuple[Any, Any]:
    """Validate one root and print its target line first: a run never guesses its target."""
    from reconciler import target
    from reconciler.validate import load_desired_state

    desired = load_desired_state(root, allow_http_loopback=getattr(args, "allow_http_loopback", False))
    sim_state = Path(args.sim_state) if args.sim_state else None
    cloud = target.effective_cloud(desired.root, sim_state)
    heading(args, command, target.describe(desired.root, cloud, os.environ))
    return desired, cloud


def heading(args: argparse.Namespace, command: str, description: str) -> None:
    """`reconciler COMMAND · <target>`. JSON and Markdown carry the target inside the document: the
    heading then goes to stderr."""
    print(f"reconciler {command} · {escape.text(description)}", file=human_stream(args), flush=True)


def root_headings(args: argparse.Namespace, command: str, roots: list[Any]) -> None:
    """A run of several roots names every root's target before any cloud is read."""
    stream = human_stream(args)
    print(f"reconciler {command} · {len(roots)} roots", file=stream)
    for index, root in enumerate(roots, start=1):
        described = root.describe(os.environ)
        where = escape.text(described) if described else "(its files are invalid: see its section)"
        print(f"  {index}. {escape.text(root.given)}: {where}", file=stream)
    stream.flush()


def use_colour(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")


def show_plan(plan: Any, args: argparse.Namespace, stream: Any, *, applying: bool = False) -> None:
    """The plan as text, without its target line (printed already, before the cloud was read)."""
    from reconciler.render.text import colorize, render_text

    text = render_text(plan.to_json(), applying=applying).split("\n", 1)[1]
    stream.write(colorize(text) if use_colour(args) and stream is sys.stdout else text)
    stream.flush()


def progress_printer(stream: Any) -> Any:
    """Apply's progress lines on `stream` (reconciler.render.progress)."""
    from reconciler.render.progress import progress_printer as printer

    return printer(stream)


def print_error(err: ReconcilerError) -> None:
    """An error's details, message and hint, each line escaped: they quote names, paths and servers' text,
    any of which may hold an ESC sequence or a line break that would rewrite the terminal or fake a line."""
    for line in err.details:
        print(escape.text(line), file=sys.stderr)
    print(f"error: {escape.text(err.message)}", file=sys.stderr)
    if err.hint:
        print(f"hint: {escape.text(err.hint)}", file=sys.stderr)


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
