"""The text rendering for a terminal, made from the plan's JSON document (so it can never disagree with
it). Plain text; colour is added at the terminal edge by `colorize`, only on a TTY and never with
NO_COLOR, so golden files stay plain."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SYMBOLS = {
    "create": "+",
    "adopt": "+",
    "copy": "+",
    "share": "+",
    "update": "~",
    "protect": "~",
    "unprotect": "~",
    "stop_instance": "~",
    "start_instance": "~",
    "unshare": "-",
    "delete": "-",
}
SUMMARY_WORDS = {
    "create": "to create",
    "adopt": "to adopt",
    "copy": "to copy",
    "update": "to update",
    "protect": "to protect",
    "unprotect": "to unprotect",
    "share": "to share",
    "unshare": "to unshare",
    "delete": "to delete",
    "stop_instance": "instance to stop",
    "start_instance": "instance to start",
}
INDENT = " " * 14


def short_id(value: str | None) -> str:
    if not value:
        return "(new)"
    return f"{value[:4]}…{value[-4:]}" if len(value) > 12 else value


def human_bytes(size: int | None) -> str:
    if size is None:
        return "size known once made"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def target_line(document: dict[str, Any], command: str = "plan") -> str:
    target = document["target"]
    if target["kind"] == "simulator":
        where = f"SIMULATOR state {target.get('state')}"
    else:
        where = f"nhn {urlsplit(target['identity']).hostname}"
    regions = " ".join(target["regions"])
    return f"reconciler {command} · set {document['set']} · {where} · project {short_id(target['project'])} · {regions}"


def _value(value: Any) -> str:
    return "(none)" if value is None else f'"{value}"' if isinstance(value, str) else str(value).lower()


def _changes(changes: dict[str, Any]) -> str:
    shown = [
        f"{name} {_value(change['before'])} -> {_value(change['after'])}"
        for name, change in changes.items()
        if not name.startswith("reconciler_")
    ]
    return "; ".join(shown) if shown else "markers " + ", ".join(sorted(changes))


def describe_action(action: dict[str, Any]) -> str:
    kind = action["kind"]
    if kind == "create":
        root = "volume root" if action.get("root_device") == "volume" else "local disk"
        state = "running" if action.get("running") else "stopped"
        server = f"{action['server_name']} ({action.get('flavor')}, {root}, {state})"
        return f"from instance {server} as {_value(action['name'])}"
    if kind == "copy":
        return f"{action['source_region']} -> {action['region']}  {human_bytes(action.get('bytes'))}"
    if kind in ("share", "unshare"):
        sign = "+" if kind == "share" else "-"
        visibility = action["changes"].get("visibility")
        extra = f" (visibility {visibility['before']} -> {visibility['after']})" if visibility else ""
        return f"{sign} {short_id(action['member'])}{extra}"
    if kind in ("stop_instance", "start_instance"):
        return f"instance {action['server_name']}"
    if kind == "delete":
        return (
            f"{_value(action.get('name'))} {short_id(action['image_id'])}"
            if action.get("name")
            else short_id(action["image_id"])
        )
    if kind in ("update", "adopt"):
        return _changes(action["changes"])
    return ""


def _waits(action: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    names = []
    for dependency in action["depends_on"]:
        other = by_id[dependency["id"]]
        names.append(
            f"{other['kind']} {other['key']} {other['region']}"
            + (f" ({dependency['id'].split(':', 3)[3]})" if dependency["id"].count(":") >= 3 else "")
        )
    return "waits for: " + ", ".join(names) if names else ""


def render_text(document: dict[str, Any], *, applying: bool = False) -> str:
    """The plan for a terminal. `applying`: apply shows the plan it is about to carry out, so the closing
    lines that say nothing was changed (true of `plan`) are left out; apply says what it did itself."""
    actions = document["actions"]
    by_id = {a["id"]: a for a in actions}
    info = document["info"]
    lines = [target_line(document)]
    regions = document["target"]["regions"]
    count = info["images"]
    lines.append(
        f"Read {len(regions)} region{'s' if len(regions) != 1 else ''} ({' '.join(regions)}): "
        f"{count} image{'s' if count != 1 else ''} ({info['this_set']} of this set, {info['other_sets']} of other "
        f"sets, {info['unmanaged']} unmanaged)"
    )
    lines.append("")
    key_width = max([len(a["key"]) for a in actions] + [len(r["key"] or "") for r in document["refusals"]] + [8])
    for action in actions:
        symbol = SYMBOLS[action["kind"]]
        head = f"  {symbol} {action['kind']:<14} {action['key']:<{key_width}}  {action['region']:<4}"
        lines.append(f"{head}  {describe_action(action)}".rstrip())
        reason = action["reason"]
        lines.append(f"{INDENT}{reason['message']}" + (f" ({reason['source']})" if reason["source"] else ""))
        waits = _waits(action, by_id)
        if waits:
            lines.append(f"{INDENT}{waits}")
    for refusal in document["refusals"]:
        head = f"  ! {'refused':<14} {refusal['key'] or '-':<{key_width}}  {refusal['region'] or '-':<4}"
        lines.append(f"{head}  [{refusal['code']}] {refusal['message']}")
        if refusal["source"]:
            lines.append(f"{INDENT}at {refusal['source']}")
        if refusal["hint"]:
            lines.append(f"{INDENT}hint: {refusal['hint']}")
    if document["warnings"]:
        if actions or document["refusals"]:
            lines.append("")
        for warning in document["warnings"]:
            where = " ".join(part for part in (warning["key"], warning["region"]) if part)
            source = f" ({warning['source']})" if warning["source"] else ""
            lines.append(f"  warning [{warning['code']}] {where + ': ' if where else ''}{warning['message']}{source}")
    if actions or document["refusals"] or document["warnings"]:
        lines.append("")
    lines.append(summary_line(document))
    if applying:
        return "\n".join(lines) + "\n"
    lines.append("Nothing was changed.")
    if document["refusals"]:
        lines.append("This plan cannot be applied until the refusals are resolved.")
    return "\n".join(lines) + "\n"


def summary_line(document: dict[str, Any]) -> str:
    counts = document["summary"]["actions"]
    total = sum(counts.values())
    refusals, warnings = document["summary"]["refusals"], document["summary"]["warnings"]
    if not total and not refusals:
        head = "No changes: the cloud matches the manifests."
    else:
        parts = ", ".join(f"{count} {SUMMARY_WORDS[kind]}" for kind, count in counts.items())
        head = f"Plan: {parts} ({total} action{'s' if total != 1 else ''})" if total else "Plan: no actions"
        head += f"; {refusals} refused." if refusals else "."
    if warnings:
        head += f" {warnings} warning{'s' if warnings != 1 else ''}."
    if "copy_bytes" in document["summary"]:
        unknown, moved = document["summary"]["copy_bytes_unknown"], document["summary"]["copy_bytes"]
        made = f"{unknown} image{'s' if unknown != 1 else ''} made by this plan (size known once made)"
        if moved and unknown:
            head += f" Copies move {human_bytes(moved)} plus {made}."
        elif unknown:
            head += f" Copies move {made}."
        else:
            head += f" Copies move {human_bytes(moved)}."
    return head


COLOURS = {"+": "32", "~": "33", "-": "31", "!": "1;31"}


def colorize(text: str) -> str:
    """ANSI colour for a terminal: the action symbol of each line, and warnings."""
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        code = COLOURS.get(stripped[:1]) if line.startswith("  ") and len(stripped) > 1 and stripped[1] == " " else None
        if code:
            out.append(f"\033[{code}m{line}\033[0m")
        elif stripped.startswith("warning"):
            out.append(f"\033[33m{line}\033[0m")
        else:
            out.append(line)
    return "\n".join(out) + "\n"
