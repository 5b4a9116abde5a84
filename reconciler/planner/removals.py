"""`removed:` entries (docs/manifest.md, "Stopping management without deleting"). destroy: false releases
each live image of the key, home and copies: one update removes every reconciler_* marker, restoring a
download flag the tool enabled, and leaves the image, its members, protection and property values as they
are. destroy: true leaves the key's images to the deletion concern, as a key that is simply gone. A removed
key with no live image is warned: the entry has nothing left to do."""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.plan import Change, Reason

from .context import TRUE, PlanContext, is_unfinished_copy, removal_source
from .download_flag import recorded_download
from .graph import ImageState
from .patching import patch


def plan_removals(ctx: PlanContext) -> None:
    """`removed:` entries (docs/manifest.md). destroy: false releases each live image of the key, home and
    copies: one update removes every reconciler_* marker, restoring a download flag the tool enabled, and
    leaves the image, its members, protection and property values as they are; the image is then
    unmanaged. destroy: true leaves the key's images to the deletion concern, as a key that is simply gone.
    A removed key with no live image is warned: the entry has nothing left to do."""
    for removal in ctx.desired.removed:
        if removal.key not in ctx.scope:
            continue
        live = ctx.live_images_of(removal.key)
        source = removal_source(removal)
        if not live:
            ctx.warn(
                "removed_nothing",
                removal.key,
                None,
                f"{removal.key} is listed under removed:, but set {ctx.set} has no live image of it: nothing to "
                f"{'delete' if removal.destroy else 'release'}; the entry can go",
                source,
            )
            continue
        if removal.destroy:
            continue
        for image in live:
            if ctx.accounted(image.id) or image.id in ctx.referenced:
                continue  # another declaration accounts for it (an adopt by id is planned, or refused, there)
            if is_unfinished_copy(image):
                continue  # the tool's own unfinished work, not an image anyone had: deletion deletes it
            _release(ctx, removal.key, image, source)


def _release(ctx: PlanContext, key: str, image: Image, source: str) -> None:
    """One update removing every reconciler_* marker from `image`; the download flag the tool enabled for
    copies (its reconciler_download_was record) is restored in the same call. Strict mode brackets it."""
    ctx.account(image.id)
    props = image.properties
    changes = {name: Change(value, None) for name, value in sorted(props.items()) if name.startswith(markers.PREFIX)}
    state = ImageState.of_live(key, image)
    was = props.get(markers.DOWNLOAD_WAS)
    restored = ""
    if isinstance(was, str) and state.download == TRUE:
        restore = recorded_download(ctx, state, was)
        if restore != TRUE:
            changes[markers.DOWNLOAD_FLAG] = Change(TRUE, restore)
            restored = ", and the download flag an interrupted run left enabled for copies is restored"
    what = f"its copy in {image.region}" if markers.COPY_OF in props else "the image"
    # Several images of the key in one region (a home and a stray copy, duplicates): one release each.
    same_region = [i.id for i in ctx.live_images_of(key) if i.region == image.region]
    label = "release"
    if len(same_region) > 1:
        short = [i[:8] for i in same_region]
        label += "-" + (image.id[:8] if short.count(image.id[:8]) == 1 else image.id)
    release = patch(
        ctx,
        state,
        "update",
        label,
        changes,
        Reason(
            "released",
            f"{key} is listed under removed: with destroy: false: {what} stays as it is (name, members, "
            f"protection, properties) and is no longer managed; its reconciler_* markers are removed{restored}",
            source,
        ),
        label=label,
    ).action
    # It is this set's image of that key when it runs, as when it was planned.
    release.expects[state.ref].update({markers.SET: ctx.set, markers.KEY: key})
