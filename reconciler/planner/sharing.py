"""Sharing: the declared `share` list against the image's live members. Members are added (the first share
makes the image `shared`) and removed (the last removal makes it `private` again, after every member is
gone, since Glance keeps member records); an absent `share` leaves members alone. Members that have not
accepted, or rejected, are reported (docs/manifest.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import markers
from reconciler.desired import ImageSpec
from reconciler.plan import Change, Reason

from .context import PlanContext, joined, quoted, src
from .graph import ImageState, Step
from .patching import patch


def plan_sharing(ctx: PlanContext, spec: ImageSpec, state: ImageState, share: tuple[str, ...] | None) -> None:
    """Shares and unshares that make `state`'s image's members the declared `share` (None: left alone)."""
    source = src(spec, "share")
    live_members = _live_members(ctx, spec, state, source)
    if share is None:
        _warn_rejected(ctx, spec, state, live_members, set(live_members), source)
        return  # absent: members left alone
    wanted = set(share)
    _warn_rejected(ctx, spec, state, live_members, wanted, source)
    _warn_pending(ctx, spec, state, live_members, wanted, source)
    previous = _plan_shares(ctx, spec, state, sorted(wanted - set(live_members)), source)
    unshares = _plan_unshares(ctx, spec, state, sorted(set(live_members) - wanted), previous, source)
    if not wanted and state.visibility == "shared":
        _make_private(ctx, state, unshares, source)


def _warn_pending(
    ctx: PlanContext,
    spec: ImageSpec,
    state: ImageState,
    live_members: Mapping[str, Any],
    wanted: set[str],
    source: str | None,
) -> None:
    for member_id in sorted(wanted & set(live_members)):
        if live_members[member_id].status == "pending":
            ctx.pending.append({"key": spec.key, "region": state.region, "member": member_id})
            ctx.warn(
                "members_pending",
                spec.key,
                state.region,
                f"project {member_id} has not accepted the share yet: the image is usable but not in its list",
                source,
            )


def _plan_shares(
    ctx: PlanContext, spec: ImageSpec, state: ImageState, adding: list[str], source: str | None
) -> Step | None:
    """One share per member to add; the first makes the image shared (under strict, a protected image's
    visibility PATCH goes in a bracket of its own: members are not attributes, adding them needs none).
    Returns what changes to the image the unshares wait for."""
    previous = state.last
    first_share = None
    if adding and state.visibility != "shared" and ctx.strict and state.protected:
        patch(ctx, 
            state, "update", "visibility", {"visibility": Change(state.visibility, "shared")},
            Reason("visibility", "the first share needs the image shared", source),
        )  # fmt: skip
        state.visibility = "shared"
        previous = state.last
    for member_id in adding:
        share_action = ctx.graph.add(
            "share",
            spec.key,
            state.region,
            Reason("share", f"{spec.file} shares it with {member_id}", source),
            state.image_id,
            phase=member_id,
            member=member_id,
        )
        if first_share is None and state.visibility != "shared":
            share_action.changes["visibility"] = Change(state.visibility, "shared")
            state.visibility = "shared"
        share_action.after(state.made_by or previous, "the image must exist in this region")
        share_action.after(first_share, "the first share makes the image shared")
        share_action.expects[state.ref] = {"status": "active"}
        state.shares.append(share_action)
        first_share = first_share or share_action
    return previous


def _plan_unshares(
    ctx: PlanContext,
    spec: ImageSpec,
    state: ImageState,
    removed: list[str],
    previous: Step | None,
    source: str | None,
) -> list[Step]:
    unshares = []
    for member_id in removed:
        unshare = ctx.graph.add(
            "unshare",
            spec.key,
            state.region,
            Reason("unshare", f"{member_id} is no longer in share", source),
            state.image_id,
            phase=member_id,
            member=member_id,
        )
        unshare.after(previous, "earlier changes first")
        unshare.expects[state.ref] = {"visibility": "shared"}
        unshares.append(unshare)
    return unshares


def _make_private(ctx: PlanContext, state: ImageState, unshares: list[Step], source: str | None) -> None:
    """`share: []`: members go first (Glance keeps member records, so a later re-share would re-grant them),
    then the image is private again: on the last unshare, or in a bracket of its own under strict."""
    last = unshares[-1] if unshares else None
    bracketed = ctx.strict and state.protected
    if last is not None and not bracketed:
        last.changes["visibility"] = Change("shared", "private")
        for other in unshares[:-1]:
            last.after(other, "every other member is removed first")
    else:
        for unshare in unshares[:-1]:
            last.after(unshare, "every other member is removed first")  # type: ignore[union-attr]
        if last is not None:
            state.last = last  # strict: the visibility bracket comes after every member is removed
        patch(
            ctx,
            state,
            "update",
            "visibility",
            {"visibility": Change("shared", "private")},
            Reason("visibility", "share is empty: the image is made private again", source),
        )
    state.visibility = "private"


def _live_members(ctx: PlanContext, spec: ImageSpec, state: ImageState, source: str | None) -> dict[str, Any]:
    """The image's live members the tool could have added (project ids, as a manifest's share holds), by
    id. Any other member (".." or a text with a newline, which anyone in the project can add) is never
    acted on: an unshare of it would send its id as a path segment, and its action id would not be one
    a saved plan accepts. One invalid_member warning names them."""
    live = {m.member_id: m for m in ctx.snapshot.members.get(state.image_id or "", ())}
    invalid = sorted(member_id for member_id in live if not markers.PROJECT_ID.fullmatch(member_id))
    if invalid:
        ctx.warn(
            "invalid_member",
            spec.key,
            state.region,
            f"image {state.image_id} has {joined([quoted(m) for m in invalid])} as "
            f"{'a member' if len(invalid) == 1 else 'members'}, which the tool never adds (a member is a "
            "project id, 32 lowercase hexadecimal characters): nothing is planned for "
            f"{'it' if len(invalid) == 1 else 'them'}; remove {'it' if len(invalid) == 1 else 'them'} by hand",
            source,
        )
    return {member_id: member for member_id, member in live.items() if member_id not in invalid}


def _warn_rejected(
    ctx: PlanContext,
    spec: ImageSpec,
    state: ImageState,
    live_members: Mapping[str, Any],
    kept: set[str],
    source: str | None,
) -> None:
    """A member that rejected the share (only it can change its status): the owner's plan says so,
    for every member that stays."""
    for member_id in sorted(kept & set(live_members)):
        if live_members[member_id].status == "rejected":
            ctx.warn(
                "share_rejected",
                spec.key,
                state.region,
                f"project {member_id} rejected the share: the image is not in its image list (only that "
                "project can accept it; remove it from share if it is no longer meant to use it)",
                source,
            )
