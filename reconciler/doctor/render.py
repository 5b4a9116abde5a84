"""The doctor report as text, made from its JSON document (so the two never disagree). Pure; colour is
added by `colorize`, only on a terminal.

Every value from the document is shown through `_t` (reconciler.render.escape.text): image names, ids,
servers' error messages and what a check saw are not the tool's text, and anyone in the project can name
an image `"x\x1b[2J\n  all checks ok"`. The tool's own strings pass through it unchanged.
"""

from __future__ import annotations

from typing import Any

from reconciler.render import escape

LABELS = {"ok": "ok", "failed": "FAILED", "error": "ERROR", "set": "SET", "noted": "noted", "skipped": "skipped"}
COLOURS = {"ok": "32", "FAILED": "31", "ERROR": "31", "SET": "33", "noted": "36", "skipped": "2"}
INDENT = " " * 19


def _t(value: Any) -> str:
    """A value of the document as printed: hidden characters shown as escapes."""
    return escape.text(str(value))


def render_text(document: dict[str, Any]) -> str:
    """Everything after the target line (printed first by the command)."""
    lines: list[str] = []
    for region in document["regions"]:
        lines += ["", _t(region["region"])]
        for check in region["checks"]:
            lines += _check_lines(check)
        lines += _scratch_lines(region["scratch_images"])
    if document["settings"]:
        lines += ["", "Set in the root:"]
        lines += [f"  {_t(s['set'])}  ({_t(s['file'])}; seen in {_t(s['region'])})" for s in document["settings"]]
    if document["differences_from_nhn"]:
        lines += ["", "Differences from NHN's documented behaviour (nothing to change):"]
        lines += [f"  {_t(d['region'])}  {_t(d['difference'])}" for d in document["differences_from_nhn"]]
    lines += ["", *_verdict(document)]
    return "\n".join(lines) + "\n"


def _check_lines(check: dict[str, Any]) -> list[str]:
    label = _t(LABELS.get(check["status"], check["status"]))
    lines = [f"  {_t(check['class']):<8} {label:<8} {_t(check['behaviour'])} [{_t(check['check'])}]"]
    lines.append(f"{INDENT}assumed  {_t(check['assumed'])}")
    lines.append(f"{INDENT}seen     {_t(check['seen'])}")
    if check["set"]:
        lines.append(f"{INDENT}set      {_t(check['set'])}")
    if check["note"]:
        lines.append(f"{INDENT}note     {_t(check['note'])}")
    return lines


def _scratch_lines(scratch: dict[str, Any]) -> list[str]:
    deleted = len(scratch["deleted"])
    lines = [f"  scratch images: {scratch['created']} created, {deleted} deleted"]
    for image in scratch["undeletable"]:
        lines.append(f"    COULD NOT DELETE {_t(image['id'])} ({_t(image['name'])}): {_t(image['error'])}")
    earlier = scratch["earlier_runs"]
    for image_id in earlier["deleted"]:
        lines.append(f"    deleted {_t(image_id)}, left by an earlier run")
    for kept in earlier["kept"]:
        lines.append(f"    kept {_t(kept['id'])} ({_t(kept['name'])}), left by an earlier run: {_t(kept['reason'])}")
    lines += [f"    {_t(note)}" for note in scratch["notes"]]
    return lines


def _verdict(document: dict[str, Any]) -> list[str]:
    lines = []
    failed = document["failed"]
    if failed:
        names = ", ".join(f"{_t(f['region'])} {_t(f['check'])}" for f in failed)
        lines.append(
            f"FAILED: {len(failed)} fatal check{'s' if len(failed) != 1 else ''} failed ({names}): "
            "the tool cannot work safely on this target."
        )
    undeletable = document["undeletable"]
    if undeletable:
        lines.append(f"Could not delete {len(undeletable)} scratch image(s); delete them by hand:")
        lines += [f"  {_t(u['region'])} {_t(u['id'])} ({_t(u['name'])}): {_t(u['error'])}" for u in undeletable]
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
