"""What doctor found, as data: each check's verdict, a region's report with its scratch images' cleanup,
and the whole report with its exit code. Pure: no I/O.

The probes (probes.py) record an `Observation` per check; verdicts.py turns it into a `CheckResult`. The
text (render.py) and the JSON document are both made from `DoctorReport.to_json()`, so they cannot
disagree.

Statuses: `ok` (behaves as the tool assumes), `failed` (a fatal check that does not), `error` (the check
could not run: for a fatal check that counts as failed), `set` (a setting check: the root must change),
`noted` (differs from what the tool assumes or NHN documents, nothing to change), `skipped` (not
applicable here, e.g. no refusal whose status to read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = "1"
FATAL, SETTING, INFO = "fatal", "setting", "info"
OK, FAILED, ERROR, SET, NOTED, SKIPPED = "ok", "failed", "error", "set", "noted", "skipped"


@dataclass(frozen=True, slots=True)
class Observation:
    """What the probes saw for one check: `facts` (check-specific), or why it could not run."""

    check: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None  # the check could not run (an API error, a missing scratch image)
    skipped: str | None = None  # not applicable here


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    klass: str
    status: str
    behaviour: str
    assumed: str
    seen: str
    set: str | None = None  # setting checks: what to write in the root
    note: str | None = None  # what it means for the tool, when that is not obvious
    difference: str | None = None  # differs from what NHN documents
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """A fatal check that did not pass: the tool cannot work safely on this target."""
        return self.klass == FATAL and self.status in (FAILED, ERROR)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "class": self.klass,
            "status": self.status,
            "behaviour": self.behaviour,
            "assumed": self.assumed,
            "seen": self.seen,
            "set": self.set,
            "note": self.note,
            "difference_from_nhn": self.difference,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Undeletable:
    """A scratch image doctor could not delete: printed, and doctor exits 1."""

    id: str
    name: str | None
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "error": self.error}


@dataclass(frozen=True, slots=True)
class Kept:
    """A scratch image of an earlier run that doctor left alone, and why."""

    id: str
    name: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Cleanup:
    """This run's scratch images, and those earlier (killed) runs left behind."""

    created: int = 0
    deleted: tuple[str, ...] = ()
    undeletable: tuple[Undeletable, ...] = ()
    earlier_deleted: tuple[str, ...] = ()
    earlier_kept: tuple[Kept, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "deleted": list(self.deleted),
            "undeletable": [u.to_json() for u in self.undeletable],
            "earlier_runs": {
                "deleted": list(self.earlier_deleted),
                "kept": [k.to_json() for k in self.earlier_kept],
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class RegionReport:
    region: str
    results: tuple[CheckResult, ...]
    cleanup: Cleanup

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "checks": [r.to_json() for r in self.results],
            "scratch_images": self.cleanup.to_json(),
        }


@dataclass(frozen=True, slots=True)
class DoctorReport:
    run_id: str
    target: Mapping[str, Any]
    regions: tuple[RegionReport, ...]
    root_file: str = "reconciler.yaml"

    @property
    def failed_checks(self) -> list[tuple[str, CheckResult]]:
        return [(r.region, c) for r in self.regions for c in r.results if c.blocks]

    @property
    def undeletable(self) -> list[tuple[str, Undeletable]]:
        return [(r.region, u) for r in self.regions for u in r.cleanup.undeletable]

    @property
    def exit_code(self) -> int:
        """1 when a fatal check failed or a scratch image could not be deleted; else 0."""
        return 1 if self.failed_checks or self.undeletable else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "command": "doctor",
            "target": dict(self.target),
            "run_id": self.run_id,
            "regions": [r.to_json() for r in self.regions],
            "settings": [
                {"region": r.region, "check": c.check, "set": c.set, "file": self.root_file}
                for r in self.regions
                for c in r.results
                if c.set
            ],
            "differences_from_nhn": [
                {"region": r.region, "check": c.check, "difference": c.difference}
                for r in self.regions
                for c in r.results
                if c.difference
            ],
            "failed": [{"region": region, "check": c.check} for region, c in self.failed_checks],
            "undeletable": [{"region": region, **u.to_json()} for region, u in self.undeletable],
            "exit_code": self.exit_code,
        }
