"""Who uses an image, as the snapshot knows it (`Snapshot.usage`: the project's servers booted from it and
volumes made from it, for the regions read for that), and the regions a plan still needs it for. Shared by
the in-use guard (in_use.py) and the leftovers' (temporary.py)."""

from __future__ import annotations

from reconciler.cloud.records import Image
from reconciler.live import ImageUser, Snapshot, described
from reconciler.plan import Plan


def usage_needed(snapshot: Snapshot, plan: Plan) -> tuple[str, ...]:
    """The regions where `plan` deletes an image and `snapshot` has no usage data: read them and plan again."""
    return tuple(sorted({a.region for a in plan.actions if a.kind == "delete"} - set(snapshot.usage)))


def users_of(snapshot: Snapshot, region: str, image_id: str) -> tuple[ImageUser, ...] | None:
    """The project's servers and volumes that use the image; None when the region's usage was not read."""
    region_usage = snapshot.usage.get(region)
    return None if region_usage is None else region_usage.get(image_id, ())


def leftover_users(snapshot: Snapshot, image: Image) -> str | None:
    """Why a leftover cannot be deleted because something uses it, or None."""
    users = users_of(snapshot, image.region, image.id)
    return f"it is in use by {described(users)}" if users else None
