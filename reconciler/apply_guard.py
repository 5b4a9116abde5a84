"""Execution-time guards: before apply changes an image or a server, is it one this action may touch?
Judged from the root at hand and the live object just read, never from the plan (docs/safety.md,
"Execution-time guards"). Pure: apply passes in what it read.

An image may be touched by an action of key K in region R when it carries `reconciler_set` = this set and
`reconciler_key` = K (a copy also `reconciler_copy_of`, and lies in R), or it is in this closed list:
(1) an image the root names for K (`source.image`, `copies[].image`): the adopt, and its strict bracket;
(2) an image with this set's temporary-name token for (K, R); (3) an image this process created; (6) an
image of this set whose key is the one K's `moved_from` names; (7) the closing `protect` of a strict
bracket whose `unprotect` this run performed on that image. (Lock claims are touched by the lock code
only, which does not go through apply.) An accept or reject (no key) sets this project's own member
status on an image another project shares only when (4) the root's `accept:` / `reject:` rules want that
status for the image as it reads now (planner/acceptance.py: reject wins; an image no rule names is
left alone). A server may be touched only by actions of a key whose
`source.instance` names it now, and a stop refuses a server another set marked as stopped by it. A create
that uploads (no server) runs only when the root declares for its key the same file or URL, disk format and
digest (`upload_refusal`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from reconciler import markers
from reconciler.cloud.records import Image, Server
from reconciler.desired import DesiredState, ShareRule, Source
from reconciler.plan_kinds import MEMBER_STATUS
from reconciler.planner.acceptance import wanted_status  # the planner's one reading of the rules (pure)


@dataclass(frozen=True, slots=True)
class GuardContext:
    """What the root at hand says each key may touch."""

    set_name: str
    adopted: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)  # key -> {(region, id)}
    moved_from: Mapping[str, str] = field(default_factory=dict)  # key -> the key it had before
    instances: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # key -> (region, name or id)
    # settings.delete_in_use: "allow" lets a delete go on while a server or volume uses the image.
    delete_in_use: str = "refuse"
    rules: tuple[ShareRule, ...] = ()  # accept: and reject: (a consumer root)
    uploads: Mapping[str, tuple[str, Source]] = field(default_factory=dict)  # key -> (region, file or URL source)

    @classmethod
    def from_desired(cls, desired: DesiredState) -> GuardContext:
        adopted: dict[str, set[tuple[str, str]]] = {}
        moved: dict[str, str] = {}
        instances: dict[str, tuple[str, str]] = {}
        uploads: dict[str, tuple[str, Source]] = {}
        for spec in desired.images:
            named = adopted.setdefault(spec.key, set())
            if spec.source.image:
                named.add((spec.region, spec.source.image.lower()))
            for copy in spec.copies:
                if copy.image:
                    named.add((copy.region, copy.image.lower()))
            if spec.moved_from:
                moved[spec.key] = spec.moved_from
            if spec.source.instance:
                instances[spec.key] = (spec.region, spec.source.instance)
            if spec.source.uploaded:
                uploads[spec.key] = (spec.region, spec.source)
        return cls(
            desired.root.set,
            {k: frozenset(v) for k, v in adopted.items()},
            moved,
            instances,
            desired.root.settings.delete_in_use,
            desired.rules,
            uploads,
        )


def upload_refusal(ctx: GuardContext, key: str, region: str, uploading: Source) -> str | None:
    """None when the root declares, for `key` in `region`, the very file or URL, disk format and digest a
    create is about to upload."""
    declared = ctx.uploads.get(key)
    if declared is None or declared[0] != region:
        return f"the root declares no upload for {key} in {region}: nothing was uploaded"
    source = declared[1]
    if (source.file, source.url, source.disk_format, source.digest) != (
        uploading.file,
        uploading.url,
        uploading.disk_format,
        uploading.digest,
    ):
        return f"the root declares another source for {key} than this upload's: nothing was uploaded"
    return None


def image_refusal(
    ctx: GuardContext,
    kind: str,
    key: str,
    region: str,
    image: Image,
    *,
    created_here: Collection[str] = (),
    unprotected_here: Collection[str] = (),
) -> str | None:
    """None when an action (`kind`, `key`, `region`) may change `image`; otherwise why it may not."""
    if kind in MEMBER_STATUS:
        return status_refusal(ctx, kind, region, image)
    props = image.properties
    if image.id in created_here:
        return None
    if key.startswith(markers.TOKEN_SEPARATOR):
        # A leftover's delete (key `~rc-<S><K>`): only an image named with this set's token K in this region.
        if kind == "delete" and markers.is_leftover_of(ctx.set_name, key, region, image.name, image.region):
            return None
        return f"image {image.id} in {image.region} is not a leftover of set {ctx.set_name} ({key}): it was not touched"
    owner_set, owner_key = props.get(markers.SET), props.get(markers.KEY)
    if owner_set == ctx.set_name and owner_key in (key, ctx.moved_from.get(key)) and image.region == region:
        return None
    if (image.region, image.id.lower()) in ctx.adopted.get(key, ()):
        return None
    if markers.token_of(image.name) == markers.name_token(ctx.set_name, key, region) and image.region == region:
        return None
    if kind == "protect" and image.id in unprotected_here:
        return None
    carries = f"set {owner_set!r}, key {owner_key!r}" if owner_set or owner_key else "no markers of any set"
    return (
        f"image {image.id} in {image.region} is not an image of set {ctx.set_name} key {key} ({carries}), and the "
        "root names it nowhere: it was not touched"
    )


def status_refusal(ctx: GuardContext, kind: str, region: str, image: Image) -> str | None:
    """None when the root's rules want the status an accept or reject sets for `image` as it reads now."""
    wanted = MEMBER_STATUS[kind]
    if image.region == region and wanted_status(ctx.rules, image) == wanted:
        return None
    return (
        f"image {image.id} in {image.region} (project {image.owner}) is not one the root's rules want "
        f"{wanted} now: its member status was not changed"
    )


def server_refusal(ctx: GuardContext, kind: str, key: str, region: str, server: Server) -> str | None:
    """None when an action of `key` may act on `server`: the one the root's `source.instance` for that key
    names now (by id or name); a stop also refuses a server another set marked as stopped by it."""
    declared = ctx.instances.get(key)
    names = {server.id.lower(), server.name}
    if declared is None or declared[0] != region or (declared[1] not in names and declared[1].lower() not in names):
        return f"server {server.id} ({server.name}) in {region} is not the instance key {key} names: it was not touched"
    if kind == "stop_instance":
        marked_by = markers.stopped_by_set(server.metadata.get(markers.STOPPED_BY))
        if marked_by not in (None, ctx.set_name):
            return f"server {server.name} is marked as stopped by set {marked_by}: it was not touched"
    return None
