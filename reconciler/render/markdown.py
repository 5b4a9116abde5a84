"""The Markdown rendering, for a pull-request comment, made from the plan's JSON document.

A reviewer should know in ten seconds whether the change is safe: the target, a one-line verdict, a
table of regions by action kind, a banner naming every image deleted or unshared, the refusals with their
hints, then one collapsed block per image and, when small, a Mermaid graph of the steps. A size budget
(GitHub refuses comments over 65,536 characters) always keeps the verdict, the table, the banner, the
refusals and the warnings, never cuts inside a block, and says what it left out.

What the tool did not write itself (from the manifests or from the cloud) never becomes Markdown:
names, keys, ids, regions and values go in code spans, messages are escaped (`escape.markdown`), strings
inside HTML are HTML-escaped, Mermaid labels use character codes. So `<!--` in a description cannot hide
the rest of the comment, `@someone` in a name cannot ping, and `|` cannot split a table row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from reconciler.plan import ACTION_KINDS
from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, escape
from reconciler.render.text import SYMBOLS, Style, describe_action, summary_line, target_line

MERMAID_MAX_ACTIONS = 30


def _md_value(value: Any) -> str:
    if value is None:
        return "(none)"
    return escape.code(value if isinstance(value, str) else str(value).lower())


MARKDOWN = Style(name=escape.code, value=_md_value)
prose = escape.markdown  # running text that is not the tool's own: messages, hints
# What a reviewer must weigh before applying: each takes something away (an image, a partner's access, the
# protection that keeps an image from being deleted, a running instance: stopped for imaging, it is down
# until the image is active). A strict bracket's unprotect counts too: the image is unprotected while it runs.
RISKY_KINDS = ("delete", "unshare", "unprotect", "stop_instance")
RISKY_WORDS = {  # kind: (noun for the verdict's count, verb for the banner)
    "delete": ("deletion", "deletes"),
    "unshare": ("unshare", "unshares"),
    "unprotect": ("unprotect", "unprotects"),
    "stop_instance": ("instance stop", "stops instances"),
}


def _verdict(document: dict[str, Any]) -> str:
    summary = document["summary"]
    total = sum(summary["actions"].values())
    refusals = summary["refusals"]
    parts = [f"{total} action{'s' if total != 1 else ''}"]
    risky = {kind: summary["actions"].get(kind, 0) for kind in RISKY_KINDS}
    for kind, count in risky.items():
        if count:
            parts.append(f"{count} {_plural(RISKY_WORDS[kind][0], count)}")
    if refusals:
        parts.append(f"{refusals} refused")
    if refusals:
        head = "**Cannot be applied**"
    elif not total:
        # A partial plan saw only some images: the others may still differ from the cloud.
        head = "**No changes among the images in scope**" if document["info"].get("partial") else "**No changes**"
    elif any(risky.values()):
        head = "**Review the risky changes**"
    else:
        head = "**Safe to apply**"
    return f"{head}: {', '.join(parts)}"


def _table(document: dict[str, Any]) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for action in document["actions"]:
        counts[action["region"]][action["kind"]] += 1
    if not counts:
        return ""
    kinds = [k for k in ACTION_KINDS if any(c[k] for c in counts.values())]
    lines = ["| region | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for region in sorted(counts):
        cells = " | ".join(str(counts[region][k] or "") for k in kinds)
        lines.append(f"| {prose(region)} | {cells} |")
    return "\n".join(lines)


def _image(action: dict[str, Any]) -> str:
    return escape.code(action.get("name") or action.get("image_id") or "(new)")


@dataclass
class _Items:
    """A list a must-keep part holds (the banner's deletions, the refusals, ...): a tight budget keeps its
    first `kept` items and ends it with a line saying how many more there are and where to see them."""

    items: list[str]
    noun: str  # what one item is, e.g. "unshare"
    quote: str = ""  # "> " inside the banner's block quote
    kept: int = -1  # -1: every item

    def lines(self) -> list[str]:
        kept = len(self.items) if self.kept < 0 else self.kept
        left_out = len(self.items) - kept
        return self.items[:kept] + ([self.more_line(left_out)] if left_out else [])

    def more_line(self, left_out: int) -> str:
        return f"{self.quote}- … and {left_out:,} more {_plural(self.noun, left_out)}: {MORE_SHOWN}"

    def grown_by(self, kept: int) -> int:
        """How many characters keeping `kept + 1` items adds over keeping `kept` (each with its more line)."""
        added = len(self.items[kept]) + 1
        before = len(self.more_line(len(self.items) - kept)) + 1
        after = len(self.more_line(len(self.items) - kept - 1)) + 1 if kept + 1 < len(self.items) else 0
        return added + after - before


@dataclass
class _Part:
    """A must-keep part: its heading lines, then its lists of items."""

    heading: list[str]
    lists: list[_Items] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.heading + [line for items in self.lists for line in items.lines()])


MORE_SHOWN = "`reconciler plan --format text` shows every one"


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _banner(document: dict[str, Any]) -> _Part | None:
    """Every risky change, kind by kind (so a cut list still shows the first of each kind)."""
    by_kind = {kind: [a for a in document["actions"] if a["kind"] == kind] for kind in RISKY_KINDS}
    present = [kind for kind in RISKY_KINDS if by_kind[kind]]
    if not present:
        return None
    verbs = [RISKY_WORDS[kind][1] for kind in present]
    said = ", ".join(verbs[:-1]) + (" and " if len(verbs) > 1 else "") + verbs[-1]
    lists = [_Items([_banner_line(a) for a in by_kind[kind]], RISKY_WORDS[kind][0], quote="> ") for kind in present]
    return _Part(["> [!WARNING]", f"> This plan {said}:"], lists)


def _banner_line(action: dict[str, Any]) -> str:
    if action["kind"] == "unshare":
        what = f"the share with {escape.code(action['member'])} of image {_image(action)}"
    elif action["kind"] == "stop_instance":
        what = f"instance {escape.code(action['server_name'])}"
    else:
        what = f"image {_image(action)}"
    where = f"of {escape.code(action['key'])} in {prose(action['region'])}"
    return f"> - {action['kind']} {what} {where}: {prose(action['reason']['message'])}"


def _where(item: dict[str, Any]) -> str:
    key = escape.code(item["key"]) if item["key"] else ""
    return " ".join(p for p in (key, prose(item["region"] or "")) if p)


def _said(item: dict[str, Any]) -> str:
    """A refusal or warning: where, what, and the manifest line it comes from."""
    return f"{_where(item)}: {prose(item['message'])}{_source(item['source'])}"


def _code_word(code: str) -> str:
    """A refusal or warning code: the tool's own word, shown as it is (hidden characters aside)."""
    return escape.text(code)


def _source(source: str | None) -> str:
    return f" ({escape.code(source)})" if source else ""


def _refusals(document: dict[str, Any]) -> _Part | None:
    if not document["refusals"]:
        return None
    items = []
    for refusal in document["refusals"]:
        item = f"- **{_code_word(refusal['code'])}** {_said(refusal)}"
        if refusal["hint"]:
            item += f"\n  - hint: {prose(refusal['hint'])}"
        items.append(item)
    return _Part(["### Refused", ""], [_Items(items, "refusal")])


def _warnings(document: dict[str, Any]) -> _Part | None:
    if not document["warnings"]:
        return None
    items = [f"- {_code_word(warning['code'])} {_said(warning)}" for warning in document["warnings"]]
    return _Part(["### Warnings", ""], [_Items(items, "warning")])


def _image_blocks(document: dict[str, Any]) -> list[str]:
    by_id = {a["id"]: a for a in document["actions"]}
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for action in document["actions"]:
        by_key[action["key"]].append(action)
    blocks = []
    for key in sorted(by_key):
        actions = by_key[key]
        kinds = Counter(a["kind"] for a in actions)
        summary = ", ".join(
            f"{n} {k}" if n > 1 else k for k, n in sorted(kinds.items(), key=lambda i: ACTION_KINDS.index(i[0]))
        )
        lines = [f"<details><summary><b>{escape.html(key)}</b>: {summary}</summary>", ""]
        for action in actions:
            detail = describe_action(action, MARKDOWN)
            lines.append(
                f"- `{SYMBOLS[action['kind']]} {action['kind']}` {prose(action['region'])}"
                + (f": {detail}" if detail else "")
            )
            reason = action["reason"]
            lines.append(f"  - {prose(reason['message'])}{_source(reason['source'])}")
            waits = [
                f"{by_id[d['id']]['kind']} {prose(by_id[d['id']]['region'])}"
                for d in action["depends_on"]
                if d["id"] in by_id
            ]
            if waits:
                lines.append(f"  - waits for: {', '.join(waits)}")
        lines += ["", "</details>"]
        blocks.append("\n".join(lines))
    return blocks


def _mermaid(document: dict[str, Any]) -> str:
    actions = document["actions"]
    if not actions or len(actions) > MERMAID_MAX_ACTIONS:
        return ""
    names = {a["id"]: f"a{i}" for i, a in enumerate(actions)}
    lines = ["```mermaid", "graph LR"]
    for action in actions:
        label = escape.mermaid(f"{action['kind']} {action['key']} {action['region']}")
        lines.append(f'  {names[action["id"]]}["{label}"]')
    for action in actions:
        for dependency in action["depends_on"]:
            if dependency["id"] in names:
                lines.append(f"  {names[dependency['id']]} --> {names[action['id']]}")
    lines.append("```")
    return "<details><summary>Order of the steps</summary>\n\n" + "\n".join(lines) + "\n\n</details>"


def render_markdown(document: dict[str, Any], *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The comment, at most `max_chars` characters long (at least MIN_MAX_CHARS). The head, verdict, table
    and summary are always there; the banner, refusals and warnings too, their lists cut to their first
    items when they do not fit whole; then the detail blocks that fit, whole."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars is {max_chars:,}: the Markdown rendering needs at least {MIN_MAX_CHARS:,}")
    head = _head(document)
    table = _table(document)
    parts = [p for p in (_banner(document), _refusals(document), _warnings(document)) if p]
    footer = f"{summary_line(document, show=_head_text)}\n\nNothing was changed."
    optional = _image_blocks(document)
    graph = _mermaid(document)
    if graph:
        optional.append(graph)

    # Room for the line saying how many detail blocks were left out, should any be.
    note = len(_omitted_note(len(optional), len(optional), max_chars)) if optional else 0
    fixed = [head, table, footer] + ([" " * note] if note else [])
    if not _fit_lists(parts, max_chars - _joined_length([p for p in fixed if p])):
        return _fallback(document, table, footer, max_chars)

    kept = [p for p in [head, table, *(part.text() for part in parts)] if p]
    used = _joined_length([*kept, footer])
    included: list[str] = []
    for block in optional:
        room = max_chars - used - len(block) - 2
        if room >= (note + 2 if len(included) + 1 < len(optional) else 0):
            included.append(block)
            used += len(block) + 2
    omitted = len(optional) - len(included)
    note_line = [_omitted_note(omitted, len(optional), max_chars)] if omitted else []
    return "\n\n".join([*kept, *included, *note_line, footer]) + "\n"


def _head(document: dict[str, Any]) -> str:
    head = [f"#### {target_line(document, show=_head_text)}", "", _verdict(document)]
    partial = document["info"].get("partial")
    if partial:
        what = _head_text(partial["description"])
        head += ["", f"> [!NOTE]\n> Partial plan ({what}): other images were not considered."]
    return "\n".join(head)


HEAD_TEXT_MAX = 120  # characters of one foreign string in the head or the summary, before escaping


def _head_text(value: str) -> str:
    """A foreign string in the parts always kept (a state path, a --target list): clipped, so that those
    parts stay small under any budget, then escaped."""
    return prose(value if len(value) <= HEAD_TEXT_MAX else value[: HEAD_TEXT_MAX - 1] + "…")


def _joined_length(parts: list[str]) -> int:
    """The length of `parts` joined by blank lines, with the final newline."""
    return sum(len(p) for p in parts) + 2 * (len(parts) - 1) + 1


def _fit_lists(parts: list[_Part], room: int) -> bool:
    """Keep every item when all fit in `room` characters; else cut the lists, keeping items in turns (the
    first of every list, then the second, ...) while they fit. False when not even the cut parts fit."""
    if _parts_length(parts) <= room:
        return True
    lists = [items for part in parts for items in part.lists]
    for items in lists:
        items.kept = 0
    room -= _parts_length(parts)
    growing = [items for items in lists if items.items]
    while room >= 0 and growing:
        for items in list(growing):
            grown = items.grown_by(items.kept)
            if grown > room:
                growing.remove(items)
                continue
            items.kept += 1
            room -= grown
            if items.kept == len(items.items):
                growing.remove(items)
    return room >= 0


def _parts_length(parts: list[_Part]) -> int:
    """What `parts` add to the comment, each with the blank line before it."""
    return sum(len(part.text()) + 2 for part in parts)


def _omitted_note(omitted: int, total: int, max_chars: int) -> str:
    return (
        f"_{omitted} of {total} detail blocks were left out to stay under {max_chars:,} characters; "
        "`reconciler plan --format text` shows everything._"
    )


def _fallback(document: dict[str, Any], table: str, footer: str, max_chars: int) -> str:
    """Not even the first lines of the must-keep parts fit: the verdict, the table if it fits, and where to
    see the plan."""
    note = f"_This plan is too large to show in {max_chars:,} characters: {MORE_SHOWN.replace('every one', 'it')}._"
    parts = [_verdict(document), table, note, footer]
    if _joined_length(parts) > max_chars:
        parts.remove(table)
    return "\n\n".join(p for p in parts if p) + "\n"
