"""Deletion: what left the manifests goes, last (make before break), only when unprotected; a protected one
is refused with the ways out. Images a manifest names by id are never deleted. Also the copies of a
declared key in regions it no longer declares, and the unfinished copies of a released key."""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import Family, ImageSpec
from reconciler.plan import Reason, Ref

from .context import PlanContext, is_unfinished_copy, removal_source


def delete_left(
    ctx: PlanContext,
    key: str,
    live: Image,
    why: str,
    *,
    unprotect_hint: str | None = None,
    source: str | None = None,
    keep_hint: bool = True,
) -> None:
    """`unprotect_hint`: how to unprotect it when it is protected (default: the key's `protected`).
    `source`: the manifest line that asks for the delete (a `removed:` entry), if any. `keep_hint`: say how
    to keep an image the project had before the tool (not when a removed: entry asked for the delete)."""
    ctx.account(live.id)
    if live.id in ctx.referenced:
        return
    if live.protected:
        ctx.refuse(
            "protected_undeclared",
            key,
            live.region,
            f"{live.name} ({live.id}) is protected and no longer declared: it will not be deleted",
            _retirement_hint(ctx, key, live)
            or unprotect_hint
            or (
                f"to keep it, unmanaged, list {key} under removed: with destroy: false; to delete it, set "
                f"protected: false on {key}, apply, then remove it and apply"
            ),
            source,
        )
        return
    why += "; not protected"
    if keep_hint and live.properties.get(markers.SOURCE) == f"image:{live.id}":
        # Adopted by id (what `reconciler import` declares): an image the project had before the tool.
        if markers.COPY_OF in live.properties and key in ctx.declared:
            why += f". It was imported (adopted by id): to keep it, keep it under copies: of {key}"
        else:
            why += (
                f". It was imported (adopted by id): to keep it, unmanaged, list {key} under removed: with "
                "destroy: false"
            )
    delete = ctx.graph.add(
        "delete",
        key,
        live.region,
        Reason("undeclared", why, source),
        live.id,
        image_suffix=(
            (live.properties.get(markers.COPY_OF) is None and len(ctx.own.home.get(key, [])) > 1)
            # Two images of one key in one region (two copies, or a home and a copy): each delete
            # needs its own id.
            or ctx.live_in_region(key, live.region) > 1
        ),
        name=live.name,
    )
    delete.expects[str(Ref.image(live.region, live.id))] = {"protected": False, markers.SET: ctx.set, markers.KEY: key}
    # Unshares and other changes come before deletes; deletes are last.
    ctx.deletions.append(delete)


def _retirement_hint(ctx: PlanContext, key: str, live: Image) -> str | None:
    """How to let a protected image of a family go, or None for any other image (and for a dropped copy of a
    kept version: the copy's own hint says it). A family unprotects a version one apply before it retires it
    (protect_newest < keep); a version still protected has a `protected: true` override, was taken out of the
    list while protected (a rollback, most often), was passed by two versions appended at once, or by a
    lowered keep. A family no longer declared has its own words: its versions have no `protected` of their own."""
    name = live.properties.get(markers.FAMILY)
    if key in ctx.declared or not isinstance(name, str) or live.properties.get(markers.SET) != ctx.set:
        return None
    family = ctx.family_of(live)
    if family is None:
        return _family_gone_hint(name, key)
    version = live.properties.get(markers.VERSION)
    override = family.protected_overrides.get(version) if isinstance(version, str) else None
    if override is not None:
        return (
            f"the protected: true override of version {version} at {override.file}:{override.line} keeps it "
            f"protected: remove it (or set protected: false there) while {key} is still kept, apply, then retire it"
        )
    if not isinstance(version, str) or version not in family.versions:
        return _unlisted_hint(family, key, live)
    newer = family.versions[family.versions.index(version) + 1 :]
    appended = [v for v in newer if not _has_home(ctx, family, v)]
    if len(newer) - len(appended) < family.keep:
        return (
            f"{key} left the protected newest {family.protect_newest} and the kept newest {family.keep} of "
            f"{family.name} in one change: {len(appended)} versions were appended at once "
            f"({', '.join(appended)}): append one version per apply, so that a version is unprotected by one "
            "apply and retired by the next, or raise keep by one for one apply"
        )
    return (
        f"keep was lowered past {key}, which is still protected: lower protect_newest first (it is unprotected "
        f"while still kept), apply, then lower keep and apply"
    )


def _unlisted_hint(family: Family, key: str, live: Image) -> str:
    """A protected version taken out of `versions`. A version's own `protected: false` does not exist (the
    family's window protects it), so it is listed again and unprotected by a smaller window first."""
    if live.properties.get(markers.NEWEST) == "true":
        return (
            f"{key} was the newest version (a rollback?) and is still protected: list it again as the newest and "
            f"set protect_newest: 0 for one apply (the newest version is inside any window; the other versions are "
            f"unprotected for that apply too), apply; then remove it from versions, restore protect_newest and "
            f"apply: it is retired and {markers.NEWEST} moves back"
        )
    return (
        f"{key} was taken out of {family.name}'s versions while still protected: list it again where it was and "
        "lower protect_newest for one apply until it is outside the protected newest versions, apply; then "
        "remove it from versions, restore protect_newest and apply"
    )


def _family_gone_hint(name: str, key: str) -> str:
    """A protected image of a family the root no longer declares (a version has no `protected` field)."""
    return (
        f"its family {name} is no longer declared: to keep it, unmanaged, list {key} under removed: with "
        f"destroy: false; to delete it, declare {name} again with a protect_newest that leaves this version "
        "out (0 for the newest), apply, then take the family out and apply"
    )


def _has_home(ctx: PlanContext, family: Family, version: str) -> bool:
    """Whether a version of `family` has a home image (under its old key when the family was renamed)."""
    keys = [family.key(version)] + ([f"{family.moved_from}-{version}"] if family.moved_from else [])
    return any(ctx.own.home.get(key) for key in keys)


def plan_deletions(ctx: PlanContext) -> None:
    """Every live image, home or copy, of a key that left the manifests (a copy whose home is gone too)."""
    removals = {removal.key: removal for removal in ctx.desired.removed}
    for key in sorted(set(ctx.own.home) | set(ctx.copy_regions)):
        if key in ctx.declared or key in ctx.moved_from or key not in ctx.scope:
            continue
        removal = removals.get(key)
        gone, source, hint = f"{key} is no longer declared", None, None
        if removal is not None:
            gone = f"{key} is listed under removed: with destroy: true"
            source = removal_source(removal)
            hint = (
                f"to keep it, unmanaged, set destroy: false on the removed: entry of {key}; to delete it, declare "
                f"{key} again with protected: false instead of the entry, apply, then remove it and apply"
            )
        for live in ctx.own.home.get(key, []):
            if not ctx.accounted(live.id):
                delete_left(ctx, key, live, gone, source=source, unprotect_hint=hint, keep_hint=removal is None)
        for region in sorted(ctx.copy_regions.get(key, set())):
            for live in ctx.copies.get((key, region), []):
                if not ctx.accounted(live.id):
                    delete_left(
                        ctx,
                        key,
                        live,
                        f"{gone} (its copy in {region})",
                        source=source,
                        unprotect_hint=hint,
                        keep_hint=removal is None,
                    )


def delete_unfinished_released_copies(ctx: PlanContext) -> None:
    """The copies of a released key (destroy: false) that an interrupted copy left unfinished: the tool's own
    unfinished work, not copies anyone had, so they are deleted rather than released."""
    for removal in ctx.desired.removed:
        if removal.destroy or removal.key not in ctx.scope:
            continue
        for image in ctx.live_images_of(removal.key):
            if ctx.accounted(image.id) or image.id in ctx.referenced or not is_unfinished_copy(image):
                continue
            delete_left(
                ctx,
                removal.key,
                image,
                f"{removal.key} is released, but its copy in {image.region} is one an interrupted copy left "
                f"{image.status}: the tool's own unfinished work is deleted, not released",
                source=removal_source(removal),
                keep_hint=False,
            )


def drop_undeclared_copies(ctx: PlanContext, spec: ImageSpec) -> None:
    """Live copies of a declared key in regions it no longer declares: deletion candidates."""
    declared = {copy.region for copy in spec.copies}
    for region in sorted(ctx.copy_regions.get(spec.key, set()) - declared):
        for live in ctx.copies[(spec.key, region)]:
            if not ctx.accounted(live.id):
                delete_left(
                    ctx,
                    spec.key,
                    live,
                    f"copy region {region} is no longer declared for {spec.key}",
                    # The key's `protected` covers its home image too: only a per-copy override
                    # unprotects this copy alone (and lets it go).
                    unprotect_hint=f"declare the copy again as copies: [{{region: {region}, protected: false}}] "
                    f"on {spec.key} (next to its other copies), apply; then remove it from copies and apply",
                )


def deletes_last(ctx: PlanContext) -> None:
    """Make before break: what left the manifests goes only after everything is made."""
    makers = ctx.graph.of_kind("create", "adopt", "copy", "unshare")
    for delete in ctx.deletions:
        for maker in makers:
            delete.after(maker, "make before break: deletes come last")
