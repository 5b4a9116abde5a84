"""Declared protection: protect or unprotect, last among an image's changes (after the copies that read it
and the shares that need it), so that a protected image is never patched by this plan afterwards."""

from __future__ import annotations

from reconciler.desired import ImageSpec
from reconciler.plan import Change, Reason

from .context import PlanContext, src
from .graph import ImageState


def plan_protection(
    ctx: PlanContext, spec: ImageSpec, state: ImageState, protected: bool | None, field_path: str = "protected"
) -> None:
    if protected is None or protected == state.protected:
        return
    kind = "protect" if protected else "unprotect"
    source = src(spec, field_path) if spec.location(field_path) else src(spec, "protected")
    reason = Reason(kind, _why(ctx, spec, protected, field_path), source)
    step = ctx.graph.add(kind, spec.key, state.region, reason, state.image_id)
    step.changes["protected"] = Change(state.protected, protected)
    step.after(state.last, "earlier changes first")
    # Protect last: after the copies that read or make it and the shares that need it.
    for other in ctx.graph.at(spec.key, state.region, "share", "copy"):
        if other is not step:
            step.after(other, "protected once everything else is in place")
    step.expects[state.ref] = {"protected": state.protected}
    state.protected = protected
    state.last = step


def _why(ctx: PlanContext, spec: ImageSpec, protected: bool, field_path: str) -> str:
    """What asks for the change: the field as written, or, for a family's version whose protection comes from
    the family's window (no override of its own), its place among the newest versions."""
    family = ctx.desired.family(spec.family) if spec.family else None
    version = spec.version
    declared = f"{'protected: true' if protected else 'protected: false'} is declared"
    if family is None or version is None or field_path != "protected" or version in family.protected_overrides:
        return declared
    window = f"protect_newest: {family.protect_newest}"
    if protected:
        return f"{version} is among the newest {family.protect_newest} of {family.name} ({window})"
    if family.protect_newest == 0:
        return f"{version} is not protected: {family.name} protects no version ({window})"
    return f"{version} left the newest {family.protect_newest} of {family.name} ({window})"
