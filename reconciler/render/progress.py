"""Apply's progress lines: each step as it starts and ends, and how far a copy is.

A pure rendering of apply's progress events (reconciler.apply.Progress: "start", "end", "skip",
"progress") onto a stream; the command line only chooses the stream. Keys, regions and messages are not
the tool's text (a message may quote a server or a name), so each is escaped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from reconciler.plan import ActionId
from reconciler.render import escape
from reconciler.render.text import human_bytes

# (event, action, payload), as reconciler.apply calls it.
Printer = Callable[[str, Any, Any], None]

# Without a terminal, a copy's progress is one line every this many seconds (and one when it is finished).
LINE_INTERVAL_S = 5.0


def progress_printer(
    stream: TextIO, *, interval: float = LINE_INTERVAL_S, clock: Callable[[], float] = time.monotonic
) -> Printer:
    """Each step as it starts and ends; copies report bytes, rate and ETA: a live line on a terminal,
    a line every `interval` seconds otherwise. Apply's workers call it from several threads."""
    lock = threading.Lock()
    live = stream.isatty()
    last_line: dict[str, float] = {}

    def show(event: str, action: Any, payload: Any) -> None:
        with lock:
            if event == "progress":
                if live:
                    stream.write(f"\r{copy_line(action, payload)}\033[K")  # one line, rewritten in place
                    stream.flush()
                elif _due(action.id, payload, interval, clock(), last_line):
                    print(copy_line(action, payload), file=stream, flush=True)
                return
            if live and action.id in last_line or (live and _streams(action) and event == "end"):
                stream.write("\r\033[K")  # clear the copy's live line before a line of its own
            print(step_line(event, action, payload), file=stream, flush=True)

    return show


def _due(action_id: str, payload: Any, interval: float, now: float, last: dict[str, float]) -> bool:
    """Whether a copy's progress gets a line without a terminal: when it is finished, or `interval` seconds
    after its last line (`last`, which this updates)."""
    finished = payload.total is not None and payload.copied >= payload.total
    if finished or now - last.get(action_id, 0.0) >= interval:
        last[action_id] = now
        return True
    return False


def _streams(action: Any) -> bool:
    """A copy, or a create that uploads a file or a URL's bytes: the actions that report progress."""
    return action.kind == "copy" or (action.kind == "create" and "server" not in action.details)


def copy_line(action: Any, payload: Any) -> str:
    """A copy's or an upload's progress: its key and route, and how far it is."""
    if action.kind == "create":
        route = escape.text(f"{action.key} -> {action.region}")
        return f"  uploading {route}: {copy_progress_text(payload)}"
    route = escape.text(f"{action.key} {action.details.get('source_region')} -> {action.region}")
    return f"  copying {route}: {copy_progress_text(payload)}"


def step_line(event: str, action: Any, payload: Any) -> str:
    """The line for a step's "start", "end" (payload: its result) or "skip" (payload: why)."""
    phase = ActionId.parse(action.id).phase
    what = escape.text(f"{action.kind} {action.key} {action.region}" + (f" ({phase})" if phase else ""))
    if event == "start":
        return f"  start   {what}"
    if event == "end":
        message = escape.text(payload.message or "")
        detail = f" ({payload.seconds:.1f} s)" if payload.status == "done" else f": {message}"
        if payload.status == "done" and message:
            detail += f"; {message}"
        return f"  {payload.status:<7} {what}{detail}"
    return f"  skipped {what}: {escape.text(payload.message or '')}"


def copy_progress_text(state: Any) -> str:
    """A copy's bytes so far, of how many, its rate and, when known, its ETA."""
    done = human_bytes(state.copied)
    total = f" of {human_bytes(state.total)}" if state.total else ""
    eta = state.eta
    eta_text = f", ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else ""
    return f"{done}{total}, {human_bytes(int(state.rate))}/s{eta_text}"
