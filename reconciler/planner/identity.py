"""Which live image is a declared key's home image: the one carrying the set's markers (the oldest, when
the tool made more than one), an interrupted create under its temporary name, the image a `moved_from`
names (re-keyed), or one `source.image` adopts. When none is, the key's image is to be made (MAKE)."""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import ImageSpec
from reconciler.live import UUID
from reconciler.plan import Change, Reason, Ref

from .context import PlanContext, src
from .graph import ImageState
from .patching import expects_read, patch

MAKE = object()  # find_home's answer when nothing live is the key's image: the imaging concern makes one


def find_home(ctx: PlanContext, spec: ImageSpec) -> ImageState | None | object:
    """The key's home image as a state; None when refused or when nothing can be planned now (a create is
    still running); MAKE when it is to be made from its instance."""
    candidates = list(ctx.own.home.get(spec.key, []))
    if candidates:
        keep = _resolve_duplicates(ctx, spec, candidates)
        if keep is None:
            return None
        state = ctx.state_of(spec.key, keep)
        if keep.region != spec.region:
            ctx.warn(
                "create_time_field",
                spec.key,
                spec.region,
                f"region changed: the image lives in {keep.region}; region is create-time only, "
                "nothing is moved or rebuilt",
                src(spec, "region"),
            )
        if spec.source.uploaded:
            _check_content(ctx, spec, keep)
        else:
            _check_source_change(ctx, spec, keep)
        for late in ctx.finishable.pop(spec.key, []):
            _delete_duplicate(ctx, spec, late, keep)
        return state
    if ctx.creating.get(spec.key):
        return None  # a create still running: planned again once it is done (warned by the temporary concern)
    finishable = ctx.finishable.pop(spec.key, [])
    if finishable:
        return _finish_create(ctx, spec, finishable)
    if spec.moved_from and ctx.own.home.get(spec.moved_from):
        return _rekey(ctx, spec, ctx.own.home[spec.moved_from][0], spec.moved_from)
    if spec.source.image is not None:
        return _adopt(ctx, spec)
    return MAKE


def declared_source(ctx: PlanContext, spec: ImageSpec) -> str:
    """The reconciler_source marker a declaration gives its image: `image:<id>`, `instance:<server id>`, or an
    upload's content, `sha256:<hex>` / `sha512:<hex>`."""
    if spec.source.image is not None:
        return f"image:{spec.source.image}"
    if spec.source.content is not None:
        return spec.source.content
    server = ctx.snapshot.servers.get((spec.region, spec.source.instance or ""))
    return f"instance:{server.id if server else spec.source.instance}"


def _resolve_duplicates(ctx: PlanContext, spec: ImageSpec, candidates: list[Image]) -> Image | None:
    """Keep the oldest; a later, unprotected one the tool made itself is a planned delete."""
    original, *later = candidates
    for duplicate in later:
        ctx.account(duplicate.id)
        made_by_tool = markers.token_of(duplicate.name) is not None or duplicate.properties.get(markers.SOURCE)
        if duplicate.protected or not made_by_tool:
            ctx.refuse(
                "ownership_conflict",
                spec.key,
                duplicate.region,
                f"two images claim {spec.key}: {original.id} ({original.region}) and {duplicate.id} "
                f"({duplicate.region})",
                "remove the reconciler_* markers from the one that is not this key's image, or delete it",
                src(spec),
            )
            continue
        _delete(ctx, spec, duplicate, original, "created after the original", {markers.KEY: spec.key})
    return original


def _finish_create(ctx: PlanContext, spec: ImageSpec, found: list[Image]) -> ImageState:
    """Finish an interrupted create: adopt the oldest finishable image (markers, final name); a later one is a
    duplicate the tool made, deleted."""
    original, *extra = found
    for duplicate in extra:
        _delete_duplicate(ctx, spec, duplicate, original)
    state = ctx.state_of(spec.key, original)
    adopt = ctx.graph.add(
        "adopt",
        spec.key,
        spec.region,
        Reason(
            "interrupted_create",
            f"an interrupted create left {original.name}: finish it (markers, final name)",
            src(spec),
        ),
        original.id,
        name=spec.display_name,
    )
    source = declared_source(ctx, spec)
    for name, value in ((markers.SET, ctx.set), (markers.KEY, spec.key), (markers.SOURCE, source)):
        if original.properties.get(name) != value:
            adopt.changes[name] = Change(original.properties.get(name), value)
    adopt.changes["name"] = Change(original.name, spec.display_name)
    adopt.expects[state.ref] = {"status": "active", "name": original.name}
    state.last = state.adopt = adopt
    return state


def _delete_duplicate(ctx: PlanContext, spec: ImageSpec, duplicate: Image, original: Image) -> None:
    """A finishable image of a key that has an image already: the tool made it twice."""
    if duplicate.protected:
        ctx.warn(
            "leftover_kept",
            spec.key,
            duplicate.region,
            f"{duplicate.name} ({duplicate.id}) duplicates {original.id}, but it is protected: kept",
            src(spec),
        )
        return
    _delete(
        ctx,
        spec,
        duplicate,
        original,
        f"temporary name {duplicate.name}",
        {"status": duplicate.status, "name": duplicate.name},
    )


def _delete(
    ctx: PlanContext, spec: ImageSpec, duplicate: Image, original: Image, how: str, expects: dict[str, object]
) -> None:
    """The planned delete of a duplicate the tool made (`how` it is told apart), expecting it unprotected."""
    delete = ctx.graph.add(
        "delete",
        spec.key,
        duplicate.region,
        Reason("duplicate", f"a duplicate of {original.id} made by an interrupted or concurrent run ({how})", None),
        duplicate.id,
        image_suffix=True,
    )
    delete.expects[str(Ref.image(duplicate.region, duplicate.id))] = {"protected": False, **expects}


def _rekey(ctx: PlanContext, spec: ImageSpec, live: Image, old_key: str) -> ImageState:
    state = ctx.state_of(spec.key, live)
    reason = Reason(
        "moved_from", f"re-keyed from {old_key}: the same image, no delete and no create", src(spec, "moved_from")
    )
    # Bracketed like any PATCH under protected_patch: strict (a protected image refuses the new key).
    group = patch(ctx, state, "update", "rekey", {markers.KEY: Change(old_key, spec.key)}, reason)
    expects_read(ctx, group.action, state, {markers.SET: ctx.set, markers.KEY: old_key})
    return state


def _check_source_change(ctx: PlanContext, spec: ImageSpec, live: Image) -> None:
    recorded = live.properties.get(markers.SOURCE)
    if not isinstance(recorded, str):
        return  # unknown, and not drift
    instance = spec.source.instance
    gone = instance is not None and ctx.snapshot.servers.get((spec.region, instance)) is None
    if gone and recorded.startswith("instance:") and not UUID.match(instance or ""):
        # The instance named is gone (deleted after imaging, as often): its name can no longer be told
        # from the id recorded, and a declaration nobody changed is no change.
        return
    declared = declared_source(ctx, spec)
    same_instance = (
        spec.source.instance is not None
        and recorded.startswith("instance:")
        and recorded.removeprefix("instance:") in (spec.source.instance, declared.removeprefix("instance:"))
    )
    if recorded != declared and not same_instance:
        ctx.warn(
            "create_time_field",
            spec.key,
            live.region,
            f"source changed: the image was made from {recorded}; source is create-time only, nothing is "
            "rebuilt (declare a new key for a new build)",
            src(spec, "source"),
        )


def _check_content(ctx: PlanContext, spec: ImageSpec, live: Image) -> None:
    """An uploaded image: a declared digest other than the one recorded is a create-time change, never a
    rebuild; else, where Glance hashed the bytes with the declared digest's algorithm, they must match it.
    An older version of a family is not built from its source (only the newest is), so its image is not
    held to the digest the family declares now."""
    if not _built_from_source(ctx, spec):
        return
    declared = spec.source.content
    digest = spec.source.digest
    assert declared is not None and digest is not None
    recorded = live.properties.get(markers.SOURCE)
    if isinstance(recorded, str) and recorded.lower() != declared:
        ctx.warn(
            "create_time_field",
            spec.key,
            live.region,
            f"the declared content changed from {_short(recorded)} to {_short(declared)}: source is create-time "
            "only, nothing is rebuilt; ship a new version (a family fits)",
            _digest_source(spec),
        )
        return
    algorithm, value = digest
    if live.os_hash_algo == algorithm and live.os_hash_value and live.os_hash_value.lower() != value:
        ctx.warn(
            "content_mismatch",
            spec.key,
            live.region,
            f"the image's {algorithm} is {_short(live.os_hash_value)} by Glance, not the declared "
            f"{_short(declared)}: its bytes are not the declared ones",
            _digest_source(spec),
        )


def _built_from_source(ctx: PlanContext, spec: ImageSpec) -> bool:
    """Whether the key's image is the one made from its declared source: not an older version of a family."""
    family = ctx.desired.family(spec.family) if spec.family else None
    return family is None or spec.version is None or spec.version == family.newest


def _short(content: str) -> str:
    """`sha256:3a7bd3e2360a…`: enough of a digest to tell two apart in a message."""
    algorithm, colon, value = content.rpartition(":")
    head = f"{algorithm}{colon}" if colon else ""
    return f"{head}{value[:12]}…" if len(value) > 12 else content


def _digest_source(spec: ImageSpec) -> str | None:
    for field_path in ("source.sha256", "source.sha512"):
        if field_path in spec.locations:
            return src(spec, field_path)
    return src(spec, "source")


def _adopt(ctx: PlanContext, spec: ImageSpec) -> ImageState | None:
    image_id = spec.source.image
    assert image_id is not None
    owned = next((i for i in ctx.snapshot.all_images() if i.id == image_id), None)
    source = src(spec, "source.image")
    if owned is None:
        seen = ctx.snapshot.foreign.get(image_id)
        if seen is None:
            ctx.refuse(
                "source_missing",
                spec.key,
                spec.region,
                f"image {image_id} does not exist or is not visible",
                "check the id in source.image",
                source,
            )
        else:
            ctx.refuse(
                "not_owned",
                spec.key,
                spec.region,
                f"image {image_id} belongs to project {seen.owner}, not to this project: it cannot be adopted",
                "adopt only images of this project; copy the image into it first",
                source,
            )
        return None
    if owned.region != spec.region:
        ctx.refuse(
            "source_missing",
            spec.key,
            spec.region,
            f"image {image_id} is in {owned.region}, not in the home region {spec.region}",
            f"set region: {owned.region} on {spec.key}",
            source,
        )
        return None
    if ctx.refuse_invalid_markers(spec, spec.region, owned, "image", source):
        return None
    owner_set, owner_key = owned.properties.get(markers.SET), owned.properties.get(markers.KEY)
    if owner_set == ctx.set and owner_key is not None and owner_key != spec.key:
        if spec.moved_from == owner_key:
            return _rekey(ctx, spec, owned, owner_key)
        ctx.refuse(
            "key_taken",
            spec.key,
            spec.region,
            f"image {image_id} is this set's {owner_key}; adopting it as {spec.key} would take it from that key",
            f"if {spec.key} replaces {owner_key}, add moved_from: {owner_key}",
            source,
        )
        return None
    if isinstance(owner_set, str) and owner_set != ctx.set and not spec.source.takeover:
        ctx.refuse(
            "foreign_markers",
            spec.key,
            spec.region,
            f"image {image_id} belongs to set {owner_set} (key {owner_key})",
            f"add takeover: true to source to adopt it anyway (set {owner_set} will then consider it gone)",
            source,
        )
        return None
    state = ctx.state_of(spec.key, owned)
    reason = (
        f"takes over image {image_id} from set {owner_set}"
        if isinstance(owner_set, str) and owner_set != ctx.set
        else f"adopts image {image_id} ({owned.name})"
    )
    marks = {
        name: Change(owned.properties.get(name), value)
        for name, value in ((markers.SET, ctx.set), (markers.KEY, spec.key), (markers.SOURCE, f"image:{image_id}"))
        if owned.properties.get(name) != value
    }
    # Bracketed like any PATCH under protected_patch: strict (a protected image refuses the marking).
    group = patch(ctx, state, "adopt", "", marks, Reason("adopt", reason, source), label="adopt")
    expects_read(ctx, group.action, state, {"status": owned.status, markers.SET: owner_set, markers.KEY: owner_key})
    state.adopt = group.action
    return state
