"""The text rendering for a terminal, made from the plan's JSON document (so it can never disagree with
it). Plain text; colour is added at the terminal edge by `colorize`, only on a TTY and never with
NO_COLOR, so golden files stay plain.

Every string that is not the tool's own literal (a key, name, region, id, value, message, hint, source:
from the manifests or from the cloud, where anyone in the project can rename an image) goes through
`escape.text`, so an ESC sequence or a newline shows as an escape and never prints a line of its own (an
upload's file or URL too: a manifest writes it).
Messages are escaped whole: the planner builds them with cloud values inside, and its own words hold no
hidden character.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reconciler.plan import ActionId
from reconciler.plan_kinds import KINDS, MEMBER_STATUS
from reconciler.render import escape

INDENT = " " * 14
NO_KEY = "-"  # in the key column, for an action without a key (accept, reject) or a finding without one


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return quoted(value)
    return escape.text(str(value).lower())


def quoted(value: str) -> str:
    """`value` in double quotes that only the tool writes: a `"` inside becomes `\\"` (else a value could
    close its quotes and read as more changes on the line) and a `\\` becomes `\\\\`, so every backslash
    shown starts an escape (`\\"`, `\\\\`, or a hidden character's `\\xNN`)."""
    return '"' + escape.text(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


@dataclass(frozen=True, slots=True)
class Style:
    """How a rendering shows what is not its own literal: `name` for a key, name, id, region or member,
    `value` for a before or after value."""

    name: Callable[[str], str]
    value: Callable[[Any], str]
    # Running text that is not the tool's own (an upload's note on where its file was looked for).
    prose: Callable[[str], str] = escape.text


TEXT = Style(name=escape.text, value=_value)


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


def target_line(document: dict[str, Any], command: str = "plan", show: Callable[[str], str] = escape.text) -> str:
    target = document["target"]
    if target["kind"] == "simulator":
        where = f"SIMULATOR state {show(str(target.get('state')))}"
    else:
        where = f"nhn {show(str(urlsplit(target['identity']).hostname))}"
    regions = " ".join(show(r) for r in target["regions"])
    project = show(short_id(target["project"]))
    return f"reconciler {command} · set {show(document['set'])} · {where} · project {project} · {regions}"


def _changes(changes: dict[str, Any], style: Style) -> str:
    shown = [
        f"{style.name(name)} {style.value(change['before'])} -> {style.value(change['after'])}"
        for name, change in changes.items()
        if not name.startswith("reconciler_")
    ]
    if shown:
        return "; ".join(shown)
    removed = " removed" if all(change["after"] is None for change in changes.values()) else ""
    return "markers " + ", ".join(style.name(n) for n in sorted(changes)) + removed


def describe_action(action: dict[str, Any], style: Style = TEXT) -> str:
    kind = action["kind"]
    name = style.name
    if kind == "create" and ("file" in action or "url" in action):
        return f"{_upload(action, style)} as {style.value(action['name'])}"
    if kind == "create":
        root = "volume root" if action.get("root_device") == "volume" else "local disk"
        state = "running" if action.get("running") else "stopped"
        flavor = name(str(action.get("flavor")))
        return (
            f"from instance {name(action['server_name'])} ({flavor}, {root}, {state}) as {style.value(action['name'])}"
        )
    if kind == "copy":
        return f"{name(action['source_region'])} -> {name(action['region'])}  {human_bytes(action.get('bytes'))}"
    if kind in ("share", "unshare"):
        sign = "+" if kind == "share" else "-"
        visibility = action["changes"].get("visibility")
        extra = f" (visibility {name(visibility['before'])} -> {name(visibility['after'])})" if visibility else ""
        return f"{sign} {name(short_id(action['member']))}{extra}"
    if kind in MEMBER_STATUS:
        return _member_status(action, style)
    if kind in ("stop_instance", "start_instance"):
        return f"instance {name(action['server_name'])}"
    if kind == "delete":
        image = name(short_id(action["image_id"]))
        return f"{style.value(action['name'])} {image}" if action.get("name") else image
    if kind == "update" and action["reason"]["code"] == "released":
        return _release(action, style)
    if kind in ("update", "adopt"):
        return _changes(action["changes"], style)
    return ""


def _upload(action: dict[str, Any], style: Style) -> str:
    """An upload create: the file or URL as the manifest writes it (foreign text, escaped like any name), its
    disk format, and its size when plan time knows it, else why not."""
    what = action["file"] if "file" in action else action["url"]
    size = action.get("bytes")
    note = action.get("artifact_note")
    if action.get("artifact") is None and "file" in action and note is not None:
        known = "not found"  # where it looked is the source_not_built warning's
    elif size is not None:
        known = human_bytes(size)
    elif note is None:
        known = "size unknown"
    else:  # the note may say so itself ("size unknown: HEAD answered 404") or only why ("not contacted: ...")
        known = style.prose(note if note.startswith("size unknown") else f"size unknown: {note}")
    found = action.get("artifact")
    at = f", found at {style.name(found)}" if found is not None and found != what else ""
    return f"upload {style.name(str(what))} ({style.name(str(action.get('disk_format')))}, {known}{at})"


def _member_status(action: dict[str, Any], style: Style) -> str:
    """An accept or reject: the shared image (name, id), the project that shares it, and the status change."""
    change = action["changes"].get("member_status") or {"before": None, "after": MEMBER_STATUS[action["kind"]]}
    image = style.name(short_id(action["image_id"]))
    named = f"{style.value(action['name'])} {image}" if action.get("name") is not None else image
    owner = style.name(short_id(action.get("owner")))
    return f"{named} of project {owner}: {style.name(str(change['before']))} -> {style.name(str(change['after']))}"


def key_shown(key: str) -> str:
    """An action's key as a line shows it: accept and reject have none (`-`)."""
    return key or NO_KEY


def _release(action: dict[str, Any], style: Style) -> str:
    """A release, with its image (a key can have several in one region): the markers it takes off, and the
    download flag it restores, if it does."""
    changes = action["changes"]
    marks = sorted(name for name in changes if name.startswith("reconciler_"))
    others = {name: change for name, change in changes.items() if name not in marks}
    text = (
        f"release {style.name(short_id(action['image_id']))}: markers {', '.join(style.name(n) for n in marks)} removed"
    )
    return text + (f"; {_changes(others, style)}" if others else "")


def _waits(action: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    names = []
    for dependency in action["depends_on"]:
        other = by_id[dependency["id"]]
        phase = ActionId.parse(dependency["id"]).phase
        label = f" ({phase})" if phase is not None else ""
        names.append(escape.text(f"{other['kind']} {key_shown(other['key'])} {other['region']}{label}"))
    return "waits for: " + ", ".join(names) if names else ""


def _source(source: str | None, form: str = " ({})") -> str:
    return form.format(escape.text(source)) if source else ""


def render_text(document: dict[str, Any], *, applying: bool = False) -> str:
    """The plan for a terminal. `applying`: apply shows the plan it is about to carry out, so the closing
    lines that say nothing was changed (true of `plan`) are left out; apply says what it did itself."""
    actions = document["actions"]
    by_id = {a["id"]: a for a in actions}
    info = document["info"]
    lines = [target_line(document)]
    regions = [escape.text(r) for r in document["target"]["regions"]]
    count = info["images"]
    lines.append(
        f"Read {len(regions)} region{'s' if len(regions) != 1 else ''} ({' '.join(regions)}): "
        f"{count} image{'s' if count != 1 else ''} ({info['this_set']} of this set, {info['other_sets']} of other "
        f"sets, {info['unmanaged']} unmanaged)"
    )
    lines.append("")
    show = escape.text
    keys = [show(key_shown(a["key"])) for a in actions] + [show(r["key"] or "") for r in document["refusals"]]
    key_width = max([len(k) for k in keys] + [8])
    for action in actions:
        symbol = KINDS[action["kind"]].symbol
        key = show(key_shown(action["key"]))
        head = f"  {symbol} {action['kind']:<14} {key:<{key_width}}  {show(action['region']):<4}"
        lines.append(f"{head}  {describe_action(action)}".rstrip())
        reason = action["reason"]
        lines.append(f"{INDENT}{show(reason['message'])}{_source(reason['source'])}")
        waits = _waits(action, by_id)
        if waits:
            lines.append(f"{INDENT}{waits}")
    for refusal in document["refusals"]:
        key, region = show(refusal["key"] or "-"), show(refusal["region"] or "-")
        head = f"  ! {'refused':<14} {key:<{key_width}}  {region:<4}"
        lines.append(f"{head}  [{show(refusal['code'])}] {show(refusal['message'])}")
        if refusal["source"]:
            lines.append(f"{INDENT}at {show(refusal['source'])}")
        if refusal["hint"]:
            lines.append(f"{INDENT}hint: {show(refusal['hint'])}")
    if document["warnings"]:
        if actions or document["refusals"]:
            lines.append("")
        for warning in document["warnings"]:
            where = show(" ".join(part for part in (warning["key"], warning["region"]) if part))
            message = f"{where + ': ' if where else ''}{show(warning['message'])}{_source(warning['source'])}"
            lines.append(f"  warning [{show(warning['code'])}] {message}")
    if actions or document["refusals"] or document["warnings"]:
        lines.append("")
    lines.append(summary_line(document))
    if applying:
        return "\n".join(lines) + "\n"
    lines.append("Nothing was changed.")
    if document["refusals"]:
        lines.append("This plan cannot be applied until the refusals are resolved.")
    return "\n".join(lines) + "\n"


def summary_line(document: dict[str, Any], show: Callable[[str], str] = escape.text) -> str:
    counts = document["summary"]["actions"]
    total = sum(counts.values())
    refusals, warnings = document["summary"]["refusals"], document["summary"]["warnings"]
    if not total and not refusals:
        head = no_changes_line(document, show)
    else:
        parts = ", ".join(f"{count} {KINDS[kind].summary}" for kind, count in counts.items())
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


def no_changes_line(document: dict[str, Any], show: Callable[[str], str] = escape.text) -> str:
    """A plan without actions or refusals. A partial plan saw only some images: the images it left out may
    still differ from the cloud, so it never says the cloud matches the manifests."""
    partial = document["info"].get("partial")
    if partial:
        return f"No changes among the images in scope ({show(partial['description'])})."
    return "No changes: the cloud matches the manifests."


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
