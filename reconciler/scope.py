"""What one plan covers: the image keys `--target` and `--exclude` may name. Pure: no I/O.

A key that names nothing is an error, not a no-op: a typo in `--exclude` would otherwise plan (and apply)
the very key it meant to leave out.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.errors import UsageError


def known_keys(desired_keys: Iterable[str], images: Iterable[Image], set_name: str) -> set[str]:
    """The keys a scope may name: every key the manifests declare, and every key a live image of this set
    carries. Live keys only as the tool writes them: an image whose markers no run of the tool could have
    written is nobody's (reconciler.ownership)."""
    live = {
        str(image.properties.get(markers.KEY))
        for image in images
        if image.properties.get(markers.SET) == set_name and not markers.invalid_markers(image.properties)
    }
    return set(desired_keys) | live


def check_named_keys(named: Iterable[str], desired_keys: Iterable[str], images: Iterable[Image], set_name: str) -> None:
    """Refuse each `--target` or `--exclude` key in `named` that no image of the set has (see known_keys)."""
    named = set(named)
    if not named:
        return
    unknown = sorted(named - known_keys(desired_keys, images, set_name))
    if unknown:
        raise UsageError(
            f"no image of set {set_name} has the key {', '.join(unknown)}",
            hint="--target and --exclude take image keys as the manifests write them",
        )
