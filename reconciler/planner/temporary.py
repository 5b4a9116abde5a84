"""This set's images under a temporary name (docs/plan-format.md, "Temporary names"): each is a create still
running (left alone, with a warning), a finishable one (for identity to adopt, by the key it is for), or a
leftover: a planned delete of key `~rc-<S><K>` that counts against max_deletions and is dropped with a
`leftover_kept` warning, never refused, when the budget, the in-use guard or an empty root would stop it.
A key uploaded from a file or a URL has no running or finishable image: an upload restarts from byte 0."""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image, Server, parse_server_time
from reconciler.desired import ImageSpec
from reconciler.plan import Reason, Ref

from .context import PlanContext, seconds, src
from .graph import Step
from .usage import leftover_users

# A temporary-name image in one of these, younger than the timeout, is a create still running.
CREATING = frozenset({"queued", "saving"})
# Why a temporary-name image of an uploaded key is a leftover, whatever its status and age.
UPLOAD_RESTARTS = "an upload is never finished by a later run; the upload restarts from byte 0"


def sort_temporary(ctx: PlanContext) -> None:
    for image in ctx.own.temporary:
        token = markers.parse_token(image.name)
        assert token is not None
        spec = ctx.by_token.get(token.name_token)
        if spec is not None and spec.region != image.region:
            spec = None  # its token is for another region: it matches no declared (key, region)
        if spec is not None and spec.key not in ctx.scope:
            continue  # out of scope: left alone, like the key's other images
        if spec is None and ctx.scope.partial:
            continue  # a partial plan considers only its keys
        if spec is not None and spec.source.uploaded:
            # Whatever its status or age: apply sets the markers only after checking every byte it sent,
            # so an image under an upload's temporary name holds unchecked bytes or none.
            _leftover(ctx, image, spec, f"{spec.key} is uploaded: {UPLOAD_RESTARTS}")
            continue
        if image.status in CREATING:
            age = _age(ctx, image)
            if age is None or age < ctx.timeout:
                _still_creating(ctx, image, spec)
                continue
            why = f"{image.status} for more than {seconds(ctx.timeout)} (the timeout) by the server's clock"
        elif image.status == "active" and spec is not None and spec.source.instance is not None:
            server = ctx.snapshot.servers.get((spec.region, spec.source.instance))
            if _made_from(image, server):
                ctx.finishable[spec.key].append(image)
                continue
            made = image.properties.get("instance_uuid")
            why = f"it was not made from {spec.source.instance} (instance_uuid {made})"
        elif image.status != "active":
            why = f"it is {image.status}"
        elif spec is None:
            why = "its token matches no declared key and region"
        else:
            why = f"{spec.key} is not made from an instance"
        _leftover(ctx, image, spec, why)


def keep_leftovers(ctx: PlanContext, withheld: bool) -> None:
    """Leftover deletes count against max_deletions and pass the in-use guard; where either (or an empty root,
    `withheld`) would stop one, it is dropped from the plan with a `leftover_kept` warning, never a refusal.
    Those a create waits for go first within the budget."""
    if not ctx.leftovers:
        return
    leftover_ids = {step.id for step, _ in ctx.leftovers}
    regular = sum(1 for step in ctx.graph.of_kind("delete") if step.id not in leftover_ids)
    budget = ctx.max_deletions - regular
    waited_for = {d.id for step in ctx.graph.of_kind("create") for d in step.depends_on}
    kept: list[tuple[Step, str, Image]] = []
    for delete, image in sorted(ctx.leftovers, key=lambda pair: (pair[0].id not in waited_for, pair[0].id)):
        in_use = leftover_users(ctx.snapshot, image)
        if withheld:
            kept.append((delete, "an empty root plans no deletion", image))
        elif in_use is not None:
            kept.append((delete, in_use, image))
        elif budget <= 0:
            why = (
                f"deleting it would take the plan past max_deletions {ctx.max_deletions} (raise "
                "settings.max_deletions to let a plan delete it)"
            )
            kept.append((delete, why, image))
        else:
            budget -= 1
    for delete, why, image in sorted(kept, key=lambda k: k[0].id):
        ctx.graph.remove(delete)
        ctx.warn(
            "leftover_kept",
            delete.key,
            delete.region,
            f"{image.name} ({image.id}) is a leftover of an interrupted create, kept: {why}",
            None,
        )
    dropped = {id(delete) for delete, _, _ in kept}
    ctx.leftovers = [(step, image) for step, image in ctx.leftovers if id(step) not in dropped]


def _age(ctx: PlanContext, image: Image) -> float | None:
    """Seconds since the image was created, by the server's clock; None when either time is unknown."""
    now = ctx.snapshot.server_time.get(image.region)
    created = parse_server_time(image.created_at)
    return None if now is None or created is None else now - created


def _still_creating(ctx: PlanContext, image: Image, spec: ImageSpec | None) -> None:
    token = markers.token_of(image.name) or ""
    key = spec.key if spec is not None else markers.leftover_key(ctx.set, token)
    if spec is not None:
        ctx.creating[spec.key].append(image)
    then = f", and {spec.key} is planned again once it is done" if spec is not None else ""
    ctx.warn(
        "create_in_progress",
        key,
        image.region,
        f"{image.name} ({image.id}) is {image.status}, created less than {seconds(ctx.timeout)} ago by the "
        f"server's clock: a create still running, left alone{then}",
        src(spec) if spec is not None else None,
    )


def _leftover(ctx: PlanContext, image: Image, spec: ImageSpec | None, why: str) -> None:
    token = markers.token_of(image.name) or ""
    key = markers.leftover_key(ctx.set, token)
    if image.protected:
        ctx.warn(
            "leftover_kept",
            key,
            image.region,
            f"{image.name} ({image.id}) is a leftover of an interrupted create ({why}), but it is protected: kept",
            None,
        )
        return
    delete = ctx.graph.add(
        "delete",
        key,
        image.region,
        Reason("leftover", f"{image.name} is a leftover of an interrupted create ({why}); not protected", None),
        image.id,
        image_suffix=True,
        name=image.name,
    )
    delete.expects[str(Ref.image(image.region, image.id))] = {
        "protected": False,
        "status": image.status,
        "name": image.name,
    }
    ctx.leftovers.append((delete, image))
    if spec is not None:
        ctx.cleanups[(spec.key, spec.region)].append(delete)


def _made_from(image: Image, server: Server | None) -> bool:
    """Was a finishable candidate made from the declared instance? On the local-disk path (Nova createImage,
    which records `instance_uuid`) only if its instance_uuid is that server; an image that records none came
    from the volume path, which is fine unless the server is known to be local-disk."""
    uuid = image.properties.get("instance_uuid")
    if server is not None and isinstance(uuid, str) and uuid.lower() == server.id.lower():
        return True
    return uuid is None and (server is None or server.root_device != "local")
