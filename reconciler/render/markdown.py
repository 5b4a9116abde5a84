"""The Markdown rendering, for a pull-request comment, made from the plan's JSON document.

A reviewer should know in ten seconds whether the change is safe: the target, a one-line verdict, a
table of regions by action kind, a banner naming every image deleted or unshared, the refusals with their
hints, then one collapsed block per image and, when small, a Mermaid graph of the steps. A size budget
(GitHub refuses comments over 65,536 characters; 5% of it is left for the CI recipe's wrapper) never cuts
the verdict, a risky change's line or a refusal with its hint, cuts the rest from the least useful up
(`render_markdown`), never inside a block, and says what it left out.

What the tool did not write itself (from the manifests or from the cloud) never becomes Markdown:
names, keys, ids, regions and values go in code spans, messages are escaped (`escape.markdown`), strings
inside HTML are HTML-escaped, Mermaid labels use character codes. So `<!--` in a description cannot hide
the rest of the comment, `@someone` in a name cannot ping, and `|` cannot split a table row.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from reconciler.plan_kinds import ACTION_KINDS, KINDS, RISKY_KINDS, Risk
from reconciler.render import DEFAULT_MAX_CHARS, MIN_MAX_CHARS, escape
from reconciler.render.text import Style, describe_action, key_shown, summary_line, target_line

MERMAID_MAX_ACTIONS = 30
# The block of the actions without a key (accept, reject), after the blocks of the image keys.
KEYLESS_BLOCK = "shared with this project"


def _md_value(value: Any) -> str:
    if value is None:
        return "(none)"
    return escape.code(value if isinstance(value, str) else str(value).lower())


prose = escape.markdown  # running text that is not the tool's own: messages, hints
MARKDOWN = Style(name=escape.code, value=_md_value, prose=prose)


def verdict(document: dict[str, Any]) -> str:
    summary = document["summary"]
    total = sum(summary["actions"].values())
    refusals = summary["refusals"]
    parts = [f"{total} action{'s' if total != 1 else ''}"]
    risky = {kind: summary["actions"].get(kind, 0) for kind in RISKY_KINDS}
    for kind, count in risky.items():
        if count:
            parts.append(f"{count} {_plural(_risk(kind).noun, count)}")
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


def _risk(kind: str) -> Risk:
    """A risky kind's words (plan_kinds.RISKY_KINDS: what a reviewer must weigh before applying)."""
    risk = KINDS[kind].risk
    assert risk is not None, f"{kind} is not a risky kind"
    return risk


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


def _kind_label(kind: str) -> str:
    """A kind as a line starts with it: its symbol and its name, in a code span (`+ create`)."""
    return f"`{KINDS[kind].symbol} {kind}`"


def _action_key(action: dict[str, Any]) -> str:
    """An action's key in a code span; an action without one (accept, reject) names its image instead."""
    return escape.code(action["key"]) if action["key"] else f"image {_image(action)}"


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _banner(document: dict[str, Any], *, reasons: bool = True) -> str:
    """Every risky change, one line each, kind by kind: never cut, whatever the budget. Without `reasons`,
    each line stops after where the change is (the form a budget too small for the reasons keeps)."""
    by_kind = {kind: [a for a in document["actions"] if a["kind"] == kind] for kind in RISKY_KINDS}
    present = [kind for kind in RISKY_KINDS if by_kind[kind]]
    if not present:
        return ""
    verbs = [_risk(kind).verb for kind in present]
    said = ", ".join(verbs[:-1]) + (" and " if len(verbs) > 1 else "") + verbs[-1]
    lines = [_banner_line(action, reasons=reasons) for kind in present for action in by_kind[kind]]
    return "\n".join(["> [!WARNING]", f"> This plan {said}:", *lines])


def _banner_line(action: dict[str, Any], *, reasons: bool) -> str:
    if action["kind"] == "unshare":
        what = f"the share with {escape.code(action['member'])} of image {_image(action)}"
    elif action["kind"] == "stop_instance":
        what = f"instance {escape.code(action['server_name'])}"
    else:
        what = f"image {_image(action)}"
    where = f"of {escape.code(action['key'])} in {prose(action['region'])}"
    line = f"> - {action['kind']} {what} {where}"
    return f"{line}: {prose(action['reason']['message'])}" if reasons else line


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
    """Every refusal with its hint: never cut, whatever the budget."""
    if not document["refusals"]:
        return ""
    items = []
    for refusal in document["refusals"]:
        item = f"- **{_code_word(refusal['code'])}** {_said(refusal)}"
        if refusal["hint"]:
            item += f"\n  - hint: {prose(refusal['hint'])}"
        items.append(item)
    return "\n".join(["### Refused", "", *items])


@dataclass(frozen=True, slots=True)
class _Cuttable:
    """A list a tight budget may shorten (the warnings, the other changes): its first items, then one line
    counting the rest by group (a warning's code, an action's kind)."""

    heading: str
    items: tuple[str, ...]
    groups: tuple[str, ...]  # the group of each item, as shown in the counting line
    noun: str  # what one item is, e.g. "warning", for the counting line when no item is shown

    def text(self, kept: int) -> str:
        """The heading, the first `kept` items and, when that is not all, the line counting the rest."""
        left_out = len(self.items) - kept
        tail = [self._count_line(left_out)] if left_out else []
        return "\n".join([self.heading, "", *self.items[:kept], *tail])

    def _count_line(self, left_out: int) -> str:
        counts = Counter(self.groups[len(self.items) - left_out :])
        said = ", ".join(f"{n:,} {group}" for group, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))
        if left_out == len(self.items):
            return f"- {left_out:,} {_plural(self.noun, left_out)}: {said}"
        return f"- … and {left_out:,} more: {said}"


def _warnings(document: dict[str, Any]) -> _Cuttable:
    warnings = document["warnings"]
    items = tuple(f"- {_code_word(warning['code'])} {_said(warning)}{_steps(warning)}" for warning in warnings)
    return _Cuttable("### Warnings", items, tuple(_code_word(w["code"]) for w in warnings), "warning")


def _steps(warning: dict[str, Any]) -> str:
    """A warning's steps (its `details.steps`), one indented item each under it; "" when it has none."""
    steps = warning.get("details", {}).get("steps", [])
    return "".join(f"\n  - {prose(step)}" for step in steps)


def _others(actions: list[dict[str, Any]]) -> _Cuttable:
    """One short line per low-risk action whose detail block was left out (the banner shows the risky ones)."""
    items = tuple(f"- {_kind_label(a['kind'])} {_action_key(a)} {prose(a['region'])}" for a in actions)
    return _Cuttable("### Other changes", items, tuple(KINDS[a["kind"]].summary for a in actions), "other change")


@dataclass(frozen=True, slots=True)
class _Block:
    """A collapsed detail block, and the low-risk actions it shows (none for the graph)."""

    text: str
    actions: tuple[dict[str, Any], ...] = ()


def _image_blocks(document: dict[str, Any]) -> list[_Block]:
    by_id = {a["id"]: a for a in document["actions"]}
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for action in document["actions"]:
        by_key[action["key"]].append(action)
    blocks = []
    for key in sorted(by_key, key=lambda k: (k == "", k)):  # the keyless block last
        actions = by_key[key]
        kinds = Counter(a["kind"] for a in actions)
        summary = ", ".join(
            f"{n} {k}" if n > 1 else k for k, n in sorted(kinds.items(), key=lambda i: ACTION_KINDS.index(i[0]))
        )
        title = escape.html(key) if key else KEYLESS_BLOCK
        lines = [f"<details><summary><b>{title}</b>: {summary}</summary>", ""]
        for action in actions:
            detail = describe_action(action, MARKDOWN)
            lines.append(
                f"- {_kind_label(action['kind'])} {prose(action['region'])}" + (f": {detail}" if detail else "")
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
        blocks.append(_Block("\n".join(lines), tuple(a for a in actions if a["kind"] not in RISKY_KINDS)))
    return blocks


def _mermaid(document: dict[str, Any]) -> str:
    actions = document["actions"]
    if not actions or len(actions) > MERMAID_MAX_ACTIONS:
        return ""
    names = {a["id"]: f"a{i}" for i, a in enumerate(actions)}
    lines = ["```mermaid", "graph LR"]
    for action in actions:
        label = escape.mermaid(f"{action['kind']} {key_shown(action['key'])} {action['region']}")
        lines.append(f'  {names[action["id"]]}["{label}"]')
    for action in actions:
        for dependency in action["depends_on"]:
            if dependency["id"] in names:
                lines.append(f"  {names[dependency['id']]} --> {names[action['id']]}")
    lines.append("```")
    return "<details><summary>Order of the steps</summary>\n\n" + "\n".join(lines) + "\n\n</details>"


# What the CI recipe wraps around the comment (a heading, a marker to find the comment again, a link to the
# run) must fit too: the comment itself uses at most 95% of --max-chars.
WRAPPER_PERCENT = 5


def budget_for(max_chars: int) -> int:
    """The characters the comment itself may use out of `max_chars`; the rest is the recipe's wrapper's."""
    return max_chars * (100 - WRAPPER_PERCENT) // 100


@dataclass(frozen=True, slots=True)
class _Content:
    """Everything the comment can show, made once; a _Layout says how much of it a budget keeps."""

    max_chars: int
    budget: int  # the characters this rendering may use: budget_for(max_chars), or one root's share of it
    head: str  # the target, the verdict (and a partial plan's note)
    table: str
    banner: str  # never cut
    short_banner: str  # the banner without the reasons
    refusals: str  # never cut
    warnings: _Cuttable
    blocks: tuple[_Block, ...]
    footer: str  # the summary and, alone in its comment, "Nothing was changed."
    # One root's section of a comment for several roots: the comment's own head says when the whole is over
    # its budget, and "Nothing was changed." closes the comment, not each section.
    shared: bool = False


@dataclass(frozen=True, slots=True)
class _Layout:
    """How much of the cuttable content a comment shows."""

    blocks: frozenset[int]  # the indices of the detail blocks kept
    warnings: int  # how many warnings are listed (the rest are counted by code)
    others: int | None = None  # how many other changes are listed, None: all (the rest are counted by kind)
    lean: bool = False  # not even the counts fit: no table, no warnings, no other changes
    reasons: bool = True  # the banner gives each risky change's reason


def render_markdown(document: dict[str, Any], *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The comment, at most 95% of `max_chars` characters long (`max_chars` at least MIN_MAX_CHARS) unless
    what must stay does not fit. What must stay: the head with the verdict, one line per risky change (the
    banner), every refusal with its hint, the summary. A plan that fits is shown whole. Else what goes, in
    this order: the detail blocks (each low-risk action whose block goes gets a short line instead), the
    warnings (the first that fit stay, the rest are counted by code), those short lines (counted by kind
    likewise), then the reasons on the banner's lines, then the table and the counts. A closing line says
    what went and where the full plan is; a comment still over its budget says so under the verdict."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars is {max_chars:,}: the Markdown rendering needs at least {MIN_MAX_CHARS:,}")
    content = _content(document, max_chars)
    return _compose(content, _layout(content))


class PlanSection:
    """One plan as a section of a comment for several roots (render/roots.py), made once and composed for
    any share of the comment's budget. Its head is `title` (the root), then the target and the verdict; it
    ends with the plan's summary. What must stay is what render_markdown never cuts; the rest is cut in the
    same order, and the closing line says what went from this root's share."""

    def __init__(self, document: dict[str, Any], *, title: str, max_chars: int) -> None:
        self._content = _content(document, max_chars, title=title)

    def render(self, budget: int) -> str:
        """The section in at most `budget` characters, or its must-stay part when that does not fit."""
        content = replace(self._content, budget=budget)
        return _compose(content, _layout(content))

    @property
    def whole(self) -> int:
        """Its length shown whole."""
        return len(self.render(sys.maxsize))

    @property
    def least(self) -> int:
        """The length of its must-stay part (with the closing line saying what went): the shortest it renders,
        which `render` gives for any budget at least this long."""
        return least_length(self.render)


def least_length(render: Callable[[int], str]) -> int:
    """The shortest text `render(budget)` gives: what it gives for no room at all, unless a layout it tries
    first fits in that and is shorter still (a plan with nothing to cut is shown whole)."""
    length = len(render(0))
    while (shorter := len(render(length))) < length:
        length = shorter
    return length


def _layout(content: _Content) -> _Layout:
    """The most of `content` that fits its budget, cut in the order render_markdown gives."""
    warnings = len(content.warnings.items)
    whole = _Layout(frozenset(range(len(content.blocks))), warnings)
    if _fits(content, whole):
        return whole
    counted = _Layout(frozenset(), 0, others=0)  # no detail block; warnings and other changes only counted
    for bare in (replace(counted, warnings=warnings, others=None), replace(counted, others=None), counted):
        if _fits(content, bare):
            return _grown(content, bare)
    short = replace(counted, reasons=False)
    return short if _fits(content, short) else replace(short, lean=True)


def _content(document: dict[str, Any], max_chars: int, *, title: str | None = None) -> _Content:
    blocks = _image_blocks(document)
    graph = _mermaid(document)
    if graph:
        blocks.append(_Block(graph))
    summary = summary_line(document, show=head_text)
    return _Content(
        max_chars=max_chars,
        budget=budget_for(max_chars),
        head=_head(document, title),
        table=_table(document),
        banner=_banner(document),
        short_banner=_banner(document, reasons=False),
        refusals=_refusals(document),
        warnings=_warnings(document),
        blocks=tuple(blocks),
        footer=summary if title is not None else f"{summary}\n\nNothing was changed.",
        shared=title is not None,
    )


def _fits(content: _Content, layout: _Layout) -> bool:
    return len(_compose(content, layout)) <= content.budget


def _grown(content: _Content, bare: _Layout) -> _Layout:
    """`bare` (which fits) with what the budget still holds, in the order of the cuts: detail blocks when
    every warning and other change is listed, else warnings when every other change is, else other changes."""
    if bare.others is None and bare.warnings == len(content.warnings.items):
        return _with_blocks(content, bare)
    if bare.others is None:
        return _most(content, lambda kept: replace(bare, warnings=kept), len(content.warnings.items))
    return _most(content, lambda kept: replace(bare, others=kept), len(_others_of(content, bare).items))


def _with_blocks(content: _Content, bare: _Layout) -> _Layout:
    """The detail blocks that fit, in order, each whole. A kept block takes the place of its actions' short
    lines, so it costs its length less theirs; counting the closing line at its longest keeps this safe."""
    room = content.budget - len(_compose(content, bare))
    kept = []
    for index, block in enumerate(content.blocks):
        cost = len(block.text) + 2 - sum(len(line) + 1 for line in _others(list(block.actions)).items)
        if cost <= room:
            kept.append(index)
            room -= cost
    grown = replace(bare, blocks=frozenset(kept))
    return grown if _fits(content, grown) else bare


def _most(content: _Content, layout_with: Callable[[int], _Layout], total: int) -> _Layout:
    """The layout listing the most items that fits, by bisection: `layout_with(0)` fits."""
    low, high = 0, total + 1  # layout_with(low) fits; layout_with(high) does not, or is past the end
    while high - low > 1:
        middle = (low + high) // 2
        if _fits(content, layout_with(middle)):
            low = middle
        else:
            high = middle
    return layout_with(low)


def _others_of(content: _Content, layout: _Layout) -> _Cuttable:
    """The short lines of the low-risk actions whose detail blocks `layout` leaves out."""
    left_out = [i for i in range(len(content.blocks)) if i not in layout.blocks]
    return _others([action for i in left_out for action in content.blocks[i].actions])


def _compose(content: _Content, layout: _Layout) -> str:
    others = _others_of(content, layout)
    listed = len(others.items) if layout.others is None else layout.others
    parts = [content.head]
    if not layout.lean:
        parts.append(content.table)
    parts += [content.banner if layout.reasons else content.short_banner, content.refusals]
    if not layout.lean:
        parts += [content.warnings.text(layout.warnings) if content.warnings.items else ""]
        parts += [others.text(listed) if others.items else ""]
    parts += [block.text for i, block in enumerate(content.blocks) if i in layout.blocks]
    composed = _joined([p for p in [*parts, _closing_line(content, layout, others, listed), content.footer] if p])
    if len(composed) <= content.budget or content.shared:
        return composed
    rest = [p for p in [*parts[1:], _closing_line(content, layout, others, listed, over=True), content.footer] if p]
    return _joined([content.head, _over_budget(content, len(_joined([content.head, *rest]))), *rest])


def _joined(parts: list[str]) -> str:
    return "\n\n".join(parts) + "\n"


def _closing_line(content: _Content, layout: _Layout, others: _Cuttable, listed: int, *, over: bool = False) -> str:
    """What the layout left out and where to see it all; empty when nothing was. `over`: the comment is still
    over its budget."""
    warnings = len(content.warnings.items)
    cuts = []
    if layout.lean and content.table:
        cuts.append("the table")
    if not layout.reasons and content.banner:
        cuts.append("the reasons of the risky changes")
    if len(layout.blocks) < len(content.blocks):
        cuts.append(_of(len(content.blocks) - len(layout.blocks), len(content.blocks), "detail block"))
    if layout.warnings < warnings:
        cuts.append(_of(warnings - layout.warnings, warnings, "warning"))
    if listed < len(others.items):
        cuts.append(_of(len(others.items) - listed, len(others.items), "other change"))
    if not cuts:
        return ""
    said = ", ".join(cuts[:-1]) + (" and " if len(cuts) > 1 else "") + cuts[-1]
    if content.shared:
        # The same words whatever this root's share, so its length does not depend on the share.
        return (
            f"_Left out to fit this root's share of the comment's {budget_for(content.max_chars):,} characters: "
            f"{said}. `reconciler plan --format text` shows everything._"
        )
    return (
        f"_Left out to {'come as close as it can to' if over else 'stay under'} {content.budget:,} characters (95% "
        f"of --max-chars {content.max_chars:,}; the rest is room for the CI job's wrapper): {said}. The saved plan "
        "(`reconciler plan --out`) and `reconciler plan --format text` show everything._"
    )


def _of(part: int, whole: int, noun: str) -> str:
    return f"{part:,} of {whole:,} {_plural(noun, whole)}"


def _over_budget(content: _Content, length_without: int) -> str:
    """The note saying plainly that the comment is over its budget."""
    return over_budget_note(
        length_without,
        lambda total: (
            f"> [!CAUTION]\n> This comment is {total:,} characters long, over its budget of {content.budget:,} "
            f"(95% of --max-chars {content.max_chars:,}): it lists every risky change and every refusal, which "
            "are never cut, and leaves out everything else (see the end)."
        ),
    )


def over_budget_note(length_without: int, note_for: Callable[[int], str]) -> str:
    """A note that names the length of the comment it is part of (`length_without` plus itself and the blank
    line before it): found by trying, since the note's own digits can lengthen it."""
    total = length_without
    while True:
        note = note_for(total)
        if length_without + len(note) + 2 == total:
            return note
        total = length_without + len(note) + 2


def _head(document: dict[str, Any], title: str | None = None) -> str:
    """The target and the verdict; under `title` (one root's section) the target is a line of its own."""
    target = target_line(document, show=head_text)
    head = [f"#### {target}"] if title is None else [f"#### {title}", "", target]
    head += ["", verdict(document)]
    partial = document["info"].get("partial")
    if partial:
        what = head_text(partial["description"])
        head += ["", f"> [!NOTE]\n> Partial plan ({what}): other images were not considered."]
    return "\n".join(head)


HEAD_TEXT_MAX = 120  # characters of one foreign string in the head or the summary, before escaping


def head_text(value: str) -> str:
    """A foreign string in the parts always kept (a state path, a --target list): clipped, so that those
    parts stay small under any budget, then escaped."""
    return prose(value if len(value) <= HEAD_TEXT_MAX else value[: HEAD_TEXT_MAX - 1] + "…")
