"""One PATCH of an image, the way every concern plans one: after what changes the image before it, with
what it expects to find, and under `protected_patch: strict` inside its own bracket on a protected image
(unprotect -> PATCH -> protect; the closing protect runs even if the PATCH failed: docs/manifest.md)."""

from __future__ import annotations

from typing import Any

from reconciler.plan import Change, Reason

from .context import PlanContext
from .graph import ImageState, PatchGroup, Step

# How a bracket's reasons name what it is for, by label.
_WHAT = {"update": "the update", "adopt": "the adoption", "rekey": "the re-key"}


def patch(
    ctx: PlanContext,
    state: ImageState,
    kind: str,
    phase: str,
    changes: dict[str, Change],
    reason: Reason,
    *,
    compensates: str | None = None,
    label: str | None = None,
) -> PatchGroup:
    """Plan one PATCH group of `state`'s image. `label` names the bracket's steps
    (`unprotect:<key>:<region>:<label>`; default: the phase, else "update")."""
    bracket = ctx.strict and state.protected
    label = label or phase or "update"
    what = "the release" if label.startswith("release") else _WHAT.get(label, label)
    opening = None
    if bracket:
        opening = ctx.graph.add(
            "unprotect",
            state.key,
            state.region,
            Reason("strict_bracket", f"protected_patch: strict: unprotect for {what}", reason.source),
            state.image_id,
            label,
        )
        opening.changes["protected"] = Change(True, False)
        opening.after(state.last, "the image must exist and earlier changes be done")
        opening.expects[state.ref] = {"protected": True}
    action = ctx.graph.add(kind, state.key, state.region, reason, state.image_id, phase)
    action.changes.update(changes)
    action.after(
        opening or state.last,
        "the image must exist and earlier changes be done" if not opening else "the bracket opens first",
    )
    if state.live is None:
        # Made earlier in this plan: its fields are known only once it exists.
        expects: dict[str, Any] = {"status": "active"}
    else:
        expects = {name: change.before for name, change in changes.items() if not name.startswith("reconciler_")}
    expects["protected"] = False if bracket else state.protected
    action.expects[state.ref] = expects
    if compensates:
        action.details["compensates"] = compensates
    state.last = action
    closing = None
    if bracket:
        closing = ctx.graph.add(
            "protect",
            state.key,
            state.region,
            Reason(
                "strict_bracket",
                f"protected_patch: strict: protect again after {what} (runs even if it failed)",
                reason.source,
            ),
            state.image_id,
            label,
            compensates=(opening.id if opening else None),
        )
        closing.changes["protected"] = Change(False, True)
        closing.after(action, "closes the bracket")
        closing.expects[state.ref] = {"protected": False}
        state.last = closing
    return PatchGroup(opening, action, closing)


def expects_read(ctx: PlanContext, step: Step, state: ImageState, expects: dict[str, Any]) -> None:
    """An adopt or a re-key expects what it read of the image, and inside a strict bracket to find it
    unprotected."""
    bracketed = ctx.strict and state.protected
    step.expects[state.ref] = {**expects, "protected": False} if bracketed else dict(expects)
