"""The in-use guard: a delete of an image that a server of the project was booted from, or that a volume of
the project (attached or not) was made from, is refused (`image_in_use`): their rebuild, evacuation and
resize need the image. `settings.delete_in_use: allow` plans it with a warning instead. A delete of a
shared image warns that other projects' servers and volumes are invisible to this one. A retirement (the
delete of a declared family's image: its `family` detail) of an image in use is neither done nor refused:
it waits with a `retirement_deferred` warning, image by image, and every later plan tries again.

Who uses an image is known only for the regions the snapshot has usage data for (`Snapshot.usage`):
reconciler/planning.py plans once, reads servers and volumes in the regions `usage_needed` names, and plans
again (usage.py). A leftover of an interrupted create that is in use is kept with a warning instead
(temporary.keep_leftovers), never refused."""

from __future__ import annotations

from reconciler.cloud.records import Image
from reconciler.live import ImageUser

from .context import PlanContext
from .graph import Step
from .usage import described, users_of


def guard_deletes(ctx: PlanContext) -> None:
    """Every planned delete but a leftover's (temporary.keep_leftovers judges those): refused when the image
    is in use, unless the root allows it; a warning for a shared image."""
    allow = ctx.desired.root.settings.delete_in_use == "allow"
    leftovers = {step.id for step, _ in ctx.leftovers}
    images = {image.id: image for image in ctx.snapshot.all_images()}
    for delete in ctx.graph.of_kind("delete"):
        image = images.get(delete.image_id or "")
        if delete.id in leftovers or image is None:
            continue
        users = users_of(ctx.snapshot, delete.region, image.id) or ()
        if users and delete.details.get("family") is not None:
            _defer(ctx, delete, image, users)
            continue
        if users and not allow:
            ctx.graph.remove(delete)
            ctx.deletions = [step for step in ctx.deletions if step is not delete]
            ctx.refuse(
                "image_in_use",
                delete.key,
                delete.region,
                f"{_named(image)} is in use by {described(users)}: {_harm(users)}",
                f"{_way_out(users)}; or keep the image: declare it again, or list {delete.key} under removed: with "
                f"destroy: false; meanwhile --exclude {delete.key} applies the rest; settings.delete_in_use: allow "
                "deletes it anyway",
                delete.reason.source,
            )
            continue
        if users:
            ctx.warn(
                "image_in_use",
                delete.key,
                delete.region,
                f"{_named(image)} is in use by {described(users)}, and is deleted anyway "
                f"(settings.delete_in_use: allow): {_harm(users)}",
                delete.reason.source,
            )
        if image.visibility in ("shared", "community", "public"):
            ctx.warn(
                "shared_image_deleted",
                delete.key,
                delete.region,
                f"{_named(image)} is {image.visibility}: other projects' servers and volumes may use it, and this "
                "project cannot see them",
                delete.reason.source,
            )


def _defer(ctx: PlanContext, delete: Step, image: Image, users: tuple[ImageUser, ...]) -> None:
    """A retirement of an image in use is neither done nor refused: it waits (warned), and every later plan
    tries again, so that one old version in use never blocks the rest of the family's plan."""
    ctx.graph.remove(delete)
    ctx.deletions = [step for step in ctx.deletions if step is not delete]
    count = f"{len(users)} user" + ("s" if len(users) > 1 else "")
    ctx.warn(
        "retirement_deferred",
        delete.key,
        delete.region,
        f"{_named(image)} is retired but in use by {count} ({described(users)}): it is not deleted now; every "
        f"later plan retires it once they are gone ({_way_out(users)} to let it go)",
        delete.reason.source,
    )


def _harm(users: tuple[ImageUser, ...]) -> str:
    """What deleting the image breaks, for the kinds of users it has."""
    kinds = {user.kind for user in users}
    said = []
    if "server" in kinds:
        said.append("a server booted from it needs it to rebuild, evacuate or resize")
    if "volume" in kinds:
        said.append("a volume made from it still names it as its source (a rebuild or re-image from it fails)")
    return "; ".join(said)


def _way_out(users: tuple[ImageUser, ...]) -> str:
    ways = []
    kinds = {user.kind for user in users}
    if "server" in kinds:
        ways.append("rebuild or delete those servers")
    if any(user.kind == "volume" and not user.attached_to for user in users):
        ways.append("delete those volumes")
    if any(user.kind == "volume" and user.attached_to for user in users):
        ways.append("detach and delete those volumes (a root volume goes with its server)")
    return " and ".join(ways) + " first"


def _named(image: Image) -> str:
    return f"{image.name} ({image.id})" if image.name else image.id
