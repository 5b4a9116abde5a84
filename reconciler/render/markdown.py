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
from typing import Any

from reconciler.plan import ACTION_KINDS
from reconciler.render import DEFAULT_MAX_CHARS, escape
from reconciler.render.text import SYMBOLS, Style, describe_action, summary_line, target_line

MERMAID_MAX_ACTIONS = 30


def _md_value(value: Any) -> str:
    if value is None:
        return "(none)"
    return escape.code(value if isinstance(value, str) else str(value).lower())


MARKDOWN = Style(name=escape.code, value=_md_value)
prose = escape.markdown  # running text that is not the tool's own: messages, hints
# What a reviewer must weigh before applying: each takes something away (an image, a partner's access, the
# protection that keeps an image from being deleted). A strict bracket's unprotect counts too: the image
# is unprotected while it runs.
RISKY_KINDS = ("delete", "unshare", "unprotect")
RISKY_WORDS = {
    "delete": ("deletion", "deletes"),
    "unshare": ("unshare", "unshares"),
    "unprotect": ("unprotect", "unprotects"),
}


def _verdict(document: dict[str, Any]) -> str:
    summary = document["summary"]
    total = sum(summary["actions"].values())
    refusals = summary["refusals"]
    parts = [f"{total} action{'s' if total != 1 else ''}"]
    risky = {kind: summary["actions"].get(kind, 0) for kind in RISKY_KINDS}
    for kind, count in risky.items():
        if count:
            parts.append(f"{count} {RISKY_WORDS[kind][0]}{'s' if count != 1 else ''}")
    if refusals:
        parts.append(f"{refusals} refused")
    if refusals:
        head = "**Cannot be applied**"
    elif not total:
        head = "**No changes**"
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


def _banner(document: dict[str, Any]) -> str:
    risky = [a for a in document["actions"] if a["kind"] in RISKY_KINDS]
    if not risky:
        return ""
    present = [RISKY_WORDS[kind][1] for kind in RISKY_KINDS if any(a["kind"] == kind for a in risky)]
    verbs = ", ".join(present[:-1]) + (" and " if len(present) > 1 else "") + present[-1]
    lines = ["> [!WARNING]", f"> This plan {verbs}:"]
    for action in risky:
        what = (
            f"the share with {escape.code(action['member'])} of image {_image(action)}"
            if action["kind"] == "unshare"
            else f"image {_image(action)}"
        )
        where = f"of {escape.code(action['key'])} in {prose(action['region'])}"
        lines.append(f"> - {action['kind']} {what} {where}: {prose(action['reason']['message'])}")
    return "\n".join(lines)


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


def _refusals(document: dict[str, Any]) -> str:
    if not document["refusals"]:
        return ""
    lines = ["### Refused", ""]
    for refusal in document["refusals"]:
        lines.append(f"- **{_code_word(refusal['code'])}** {_said(refusal)}")
        if refusal["hint"]:
            lines.append(f"  - hint: {prose(refusal['hint'])}")
    return "\n".join(lines)


def _warnings(document: dict[str, Any]) -> str:
    if not document["warnings"]:
        return ""
    lines = ["### Warnings", ""]
    for warning in document["warnings"]:
        lines.append(f"- {_code_word(warning['code'])} {_said(warning)}")
    return "\n".join(lines)


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
    partial = document["info"].get("partial")
    head = [f"#### {target_line(document, show=prose)}", "", _verdict(document)]
    if partial:
        what = prose(partial["description"])
        head += ["", f"> [!NOTE]\n> Partial plan ({what}): other images were not considered."]
    required = [
        "\n".join(head),
        _table(document),
        _banner(document),
        _refusals(document),
        _warnings(document),
    ]
    footer = f"{summary_line(document)}\n\nNothing was changed."
    optional = [*_image_blocks(document)]
    graph = _mermaid(document)
    if graph:
        optional.append(graph)

    parts = [p for p in required if p]
    used = sum(len(p) + 2 for p in parts) + len(footer)
    omitted_blocks = 0
    included: list[str] = []
    for block in optional:
        # Reserve room for the note saying what was left out.
        if used + len(block) + 2 + 200 <= max_chars:
            included.append(block)
            used += len(block) + 2
        else:
            omitted_blocks += 1
    parts += included
    if omitted_blocks:
        parts.append(
            f"_{omitted_blocks} of {len(optional)} detail blocks were left out to stay under {max_chars:,} "
            "characters; `reconciler plan --format text` shows everything._"
        )
    parts.append(footer)
    return "\n\n".join(parts) + "\n"
