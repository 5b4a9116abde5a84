"""The doctor report as text, made from its JSON document (so the two never disagree). Pure; colour is
added by `colorize`, only on a terminal."""

from __future__ import annotations

from typing import Any

LABELS = {"ok": "ok", "failed": "FAILED", "error": "ERROR", "set": "SET", "noted": "noted", "skipped": "skipped"}
COLOURS = {"ok": "32", "FAILED": "31", "ERROR": "31", "SET": "33", "noted": "36", "skipped": "2"}
INDENT = " " * 19


def render_text(document: dict[str, Any]) -> str:
    """Everything after the target line (printed first by the command)."""
    lines: list[str] = []
    for region in document["regions"]:
        lines += ["", region["region"]]
        for check in region["checks"]:
            lines += _check_lines(check)
        lines += _scratch_lines(region["scratch_images"])
    if document["settings"]:
        lines += ["", "Set in the root:"]
        lines += [f"  {s['set']}  ({s['file']}; seen in {s['region']})" for s in document["settings"]]
    if document["differences_from_nhn"]:
        lines += ["", "Differences from NHN's documented behaviour (nothing to change):"]
        lines += [f"  {d['region']}  {d['difference']}" for d in document["differences_from_nhn"]]
    lines += ["", *_verdict(document)]
    return "\n".join(lines) + "\n"


def _check_lines(check: dict[str, Any]) -> list[str]:
    label = LABELS.get(check["status"], check["status"])
    lines = [f"  {check['class']:<8} {label:<8} {check['behaviour']} [{check['check']}]"]
    lines.append(f"{INDENT}assumed  {check['assumed']}")
    lines.append(f"{INDENT}seen     {check['seen']}")
    if check["set"]:
        lines.append(f"{INDENT}set      {check['set']}")
    if check["note"]:
        lines.append(f"{INDENT}note     {check['note']}")
    return lines


def _scratch_lines(scratch: dict[str, Any]) -> list[str]:
    deleted = len(scratch["deleted"])
    lines = [f"  scratch images: {scratch['created']} created, {deleted} deleted"]
    for image in scratch["undeletable"]:
        lines.append(f"    COULD NOT DELETE {image['id']} ({image['name']}): {image['error']}")
    earlier = scratch["earlier_runs"]
    for image_id in earlier["deleted"]:
        lines.append(f"    deleted {image_id}, left by an earlier run")
    for kept in earlier["kept"]:
        lines.append(f"    kept {kept['id']} ({kept['name']}), left by an earlier run: {kept['reason']}")
    lines += [f"    {note}" for note in scratch["notes"]]
    return lines


def _verdict(document: dict[str, Any]) -> list[str]:
    lines = []
    failed = document["failed"]
    if failed:
        names = ", ".join(f"{f['region']} {f['check']}" for f in failed)
        lines.append(
            f"FAILED: {len(failed)} fatal check{'s' if len(failed) != 1 else ''} failed ({names}): "
            "the tool cannot work safely on this target."
        )
    undeletable = document["undeletable"]
    if undeletable:
        lines.append(f"Could not delete {len(undeletable)} scratch image(s); delete them by hand:")
        lines += [f"  {u['region']} {u['id']} ({u['name']}): {u['error']}" for u in undeletable]
    if not lines:
        lines.append("OK: no fatal check failed.")
    return lines


def colorize(text: str) -> str:
    """ANSI colour for a terminal: each check's status label, and the verdict."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        code = COLOURS.get(parts[1]) if line.startswith("  ") and len(parts) > 2 and parts[0] in _CLASSES else None
        if code is None and line.startswith(("FAILED:", "Could not delete")):
            code = "31"
        out.append(f"\033[{code}m{line}\033[0m" if code else line)
    return "\n".join(out) + "\n"


_CLASSES = ("fatal", "setting", "info")
