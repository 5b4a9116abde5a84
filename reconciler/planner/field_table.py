"""The one table of field semantics (docs/manifest.md, "What a field means when it is absent"): for a
declared image and its live image, the managed fields that differ. A field the manifest leaves out is left
alone; managed properties the tool set before (its reconciler_props marker) and no longer declared go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import markers
from reconciler.desired import ImageSpec
from reconciler.plan import Change

from .context import bool_text, quoted
from .graph import ImageState


def wanted_changes(spec: ImageSpec, state: ImageState, *, name: str | None) -> dict[str, Change]:
    """Declared fields that differ from `state`'s live image (all of them for an image made in this plan);
    `name`: the name it must have, None to leave the name alone."""
    live = state.live
    props: Mapping[str, Any] = live.properties if live is not None else {}
    changes: dict[str, Change] = {}

    def want(field_name: str, before: Any, after: Any) -> None:
        if before != after:
            changes[field_name] = Change(before, after)

    if name is not None and live is not None:
        want("name", live.name, name)
    if spec.description is not None:
        want("description", props.get("description"), spec.description)
    if spec.min_disk is not None:
        want("min_disk", live.min_disk if live else None, spec.min_disk)
    if spec.min_ram is not None:
        want("min_ram", live.min_ram if live else None, spec.min_ram)
    if spec.download is not None:
        want(markers.DOWNLOAD_FLAG, props.get(markers.DOWNLOAD_FLAG), bool_text(spec.download))
    # Properties: the keys the tool set before (its reconciler_props marker) and now absent go, also
    # when the whole block went; others are left alone.
    declared = spec.properties or {}
    for prop, value in sorted(declared.items()):
        want(prop, props.get(prop), value)
    for prop in markers.managed_props(props):
        if prop not in declared and prop in props:
            changes[prop] = Change(props[prop], None)
    if spec.properties is not None or markers.PROPS in props:
        want(markers.PROPS, props.get(markers.PROPS), ",".join(sorted(declared)) or None)
    changes.update(_family_markers(spec, props))
    return changes


def _family_markers(spec: ImageSpec, props: Mapping[str, Any]) -> dict[str, Change]:
    """A family's version carries its family and version; an image that is no longer one loses them."""
    changes = {}
    for marker, value in ((markers.FAMILY, spec.family), (markers.VERSION, spec.version)):
        if (value is not None or marker in props) and props.get(marker) != value:
            changes[marker] = Change(props.get(marker), value)
    return changes


def describe_changes(changes: Mapping[str, Change]) -> str:
    """`name "a" -> "b"; min_ram set to 512; login removed`: the changes a reason lists (markers aside)."""
    parts = []
    for name in sorted(changes):
        change = changes[name]
        if name.startswith("reconciler_"):
            continue
        if change.after is None:
            parts.append(f"{name} {quoted(change.before)} removed")
        elif change.before is None:
            parts.append(f"{name} set to {quoted(change.after)}")
        else:
            parts.append(f"{name} {quoted(change.before)} -> {quoted(change.after)}")
    return "; ".join(parts) or "markers"
