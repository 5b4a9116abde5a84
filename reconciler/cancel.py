"""Cancellation of a running apply by a signal (docs/safety.md, "A cancelled job").

CI runners cancel jobs: GitHub Actions sends SIGINT, SIGTERM 7.5 s later, then SIGKILL 2.5 s after that;
GitLab sends SIGTERM then SIGKILL; people press Ctrl-C. The first SIGINT or SIGTERM asks the run to stop:
no new action starts, waits on statuses end, streams stop between two chunks, calls in flight get
GRACE_S, then the compensations this run owes run, the lock is released, the report printed, and the
process exits 130 (SIGINT) or 143 (SIGTERM). A second signal skips what is left of GRACE_S.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

GRACE_S = 2.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

_exempt = threading.local()


@contextlib.contextmanager
def compensating() -> Iterator[None]:
    """Calls made inside (in this thread) are compensations: a cancellation does not stop their waits."""
    previous = getattr(_exempt, "active", False)
    _exempt.active = True
    try:
        yield
    finally:
        _exempt.active = previous


def in_compensation() -> bool:
    return getattr(_exempt, "active", False)


class Cancellation:
    """The first and any second signal, and when the first came (monotonic clock)."""

    def __init__(self) -> None:
        self._first = threading.Event()
        self._second = threading.Event()
        self.signum: int | None = None
        self.first_at: float | None = None
        # While a prompt waits for `yes`, a signal interrupts it at once (nothing has started yet).
        self.interrupt_prompt = False

    @property
    def requested(self) -> bool:
        return self._first.is_set()

    def stop_waiting(self) -> bool:
        """For waits and streams: stop now, unless this thread is running a compensation."""
        return self._first.is_set() and not in_compensation()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 130) if self.signum is not None else 0

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def request(self, signum: int) -> None:
        if self._first.is_set():
            self._second.set()
            return
        self.signum = signum
        self.first_at = time.monotonic()
        self._first.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once on a signal; True if cancelled."""
        return self._first.wait(seconds)

    def grace(self, seconds: float = GRACE_S) -> None:
        """Wait what is left of `seconds` since the first signal, or until a second signal."""
        if self.first_at is None:
            return
        left = self.first_at + seconds - time.monotonic()
        if left > 0:
            self._second.wait(left)

    def grace_left(self, seconds: float = GRACE_S) -> float:
        if self.first_at is None or self._second.is_set():
            return 0.0
        return max(0.0, self.first_at + seconds - time.monotonic())

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self._first.is_set()
        self.request(signum)
        if first and self.interrupt_prompt:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[Cancellation]:
        """Handle SIGINT and SIGTERM while the block runs (main thread only; elsewhere, nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in EXIT_CODES}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
