"""One root class for every error the tool reports; only `cli.main` turns them into exit codes.

Exceptions carry structured fields (what, where, a hint) so the edge can print them consistently.
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
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class SimulatorStateError(ReconcilerError):
    """A simulator state file cannot be read or written."""
