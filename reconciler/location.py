"""Where something is written in a root's files: pure data, shared by the YAML loader (which finds
locations) and the model and plan (which carry them into reasons and messages)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"
