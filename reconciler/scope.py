"""What one plan covers: the image keys `--target` and `--exclude` may name, and the family names that stand
for keys. Pure: no I/O.

A name that names nothing is an error, not a no-op: a typo in `--exclude` would otherwise plan (and apply)
the very key it meant to leave out. A family name stands for every key of the family, retired ones
included: the keys of its listed versions and of every live image of the set that carries its
`reconciler_family` marker. The expansion happens here, before the planner's Scope is made (the planner
only ever sees keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import DesiredState, Family
from reconciler.errors import UsageError


def _own_live(images: Iterable[Image], set_name: str) -> list[Image]:
    """The live images of this set whose markers a run of the tool could have written (reconciler.ownership):
    an image with markers no run writes is nobody's."""
    return [
        image
        for image in images
        if image.properties.get(markers.SET) == set_name and not markers.invalid_markers(image.properties)
    ]


def known_keys(desired_keys: Iterable[str], images: Iterable[Image], set_name: str) -> set[str]:
    """The keys a scope may name: every key the manifests declare, and every key a live image of this set
    carries."""
    live = {str(image.properties.get(markers.KEY)) for image in _own_live(images, set_name)}
    return set(desired_keys) | live


def family_keys(families: Iterable[Family], images: Iterable[Image], set_name: str) -> dict[str, frozenset[str]]:
    """Each family a scope may name, with the keys it stands for: a declared family's listed versions
    (`<family>-<version>`), and for a declared family or one only live images still name, the key of every
    live image of this set carrying its `reconciler_family` marker (a version no longer listed, a family
    taken out of the manifests)."""
    keys: dict[str, set[str]] = {family.name: {family.key(v) for v in family.versions} for family in families}
    for image in _own_live(images, set_name):
        family, key = image.properties.get(markers.FAMILY), image.properties.get(markers.KEY)
        if isinstance(family, str) and family and isinstance(key, str):
            keys.setdefault(family, set()).add(key)
    return {name: frozenset(found) for name, found in keys.items()}


def check_named_keys(
    named: Iterable[str],
    desired_keys: Iterable[str],
    images: Iterable[Image],
    set_name: str,
    families: Mapping[str, frozenset[str]] | None = None,
) -> None:
    """Refuse each `--target` or `--exclude` name in `named` that is neither a key of an image of the set
    (see known_keys) nor a family (see family_keys)."""
    named = set(named)
    if not named:
        return
    unknown = sorted(named - known_keys(desired_keys, images, set_name) - set(families or {}))
    if unknown:
        raise UsageError(
            f"no image of set {set_name} has the key {', '.join(unknown)}",
            hint="--target and --exclude take image keys as the manifests write them, or family names",
        )


def expand(named: Iterable[str], families: Mapping[str, frozenset[str]], keys: Iterable[str]) -> frozenset[str]:
    """The keys `named` stands for: a name that is one of `keys` itself, a family's name its family's keys
    (both, for a live key left from before its name became a family's)."""
    keys = set(keys)
    found: set[str] = set()
    for name in named:
        if name in keys or name not in families:
            found.add(name)
        found.update(families.get(name, ()))
    return frozenset(found)


def named_scope(
    targets: Iterable[str], excludes: Iterable[str], desired: DesiredState, images: Iterable[Image]
) -> tuple[frozenset[str], frozenset[str]]:
    """`--target` and `--exclude` as the keys the planner's Scope takes: every name checked (a name that
    names nothing is refused), each family's name replaced by its keys."""
    targets, excludes, images = list(targets), list(excludes), list(images)
    set_name = desired.root.set
    families = family_keys(desired.families, images, set_name)
    desired_keys = [spec.key for spec in desired.images]
    check_named_keys([*targets, *excludes], desired_keys, images, set_name, families)
    keys = known_keys(desired_keys, images, set_name)
    return expand(targets, families, keys), expand(excludes, families, keys)
