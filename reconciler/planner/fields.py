"""Managed fields of a home image: one update of what differs (field_table), or, for an image this plan
makes or adopts, the same changes carried by the step that marks it (one call instead of two)."""

from __future__ import annotations

import re
from typing import Any

from reconciler import markers
from reconciler.desired import ImageSpec
from reconciler.plan import Change, Reason

from .context import PlanContext, src
from .field_table import describe_changes, wanted_changes
from .graph import ImageState
from .patching import patch

VERSION_LIKE = re.compile(r"\d+")


def compare_fields(ctx: PlanContext, spec: ImageSpec, state: ImageState) -> None:
    live = state.live
    name = spec.name
    if live is not None and markers.token_of(live.name) and name is None and state.last is None:
        name = spec.display_name  # finish a create that set its markers but not its final name
    changes = wanted_changes(spec, state, name=name)
    if state.made_by is not None or state.adopt is not None:
        target = state.made_by or state.adopt
        assert target is not None
        # A new or adopted image gets its managed fields in the same call that marks it.
        target.changes.update({k: v for k, v in changes.items() if k not in target.changes})
        state.download = changes.get(markers.DOWNLOAD_FLAG, Change(None, state.download)).after
        return
    if not changes:
        return
    if "name" in changes and _looks_like_a_version_bump(changes["name"].before, changes["name"].after):
        ctx.warn(
            "version_rename",
            spec.key,
            state.region,
            f"{changes['name'].before!r} -> {changes['name'].after!r} looks like a new version under the same "
            "key: a rename keeps the same image; declare a new key for a new build",
            src(spec, "name"),
        )
    first = next(iter(sorted(changes)))
    reason_field = (
        "name"
        if "name" in changes
        else ("properties" if first not in ("description", "min_disk", "min_ram") else first)
    )
    group = patch(
        ctx, state, "update", "", changes, Reason("field_changed", describe_changes(changes), src(spec, reason_field))
    )
    state.update = group.action
    if markers.DOWNLOAD_FLAG in changes:
        state.download = changes[markers.DOWNLOAD_FLAG].after
    if spec.min_disk is not None and live and live.virtual_size and spec.min_disk * 1024**3 < live.virtual_size:
        ctx.warn(
            "min_disk_small",
            spec.key,
            state.region,
            f"min_disk {spec.min_disk} GB is below the image's virtual size",
            src(spec, "min_disk"),
        )


def _looks_like_a_version_bump(before: Any, after: Any) -> bool:
    """A rename whose version numbers changed (web-base-v1 -> web-base-v2, web-2026-11 -> web-2026-12): a new
    build under the same key, which a rename would misrepresent. A rename that keeps every number and
    changes only words (web-2026-12 -> web-base-2026-12) is only a rename."""
    old, new = VERSION_LIKE.findall(str(before or "")), VERSION_LIKE.findall(str(after or ""))
    return bool(old) and bool(new) and [n.lstrip("0") for n in old] != [n.lstrip("0") for n in new]
