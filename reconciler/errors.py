"""One root class for every error the tool reports; only `cli.main` turns them into exit codes.

Exceptions carry structured fields (what, where, a hint) so the edge can print them consistently, each
line escaped (a message may quote a name or a server's text: reconciler.render.escape).
They must never carry a secret: messages are built from names, ids and paths, never from credentials.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every expected failure. `exit_code` is what `cli.main` returns for it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Lines printed before the message, e.g. every located problem of an invalid root.
        self.details = details or []

    def __str__(self) -> str:
        return self.message


class UsageError(ReconcilerError):
    """The command line or an input file is wrong; nothing was attempted."""


class SeedError(UsageError):
    """A simulator seed file is invalid. `location` is `file:line:column` where known."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        # A message of several lines (a heading, then one problem a line) is split: the edge escapes every
        # line it prints, so a line break inside a message would show as \x0a rather than start a line.
        first, *problems = (f"{location}: {message}" if location else message).split("\n")
        if problems:  # the edge prints details first, as for an invalid root
            first = f"{first.rstrip(':')}: {len(problems)} problem{'s' if len(problems) > 1 else ''}, listed above"
        super().__init__(first, details=problems)
        self.location = location

    def __str__(self) -> str:
        return "\n".join([self.message, *self.details])


class SimulatorStateError(ReconcilerError):
    """A simulator state file cannot be read or written."""
