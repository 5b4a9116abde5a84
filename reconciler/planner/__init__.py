"""`build_plan(desired, snapshot, target) -> Plan`: a pure function (no I/O, clock, environment or
randomness); identical inputs give byte-identical JSON.

The planner is a driver over concerns, each a module of functions that take the `PlanContext` first and
the state of the image at hand (docs/architecture.md):

- identity: which live image is a declared key's (markers, an interrupted create, `moved_from`,
  `source.image`); temporary: this set's temporary-name images; imaging: creates from instances; uploads:
  creates from a file's or a URL's bytes (what plan time knows of them is snapshot data);
- fields, copies, sharing, protection: what each declared image, and each of its copies, must change;
- removals (`removed:`), deletion (what left the manifests), in_use (no delete of an image a server or
  volume uses; a retirement in use waits), guards (plan-wide refusals and warnings);
- families: only a family's newest version is built, its newest marker moves, its retirements wait for it;
- acceptance: a consumer's `accept:` / `reject:` rules against the images other projects share with it.

Concerns never import each other: they meet in the context (graph.py: the steps; context.py: the records
they share) and in the fixed order of `_plan` below, which *is* the behaviour.
"""

from __future__ import annotations

from typing import Any

from reconciler.desired import DesiredState, ImageSpec
from reconciler.gc_pause import gc_paused
from reconciler.live import Snapshot
from reconciler.lock_claims import claim_of, is_bookkeeping, iso
from reconciler.plan import Plan, Target

from . import (
    acceptance,
    copies,
    deletion,
    families,
    fields,
    guards,
    identity,
    imaging,
    in_use,
    protection,
    removals,
    sharing,
    temporary,
    uploads,
)
from .context import INCOMPLETE, PlanContext, Scope, src
from .graph import ImageState
from .usage import usage_needed

__all__ = ["DEFAULT_TIMEOUT_S", "INCOMPLETE", "build_plan", "usage_needed"]

# apply's --timeout default: a create running longer than this has failed (plan uses the default).
DEFAULT_TIMEOUT_S = 3600.0


def build_plan(
    desired: DesiredState,
    snapshot: Snapshot,
    target: Target,
    *,
    max_deletions: int | None = None,
    targets: frozenset[str] = frozenset(),
    excludes: frozenset[str] = frozenset(),
    timeout: float | None = None,
) -> Plan:
    """`targets` / `excludes` narrow the plan to some keys (a partial plan, warned in every output).
    `timeout`: apply's --timeout in seconds (default 3600): a temporary-name image `queued` or `saving`
    for longer than this, by the server's clock (`snapshot.server_time`), is a leftover, not a running create."""
    with gc_paused():  # everything the planner builds stays alive in the plan (reconciler/gc_pause.py)
        ctx = PlanContext(
            desired,
            snapshot,
            target,
            max_deletions=max_deletions,
            timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout,
            scope=Scope(targets, excludes),
        )
        _plan(ctx)
        return _finish(ctx)


def _plan(ctx: PlanContext) -> None:
    guards.renamed_set(ctx)
    in_scope = [spec for spec in ctx.desired.images if spec.key in ctx.scope]
    for spec in ctx.desired.images:
        if spec.key not in ctx.scope:
            # Out of scope: its live images are accounted for, never deletion candidates.
            for image in ctx.live_images_of(spec.key):
                ctx.account(image.id)
    temporary.sort_temporary(ctx)
    for spec in in_scope:
        _plan_image(ctx, spec)
    families.move_newest(ctx)
    guards.name_warnings(ctx)
    guards.invalid_marker_warnings(ctx)
    for spec in in_scope:
        imaging.restart_left_stopped(ctx, spec)
    if ctx.scope.partial:
        ctx.warn(
            "partial_plan",
            None,
            None,
            f"partial plan ({ctx.scope.describe()}): other images were not considered, and applying it "
            "may leave the cloud different from the manifests",
            None,
        )
    acceptance.plan_acceptance(ctx)
    removals.plan_removals(ctx)
    deletion.delete_unfinished_released_copies(ctx)
    withheld = guards.empty_root(ctx)
    if not withheld:
        deletion.plan_deletions(ctx)
    families.retire(ctx)
    deletion.deletes_last(ctx)
    in_use.guard_deletes(ctx)
    temporary.keep_leftovers(ctx, withheld)
    guards.max_deletions(ctx)


def _plan_image(ctx: PlanContext, spec: ImageSpec) -> None:
    """One declared image: its home image, then its fields, its copies, and the sharing and protection of
    each of them."""
    if spec.region not in ctx.snapshot.regions:
        ctx.refuse(
            "unknown_region",
            spec.key,
            spec.region,
            f"home region {spec.region} is not among the regions read ({', '.join(ctx.snapshot.regions)})",
            "use a region of the service catalog, or add it to cloud.regions",
            src(spec, "region"),
        )
        return
    home = identity.find_home(ctx, spec)
    if home is identity.MAKE:
        home = _make(ctx, spec) if families.may_build(ctx, spec) else None
    if home is None:
        return  # refused, or nothing can be planned for it now
    assert isinstance(home, ImageState)
    ctx.name_of(spec, home.region, home.live, copies.home_name(spec, home), "name")
    fields.compare_fields(ctx, spec, home)
    copy_states, made = copies.plan_copies(ctx, spec, home)
    deletion.drop_undeclared_copies(ctx, spec)
    copies.plan_download(ctx, spec, home, made)
    families.mark_copies(ctx, spec, copy_states)
    for region, state in sorted(copy_states.items()):
        sharing.plan_sharing(ctx, spec, state, spec.share)
        declared, field_path = copies.copy_protection(spec, region)
        protection.plan_protection(ctx, spec, state, declared, field_path=field_path)
    sharing.plan_sharing(ctx, spec, home, spec.share)
    protection.plan_protection(ctx, spec, home, spec.protected)
    ctx.states[(spec.key, home.region)] = home
    ctx.states.update(((spec.key, region), state) for region, state in copy_states.items())


def _make(ctx: PlanContext, spec: ImageSpec) -> ImageState | None:
    """The create of a key's image from its source: an upload of a file's or a URL's bytes, else an image of
    its instance."""
    return uploads.create(ctx, spec) if spec.source.uploaded else imaging.create(ctx, spec)


def _finish(ctx: PlanContext) -> Plan:
    ctx.graph.shorten_image_suffixes()
    return Plan(
        set=ctx.set,
        target=ctx.target,
        actions=tuple(ctx.graph.ordered()),
        refusals=tuple(sorted(ctx.refusals, key=lambda f: (f.key or "", f.region or "", f.code))),
        warnings=tuple(sorted(ctx.warnings, key=lambda f: (f.key or "", f.region or "", f.code))),
        info=_info(ctx),
    )


def _info(ctx: PlanContext) -> dict[str, Any]:
    """What the plan read, for the reader: counts by owner, pending members, the lock's claims."""
    own = ctx.own
    this_set = sum(len(v) for v in own.home.values()) + sum(len(v) for v in own.copies.values())
    bookkeeping = sum(1 for i in ctx.snapshot.all_images() if is_bookkeeping(i.properties))
    this_set += len(own.temporary)  # its interrupted or running creates are this set's too
    info: dict[str, Any] = {
        "images": sum(1 for _ in ctx.snapshot.all_images()) - bookkeeping,
        "this_set": this_set,
        "unmanaged": len(own.unmanaged),
        "other_sets": own.other_set_count,
        "pending_members": sorted(ctx.pending, key=lambda p: (p["key"], p["region"], p["member"])),
    }
    if ctx.desired.rules:
        info["accepted_unnamed"] = acceptance.accepted_unnamed(ctx)
    if own.unattributed:
        # Old-form temporary names that name no set and no declared key: listed, never touched.
        info["unattributed_temporary"] = [
            {"region": i.region, "image_id": i.id, "name": i.name, "status": i.status} for i in own.unattributed
        ]
    if bookkeeping:
        # Lock claims and doctor's scratch images: counted apart, never unmanaged (docs/plan-format.md).
        info["bookkeeping"] = bookkeeping
    claims = _lock_claims(ctx)
    if claims:
        info["lock"] = claims
    if ctx.scope.partial:
        info["partial"] = {
            "targets": sorted(ctx.scope.targets),
            "excludes": sorted(ctx.scope.excludes),
            "description": ctx.scope.describe(),
        }
    return info


def _lock_claims(ctx: PlanContext) -> list[dict[str, Any]]:
    """This set's apply-lock claims that the regions read happen to show (never an extra request): who holds
    or probes the lock and until when, by the server's clock."""
    found = []
    for image in ctx.snapshot.all_images():
        claim = claim_of(image, ctx.set)
        if claim is None:
            continue
        end = claim.lease_end
        found.append(
            {
                "claim": claim.id,
                "region": claim.region,
                "holder": claim.holder,
                "state": claim.state,
                "live": claim.live(ctx.snapshot.server_time.get(claim.region)),
                "lease_end": iso(end) if end is not None and end != float("inf") else None,
            }
        )
    return sorted(found, key=lambda c: (c["region"], c["claim"]))
