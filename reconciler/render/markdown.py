"""The Markdown rendering, for a pull-request comment, made from the plan's JSON document.

A reviewer should know in ten seconds whether the change is safe: the target, a one-line verdict, a
table of regions by action kind, a banner naming every image deleted or unshared, the refusals with their
hints, then one collapsed block per image and, when small, a Mermaid graph of the steps. A size budget
(GitHub refuses comments over 65,536 characters) always keeps the verdict, the table, the banner, the
refusals and the warnings, never cuts inside a block, and says what it left out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from reconciler.plan import ACTION_KINDS
from reconciler.render import DEFAULT_MAX_CHARS
from reconciler.render.text import SYMBOLS, describe_action, summary_line, target_line

MERMAID_MAX_ACTIONS = 30


def _verdict(document: dict[str, Any]) -> str:
    summary = document["summary"]
    total = sum(summary["actions"].values())
    deletions = summary["actions"].get("delete", 0)
    refusals = summary["refusals"]
    parts = [f"{total} action{'s' if total != 1 else ''}"]
    if deletions:
        parts.append(f"{deletions} deletion{'s' if deletions != 1 else ''}")
    if refusals:
        parts.append(f"{refusals} refused")
    if refusals:
        head = "**Cannot be applied**"
    elif not total:
        head = "**No changes**"
    elif deletions or summary["actions"].get("unshare"):
        head = "**Review the removals**"
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
        lines.append(f"| {region} | " + " | ".join(str(counts[region][k] or "") for k in kinds) + " |")
    return "\n".join(lines)


def _banner(document: dict[str, Any]) -> str:
    removals = [a for a in document["actions"] if a["kind"] in ("delete", "unshare")]
    if not removals:
        return ""
    lines = ["> [!WARNING]", "> This plan removes:"]
    for action in removals:
        what = (
            f"image `{action.get('name') or action['image_id']}`"
            if action["kind"] == "delete"
            else f"the share with `{action['member']}`"
        )
        lines.append(
            f"> - {action['kind']} {what} of **{action['key']}** in {action['region']}: {action['reason']['message']}"
        )
    return "\n".join(lines)


def _refusals(document: dict[str, Any]) -> str:
    if not document["refusals"]:
        return ""
    lines = ["### Refused", ""]
    for refusal in document["refusals"]:
        where = " ".join(p for p in (refusal["key"], refusal["region"]) if p)
        source = f" (`{refusal['source']}`)" if refusal["source"] else ""
        lines.append(f"- **{refusal['code']}** {where}: {refusal['message']}{source}")
        if refusal["hint"]:
            lines.append(f"  - hint: {refusal['hint']}")
    return "\n".join(lines)


def _warnings(document: dict[str, Any]) -> str:
    if not document["warnings"]:
        return ""
    lines = ["### Warnings", ""]
    for warning in document["warnings"]:
        where = " ".join(p for p in (warning["key"], warning["region"]) if p)
        source = f" (`{warning['source']}`)" if warning["source"] else ""
        lines.append(f"- {warning['code']} {where}: {warning['message']}{source}")
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
        lines = [f"<details><summary><b>{key}</b>: {summary}</summary>", ""]
        for action in actions:
            detail = describe_action(action)
            lines.append(
                f"- `{SYMBOLS[action['kind']]} {action['kind']}` {action['region']}" + (f": {detail}" if detail else "")
            )
            reason = action["reason"]
            lines.append(f"  - {reason['message']}" + (f" (`{reason['source']}`)" if reason["source"] else ""))
            waits = [
                f"{by_id[d['id']]['kind']} {by_id[d['id']]['region']}" for d in action["depends_on"] if d["id"] in by_id
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
        label = f"{action['kind']} {action['key']} {action['region']}".replace('"', "'")
        lines.append(f'  {names[action["id"]]}["{label}"]')
    for action in actions:
        for dependency in action["depends_on"]:
            if dependency["id"] in names:
                lines.append(f"  {names[dependency['id']]} --> {names[action['id']]}")
    lines.append("```")
    return "<details><summary>Order of the steps</summary>\n\n" + "\n".join(lines) + "\n\n</details>"


def render_markdown(document: dict[str, Any], *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    partial = document["info"].get("partial")
    head = [f"#### {target_line(document)}", "", _verdict(document)]
    if partial:
        head += ["", f"> [!NOTE]\n> Partial plan ({partial['description']}): other images were not considered."]
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
