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
    step = ctx.graph.add(
        kind,
        spec.key,
        state.region,
        Reason(kind, f"{'protected: true' if protected else 'protected: false'} is declared", source),
        state.image_id,
    )
    step.changes["protected"] = Change(state.protected, protected)
    step.after(state.last, "earlier changes first")
    # Protect last: after the copies that read or make it and the shares that need it.
    for other in ctx.graph.at(spec.key, state.region, "share", "copy"):
        if other is not step:
            step.after(other, "protected once everything else is in place")
    step.expects[state.ref] = {"protected": state.protected}
    state.protected = protected
    state.last = step
