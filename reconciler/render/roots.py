"""The text and Markdown renderings of a run over several roots: one verdict for the whole run on top, then
one section per root in the order given, each the root's own rendering (render/text.py, render/markdown.py)
or why it could not be planned. Pure: made from the entries of reconciler.roots_document.

Everything that is not the tool's own words (a root as given, a target, an error's message, hint and
details: from files and servers) is escaped as the single-root renderings escape it: `escape.text` for a
terminal, code spans and `escape.markdown` for a comment.

The Markdown comment shares one budget (95% of --max-chars, as for one root) between the roots. What must
stay, for every root: its head and verdict, one line per risky change, every refusal with its hint, its
summary, and an errored root's error and hint. Each root first gets what must stay of it; then every root
is given the same share of what is left, roots that fit whole in less giving their rest to the others
(`_shares`), and each root is cut within its share as render_markdown cuts one plan (detail blocks first).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reconciler.plan_kinds import KINDS, RISKY_KINDS
from reconciler.render import MIN_MAX_CHARS, escape
from reconciler.render.markdown import (
    HEAD_TEXT_MAX,
    PlanSection,
    budget_for,
    head_text,
    least_length,
    over_budget_note,
    prose,
    verdict,
)
from reconciler.render.text import render_text, target_line

Entry = dict[str, Any]


def section_heading(index: int, total: int, root: str) -> str:
    """The line that opens root number `index` (from 1) of `total` in a terminal, while planning and while
    applying alike: `== root 2 of 3: teams/apps ==`."""
    return f"== root {index} of {total}: {escape.text(root)} =="


# -- What the run holds, counted --------------------------------------------------------------------


def _plans(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [entry["plan"] for entry in entries if "plan" in entry]


def _actions(entries: Sequence[Entry]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for plan in _plans(entries):
        counts.update(plan["summary"]["actions"])
    return counts


def _refusals(entries: Sequence[Entry]) -> int:
    return sum(plan["summary"]["refusals"] for plan in _plans(entries))


def _errors(entries: Sequence[Entry]) -> int:
    return len(entries) - len(_plans(entries))


def _plural(word: str, count: int) -> str:
    return word if count == 1 else f"{word}s"


def _counted(count: int, word: str) -> str:
    return f"{count} {_plural(word, count)}"


def _risky(counts: Counter[str]) -> list[str]:
    """The risky kinds' counts in words ("1 deletion"), in RISKY_KINDS order."""
    return [_counted(counts[kind], _risk_noun(kind)) for kind in RISKY_KINDS if counts[kind]]


def _risk_noun(kind: str) -> str:
    risk = KINDS[kind].risk
    assert risk is not None, f"{kind} is not a risky kind"
    return risk.noun


def _unappliable(entries: Sequence[Entry]) -> list[tuple[str, str]]:
    """Each root that cannot be applied, with why: it could not be planned, or its plan has refusals."""
    blocked = []
    for entry in entries:
        if "plan" not in entry:
            blocked.append((entry["root"], "could not be planned"))
        elif entry["plan"]["summary"]["refusals"]:
            blocked.append((entry["root"], "refused"))
    return blocked


# -- Text ---------------------------------------------------------------------------------------------


def render_roots_text(entries: Sequence[Entry], *, command: str = "plan") -> str:
    """The run for a terminal: the verdict of the whole run, one section per root (its `section_heading`,
    then its plan as render_text shows it, or its error), then, for `plan`, "Nothing was changed." once and
    which roots cannot be applied."""
    lines = [_text_verdict(entries), ""]
    for index, entry in enumerate(entries, start=1):
        lines.append(section_heading(index, len(entries), entry["root"]))
        if "plan" in entry:
            lines += render_text(entry["plan"], applying=True).rstrip("\n").split("\n")
        else:
            lines += _text_error(entry, command)
        lines.append("")
    if command == "plan":
        lines.append("Nothing was changed.")
    blocked = _unappliable(entries)
    if blocked:
        said = ", ".join(f"{escape.text(root)} ({why})" for root, why in blocked)
        lines.append(f"Cannot be applied until resolved: {said}.")
    return "\n".join(lines) + "\n"


def _text_verdict(entries: Sequence[Entry]) -> str:
    """`3 roots: 7 actions (1 deletion), 1 refused, 2 warnings; 1 root could not be planned.`"""
    counts = _actions(entries)
    total = sum(counts.values())
    parts = []
    if total:
        risky = _risky(counts)
        parts.append(_counted(total, "action") + (f" ({', '.join(risky)})" if risky else ""))
    refusals = _refusals(entries)
    if refusals:
        parts.append(f"{refusals} refused")
    warnings = sum(plan["summary"]["warnings"] for plan in _plans(entries))
    if warnings:
        parts.append(_counted(warnings, "warning"))
    if not total and not refusals and _plans(entries):
        parts.insert(0, "no changes")
    said = ", ".join(parts)
    errors = _errors(entries)
    if errors:
        said += ("; " if said else "") + f"{_counted(errors, 'root')} could not be planned"
    return f"{_counted(len(entries), 'root')}: {said}."


def _text_error(entry: Entry, command: str) -> list[str]:
    error = entry["error"]
    lines = [f"reconciler {command} · {escape.text(entry['target'])}"] if entry["target"] is not None else []
    lines.append(f"error: {escape.text(error['message'])}")
    lines += [escape.text(_indented(line)) for line in error["details"]]
    if error["hint"]:
        lines.append(f"hint: {escape.text(error['hint'])}")
    return lines


def _indented(detail: str) -> str:
    """A detail line under its error: the tool's details are indented already, others are indented here."""
    return detail if detail.startswith(" ") else f"  {detail}"


# -- Markdown -------------------------------------------------------------------------------------------


class _Section(Protocol):
    """One root's part of the comment: its length whole and at the least, and its text within a budget."""

    @property
    def whole(self) -> int: ...

    @property
    def least(self) -> int: ...

    def render(self, budget: int) -> str: ...


class _ErrorSection:
    """A root that could not be planned: its head, target, error and hint always; its details when they fit
    (else a line counting them)."""

    def __init__(self, entry: Entry, *, title: str) -> None:
        error = entry["error"]
        target = f"reconciler plan · {head_text(entry['target'])}" if entry["target"] is not None else None
        head = [
            f"#### {title}",
            *(["", target] if target else []),
            "",
            f"**Could not be planned**: {prose(error['message'])}",
        ]
        self._head = "\n".join(head)
        self._details = "\n".join(f"- {prose(line.strip())}" for line in error["details"])
        self._hint = f"Hint: {prose(error['hint'])}" if error["hint"] else ""
        count = len(error["details"])
        self._counted = f"_{_counted(count, 'detail')} of this error left out to fit this root's share of the comment._"

    def render(self, budget: int) -> str:
        whole = self._text(self._details)
        return whole if len(whole) <= budget else self._text(self._counted if self._details else "")

    def _text(self, details: str) -> str:
        return "\n\n".join(part for part in (self._head, details, self._hint) if part) + "\n"

    @property
    def whole(self) -> int:
        return len(self.render(sys.maxsize))

    @property
    def least(self) -> int:
        return least_length(self.render)


def render_roots_markdown(entries: Sequence[Entry], *, max_chars: int) -> str:
    """One comment for the whole run, at most 95% of `max_chars` characters long (`max_chars` at least
    MIN_MAX_CHARS) unless what must stay of every root does not fit: a head naming the run, its verdict, a
    table of the roots with each one's verdict, then one section per root, sharing the budget (see the
    module's docstring). A comment still over its budget says so under the verdict."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars is {max_chars:,}: the Markdown rendering needs at least {MIN_MAX_CHARS:,}")
    total = len(entries)
    sections = [
        _section(entry, _title(index, total, entry["root"]), max_chars) for index, entry in enumerate(entries, 1)
    ]
    head, table, footer = _run_head(entries), _roots_table(entries), "Nothing was changed."
    budget = budget_for(max_chars)
    # The run's own parts and the joins; each section's closing newline goes in the join.
    fixed = len(_joined([head, table, *([""] * len(sections)), footer])) - len(sections)
    shares = _shares(sections, budget - fixed)
    parts = [section.render(share) for section, share in zip(sections, shares, strict=True)]
    composed = _joined([head, table, *parts, footer])
    if len(composed) <= budget:
        return composed
    return _joined([head, _over_budget(len(composed), budget, max_chars), table, *parts, footer])


def _title(index: int, total: int, root: str) -> str:
    return f"root {index} of {total}: {escape.code(_clipped(root))}"


def _clipped(root: str) -> str:
    """A root's path as the comment shows it: clipped like every foreign string in the parts always kept."""
    return root if len(root) <= HEAD_TEXT_MAX else root[: HEAD_TEXT_MAX - 1] + "…"


def _section(entry: Entry, title: str, max_chars: int) -> _Section:
    if "plan" in entry:
        return PlanSection(entry["plan"], title=title, max_chars=max_chars)
    return _ErrorSection(entry, title=title)


def _joined(parts: list[str]) -> str:
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def _shares(sections: Sequence[_Section], room: int) -> list[int]:
    """Each section's share of `room` characters. Each gets at least what must stay of it; then the same
    share for all (a section that fits whole in less keeps only what it needs) at the largest level whose
    renderings fit together (found by bisection); what that leaves, from the layouts' steps, goes to the
    sections in order."""
    least = [section.least for section in sections]
    whole = [section.whole for section in sections]
    if sum(whole) <= room:
        return whole
    if sum(least) >= room:
        return least

    def at(level: int) -> list[int]:
        return [max(low, min(high, level)) for low, high in zip(least, whole, strict=True)]

    def used(shares: list[int]) -> int:
        return sum(len(section.render(share)) for section, share in zip(sections, shares, strict=True))

    low, high = 0, max(whole)  # at(low) fits; at(high) is every section whole, which does not
    while high - low > 1:
        middle = (low + high) // 2
        if used(at(middle)) <= room:
            low = middle
        else:
            high = middle
    shares = [len(section.render(share)) for section, share in zip(sections, at(low), strict=True)]
    return _spread(sections, shares, room)


def _spread(sections: Sequence[_Section], shares: list[int], room: int) -> list[int]:
    """`shares` (which fit `room`) with what is left given to each section in turn, while it grows it."""
    for index, section in enumerate(sections):
        left = room - sum(shares)
        if left <= 0:
            break
        grown = len(section.render(shares[index] + left))
        if grown > shares[index]:
            shares[index] = grown
    return shares


def _run_head(entries: Sequence[Entry]) -> str:
    return f"### reconciler plan · {_counted(len(entries), 'root')}\n\n{_run_verdict(entries)}"


def _run_verdict(entries: Sequence[Entry]) -> str:
    """The whole run's verdict, worded as one plan's (render/markdown.py's `verdict`): it cannot be applied
    when any root refused or could not be planned."""
    counts = _actions(entries)
    total = sum(counts.values())
    refusals, errors = _refusals(entries), _errors(entries)
    parts = [_counted(total, "action"), *_risky(counts)]
    if refusals:
        parts.append(f"{refusals} refused")
    if errors:
        parts.append(f"{_counted(errors, 'root')} not planned")
    if refusals or errors:
        head = "**Cannot be applied**"
    elif not total:
        partial = any(plan["info"].get("partial") for plan in _plans(entries))
        head = "**No changes among the images in scope**" if partial else "**No changes**"
    elif any(counts[kind] for kind in RISKY_KINDS):
        head = "**Review the risky changes**"
    else:
        head = "**Safe to apply**"
    return f"{head}: {', '.join(parts)}"


def _roots_table(entries: Sequence[Entry]) -> str:
    lines = ["| root | target | verdict |", "|---|---|---|"]
    for entry in entries:
        root = escape.code(_clipped(entry["root"]), in_table=True)
        if "plan" in entry:
            target = head_text(_target_words(entry["plan"]))
            said = verdict(entry["plan"])
        else:
            target = head_text(entry["target"]) if entry["target"] is not None else "(not validated)"
            said = "**Could not be planned**"
        lines.append(f"| {root} | {target} | {said} |")
    return "\n".join(lines)


def _target_words(plan: dict[str, Any]) -> str:
    """A plan's target as `reconciler.target.describe` words it (set, where, project, regions)."""
    identity: Callable[[str], str] = str
    return target_line(plan, show=identity).removeprefix("reconciler plan · ")


def _over_budget(length: int, budget: int, max_chars: int) -> str:
    """The note under the verdict saying the comment is over its budget."""
    return over_budget_note(
        length,
        lambda total: (
            f"> [!CAUTION]\n> This comment is {total:,} characters long, over its budget of {budget:,} (95% of "
            f"--max-chars {max_chars:,}): it keeps every root's risky changes, refusals and errors, which are "
            "never cut, and leaves out everything else (see each root's end)."
        ),
    )
