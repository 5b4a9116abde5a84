"""Plan-wide guards and warnings: a renamed set, an empty root (docs/safety.md), max_deletions, names that do
not tell images apart, and markers the tool never writes."""

from __future__ import annotations

from collections import defaultdict

from reconciler import markers
from reconciler.cloud.records import Image

from .context import PlanContext, joined, quoted, src


def renamed_set(ctx: PlanContext) -> None:
    """A set with no live image whose declared keys exist under one other set was most likely renamed
    (docs/safety.md): refused when at least two of its keys exist live and all of them under one other
    set; a key that merely shares its name with another set's (sets are namespaces) is warned."""
    if ctx.own.has_any_image():
        return
    # Keys adopted with takeover are claimed deliberately, and keys outside the scope are not planned:
    # neither counts.
    at_stake = {
        spec.key
        for spec in ctx.desired.images
        if spec.key in ctx.scope and not (spec.source.image and spec.source.takeover)
    }
    holders: dict[str, set[str]] = defaultdict(set)  # live declared key -> the other sets holding it
    for other, keys in ctx.own.other_sets.items():
        for key in at_stake & set(keys):
            holders[key].add(other)
    if not holders:
        return
    common = set.intersection(*holders.values())
    if len(holders) >= 2 and common:
        other = min(common)
        keys = ", ".join(sorted(holders))
        ctx.refuse(
            "renamed_set",
            None,
            None,
            f"set {ctx.set} has no image yet, but {keys} exist under set {other}: these keys belong to set {other}",
            f"rename the set back to {other}, or adopt the images with source.image and takeover: true",
            ctx.desired.root.set_source,
        )
        return
    specs = {spec.key: spec for spec in ctx.desired.images}
    for key, sets in sorted(holders.items()):
        spec = specs.get(key)
        ctx.warn(
            "key_in_other_set",
            key,
            spec.region if spec is not None else None,
            f"set {ctx.set} has no image yet, and {key} also exists under set {', '.join(sorted(sets))}: "
            f"sets are namespaces, so this set makes its own {key} (if the set was renamed, rename it back)",
            src(spec) if spec is not None else None,
        )


def empty_root(ctx: PlanContext) -> bool:
    """An empty root never deletes: True when it withholds deletions (refusing if the set has images).

    A root that declares nothing is more likely a folder that went missing, a broken link or a wrong
    `set:` than the end of a set; settings.allow_empty_set: true says it is the end, deliberately.
    """
    if ctx.desired.images or _removals_at_work(ctx) or ctx.desired.root.settings.allow_empty_set:
        return False
    live = sorted(
        [f"{key} {image.region}" for key, images in ctx.own.home.items() for image in images]
        + [f"{key} {region} (copy)" for (key, region), images in ctx.own.copies.items() for _ in images]
    )
    if live:
        listed = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
        count = f"{len(live)} live image{'s' if len(live) != 1 else ''}"
        ctx.refuse(
            "empty_root",
            None,
            None,
            f"the root declares no image, but set {ctx.set} has {count} ({listed}): an empty root plans no deletion",
            "if a manifest or folder went missing (a move, a broken link, a wrong set:), restore it; to stop "
            "managing the images and keep them, list their keys under removed: with destroy: false; to "
            "retire every image of the set on purpose, set settings.allow_empty_set: true in reconciler.yaml",
            ctx.desired.root.set_source,
        )
    return True


def max_deletions(ctx: PlanContext) -> None:
    """Every delete counts, replacements, duplicates and leftovers too: max_deletions 0 means none at all."""
    deletes = ctx.graph.of_kind("delete")
    if len(deletes) <= ctx.max_deletions:
        return
    names = ", ".join(f"{a.key} {a.region}" for a in sorted(deletes, key=lambda a: a.id))
    ctx.refuse(
        "max_deletions",
        None,
        None,
        f"{len(deletes)} deletions planned ({names}), more than max_deletions {ctx.max_deletions}",
        "check that no manifest was removed by mistake; raise settings.max_deletions or pass "
        "--max-deletions if the deletions are intended",
        None,
    )


def _removals_at_work(ctx: PlanContext) -> bool:
    """Whether a `removed:` entry names a key with a live image. One whose key has none (already released or
    deleted: a `removed_nothing` warning) does not make the root non-empty: kept after its work is done, it
    must not let a missing folder turn into deletes."""
    return any(ctx.live_images_of(removal.key) for removal in ctx.desired.removed)


def name_warnings(ctx: PlanContext) -> None:
    """Names that do not tell images apart in the console or an image list: two keys of this set with one
    name in one region, and an image that gets the name of an unmanaged one."""
    unmanaged: dict[tuple[str, str], list[Image]] = defaultdict(list)
    for image in ctx.own.unmanaged:
        if image.name and not ctx.accounted(image.id):  # one this plan adopts is this set's by then
            unmanaged[(image.region, image.name)].append(image)
    for (region, name), holders in sorted(ctx.names.items()):
        keys = sorted({key for key, _, _ in holders})
        first, _, where = min(holders)
        if len(keys) > 1:
            ctx.warn(
                "duplicate_name",
                first,
                region,
                f"{joined(keys)} share the name {quoted(name)} in {region}: the console and image lists cannot "
                "tell them apart (give each key its own name)",
                where,
            )
        for key, new, where in sorted(holders):
            others = unmanaged.get((region, name), [])
            if new and others:
                ids = ", ".join(sorted(i.id for i in others))
                ctx.warn(
                    "unmanaged_same_name",
                    key,
                    region,
                    f"{key} gets the name {quoted(name)}, which an image this set does not manage already has "
                    f"in {region} ({ids}): the two cannot be told apart by name (give {key} another name)",
                    where,
                )


def invalid_marker_warnings(ctx: PlanContext) -> None:
    """One warning per image whose set or key marker the tool never writes: ownership left it out of
    every set, so nothing is planned for it, and the project is told so that someone clears it."""
    for image in ctx.own.invalid:
        # Quoted, not escaped: the plan is data; every renderer shows the hidden characters (JSON too).
        carries = ", ".join(
            f"{name} {quoted(value)}" for name, value in markers.invalid_markers(image.properties).items()
        )
        ctx.warn(
            "invalid_markers",
            None,
            image.region,
            f"image {image.id} ({quoted(image.name or '')}) carries {carries}, which the tool "
            "never writes (a set name or key is letters, digits, '.', '_' or '-'): it is nobody's, and nothing "
            "is planned for it; clear or fix the property by hand",
            None,
        )
