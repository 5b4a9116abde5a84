"""Apply's progress lines (reconciler.render.progress), from plain events: an action and a payload made of
plain values, a string stream (with or without a terminal) and a clock the test turns."""

from __future__ import annotations

import io
from types import SimpleNamespace

from reconciler.render.progress import copy_progress_text, progress_printer, step_line

UPDATE = SimpleNamespace(id="update:web:KR1", kind="update", key="web", region="KR1", details={})
RESTORE = SimpleNamespace(id="update:web:KR1:download-restore", kind="update", key="web", region="KR1", details={})
COPY = SimpleNamespace(id="copy:web:JP1", kind="copy", key="web", region="JP1", details={"source_region": "KR1"})
MIB = 1024 * 1024


def done(seconds=1.25, message=""):
    return SimpleNamespace(status="done", seconds=seconds, message=message)


def copied(n, total=10 * MIB, rate=float(MIB), eta=None):
    return SimpleNamespace(copied=n, total=total, rate=rate, eta=eta)


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_step_starts_and_ends():
    assert step_line("start", UPDATE, None) == "  start   update web KR1"
    assert step_line("end", UPDATE, done()) == "  done    update web KR1 (1.2 s)"
    assert (
        step_line("end", UPDATE, done(message="kept a property")) == "  done    update web KR1 (1.2 s); kept a property"
    )
    failed = SimpleNamespace(status="failed", seconds=3.0, message="409 conflict")
    assert step_line("end", UPDATE, failed) == "  failed  update web KR1: 409 conflict"
    assert step_line("skip", UPDATE, SimpleNamespace(message="after a failure")) == (
        "  skipped update web KR1: after a failure"
    )


def test_a_phase_is_named_after_the_step():
    assert step_line("start", RESTORE, None) == "  start   update web KR1 (download-restore)"


def test_copy_progress_says_bytes_rate_and_eta():
    assert copy_progress_text(copied(3 * MIB, eta=125.0)) == "3.0 MiB of 10.0 MiB, 1.0 MiB/s, ETA 2:05"
    assert copy_progress_text(copied(3 * MIB, total=None)) == "3.0 MiB, 1.0 MiB/s"


def test_without_a_terminal_a_copy_gets_a_line_every_interval_and_when_finished():
    stream, clock = io.StringIO(), Clock()
    show = progress_printer(stream, interval=5.0, clock=clock)
    show("progress", COPY, copied(1 * MIB))  # the first: a line
    clock.now += 4.9
    show("progress", COPY, copied(2 * MIB))  # too soon: none
    clock.now += 0.1
    show("progress", COPY, copied(3 * MIB))  # the interval passed: a line
    clock.now += 0.1
    show("progress", COPY, copied(10 * MIB))  # finished: a line at once
    show("end", COPY, done())
    assert stream.getvalue().splitlines() == [
        "  copying web KR1 -> JP1: 1.0 MiB of 10.0 MiB, 1.0 MiB/s",
        "  copying web KR1 -> JP1: 3.0 MiB of 10.0 MiB, 1.0 MiB/s",
        "  copying web KR1 -> JP1: 10.0 MiB of 10.0 MiB, 1.0 MiB/s",
        "  done    copy web JP1 (1.2 s)",
    ]


def test_on_a_terminal_a_copy_rewrites_one_line_and_its_end_clears_it():
    stream = Terminal()
    show = progress_printer(stream)
    show("start", COPY, None)
    show("progress", COPY, copied(1 * MIB))
    show("progress", COPY, copied(2 * MIB))
    show("end", COPY, done())
    assert stream.getvalue() == (
        "  start   copy web JP1\n"
        "\r  copying web KR1 -> JP1: 1.0 MiB of 10.0 MiB, 1.0 MiB/s\033[K"
        "\r  copying web KR1 -> JP1: 2.0 MiB of 10.0 MiB, 1.0 MiB/s\033[K"
        "\r\033[K  done    copy web JP1 (1.2 s)\n"
    )


def test_on_a_terminal_other_steps_do_not_clear_a_line():
    stream = Terminal()
    show = progress_printer(stream)
    show("end", UPDATE, done())
    assert stream.getvalue() == "  done    update web KR1 (1.2 s)\n"
