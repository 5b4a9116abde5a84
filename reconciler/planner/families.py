"""Families (docs/manifest.md, "Families"): validation made each kept version an ordinary declared image;
what is left to the planner is what only a family has.

- Only the newest version is ever built: an older kept version without an image is refused
  (`version_missing`), and so is one a newer listed version already has an image for.
- Every image of a family, home and copies, carries `reconciler_family` and `reconciler_version` (the
  field table adds them to creates, adoptions and updates; a copy made here gets them here).
- In each region `reconciler_newest` moves to the newest version's image once its create or copy, shares and
  protect there are done: added there first, then taken off the image that had it (in the same plan, even
  when a partial plan leaves that image's key out: one move, never two newest images in a region).
- Retirement: the delete of an image whose `reconciler_family` names a family the root declares (an older
  version than the kept ones, or one no longer listed). It, and the unprotect of a version leaving the
  protected window, wait for everything the new version needs (skipped if any of that fails).
"""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import Family, ImageSpec
from reconciler.plan import ActionId, Change, Reason

from .context import TRUE, PlanContext
from .graph import ImageState, Step
from .patching import patch

# What a family's new version needs before an older version is unprotected or retired, and before the
# newest marker moves to it.
NEW_VERSION_KINDS = ("create", "copy", "share", "protect")
# At most this much of a version that comes from a hand-set marker is shown in a reason.
VERSION_SHOWN = 40


def version_source(family: Family, version: str | None) -> str | None:
    """Where a version is listed (`file:line`), else where the family is."""
    location = family.version_locations.get(version or "") or family.location
    return f"{location.file}:{location.line}" if location else family.file


def may_build(ctx: PlanContext, spec: ImageSpec) -> bool:
    """Whether `spec`'s image may be made from its source: always for an image outside a family and for the
    newest version; an older version without an image is refused (`version_missing`)."""
    family = ctx.desired.family(spec.family) if spec.family else None
    if family is None or spec.version is None or spec.version == family.newest:
        return True
    newer = family.versions[family.versions.index(spec.version) + 1 :] if spec.version in family.versions else ()
    built = [version for version in newer if ctx.own.home.get(family.key(version))]
    why = (
        f"a newer version ({built[-1]}) has an image: a version is never re-created once a newer one exists"
        if built
        else f"only the newest version ({family.newest}) is ever built"
    )
    ctx.refuse(
        "version_missing",
        spec.key,
        spec.region,
        f"version {spec.version} of {family.name} is kept (keep: {family.keep}) but has no image, and {why}",
        f"adopt an existing image as it with source.image in an override of {spec.version}, remove it from "
        "versions, or lower keep",
        version_source(family, spec.version),
    )
    return False


def mark_copies(ctx: PlanContext, spec: ImageSpec, copy_states: dict[str, ImageState]) -> None:
    """A copy made in this plan carries its family and version from the start, like its home image."""
    if spec.family is None:
        return
    for state in copy_states.values():
        made = state.made_by
        if made is not None and made.kind == "copy":
            made.changes.setdefault(markers.FAMILY, Change(None, spec.family))
            made.changes.setdefault(markers.VERSION, Change(None, spec.version))


def move_newest(ctx: PlanContext) -> None:
    """In each region where the newest version of a family has an image (or gets one), `reconciler_newest`
    is added there once that image is ready, then taken off every other image of the family carrying it."""
    for family in ctx.desired.families:
        newest = family.key(family.newest)
        if newest not in ctx.scope:
            continue
        for (key, _region), state in sorted(ctx.states.items(), key=lambda item: item[0]):
            if key == newest:
                added = _add_newest(ctx, family, state)
                _remove_newest(ctx, family, state, added)


def _add_newest(ctx: PlanContext, family: Family, state: ImageState) -> Step | None:
    if state.live is not None and state.live.properties.get(markers.NEWEST) == TRUE:
        return None
    before = state.live.properties.get(markers.NEWEST) if state.live is not None else None
    ready = ctx.graph.at(state.key, state.region, *NEW_VERSION_KINDS)
    reason = Reason(
        "newest",
        f"{family.newest} is the newest version of {family.name}: marked {markers.NEWEST} once its image is "
        f"ready in {state.region}",
        version_source(family, family.newest),
    )
    group = patch(ctx, state, "update", "newest", {markers.NEWEST: Change(before, TRUE)}, reason)
    for step in ready:
        group.first.after(step, "the newest version is marked once everything it needs here is done")
    return group.action


def _remove_newest(ctx: PlanContext, family: Family, newest: ImageState, added: Step | None) -> None:
    for image in _marked_newest(ctx, family, newest.region):
        if image.id == newest.image_id:
            continue
        key = str(image.properties.get(markers.KEY))
        if _has_newest_step(ctx, key, image):
            continue
        planned = ctx.states.get((key, image.region))
        state = planned if planned is not None and planned.image_id == image.id else ImageState.of_live(key, image)
        # The add and this removal are one move of the family's marker: planned together whatever the scope
        # says of this key (--target the new version alone), or the region would end with two newest images.
        outside = f" (one move with its add: planned although {key} is outside this partial plan)"
        reason = Reason(
            "newest",
            f"{markers.NEWEST} moves to {family.newest}, the newest version of {family.name}"
            + (outside if key not in ctx.scope else ""),
            version_source(family, family.newest),
        )
        group = patch(ctx, state, "update", "newest", {markers.NEWEST: Change(TRUE, None)}, reason)
        group.first.after(added, "the newest marker is added to the newest version first")
        ctx.newest_removed[image.id] = group.closing or group.action


def _has_newest_step(ctx: PlanContext, key: str, image: Image) -> bool:
    """Two images of one key in one region both marked newest (set by hand): one step per (key, region)."""
    return any(ActionId.parse(step.id).phase == "newest" for step in ctx.graph.at(key, image.region, "update"))


def _marked_newest(ctx: PlanContext, family: Family, region: str) -> list[Image]:
    """This set's images of `family` in `region` that carry the newest marker."""
    return [
        image
        for image in ctx.snapshot.images.get(region, ())
        if image.properties.get(markers.NEWEST) == TRUE and ctx.family_of(image) is family
    ]


def retire(ctx: PlanContext) -> None:
    """Each planned delete of a family's image that is not a kept version's (a version older than the kept
    ones, or no longer listed) is a retirement: it says so, and it waits for the new version (and for the
    newest marker to leave it). So does the unprotect of a version leaving the protected window. A dropped
    copy of a kept version is no retirement: it stays the ordinary delete of a copy region no longer declared."""
    images = {image.id: image for image in ctx.snapshot.all_images()}
    for delete in ctx.deletions:
        image = images.get(delete.image_id or "")
        family = ctx.family_of(image) if image is not None else None
        if image is None or family is None or delete.key in ctx.declared:
            continue
        version = version_of(family, delete.key, image)
        delete.reason = Reason("retired", _why_retired(family, version), version_source(family, version))
        delete.details["family"] = family.name
        _after_new_version(ctx, family, delete, "retired once the new version is in place")
        delete.after(ctx.newest_removed.get(image.id), "the newest marker leaves it first")
    for family in ctx.desired.families:
        versions = {family.key(version) for version in family.versions if version != family.newest}
        for unprotect in ctx.graph.of_kind("unprotect"):
            if unprotect.key in versions and unprotect.reason.code == "unprotect":
                _after_new_version(ctx, family, unprotect, "unprotected once the new version is in place")
    _wait_for_new_version(ctx)


def _after_new_version(ctx: PlanContext, family: Family, step: Step, why: str) -> None:
    newest = family.key(family.newest)
    for maker in ctx.graph.of_kind(*NEW_VERSION_KINDS):
        if maker.key == newest:
            step.after(maker, why)


def _wait_for_new_version(ctx: PlanContext) -> None:
    """A partial plan that leaves a family's newest version out (`--exclude` it, or `--target` an older one)
    plans nothing for it: an unprotect or retirement in a region where that version has no image yet would
    have nothing to wait for, and the family would shrink with no replacement. Those are not planned (a
    warning says why): like a retirement whose new version failed, they wait for a plan that includes it.
    Not a refusal: the rest of the partial plan (most likely why the new version was left out) applies."""
    for family in ctx.desired.families:
        newest = family.key(family.newest)
        if newest in ctx.scope:
            continue
        waiting = [
            step
            for step in (*ctx.deletions, *ctx.graph.of_kind("unprotect"))
            if _waits_for(step, family) and not _has_image(ctx, family, step.region)
        ]
        for step in waiting:
            ctx.graph.remove(step)
            ctx.deletions = [other for other in ctx.deletions if other is not step]
            what = "retired" if step.kind == "delete" else "unprotected"
            ctx.warn(
                "waits_for_new_version",
                step.key,
                step.region,
                f"{step.key} is not {what} now: the new version {family.newest} of {family.name} is left out of "
                f"this partial plan and has no image in {step.region} yet; a plan that includes {newest} (or "
                f"--target {family.name}) {'retires' if step.kind == 'delete' else 'unprotects'} it once that "
                "version is in place",
                step.reason.source,
            )


def _waits_for(step: Step, family: Family) -> bool:
    """A retirement of `family`'s image, or the unprotect of one of its versions leaving the protected window."""
    if step.kind == "delete":
        return step.details.get("family") == family.name
    older = {family.key(version) for version in family.versions if version != family.newest}
    return step.key in older and step.reason.code == "unprotect"


def _has_image(ctx: PlanContext, family: Family, region: str) -> bool:
    """Whether the family's newest version has an image in `region` (under its old key when re-keyed)."""
    keys = [family.key(family.newest)]
    if family.moved_from:
        keys.append(f"{family.moved_from}-{family.newest}")
    return any(ctx.live_in_region(key, region) for key in keys)


def version_of(family: Family, key: str, image: Image) -> str:
    """The version an image of `family` is: its reconciler_version marker when the family lists it, else what
    its key says (the family's name or the one before moved_from, then "-"), else the marker clipped (set by
    hand, it may be any text)."""
    marker = image.properties.get(markers.VERSION)
    if isinstance(marker, str) and marker in family.versions:
        return marker
    for name in (family.name, family.moved_from):
        if name and key.startswith(f"{name}-"):
            return key[len(name) + 1 :]
    text = marker if isinstance(marker, str) else "?"
    return text if len(text) <= VERSION_SHOWN else text[: VERSION_SHOWN - 1] + "…"


def _why_retired(family: Family, version: str) -> str:
    if version in family.retired:
        return (
            f"version {version} of {family.name} is older than the newest {family.keep} (keep: {family.keep}): retired"
        )
    return f"version {version} is no longer listed in {family.name}'s versions: retired"
