"""A key's copies in other regions: each declared copy is kept (its fields updated), adopted
(`copies[].image`), made, or replaced when stale or incomplete; the download flag of the home image is
enabled for the copies made and restored after them (docs/copies.md)."""

from __future__ import annotations

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import CopySpec, ImageSpec
from reconciler.plan import Change, Reason, Ref

from .context import INCOMPLETE, TRUE, PlanContext, bool_text, src
from .download_flag import recorded_download
from .field_table import describe_changes, wanted_changes
from .graph import ImageState, Step
from .patching import expects_read, patch


def plan_copies(ctx: PlanContext, spec: ImageSpec, home: ImageState) -> tuple[dict[str, ImageState], list[Step]]:
    """The declared copies of `spec`'s home image, each kept, updated, adopted, made or replaced. Returns each
    copy's state by region (for sharing and protection) and the copy steps made (for plan_download)."""
    declared = {copy.region: copy for copy in spec.copies}
    made: list[Step] = []
    states: dict[str, ImageState] = {}
    for region in sorted(declared):
        copy = declared[region]
        if region not in ctx.snapshot.catalog_regions or region not in ctx.snapshot.regions:
            ctx.refuse(
                "unknown_region",
                spec.key,
                region,
                f"copy region {region} is not among the regions read ({', '.join(ctx.snapshot.regions)})",
                "use a region of the service catalog, or add it to cloud.regions",
                src(spec, f"copies.{region}"),
            )
            continue
        if region == home.region:
            _refuse_copy_beside_home(ctx, spec, home, region)
            continue
        state, step = _plan_copy(ctx, spec, home, copy)
        if step is not None:
            made.append(step)
        if state is not None:
            states[region] = state
            ctx.name_of(spec, region, state.live, copy_name(spec, home, copy), f"copies.{region}")
    return states, made


def _refuse_copy_beside_home(ctx: PlanContext, spec: ImageSpec, home: ImageState, region: str) -> None:
    """The home image lives in a declared copy region (its region changed; region is create-time only): a
    copy there would be a second image of the key in one region, with the same steps and ids as the home
    image's. Refused; the key's live copies there are left alone, not deleted."""
    for live in ctx.copies.get((spec.key, region), []):
        ctx.account(live.id)
    ctx.refuse(
        "ownership_conflict",
        spec.key,
        region,
        f"the home image {home.image_id} lives in {region}, where a copy is declared too: a copy beside its "
        "home image would be a second image of the key in one region",
        f"remove {region} from copies (the home image is there), or set region: {region}",
        src(spec, f"copies.{region}"),
    )


def plan_download(ctx: PlanContext, spec: ImageSpec, home: ImageState, made: list[Step]) -> None:
    """The download flag around the copies made (the dance), or, with none made, the restore of a flag an
    interrupted run left enabled."""
    if made:
        _download_dance(ctx, spec, home, made)
    else:
        _restore_left_enabled(ctx, spec, home)


def copy_protection(spec: ImageSpec, region: str) -> tuple[bool | None, str]:
    """A copy's declared protection and where it is written: its own override, else the key's."""
    copy = next(c for c in spec.copies if c.region == region)
    if copy.protected is not None:
        return copy.protected, f"copies.{region}"
    return spec.protected, "protected"


def home_name(spec: ImageSpec, home: ImageState) -> str:
    """The name the home image will have: the declared one, else its live name (left alone), else the key."""
    live = home.live
    if spec.name is None and live is not None and live.name and not markers.token_of(live.name):
        return live.name
    return spec.display_name


def copy_name(spec: ImageSpec, home: ImageState, copy: CopySpec) -> str:
    """Default: the home image's name, as it is or will be."""
    return copy.name or home_name(spec, home)


def _plan_copy(
    ctx: PlanContext, spec: ImageSpec, home: ImageState, copy: CopySpec
) -> tuple[ImageState | None, Step | None]:
    region = copy.region
    source = src(spec, f"copies.{region}")
    name = copy_name(spec, home, copy)
    live_copies = [i for i in ctx.copies.get((spec.key, region), []) if not ctx.accounted(i.id)]
    replace_reason = None
    live = live_copies[0] if live_copies else None
    for extra in live_copies[1:]:
        ctx.account(extra.id)
        ctx.refuse(
            "ownership_conflict",
            spec.key,
            region,
            f"two copies of {spec.key} in {region}: {live.id if live else '?'} and {extra.id}",
            "delete the one that should not be there",
            source,
        )
    if live is None and copy.image is not None:
        return _adopt_copy(ctx, spec, home, copy)
    if live is not None:
        ctx.account(live.id)
        replace_reason = _replace_reason(home, live, region)
        if replace_reason is None:
            return _keep_copy(ctx, spec, live, name, source), None
        if live.protected:
            ctx.refuse(
                "protected_undeclared",
                spec.key,
                region,
                f"{replace_reason[1]} and must be replaced, but it is protected",
                f"unprotect the copy {live.id} by hand, then plan again",
                source,
            )
            return None, None
    copy_action = ctx.graph.add(
        "copy",
        spec.key,
        region,
        Reason(
            replace_reason[0] if replace_reason else "copy_missing",
            (replace_reason[1] + ": replaced")
            if replace_reason
            else f"{spec.file} declares a copy in {region}; there is none",
            source,
        ),
        None,
        source_region=home.region,
        bytes=home.live.size if home.live else None,
        name=name,
    )
    copy_action.after(home.made_by or home.last, "the copy reads the home image")
    copy_action.expects[home.ref] = {"status": "active"}
    for marker, value in ((markers.SET, ctx.set), (markers.KEY, spec.key), (markers.COPY_OF, home.image_id)):
        if value is not None:  # a home image made in this plan: apply marks the copy with its id
            copy_action.changes[marker] = Change(None, value)
    if replace_reason is not None and live is not None:
        delete = ctx.graph.add(
            "delete",
            spec.key,
            region,
            Reason(replace_reason[0], replace_reason[1] + ": deleted, then copied again", source),
            live.id,
            "replace",
        )
        delete.expects[str(Ref.image(region, live.id))] = {
            "protected": False,
            markers.COPY_OF: live.properties.get(markers.COPY_OF),
        }
        copy_action.after(delete, "never two copies of one image in one region")
    state = ImageState.made(spec.key, region, copy_action)
    return state, copy_action


def _replace_reason(home: ImageState, live: Image, region: str) -> tuple[str, str] | None:
    """Why the live copy in `region` must be replaced (code, message), or None when it is a good copy of the
    current home image: made from another image, left incomplete, or with another checksum."""
    home_checksum = home.live.checksum if home.live else None
    if home.image_id is None or live.properties.get(markers.COPY_OF) != home.image_id:
        return (
            "stale_copy",
            f"the copy in {region} was made from {live.properties.get(markers.COPY_OF)}, not from the current home "
            "image",
        )
    if live.status in INCOMPLETE:
        return ("incomplete_copy", f"the copy in {region} was left {live.status}")
    if home_checksum and live.checksum and live.checksum != home_checksum:
        return (
            "incomplete_copy",
            f"the copy in {region} has checksum {live.checksum}, not the home image's {home_checksum}",
        )
    return None


def _keep_copy(ctx: PlanContext, spec: ImageSpec, live: Image, name: str, source: str | None) -> ImageState:
    """A good live copy: its declared fields updated (the download flag is the home image's), its key marker
    following a re-key."""
    state = ctx.state_of(spec.key, live)
    changes = wanted_changes(spec, state, name=name)
    changes.pop(markers.DOWNLOAD_FLAG, None)
    if live.properties.get(markers.KEY) != spec.key:
        changes[markers.KEY] = Change(live.properties.get(markers.KEY), spec.key)
    if changes:
        patch(ctx, state, "update", "", changes, Reason("field_changed", describe_changes(changes), source))
    return state


def _adopt_copy(
    ctx: PlanContext, spec: ImageSpec, home: ImageState, copy: CopySpec
) -> tuple[ImageState | None, Step | None]:
    region = copy.region
    source = src(spec, f"copies.{region}")
    owned = next((i for i in ctx.snapshot.images.get(region, ()) if i.id == copy.image), None)
    if owned is None:
        code = "not_owned" if ctx.snapshot.foreign.get(copy.image or "") is not None else "source_missing"
        ctx.refuse(
            code,
            spec.key,
            region,
            f"copy image {copy.image} is not an image of this project in {region}",
            "check copies[].image",
            source,
        )
        return None, None
    if ctx.refuse_invalid_markers(spec, region, owned, "copy image", source):
        return None, None
    owner_set, owner_key = owned.properties.get(markers.SET), owned.properties.get(markers.KEY)
    if isinstance(owner_set, str) and owner_set != ctx.set:
        ctx.refuse(
            "foreign_markers",
            spec.key,
            region,
            f"copy image {copy.image} belongs to set {owner_set}",
            "remove it from copies, or clear its markers",
            source,
        )
        return None, None
    if owner_set == ctx.set and (owner_key != spec.key or markers.COPY_OF not in owned.properties):
        ctx.refuse(
            "key_taken",
            spec.key,
            region,
            f"copy image {copy.image} is this set's {'copy' if markers.COPY_OF in owned.properties else 'image'} "
            f"of {owner_key}: it cannot become the copy of {spec.key}",
            "name an image that is not already this set's",
            source,
        )
        return None, None
    home_checksum = home.live.checksum if home.live is not None else None
    if home_checksum and owned.checksum != home_checksum:
        ctx.refuse(
            "ownership_conflict",
            spec.key,
            region,
            f"copy image {copy.image} has checksum {owned.checksum}, not the home image's {home_checksum}: "
            "it is not a copy of it",
            "remove image from this copy to let the tool make a verified copy",
            source,
        )
        return None, None
    if ctx.accounted(owned.id):
        ctx.refuse("ownership_conflict", spec.key, region, f"copy image {copy.image} is claimed twice", None, source)
        return None, None
    state = ctx.state_of(spec.key, owned)
    marks = {
        marker: Change(owned.properties.get(marker), value)
        for marker, value in (
            (markers.SET, ctx.set),
            (markers.KEY, spec.key),
            (markers.COPY_OF, home.image_id),
            (markers.SOURCE, f"image:{owned.id}"),  # adopted by id, as a home image adopted by id
        )
        if owned.properties.get(marker) != value
    }
    # The adopted copy gets the declared fields in the same call that marks it, as a home image does.
    live_home_name = spec.name or (home.live.name if home.live is not None else None)
    changes = wanted_changes(spec, state, name=copy.name or live_home_name or spec.display_name)
    changes.pop(markers.DOWNLOAD_FLAG, None)
    marks.update({k: v for k, v in changes.items() if k not in marks})
    reason = Reason("adopt_copy", f"adopts {owned.id} as the copy in {region}", source)
    # Bracketed like any PATCH under protected_patch: strict (a protected copy refuses the marking).
    adopt = patch(ctx, state, "adopt", "", marks, reason, label="adopt").action
    adopt.after(home.made_by, "the home image must exist")
    expects_read(ctx, adopt, state, {"status": owned.status})
    state.adopt = adopt
    return state, None


def _download_dance(ctx: PlanContext, spec: ImageSpec, home: ImageState, copies: list[Step]) -> None:
    """Copies read the home image's data, which NHN serves only with nhncloud_allow_download: enable
    it before them and restore it after them, also after a failed copy."""
    left_on = home.live.properties.get(markers.DOWNLOAD_WAS) if home.live else None
    if home.download == TRUE and left_on is None:
        for copy in copies:
            copy.expects[home.ref][markers.DOWNLOAD_FLAG] = TRUE
        return
    source = src(spec, "copies")
    on = None
    if isinstance(left_on, str) and home.download == TRUE:
        # A crash left it enabled: restore what was recorded, after these copies.
        record, restore = left_on, recorded_download(ctx, home, left_on)
    else:
        # (A marker without the flag on is stale: replaced by this run's record.)
        record = markers.download_record(home.download)
        restore = markers.DOWNLOAD_RESTORE[record]
        on = patch(
            ctx,
            home,
            "update",
            "download-on",
            {markers.DOWNLOAD_FLAG: Change(home.download, TRUE), markers.DOWNLOAD_WAS: Change(left_on, record)},
            Reason("download_for_copies", "the copies read the image's data: enable downloads", source),
        )
    for copy in copies:
        copy.after(home.last, "downloads must be enabled on the home image")
        copy.expects[home.ref][markers.DOWNLOAD_FLAG] = TRUE
    off = patch(
        ctx,
        home,
        "update",
        "download-off",
        {markers.DOWNLOAD_FLAG: Change(TRUE, restore), markers.DOWNLOAD_WAS: Change(record, None)},
        Reason("download_for_copies", "restore the download flag after the copies (runs even if one failed)", source),
        compensates=on.action.id if on else None,
    )
    for copy in copies:
        off.first.after(copy, "after every copy")


def _restore_left_enabled(ctx: PlanContext, spec: ImageSpec, home: ImageState) -> None:
    """A download flag a crash left enabled for copies: restore it, to the declared
    value when there is one, else to the recorded one, in the same way as any other PATCH. Only a flag
    that is on is restored: with it off the marker is stale (or set by hand) and is only cleared."""
    was = home.live.properties.get(markers.DOWNLOAD_WAS) if home.live is not None else None
    if not isinstance(was, str):
        return
    planned = home.update
    if planned is not None and markers.DOWNLOAD_FLAG in planned.changes:
        planned.changes[markers.DOWNLOAD_WAS] = Change(was, None)  # the declared value wins
        return
    current = home.live.properties.get(markers.DOWNLOAD_FLAG) if home.live else None
    if spec.download is not None:
        restore = bool_text(spec.download)
    elif current == TRUE:
        restore = recorded_download(ctx, home, was)
    else:
        restore = current
    changes = {markers.DOWNLOAD_WAS: Change(was, None)}
    if restore != current:
        changes[markers.DOWNLOAD_FLAG] = Change(current, restore)
    source = src(spec, "download") if spec.download is not None else None
    if current == TRUE:
        why = "an interrupted run left downloads enabled for copies: restore the flag"
        reason = Reason("download_left_enabled", why, source)
    else:
        reason = Reason(
            "download_marker_stale",
            f"{markers.DOWNLOAD_WAS} is set but downloads are not enabled: the marker is cleared",
            source,
        )
    patch(ctx, home, "update", "download-restore", changes, reason)
