# The planner as issue 20 found it (reconciler/planner.py at commit 20bb059), frozen for the differential test:
# only the import of ownership differs (the frozen copy next to it). Deleted with that test.
"""`build_plan(desired, snapshot, target) -> Plan`: a pure function (no I/O, clock, environment or
randomness); identical inputs give byte-identical JSON.

Per declared image: find its live home image (markers, a temporary-name token, `moved_from`, or
`source.image`), else plan how to make it; compare the managed fields through one table of field
semantics; then its copies, sharing and protection. Then deletions of what left the manifests, and the
guards (docs/safety.md). Order comes from explicit dependencies, ties broken deterministically.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import markers
from reconciler.cloud.records import Image, Server, parse_server_time
from reconciler.desired import CopySpec, DesiredState, ImageSpec, Removal
from reconciler.gc_pause import gc_paused
from reconciler.lock_claims import claim_of, is_bookkeeping, iso
from reconciler.plan import Action, Change, Dependency, Finding, Plan, Reason, Target
from reconciler.snapshot import UUID, Snapshot

from .frozen_ownership import Ownership, classify_desired, referenced_ids

# Where an action kind falls in "make before break": lower runs first among ready ones.
RANK = {
    "stop_instance": 0,
    "create": 1,
    "adopt": 1,
    "unprotect": 2,
    "update": 3,
    "copy": 4,
    "protect": 5,
    "share": 6,
    "start_instance": 7,
    "unshare": 8,
    "delete": 9,
}
INCOMPLETE = frozenset({"queued", "saving", "uploading", "importing", "killed"})
# A temporary-name image in one of these, younger than the timeout, is a create still running.
CREATING = frozenset({"queued", "saving"})
# apply's --timeout default: a create running longer than this has failed (plan uses the default).
DEFAULT_TIMEOUT_S = 3600.0
BASE_IMAGE_DATE = re.compile(r"\((\d{4})\.(\d{2})\.(\d{2})\)")
VERSION_LIKE = re.compile(r"\d+")
TRUE, FALSE = "true", "false"


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
        planner = _Planner(desired, snapshot, target, max_deletions, DEFAULT_TIMEOUT_S if timeout is None else timeout)
        planner.scope = _Scope(targets, excludes)
        return planner.run()


@dataclass(frozen=True)
class _Scope:
    targets: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()

    def __contains__(self, key: str) -> bool:
        return (not self.targets or key in self.targets) and key not in self.excludes

    @property
    def partial(self) -> bool:
        return bool(self.targets or self.excludes)

    def describe(self) -> str:
        parts = []
        if self.targets:
            parts.append("only " + ", ".join(sorted(self.targets)))
        if self.excludes:
            parts.append("excluding " + ", ".join(sorted(self.excludes)))
        return "; ".join(parts)


def _src(spec: ImageSpec, field_path: str = "") -> str | None:
    location = spec.location(field_path)
    return f"{location.file}:{location.line}" if location else None


def _bool_text(value: bool) -> str:
    return TRUE if value else FALSE


@dataclass
class _Built:
    """Mutable while planning; frozen into Actions at the end."""

    id: str
    kind: str
    key: str
    region: str
    reason: Reason
    image_id: str | None
    changes: dict[str, Change] = field(default_factory=dict)
    expects: dict[str, dict[str, Any]] = field(default_factory=dict)
    depends_on: list[Dependency] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # The id ends with the full image id while planning; _shorten_image_suffixes cuts it to 8 characters.
    image_suffix: bool = False

    def after(self, other: _Built | None, reason: str) -> None:
        if other is not None and all(d.id != other.id for d in self.depends_on):
            self.depends_on.append(Dependency(other.id, reason))


@dataclass
class _ImageState:
    """An image as it will be when the actions planned so far have run."""

    key: str
    region: str
    image_id: str | None  # None: made by `made_by`
    made_by: _Built | None
    live: Image | None
    protected: bool
    visibility: str
    download: str | None
    last: _Built | None = None  # the latest action that changes it: the next one waits for it
    # The adopt that marks it, which also carries its declared fields (one PATCH); None when not adopted.
    adopt: _Built | None = None

    @property
    def ref(self) -> str:
        return f"{self.region}/{self.image_id or '<' + (self.made_by.id if self.made_by else '?') + '>'}"


class _Planner:
    def __init__(
        self, desired: DesiredState, snapshot: Snapshot, target: Target, max_deletions: int | None, timeout: float
    ) -> None:
        self.desired = desired
        self.timeout = timeout
        self.snapshot = snapshot
        self.target = target
        self.scope = _Scope()
        self.set = desired.root.set
        self.strict = desired.root.cloud.protected_patch == "strict"
        self.max_deletions = desired.root.settings.max_deletions if max_deletions is None else max_deletions
        # Each declared (key, region) by its temporary-name token K (the image is made in its home region).
        self.by_token = {markers.name_token(self.set, spec.key, spec.region): spec for spec in desired.images}
        # Images a manifest names by id are never deletion candidates, even when adopting them is refused.
        self.referenced = referenced_ids(desired)
        # The one sorting read_snapshot used too (it decided which keys get a create's reads).
        self.own: Ownership = classify_desired(snapshot.all_images(), desired)
        # Regions holding copies, by key: looked up per image, never by scanning every copy (scale).
        self.copy_regions: dict[str, set[str]] = defaultdict(set)
        for key, region in self.own.copies:
            self.copy_regions[key].add(region)
        self.actions: dict[str, _Built] = {}
        self.refusals: list[Finding] = []
        self.warnings: list[Finding] = []
        self.pending: list[dict[str, str]] = []
        self.deletions: list[_Built] = []  # identity-left deletions, counted against max_deletions
        self.handled: set[str] = set()  # live image ids accounted for by a declared image
        # Leftover deletes a create must wait for, by (key, region): an image under the same temporary name.
        self.cleanups: dict[tuple[str, str], list[_Built]] = defaultdict(list)
        self.leftover_images: dict[str, Image] = {}  # leftover delete id -> the image it deletes
        self.declared = {spec.key for spec in desired.images}
        # This set's temporary-name images, sorted by _sort_temporary: running creates
        # and finishable ones by the declared key they are for; leftovers are planned deletes.
        self.creating: dict[str, list[Image]] = defaultdict(list)
        self.finishable: dict[str, list[Image]] = defaultdict(list)
        self.leftovers: list[_Built] = []
        self.moved_from = {spec.moved_from for spec in desired.images if spec.moved_from}
        # The name each planned image will have, by (region, name): (key, whether it is a new name, where).
        self.names: dict[tuple[str, str], list[tuple[str, bool, str | None]]] = defaultdict(list)

    # -- plumbing ---------------------------------------------------------------------------------

    def add(
        self,
        kind: str,
        spec_key: str,
        region: str,
        reason: Reason,
        image_id: str | None,
        suffix: str = "",
        *,
        image_suffix: bool = False,
        **details: Any,
    ) -> _Built:
        """`image_suffix`: one of several images under this kind, key and region; the id ends with the image
        id (shortened at the end, see _shorten_image_suffixes)."""
        if image_suffix:
            suffix = image_id or ""
        action_id = f"{kind}:{spec_key}:{region}" + (f":{suffix}" if suffix else "")
        built = _Built(action_id, kind, spec_key, region, reason, image_id, details=dict(details))
        built.image_suffix = image_suffix
        assert action_id not in self.actions, action_id
        self.actions[action_id] = built
        return built

    def refuse(
        self, code: str, key: str | None, region: str | None, message: str, hint: str | None, source: str | None
    ) -> None:
        self.refusals.append(Finding(code, key, region, message, source, hint))

    def warn(self, code: str, key: str | None, region: str | None, message: str, source: str | None) -> None:
        self.warnings.append(Finding(code, key, region, message, source))

    def run(self) -> Plan:
        self._renamed_set_guard()
        in_scope = [spec for spec in self.desired.images if spec.key in self.scope]
        for spec in self.desired.images:
            if spec.key not in self.scope:
                # Out of scope: its live images are accounted for, never deletion candidates.
                for image in self.own.home.get(spec.key, []):
                    self.handled.add(image.id)
                for (key, _region), copies in self.own.copies.items():
                    if key == spec.key:
                        self.handled.update(c.id for c in copies)
        self._sort_temporary()
        for spec in in_scope:
            self._plan_image(spec)
        self._name_warnings()
        self._invalid_marker_warnings()
        for spec in in_scope:
            self._restart_left_stopped(spec)
        if self.scope.partial:
            self.warn(
                "partial_plan",
                None,
                None,
                f"partial plan ({self.scope.describe()}): other images were not considered, and applying it "
                "may leave the cloud different from the manifests",
                None,
            )
        self._plan_removals()
        withheld = self._empty_root_guard()
        if not withheld:
            self._plan_deletions()
        self._deletes_last()
        self._keep_leftovers(withheld)
        deletes = [a for a in self.actions.values() if a.kind == "delete"]
        if len(deletes) > self.max_deletions:
            # Every delete counts, replacements and duplicates too: max_deletions 0 means none at all.
            names = ", ".join(f"{a.key} {a.region}" for a in sorted(deletes, key=lambda a: a.id))
            self.refuse(
                "max_deletions",
                None,
                None,
                f"{len(deletes)} deletions planned ({names}), more than max_deletions {self.max_deletions}",
                "check that no manifest was removed by mistake; raise settings.max_deletions or pass "
                "--max-deletions if the deletions are intended",
                None,
            )
        this_set = sum(len(v) for v in self.own.home.values()) + sum(len(v) for v in self.own.copies.values())
        bookkeeping = sum(1 for i in self.snapshot.all_images() if is_bookkeeping(i.properties))
        this_set += len(self.own.temporary)  # its interrupted or running creates are this set's too
        info = {
            "images": sum(1 for _ in self.snapshot.all_images()) - bookkeeping,
            "this_set": this_set,
            "unmanaged": len(self.own.unmanaged),
            "other_sets": self.own.other_set_count,
            "pending_members": sorted(self.pending, key=lambda p: (p["key"], p["region"], p["member"])),
        }
        if self.own.unattributed:
            # Old-form temporary names that name no set and no declared key: listed, never touched.
            info["unattributed_temporary"] = [
                {"region": i.region, "image_id": i.id, "name": i.name, "status": i.status}
                for i in self.own.unattributed
            ]
        if bookkeeping:
            # Lock claims and doctor's scratch images: counted apart, never unmanaged (docs/plan-format.md).
            info["bookkeeping"] = bookkeeping
        claims = self._lock_claims()
        if claims:
            info["lock"] = claims
        if self.scope.partial:
            info["partial"] = {
                "targets": sorted(self.scope.targets),
                "excludes": sorted(self.scope.excludes),
                "description": self.scope.describe(),
            }
        self._shorten_image_suffixes()
        return Plan(
            set=self.set,
            target=self.target,
            actions=tuple(self._ordered()),
            refusals=tuple(sorted(self.refusals, key=lambda f: (f.key or "", f.region or "", f.code))),
            warnings=tuple(sorted(self.warnings, key=lambda f: (f.key or "", f.region or "", f.code))),
            info=info,
        )

    def _shorten_image_suffixes(self) -> None:
        """An action id that ends with an image id ends with its first 8 characters, as people read them, unless
        two images of its kind, key and region share those (Glance lets a client choose an image id): then
        every image of that group keeps its full id, so that no two actions have one id."""
        groups: dict[tuple[str, str, str], list[_Built]] = defaultdict(list)
        for built in self.actions.values():
            if built.image_suffix:
                groups[(built.kind, built.key, built.region)].append(built)
        short: dict[str, str] = {}
        for (kind, key, region), group in groups.items():
            prefixes = {str(built.image_id)[:8] for built in group}
            if len(prefixes) == len(group):
                short.update((b.id, f"{kind}:{key}:{region}:{str(b.image_id)[:8]}") for b in group)
        if not short:
            return
        self.actions = {short.get(action_id, action_id): built for action_id, built in self.actions.items()}
        for built in self.actions.values():
            built.id = short.get(built.id, built.id)
            built.depends_on = [Dependency(short.get(d.id, d.id), d.reason) for d in built.depends_on]
            if "compensates" in built.details:
                built.details["compensates"] = short.get(built.details["compensates"], built.details["compensates"])

    def _ordered(self) -> list[Action]:
        """Kahn's algorithm with a priority: make before break, then region, key, id."""
        pending = {a.id: {d.id for d in a.depends_on} for a in self.actions.values()}
        dependents: dict[str, list[str]] = {a: [] for a in pending}
        for action_id, needs in pending.items():
            for need in needs:
                dependents[need].append(action_id)

        def order(action_id: str) -> tuple[int, str, str, str]:
            a = self.actions[action_id]
            return (RANK[a.kind], a.region, a.key, a.id)

        ready = [order(a) for a, needs in pending.items() if not needs]
        heapq.heapify(ready)
        result: list[Action] = []
        while ready:
            action_id = heapq.heappop(ready)[3]
            built = self.actions[action_id]
            result.append(
                Action(
                    id=built.id,
                    kind=built.kind,
                    key=built.key,
                    region=built.region,
                    reason=built.reason,
                    image_id=built.image_id,
                    changes=built.changes,
                    expects={k: dict(v) for k, v in built.expects.items()},
                    depends_on=tuple(built.depends_on),
                    details=built.details,
                )
            )
            for dependent in dependents[action_id]:
                pending[dependent].discard(action_id)
                if not pending[dependent]:
                    heapq.heappush(ready, order(dependent))
        assert len(result) == len(self.actions), "the plan's dependencies form a cycle"
        return result

    # -- guards -----------------------------------------------------------------------------------

    def _renamed_set_guard(self) -> None:
        """A set with no live image whose declared keys exist under one other set was most likely renamed
        (docs/safety.md): refused when at least two of its keys exist live and all of them under one other
        set; a key that merely shares its name with another set's (sets are namespaces) is warned."""
        if self.own.has_any_image():
            return
        # Keys adopted with takeover are claimed deliberately, and keys outside the scope are not planned:
        # neither counts.
        at_stake = {
            spec.key
            for spec in self.desired.images
            if spec.key in self.scope and not (spec.source.image and spec.source.takeover)
        }
        holders: dict[str, set[str]] = defaultdict(set)  # live declared key -> the other sets holding it
        for other, keys in self.own.other_sets.items():
            for key in at_stake & set(keys):
                holders[key].add(other)
        if not holders:
            return
        common = set.intersection(*holders.values())
        if len(holders) >= 2 and common:
            other = min(common)
            keys = ", ".join(sorted(holders))
            self.refuse(
                "renamed_set",
                None,
                None,
                f"set {self.set} has no image yet, but {keys} exist under set {other}: these keys belong to set "
                f"{other}",
                f"rename the set back to {other}, or adopt the images with source.image and takeover: true",
                self.desired.root.set_source,
            )
            return
        specs = {spec.key: spec for spec in self.desired.images}
        for key, sets in sorted(holders.items()):
            spec = specs.get(key)
            self.warn(
                "key_in_other_set",
                key,
                spec.region if spec is not None else None,
                f"set {self.set} has no image yet, and {key} also exists under set {', '.join(sorted(sets))}: "
                f"sets are namespaces, so this set makes its own {key} (if the set was renamed, rename it back)",
                _src(spec) if spec is not None else None,
            )

    def _empty_root_guard(self) -> bool:
        """An empty root never deletes: True when it withholds deletions (refusing if the set has images).

        A root that declares nothing is more likely a folder that went missing, a broken link or a wrong
        `set:` than the end of a set; settings.allow_empty_set: true says it is the end, deliberately.
        """
        if self.desired.images or self._removals_at_work() or self.desired.root.settings.allow_empty_set:
            return False
        live = sorted(
            [f"{key} {image.region}" for key, images in self.own.home.items() for image in images]
            + [f"{key} {region} (copy)" for (key, region), images in self.own.copies.items() for _ in images]
        )
        if live:
            listed = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
            count = f"{len(live)} live image{'s' if len(live) != 1 else ''}"
            self.refuse(
                "empty_root",
                None,
                None,
                f"the root declares no image, but set {self.set} has {count} ({listed}): an empty root plans "
                "no deletion",
                "if a manifest or folder went missing (a move, a broken link, a wrong set:), restore it; to stop "
                "managing the images and keep them, list their keys under removed: with destroy: false; to "
                "retire every image of the set on purpose, set settings.allow_empty_set: true in reconciler.yaml",
                self.desired.root.set_source,
            )
        return True

    def _removals_at_work(self) -> bool:
        """Whether a `removed:` entry names a key with a live image. One whose key has none (already released
        or deleted: a `removed_nothing` warning) does not make the root non-empty: kept after its work is
        done, it must not let a missing folder turn into deletes."""
        return any(self._live_images_of(removal.key) for removal in self.desired.removed)

    def _lock_claims(self) -> list[dict[str, Any]]:
        """This set's apply-lock claims that the regions read happen to show (never an extra request): who
        holds or probes the lock and until when, by the server's clock."""
        found = []
        for image in self.snapshot.all_images():
            claim = claim_of(image, self.set)
            if claim is None:
                continue
            end = claim.lease_end
            found.append(
                {
                    "claim": claim.id,
                    "region": claim.region,
                    "holder": claim.holder,
                    "state": claim.state,
                    "live": claim.live(self.snapshot.server_time.get(claim.region)),
                    "lease_end": iso(end) if end is not None and end != float("inf") else None,
                }
            )
        return sorted(found, key=lambda c: (c["region"], c["claim"]))

    # -- one declared image -----------------------------------------------------------------------

    def _plan_image(self, spec: ImageSpec) -> None:
        region = spec.region
        if region not in self.snapshot.regions:
            self.refuse(
                "unknown_region",
                spec.key,
                region,
                f"home region {region} is not among the regions read ({', '.join(self.snapshot.regions)})",
                "use a region of the service catalog, or add it to cloud.regions",
                _src(spec, "region"),
            )
            return
        home = self._find_home(spec)
        if home is None:
            return  # refused, or nothing can be planned for it
        self._name_of(spec, home, self._home_name(spec, home), "name")
        self._compare_fields(spec, home)
        self._plan_copies(spec, home)
        self._plan_sharing(spec, home, spec.share)
        self._plan_protection(spec, home, spec.protected)

    def _state_of(self, spec: ImageSpec, image: Image) -> _ImageState:
        self.handled.add(image.id)
        return _ImageState(
            key=spec.key,
            region=image.region,
            image_id=image.id,
            made_by=None,
            live=image,
            protected=image.protected,
            visibility=image.visibility,
            download=image.properties.get(markers.DOWNLOAD_FLAG),
        )

    def _find_home(self, spec: ImageSpec) -> _ImageState | None:
        candidates = list(self.own.home.get(spec.key, []))
        if candidates:
            keep = self._resolve_duplicates(spec, candidates)
            if keep is None:
                return None
            state = self._state_of(spec, keep)
            if keep.region != spec.region:
                self.warn(
                    "create_time_field",
                    spec.key,
                    spec.region,
                    f"region changed: the image lives in {keep.region}; region is create-time only, "
                    "nothing is moved or rebuilt",
                    _src(spec, "region"),
                )
            self._check_source_change(spec, keep)
            for late in self.finishable.pop(spec.key, []):
                self._delete_duplicate(spec, late, keep)
            return state
        if self.creating.get(spec.key):
            return None  # a create still running: planned again once it is done (warned by _sort_temporary)
        finishable = self.finishable.pop(spec.key, [])
        if finishable:
            return self._finish_create(spec, finishable)
        if spec.moved_from and self.own.home.get(spec.moved_from):
            return self._rekey(spec, self.own.home[spec.moved_from][0], spec.moved_from)
        if spec.source.image is not None:
            return self._adopt(spec)
        return self._create(spec)

    def _resolve_duplicates(self, spec: ImageSpec, candidates: list[Image]) -> Image | None:
        """Keep the oldest; a later, unprotected one the tool made itself is a planned delete."""
        original, *later = candidates
        for duplicate in later:
            self.handled.add(duplicate.id)
            made_by_tool = markers.token_of(duplicate.name) is not None or duplicate.properties.get(markers.SOURCE)
            if duplicate.protected or not made_by_tool:
                self.refuse(
                    "ownership_conflict",
                    spec.key,
                    duplicate.region,
                    f"two images claim {spec.key}: {original.id} ({original.region}) and {duplicate.id} "
                    f"({duplicate.region})",
                    "remove the reconciler_* markers from the one that is not this key's image, or delete it",
                    _src(spec),
                )
                continue
            delete = self.add(
                "delete",
                spec.key,
                duplicate.region,
                Reason(
                    "duplicate",
                    f"a duplicate of {original.id} made by an interrupted or concurrent run "
                    "(created after the original)",
                    None,
                ),
                duplicate.id,
                image_suffix=True,
            )
            delete.expects[f"{duplicate.region}/{duplicate.id}"] = {"protected": False, markers.KEY: spec.key}
        return original

    def _finish_create(self, spec: ImageSpec, found: list[Image]) -> _ImageState:
        """Finish an interrupted create (v1 design 3.3): adopt the oldest finishable image (markers, final
        name); a later one is a duplicate the tool made, deleted."""
        original, *extra = found
        for duplicate in extra:
            self._delete_duplicate(spec, duplicate, original)
        state = self._state_of(spec, original)
        adopt = self.add(
            "adopt",
            spec.key,
            spec.region,
            Reason(
                "interrupted_create",
                f"an interrupted create left {original.name}: finish it (markers, final name)",
                _src(spec),
            ),
            original.id,
            name=spec.display_name,
        )
        source = self._declared_source(spec)
        for name, value in ((markers.SET, self.set), (markers.KEY, spec.key), (markers.SOURCE, source)):
            if original.properties.get(name) != value:
                adopt.changes[name] = Change(original.properties.get(name), value)
        adopt.changes["name"] = Change(original.name, spec.display_name)
        adopt.expects[state.ref] = {"status": "active", "name": original.name}
        state.last = state.adopt = adopt
        return state

    # -- names ----------------------------------------------------------------

    def _name_of(self, spec: ImageSpec, state: _ImageState, name: str, field_path: str) -> None:
        """Remember the name this key's image in `state.region` will have (new: made, or renamed, here)."""
        new = state.live is None or state.live.name != name
        where = _src(spec, field_path) if spec.location(field_path) else _src(spec, "name")
        self.names[(state.region, name)].append((spec.key, new, where))

    def _name_warnings(self) -> None:
        """Names that do not tell images apart in the console or an image list: two keys of this set with one
        name in one region, and an image that gets the name of an unmanaged one."""
        unmanaged: dict[tuple[str, str], list[Image]] = defaultdict(list)
        for image in self.own.unmanaged:
            if image.name and image.id not in self.handled:  # one this plan adopts is this set's by then
                unmanaged[(image.region, image.name)].append(image)
        for (region, name), holders in sorted(self.names.items()):
            keys = sorted({key for key, _, _ in holders})
            first, _, where = min(holders)
            if len(keys) > 1:
                self.warn(
                    "duplicate_name",
                    first,
                    region,
                    f"{_and(keys)} share the name {_quoted(name)} in {region}: the console and image lists cannot "
                    "tell them apart (give each key its own name)",
                    where,
                )
            for key, new, where in sorted(holders):
                others = unmanaged.get((region, name), [])
                if new and others:
                    ids = ", ".join(sorted(i.id for i in others))
                    self.warn(
                        "unmanaged_same_name",
                        key,
                        region,
                        f"{key} gets the name {_quoted(name)}, which an image this set does not manage already has "
                        f"in {region} ({ids}): the two cannot be told apart by name (give {key} another name)",
                        where,
                    )

    def _invalid_marker_warnings(self) -> None:
        """One warning per image whose set or key marker the tool never writes: ownership left it out of
        every set, so nothing is planned for it, and the project is told so that someone clears it."""
        for image in self.own.invalid:
            # Quoted, not escaped: the plan is data; every renderer shows the hidden characters (JSON too).
            carries = ", ".join(
                f"{name} {_quoted(value)}" for name, value in markers.invalid_markers(image.properties).items()
            )
            self.warn(
                "invalid_markers",
                None,
                image.region,
                f"image {image.id} ({_quoted(image.name or '')}) carries {carries}, which the tool "
                "never writes (a set name or key is letters, digits, '.', '_' or '-'): it is nobody's, and nothing "
                "is planned for it; clear or fix the property by hand",
                None,
            )

    def _refuse_invalid_markers(
        self, spec: ImageSpec, region: str, image: Image, what: str, source: str | None
    ) -> bool:
        """True (and a refusal) when an image the manifest names by id carries markers the tool never writes:
        adopting it would take over an image whose owner nobody can tell."""
        if not markers.invalid_markers(image.properties):
            return False
        self.refuse(
            "foreign_markers",
            spec.key,
            region,
            f"{what} {image.id} carries markers the tool never writes (see the invalid_markers warning): "
            "whose it is cannot be told",
            "clear its reconciler_set and reconciler_key properties by hand, then plan again",
            source,
        )
        return True

    # -- temporary names ------------------------------------------------------

    def _sort_temporary(self) -> None:
        """Each temporary-name image of this set is a create still running (left alone), a finishable one
        (adopted by _finish_create, or deleted as a duplicate when its key has an image already), or a
        leftover (a planned delete of key `~rc-<S><K>`, within max_deletions: _keep_leftovers)."""
        for image in self.own.temporary:
            token = markers.parse_token(image.name)
            assert token is not None
            spec = self.by_token.get(token.name_token)
            if spec is not None and spec.region != image.region:
                spec = None  # its token is for another region: it matches no declared (key, region)
            if spec is not None and spec.key not in self.scope:
                continue  # out of scope: left alone, like the key's other images
            if spec is None and self.scope.partial:
                continue  # a partial plan considers only its keys
            if image.status in CREATING:
                age = self._age(image)
                if age is None or age < self.timeout:
                    self._still_creating(image, spec)
                    continue
                why = f"{image.status} for more than {_seconds(self.timeout)} (the timeout) by the server's clock"
            elif image.status == "active" and spec is not None and spec.source.instance is not None:
                server = self.snapshot.servers.get((spec.region, spec.source.instance))
                if _made_from(image, server):
                    self.finishable[spec.key].append(image)
                    continue
                made = image.properties.get("instance_uuid")
                why = f"it was not made from {spec.source.instance} (instance_uuid {made})"
            elif image.status != "active":
                why = f"it is {image.status}"
            elif spec is None:
                why = "its token matches no declared key and region"
            else:
                why = f"{spec.key} is not made from an instance"
            self._leftover(image, spec, why)

    def _age(self, image: Image) -> float | None:
        """Seconds since the image was created, by the server's clock; None when either time is unknown."""
        now = self.snapshot.server_time.get(image.region)
        created = parse_server_time(image.created_at)
        return None if now is None or created is None else now - created

    def _still_creating(self, image: Image, spec: ImageSpec | None) -> None:
        token = markers.token_of(image.name) or ""
        key = spec.key if spec is not None else markers.leftover_key(self.set, token)
        if spec is not None:
            self.creating[spec.key].append(image)
        then = f", and {spec.key} is planned again once it is done" if spec is not None else ""
        self.warn(
            "create_in_progress",
            key,
            image.region,
            f"{image.name} ({image.id}) is {image.status}, created less than {_seconds(self.timeout)} ago by the "
            f"server's clock: a create still running, left alone{then}",
            _src(spec) if spec is not None else None,
        )

    def _leftover(self, image: Image, spec: ImageSpec | None, why: str) -> None:
        token = markers.token_of(image.name) or ""
        key = markers.leftover_key(self.set, token)
        if image.protected:
            self.warn(
                "leftover_kept",
                key,
                image.region,
                f"{image.name} ({image.id}) is a leftover of an interrupted create ({why}), but it is protected: kept",
                None,
            )
            return
        delete = self.add(
            "delete",
            key,
            image.region,
            Reason("leftover", f"{image.name} is a leftover of an interrupted create ({why}); not protected", None),
            image.id,
            image_suffix=True,
            name=image.name,
        )
        delete.expects[f"{image.region}/{image.id}"] = {"protected": False, "status": image.status, "name": image.name}
        self.leftovers.append(delete)
        self.leftover_images[delete.id] = image
        if spec is not None:
            self.cleanups[(spec.key, spec.region)].append(delete)

    def _delete_duplicate(self, spec: ImageSpec, duplicate: Image, original: Image) -> None:
        """A finishable image of a key that has an image already: the tool made it twice."""
        if duplicate.protected:
            self.warn(
                "leftover_kept",
                spec.key,
                duplicate.region,
                f"{duplicate.name} ({duplicate.id}) duplicates {original.id}, but it is protected: kept",
                _src(spec),
            )
            return
        delete = self.add(
            "delete",
            spec.key,
            duplicate.region,
            Reason(
                "duplicate",
                f"a duplicate of {original.id} made by an interrupted or concurrent run (temporary name "
                f"{duplicate.name})",
                None,
            ),
            duplicate.id,
            image_suffix=True,
        )
        delete.expects[f"{duplicate.region}/{duplicate.id}"] = {
            "protected": False,
            "status": duplicate.status,
            "name": duplicate.name,
        }

    def _leftover_in_use(self, image: Image) -> str | None:
        """Why a leftover cannot be deleted because something uses it, or None. The in-use guard (servers
        booted from an image, volumes made from it) is not built yet: when it is, a leftover it stops is
        kept with a `leftover_kept` warning here, never refused."""
        del image
        return None

    def _keep_leftovers(self, withheld: bool) -> None:
        """Leftover deletes count against max_deletions and pass the in-use guard; where either (or an
        empty root) would stop one, it is dropped from the plan with a `leftover_kept` warning, never a
        refusal. Those a create waits for go first within the budget."""
        if not self.leftovers:
            return
        regular = sum(1 for a in self.actions.values() if a.kind == "delete" and a.id not in self.leftover_images)
        budget = self.max_deletions - regular
        waited_for = {d.id for a in self.actions.values() if a.kind == "create" for d in a.depends_on}
        kept: dict[str, str] = {}
        for delete in sorted(self.leftovers, key=lambda a: (a.id not in waited_for, a.id)):
            in_use = self._leftover_in_use(self.leftover_images[delete.id])
            if withheld:
                kept[delete.id] = "an empty root plans no deletion"
            elif in_use is not None:
                kept[delete.id] = in_use
            elif budget <= 0:
                kept[delete.id] = (
                    f"deleting it would take the plan past max_deletions {self.max_deletions} (raise "
                    "settings.max_deletions to let a plan delete it)"
                )
            else:
                budget -= 1
        for action_id, why in sorted(kept.items()):
            delete = self.actions.pop(action_id)
            image = self.leftover_images[action_id]
            for other in self.actions.values():
                other.depends_on = [d for d in other.depends_on if d.id != action_id]
            self.warn(
                "leftover_kept",
                delete.key,
                delete.region,
                f"{image.name} ({image.id}) is a leftover of an interrupted create, kept: {why}",
                None,
            )
        self.leftovers = [a for a in self.leftovers if a.id not in kept]

    def _rekey(self, spec: ImageSpec, live: Image, old_key: str) -> _ImageState:
        state = self._state_of(spec, live)
        reason = Reason(
            "moved_from", f"re-keyed from {old_key}: the same image, no delete and no create", _src(spec, "moved_from")
        )
        # Bracketed like any PATCH under protected_patch: strict (a protected image refuses the new key).
        update = self._patch(state, "update", "rekey", {markers.KEY: Change(old_key, spec.key)}, reason)
        self._expects_read(update, state, {markers.SET: self.set, markers.KEY: old_key})
        return state

    def _declared_source(self, spec: ImageSpec) -> str:
        if spec.source.image is not None:
            return f"image:{spec.source.image}"
        server = self.snapshot.servers.get((spec.region, spec.source.instance or ""))
        return f"instance:{server.id if server else spec.source.instance}"

    def _check_source_change(self, spec: ImageSpec, live: Image) -> None:
        recorded = live.properties.get(markers.SOURCE)
        if not isinstance(recorded, str):
            return  # unknown, and not drift
        instance = spec.source.instance
        gone = instance is not None and self.snapshot.servers.get((spec.region, instance)) is None
        if gone and recorded.startswith("instance:") and not UUID.match(instance or ""):
            # The instance named is gone (deleted after imaging, as often): its name can no longer be told
            # from the id recorded, and a declaration nobody changed is no change.
            return
        declared = self._declared_source(spec)
        same_instance = (
            spec.source.instance is not None
            and recorded.startswith("instance:")
            and recorded.removeprefix("instance:") in (spec.source.instance, declared.removeprefix("instance:"))
        )
        if recorded != declared and not same_instance:
            self.warn(
                "create_time_field",
                spec.key,
                live.region,
                f"source changed: the image was made from {recorded}; source is create-time only, nothing is "
                "rebuilt (declare a new key for a new build)",
                _src(spec, "source"),
            )

    # -- adopt ------------------------------------------------------------------------------------

    def _adopt(self, spec: ImageSpec) -> _ImageState | None:
        image_id = spec.source.image
        assert image_id is not None
        owned = next((i for i in self.snapshot.all_images() if i.id == image_id), None)
        source = _src(spec, "source.image")
        if owned is None:
            seen = self.snapshot.foreign.get(image_id)
            if seen is None:
                self.refuse(
                    "source_missing",
                    spec.key,
                    spec.region,
                    f"image {image_id} does not exist or is not visible",
                    "check the id in source.image",
                    source,
                )
            else:
                self.refuse(
                    "not_owned",
                    spec.key,
                    spec.region,
                    f"image {image_id} belongs to project {seen.owner}, not to this project: it cannot be adopted",
                    "adopt only images of this project; copy the image into it first",
                    source,
                )
            return None
        if owned.region != spec.region:
            self.refuse(
                "source_missing",
                spec.key,
                spec.region,
                f"image {image_id} is in {owned.region}, not in the home region {spec.region}",
                f"set region: {owned.region} on {spec.key}",
                source,
            )
            return None
        if self._refuse_invalid_markers(spec, spec.region, owned, "image", source):
            return None
        owner_set, owner_key = owned.properties.get(markers.SET), owned.properties.get(markers.KEY)
        if owner_set == self.set and owner_key is not None and owner_key != spec.key:
            if spec.moved_from == owner_key:
                return self._rekey(spec, owned, owner_key)
            self.refuse(
                "key_taken",
                spec.key,
                spec.region,
                f"image {image_id} is this set's {owner_key}; adopting it as {spec.key} would take it from that key",
                f"if {spec.key} replaces {owner_key}, add moved_from: {owner_key}",
                source,
            )
            return None
        if isinstance(owner_set, str) and owner_set != self.set and not spec.source.takeover:
            self.refuse(
                "foreign_markers",
                spec.key,
                spec.region,
                f"image {image_id} belongs to set {owner_set} (key {owner_key})",
                f"add takeover: true to source to adopt it anyway (set {owner_set} will then consider it gone)",
                source,
            )
            return None
        state = self._state_of(spec, owned)
        reason = (
            f"takes over image {image_id} from set {owner_set}"
            if isinstance(owner_set, str) and owner_set != self.set
            else f"adopts image {image_id} ({owned.name})"
        )
        marks = {
            name: Change(owned.properties.get(name), value)
            for name, value in ((markers.SET, self.set), (markers.KEY, spec.key), (markers.SOURCE, f"image:{image_id}"))
            if owned.properties.get(name) != value
        }
        # Bracketed like any PATCH under protected_patch: strict (a protected image refuses the marking).
        adopt = self._patch(state, "adopt", "", marks, Reason("adopt", reason, source), label="adopt")
        self._expects_read(adopt, state, {"status": owned.status, markers.SET: owner_set, markers.KEY: owner_key})
        state.adopt = adopt
        return state

    def _expects_read(self, action: _Built, state: _ImageState, expects: dict[str, Any]) -> None:
        """An adopt or a re-key expects what it read of the image, and inside a strict bracket to find it
        unprotected."""
        bracketed = self.strict and state.protected
        action.expects[state.ref] = {**expects, "protected": False} if bracketed else dict(expects)

    # -- create from an instance ------------------------------------------------------------------

    def _create(self, spec: ImageSpec) -> _ImageState | None:
        instance = spec.source.instance
        assert instance is not None
        source = _src(spec, "source.instance")
        server = self.snapshot.servers.get((spec.region, instance))
        if server is None:
            self.refuse(
                "source_missing",
                spec.key,
                spec.region,
                f"instance {instance} does not exist in {spec.region}",
                "check source.instance (a name or id in the home region)",
                source,
            )
            return None
        running = server.status == "ACTIVE"
        if server.status not in ("ACTIVE", "SHUTOFF"):
            self.refuse(
                "source_missing",
                spec.key,
                spec.region,
                f"instance {server.name} is {server.status}: only ACTIVE or SHUTOFF instances can be imaged",
                "bring the instance to ACTIVE or SHUTOFF, then plan again",
                source,
            )
            return None
        if server.root_device is None:
            # read_snapshot reads what imaging needs for every key without a home image; reaching here
            # without it is a bug, and guessing the root device would image the wrong way.
            raise RuntimeError(f"{spec.key}: the snapshot has no root device for {server.name}")
        flavor = server.flavor_name or server.flavor_id
        kind = "local disk" if server.root_device == "local" else "volume root"
        describe = f"{flavor}, {kind}, {'running' if running else 'stopped'}"
        running_src = _src(spec, "source.running") if "source.running" in spec.locations else source
        if running and spec.source.running == "refuse":
            self.refuse(
                "running_refused",
                spec.key,
                spec.region,
                f"instance {server.name} is running ({describe})",
                "stop it, or set running: stop to let the tool stop and restart it",
                running_src,
            )
            return None
        if running and spec.source.running == "allow" and server.root_device == "local":
            self.refuse(
                "running_local_disk",
                spec.key,
                spec.region,
                f"instance {server.name} is running and has a local disk ({flavor}): NHN images local disks "
                "only when stopped",
                "set running: stop to let the tool stop it, image it and start it again",
                running_src,
            )
            return None
        self._preparation_warnings(spec, server, running and spec.source.running == "allow")
        name = spec.display_name
        temporary = markers.temporary_name(name, self.set, spec.key, spec.region)
        stop = None
        if running and spec.source.running == "stop":
            stop = self.add(
                "stop_instance",
                spec.key,
                spec.region,
                Reason(
                    "running_stop",
                    f"running: stop: {server.name} is stopped for imaging, then started again",
                    running_src,
                ),
                None,
                server=server.id,
                server_name=server.name,
            )
            stop.expects[f"{spec.region}/server/{server.id}"] = {"status": "ACTIVE"}
        create = self.add(
            "create",
            spec.key,
            spec.region,
            Reason("image_missing", f"{spec.file} declares it; no image of this set has this key", _src(spec)),
            None,
            server=server.id,
            server_name=server.name,
            flavor=flavor,
            root_device=server.root_device,
            running=running and stop is None,
            temporary_name=temporary,
            name=name,
        )
        create.after(stop, "the instance must be stopped first")
        for cleanup in self.cleanups.get((spec.key, spec.region), []):
            create.after(cleanup, "the leftover under the same temporary name goes first")
        create.expects[f"{spec.region}/server/{server.id}"] = {"status": "SHUTOFF" if stop or not running else "ACTIVE"}
        for marker, value in (
            (markers.SET, self.set),
            (markers.KEY, spec.key),
            (markers.SOURCE, f"instance:{server.id}"),
        ):
            create.changes[marker] = Change(None, value)
        create.changes["name"] = Change(None, name)
        if stop is not None:
            start = self.add(
                "start_instance",
                spec.key,
                spec.region,
                Reason(
                    "running_stop",
                    f"restarts {server.name}, stopped for imaging (runs even if the create fails)",
                    running_src,
                ),
                None,
                server=server.id,
                server_name=server.name,
                compensates=stop.id,
            )
            start.after(create, "the image is made (or its create failed)")
            start.expects[f"{spec.region}/server/{server.id}"] = {"status": "SHUTOFF"}
            stop.details["downtime"] = "from the stop until the image is active"
        if not server.os_type and spec.copies:
            self.refuse(
                "os_type_missing",
                spec.key,
                spec.region,
                f"instance {server.name} has no os_type: its image could not be copied (NHN requires os_type)",
                "set the instance's os_type metadata, or drop copies",
                _src(spec, "copies"),
            )
        return _ImageState(
            key=spec.key,
            region=spec.region,
            image_id=None,
            made_by=create,
            live=None,
            protected=False,
            visibility="private",
            download=None,
            last=create,
        )

    def _preparation_warnings(self, spec: ImageSpec, server: Server, imaged_running: bool) -> None:
        source = _src(spec, "source.instance")
        os_type = (server.os_type or "").lower()
        if imaged_running:
            self.warn(
                "running_instance",
                spec.key,
                spec.region,
                f"instance {server.name} is running: the image is taken live and data consistency is not guaranteed",
                _src(spec, "source.running") if "source.running" in spec.locations else source,
            )
        if os_type == "linux":
            self.warn(
                "linux_machine_id",
                spec.key,
                spec.region,
                f"reset /etc/machine-id on {server.name} before imaging, or instances made from the image share it",
                source,
            )
        if os_type == "windows":
            self.warn(
                "windows_sysprep",
                spec.key,
                spec.region,
                f"run Sysprep (ToastSysprep) on {server.name} and stop it before imaging; Sysprep blanks the password",
                source,
            )
            date = BASE_IMAGE_DATE.search(server.base_image_name or "")
            if imaged_running and date and (date.group(1), date.group(2), date.group(3)) <= ("2019", "05", "28"):
                self.warn(
                    "windows_pre_20190528",
                    spec.key,
                    spec.region,
                    f"{server.name} comes from {server.base_image_name}: base images of 2019-05-28 or earlier need a "
                    "scheduled 'ipconfig /renew' task before a running instance can be imaged",
                    source,
                )

    def _restart_left_stopped(self, spec: ImageSpec) -> None:
        if spec.source.instance is None:
            return
        server = self.snapshot.servers.get((spec.region, spec.source.instance))
        if server is None or markers.stopped_by_set(server.metadata.get(markers.STOPPED_BY)) != self.set:
            return
        if server.status not in ("SHUTOFF", "ACTIVE"):
            return
        if any(a.kind == "start_instance" and a.details.get("server") == server.id for a in self.actions.values()):
            return
        creates = [a for a in self.actions.values() if a.kind == "create" and a.details.get("server") == server.id]
        if server.status == "SHUTOFF":
            why = f"{server.name} was stopped by this set for imaging and left stopped by an interrupted run"
        else:
            # Started again, but the run was interrupted before it cleared its mark: starting is a no-op
            # for an active instance, and the step clears the mark.
            why = f"{server.name} was restarted, but an interrupted run left its {markers.STOPPED_BY} mark: clear it"
        start = self.add(
            "start_instance",
            spec.key,
            spec.region,
            Reason("left_stopped", why, _src(spec, "source.instance")),
            None,
            server=server.id,
            server_name=server.name,
        )
        start.expects[f"{spec.region}/server/{server.id}"] = {
            "status": server.status,
            markers.STOPPED_BY: server.metadata[markers.STOPPED_BY],
        }
        for create in creates:
            # A local disk is imaged only stopped: the restart waits for the images made from it.
            start.after(create, "the instance is imaged while stopped")

    def _deletes_last(self) -> None:
        """Make before break: what left the manifests goes only after everything is made."""
        makers = [a for a in self.actions.values() if a.kind in ("create", "adopt", "copy", "unshare")]
        for delete in self.deletions:
            for maker in sorted(makers, key=lambda a: a.id):
                delete.after(maker, "make before break: deletes come last")

    # -- fields -----------------------------------------------------------------------------------

    def _wanted_changes(self, spec: ImageSpec, state: _ImageState, *, name: str | None) -> dict[str, Change]:
        """The one table of field semantics: declared fields that differ; absent ones left alone."""
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
            want(markers.DOWNLOAD_FLAG, props.get(markers.DOWNLOAD_FLAG), _bool_text(spec.download))
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
        return changes

    def _compare_fields(self, spec: ImageSpec, state: _ImageState) -> None:
        live = state.live
        name = spec.name
        if live is not None and markers.token_of(live.name) and name is None and state.last is None:
            name = spec.display_name  # finish a create that set its markers but not its final name
        changes = self._wanted_changes(spec, state, name=name)
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
            self.warn(
                "version_rename",
                spec.key,
                state.region,
                f"{changes['name'].before!r} -> {changes['name'].after!r} looks like a new version under the same "
                "key: a rename keeps the same image; declare a new key for a new build",
                _src(spec, "name"),
            )
        first = next(iter(sorted(changes)))
        reason_field = (
            "name"
            if "name" in changes
            else ("properties" if first not in ("description", "min_disk", "min_ram") else first)
        )
        update = self._patch(
            state,
            "update",
            "",
            changes,
            Reason("field_changed", _describe_changes(changes), _src(spec, reason_field)),
        )
        if markers.DOWNLOAD_FLAG in changes:
            state.download = changes[markers.DOWNLOAD_FLAG].after
        if spec.min_disk is not None and live and live.virtual_size and spec.min_disk * 1024**3 < live.virtual_size:
            self.warn(
                "min_disk_small",
                spec.key,
                state.region,
                f"min_disk {spec.min_disk} GB is below the image's virtual size",
                _src(spec, "min_disk"),
            )
        del update

    def _patch(
        self,
        state: _ImageState,
        kind: str,
        phase: str,
        changes: dict[str, Change],
        reason: Reason,
        *,
        compensates: str | None = None,
        label: str | None = None,
    ) -> _Built:
        """One PATCH group; in strict mode, bracketed unprotect -> PATCH -> protect on a protected image.
        `label` names the bracket's actions (`unprotect:<key>:<region>:<label>`; default: the phase, else
        "update")."""
        bracket = self.strict and state.protected
        label = label or phase or "update"
        what = {"update": "the update", "adopt": "the adoption", "rekey": "the re-key"}.get(label, label)
        if label.startswith("release"):
            what = "the release"
        opening = None
        if bracket:
            opening = self.add(
                "unprotect",
                state.key,
                state.region,
                Reason("strict_bracket", f"protected_patch: strict: unprotect for {what}", reason.source),
                state.image_id,
                suffix=label,
            )
            opening.changes["protected"] = Change(True, False)
            opening.after(state.last, "the image must exist and earlier changes be done")
            opening.expects[state.ref] = {"protected": True}
        action = self.add(kind, state.key, state.region, reason, state.image_id, suffix=phase)
        action.changes.update(changes)
        action.after(
            opening or state.last,
            "the image must exist and earlier changes be done" if not opening else "the bracket opens first",
        )
        if state.live is None:
            # Made earlier in this plan: its fields are known only once it exists.
            expects: dict[str, Any] = {"status": "active"}
        else:
            expects = {name: change.before for name, change in changes.items() if not name.startswith("reconciler_")}
        expects["protected"] = False if bracket else state.protected
        action.expects[state.ref] = expects
        if compensates:
            action.details["compensates"] = compensates
        state.last = action
        if bracket:
            closing = self.add(
                "protect",
                state.key,
                state.region,
                Reason(
                    "strict_bracket",
                    f"protected_patch: strict: protect again after {what} (runs even if it failed)",
                    reason.source,
                ),
                state.image_id,
                suffix=label,
                compensates=(opening.id if opening else None),
            )
            closing.changes["protected"] = Change(False, True)
            closing.after(action, "closes the bracket")
            closing.expects[state.ref] = {"protected": False}
            state.last = closing
        return action

    # -- copies -----------------------------------------------------------------------------------

    def _plan_copies(self, spec: ImageSpec, home: _ImageState) -> None:
        if spec.moved_from:
            # The copies of a re-keyed image are its copies too (their key marker follows below).
            for region in sorted(self.copy_regions.pop(spec.moved_from, set())):
                copies = self.own.copies.pop((spec.moved_from, region))
                self.own.copies.setdefault((spec.key, region), []).extend(copies)
                self.copy_regions[spec.key].add(region)
        declared = {copy.region: copy for copy in spec.copies}
        copy_actions: list[_Built] = []
        copy_states: dict[str, _ImageState] = {}
        for region in sorted(declared):
            copy = declared[region]
            if region not in self.snapshot.catalog_regions or region not in self.snapshot.regions:
                self.refuse(
                    "unknown_region",
                    spec.key,
                    region,
                    f"copy region {region} is not among the regions read ({', '.join(self.snapshot.regions)})",
                    "use a region of the service catalog, or add it to cloud.regions",
                    _src(spec, f"copies.{region}"),
                )
                continue
            state, action = self._plan_copy(spec, home, copy)
            if action is not None:
                copy_actions.append(action)
            if state is not None:
                copy_states[region] = state
                self._name_of(spec, state, self._copy_name(spec, home, copy), f"copies.{region}")
        # Live copies of this key in regions no longer declared: deletion candidates.
        for region in sorted(self.copy_regions.get(spec.key, set()) - set(declared)):
            for live in self.own.copies[(spec.key, region)]:
                if live.id not in self.handled:
                    self._delete_left(
                        spec.key,
                        live,
                        f"copy region {region} is no longer declared for {spec.key}",
                        # The key's `protected` covers its home image too: only a per-copy override
                        # unprotects this copy alone (and lets it go).
                        unprotect_hint=f"declare the copy again as copies: [{{region: {region}, protected: false}}] "
                        f"on {spec.key} (next to its other copies), apply; then remove it from copies and apply",
                    )
        if copy_actions:
            self._download_dance(spec, home, copy_actions)
        else:
            self._restore_left_enabled(spec, home)
        for region, state in sorted(copy_states.items()):
            copy = declared[region]
            self._plan_sharing(spec, state, spec.share)
            protected = copy.protected if copy.protected is not None else spec.protected
            self._plan_protection(
                spec, state, protected, field_path=f"copies.{region}" if copy.protected is not None else "protected"
            )

    @staticmethod
    def _home_name(spec: ImageSpec, home: _ImageState) -> str:
        """The name the home image will have: the declared one, else its live name (left alone), else the key."""
        live = home.live
        if spec.name is None and live is not None and live.name and not markers.token_of(live.name):
            return live.name
        return spec.display_name

    def _copy_name(self, spec: ImageSpec, home: _ImageState, copy: CopySpec) -> str:
        """Default: the home image's name, as it is or will be."""
        return copy.name or self._home_name(spec, home)

    def _plan_copy(
        self, spec: ImageSpec, home: _ImageState, copy: CopySpec
    ) -> tuple[_ImageState | None, _Built | None]:
        region = copy.region
        source = _src(spec, f"copies.{region}")
        name = self._copy_name(spec, home, copy)
        live_copies = [i for i in self.own.copies.get((spec.key, region), []) if i.id not in self.handled]
        replace_reason = None
        live = live_copies[0] if live_copies else None
        for extra in live_copies[1:]:
            self.handled.add(extra.id)
            self.refuse(
                "ownership_conflict",
                spec.key,
                region,
                f"two copies of {spec.key} in {region}: {live.id if live else '?'} and {extra.id}",
                "delete the one that should not be there",
                source,
            )
        if live is None and copy.image is not None:
            return self._adopt_copy(spec, home, copy)
        if live is not None:
            self.handled.add(live.id)
            home_checksum = home.live.checksum if home.live else None
            if home.image_id is None or live.properties.get(markers.COPY_OF) != home.image_id:
                replace_reason = (
                    "stale_copy",
                    f"the copy in {region} was made from {live.properties.get(markers.COPY_OF)}, "
                    f"not from the current home image",
                )
            elif live.status in INCOMPLETE:
                replace_reason = ("incomplete_copy", f"the copy in {region} was left {live.status}")
            elif home_checksum and live.checksum and live.checksum != home_checksum:
                replace_reason = (
                    "incomplete_copy",
                    f"the copy in {region} has checksum {live.checksum}, not the home image's {home_checksum}",
                )
            if replace_reason is None:
                state = self._state_of(spec, live)
                changes = self._wanted_changes(spec, state, name=name)
                changes.pop(markers.DOWNLOAD_FLAG, None)  # the download flag is the home image's
                if live.properties.get(markers.KEY) != spec.key:
                    changes[markers.KEY] = Change(live.properties.get(markers.KEY), spec.key)
                if changes:
                    self._patch(
                        state, "update", "", changes, Reason("field_changed", _describe_changes(changes), source)
                    )
                return state, None
            if live.protected:
                self.refuse(
                    "protected_undeclared",
                    spec.key,
                    region,
                    f"{replace_reason[1]} and must be replaced, but it is protected",
                    f"unprotect the copy {live.id} by hand, then plan again",
                    source,
                )
                return None, None
        copy_action = self.add(
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
        for marker, value in ((markers.SET, self.set), (markers.KEY, spec.key), (markers.COPY_OF, home.image_id)):
            if value is not None:  # a home image made in this plan: apply marks the copy with its id
                copy_action.changes[marker] = Change(None, value)
        if replace_reason is not None and live is not None:
            delete = self.add(
                "delete",
                spec.key,
                region,
                Reason(replace_reason[0], replace_reason[1] + ": deleted, then copied again", source),
                live.id,
                suffix="replace",
            )
            delete.expects[f"{region}/{live.id}"] = {
                "protected": False,
                markers.COPY_OF: live.properties.get(markers.COPY_OF),
            }
            copy_action.after(delete, "never two copies of one image in one region")
        state = _ImageState(
            key=spec.key,
            region=region,
            image_id=None,
            made_by=copy_action,
            live=None,
            protected=False,
            visibility="private",
            download=None,
            last=copy_action,
        )
        return state, copy_action

    def _adopt_copy(
        self, spec: ImageSpec, home: _ImageState, copy: CopySpec
    ) -> tuple[_ImageState | None, _Built | None]:
        region = copy.region
        source = _src(spec, f"copies.{region}")
        owned = next((i for i in self.snapshot.images.get(region, ()) if i.id == copy.image), None)
        if owned is None:
            code = "not_owned" if self.snapshot.foreign.get(copy.image or "") is not None else "source_missing"
            self.refuse(
                code,
                spec.key,
                region,
                f"copy image {copy.image} is not an image of this project in {region}",
                "check copies[].image",
                source,
            )
            return None, None
        if self._refuse_invalid_markers(spec, region, owned, "copy image", source):
            return None, None
        owner_set, owner_key = owned.properties.get(markers.SET), owned.properties.get(markers.KEY)
        if isinstance(owner_set, str) and owner_set != self.set:
            self.refuse(
                "foreign_markers",
                spec.key,
                region,
                f"copy image {copy.image} belongs to set {owner_set}",
                "remove it from copies, or clear its markers",
                source,
            )
            return None, None
        if owner_set == self.set and (owner_key != spec.key or markers.COPY_OF not in owned.properties):
            self.refuse(
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
            self.refuse(
                "ownership_conflict",
                spec.key,
                region,
                f"copy image {copy.image} has checksum {owned.checksum}, not the home image's {home_checksum}: "
                "it is not a copy of it",
                "remove image from this copy to let the tool make a verified copy",
                source,
            )
            return None, None
        if owned.id in self.handled:
            self.refuse(
                "ownership_conflict", spec.key, region, f"copy image {copy.image} is claimed twice", None, source
            )
            return None, None
        state = self._state_of(spec, owned)
        marks = {
            marker: Change(owned.properties.get(marker), value)
            for marker, value in (
                (markers.SET, self.set),
                (markers.KEY, spec.key),
                (markers.COPY_OF, home.image_id),
                (markers.SOURCE, f"image:{owned.id}"),  # adopted by id, as a home image adopted by id
            )
            if owned.properties.get(marker) != value
        }
        # The adopted copy gets the declared fields in the same call that marks it, as a home image does.
        home_name = spec.name or (home.live.name if home.live is not None else None)
        changes = self._wanted_changes(spec, state, name=copy.name or home_name or spec.display_name)
        changes.pop(markers.DOWNLOAD_FLAG, None)
        marks.update({k: v for k, v in changes.items() if k not in marks})
        reason = Reason("adopt_copy", f"adopts {owned.id} as the copy in {region}", source)
        # Bracketed like any PATCH under protected_patch: strict (a protected copy refuses the marking).
        adopt = self._patch(state, "adopt", "", marks, reason, label="adopt")
        adopt.after(home.made_by, "the home image must exist")
        self._expects_read(adopt, state, {"status": owned.status})
        state.adopt = adopt
        return state, None

    def _download_dance(self, spec: ImageSpec, home: _ImageState, copies: list[_Built]) -> None:
        """Copies read the home image's data, which NHN serves only with nhncloud_allow_download: enable
        it before them and restore it after them, also after a failed copy."""
        left_on = home.live.properties.get(markers.DOWNLOAD_WAS) if home.live else None
        if home.download == TRUE and left_on is None:
            for copy in copies:
                copy.expects[home.ref][markers.DOWNLOAD_FLAG] = TRUE
            return
        source = _src(spec, "copies")
        on = None
        if isinstance(left_on, str) and home.download == TRUE:
            # A crash left it enabled: restore what was recorded, after these copies.
            record, restore = left_on, self._recorded_download(home, left_on)
        else:
            # (A marker without the flag on is stale: replaced by this run's record.)
            record = markers.download_record(home.download)
            restore = markers.DOWNLOAD_RESTORE[record]
            on = self._patch(
                home,
                "update",
                "download-on",
                {markers.DOWNLOAD_FLAG: Change(home.download, TRUE), markers.DOWNLOAD_WAS: Change(left_on, record)},
                Reason("download_for_copies", "the copies read the image's data: enable downloads", source),
            )
        for copy in copies:
            copy.after(home.last, "downloads must be enabled on the home image")
            copy.expects[home.ref][markers.DOWNLOAD_FLAG] = TRUE
        off = self._patch(
            home,
            "update",
            "download-off",
            {markers.DOWNLOAD_FLAG: Change(TRUE, restore), markers.DOWNLOAD_WAS: Change(record, None)},
            Reason(
                "download_for_copies", "restore the download flag after the copies (runs even if one failed)", source
            ),
            compensates=on.id if on else None,
        )
        first_of_off = self.actions.get(f"unprotect:{spec.key}:{home.region}:download-off") or off
        for copy in copies:
            first_of_off.after(copy, "after every copy")

    def _restore_left_enabled(self, spec: ImageSpec, home: _ImageState) -> None:
        """A download flag a crash left enabled for copies: restore it, to the declared
        value when there is one, else to the recorded one, in the same way as any other PATCH. Only a flag
        that is on is restored: with it off the marker is stale (or set by hand) and is only cleared."""
        was = home.live.properties.get(markers.DOWNLOAD_WAS) if home.live is not None else None
        if not isinstance(was, str):
            return
        planned = self.actions.get(f"update:{spec.key}:{home.region}")
        if planned is not None and markers.DOWNLOAD_FLAG in planned.changes:
            planned.changes[markers.DOWNLOAD_WAS] = Change(was, None)  # the declared value wins
            return
        current = home.live.properties.get(markers.DOWNLOAD_FLAG) if home.live else None
        if spec.download is not None:
            restore = _bool_text(spec.download)
        elif current == TRUE:
            restore = self._recorded_download(home, was)
        else:
            restore = current
        changes = {markers.DOWNLOAD_WAS: Change(was, None)}
        if restore != current:
            changes[markers.DOWNLOAD_FLAG] = Change(current, restore)
        source = _src(spec, "download") if spec.download is not None else None
        if current == TRUE:
            why = "an interrupted run left downloads enabled for copies: restore the flag"
            reason = Reason("download_left_enabled", why, source)
        else:
            reason = Reason(
                "download_marker_stale",
                f"{markers.DOWNLOAD_WAS} is set but downloads are not enabled: the marker is cleared",
                source,
            )
        self._patch(home, "update", "download-restore", changes, reason)

    def _recorded_download(self, home: _ImageState, was: str) -> str | None:
        """The flag value a reconciler_download_was record restores. The tool records "true", "false" or
        "absent" (no flag: restored by removing it); any other text was set by hand and is never written
        to the flag: downloads are turned off ("false"), with an invalid_download_was warning."""
        if was in markers.DOWNLOAD_RESTORE:
            return markers.DOWNLOAD_RESTORE[was]
        self.warn(
            "invalid_download_was",
            home.key,
            home.region,
            f"image {home.image_id} has {markers.DOWNLOAD_WAS} {_quoted(was)}, which the tool never writes (it "
            f'records "true", "false" or "absent"): the download flag is restored to "false", not to that text',
            None,
        )
        return FALSE

    # -- sharing ----------------------------------------------------------------------------------

    def _plan_sharing(self, spec: ImageSpec, state: _ImageState, share: tuple[str, ...] | None) -> None:
        source = _src(spec, "share")
        live_members = self._live_members(spec, state, source)
        if share is None:
            self._warn_rejected(spec, state, live_members, set(live_members), source)
            return  # absent: members left alone
        wanted = set(share)
        self._warn_rejected(spec, state, live_members, wanted, source)
        for member_id in sorted(wanted & set(live_members)):
            if live_members[member_id].status == "pending":
                self.pending.append({"key": spec.key, "region": state.region, "member": member_id})
                self.warn(
                    "members_pending",
                    spec.key,
                    state.region,
                    f"project {member_id} has not accepted the share yet: the image is usable but not in its list",
                    source,
                )
        previous = state.last
        first_share = None
        adding = sorted(wanted - set(live_members))
        if adding and state.visibility != "shared" and self.strict and state.protected:
            # protected_patch: strict: the visibility PATCH of a protected image goes in a bracket of its own
            # (members are not attributes: adding them needs none).
            self._patch(
                state, "update", "visibility", {"visibility": Change(state.visibility, "shared")},
                Reason("visibility", "the first share needs the image shared", source),
            )  # fmt: skip
            state.visibility = "shared"
            previous = state.last
        for member_id in adding:
            share_action = self.add(
                "share",
                spec.key,
                state.region,
                Reason("share", f"{spec.file} shares it with {member_id}", source),
                state.image_id,
                suffix=member_id,
                member=member_id,
            )
            if first_share is None and state.visibility != "shared":
                share_action.changes["visibility"] = Change(state.visibility, "shared")
                state.visibility = "shared"
            share_action.after(state.made_by or previous, "the image must exist in this region")
            share_action.after(first_share, "the first share makes the image shared")
            share_action.expects[state.ref] = {"status": "active"}
            first_share = first_share or share_action
        removed = sorted(set(live_members) - wanted)
        unshares = []
        for member_id in removed:
            unshare = self.add(
                "unshare",
                spec.key,
                state.region,
                Reason("unshare", f"{member_id} is no longer in share", source),
                state.image_id,
                suffix=member_id,
                member=member_id,
            )
            unshare.after(previous, "earlier changes first")
            unshare.expects[state.ref] = {"visibility": "shared"}
            unshares.append(unshare)
        if not wanted and state.visibility == "shared":
            # Members go first: Glance keeps member records, so a later re-share would re-grant them.
            last = unshares[-1] if unshares else None
            bracketed = self.strict and state.protected
            if last is not None and not bracketed:
                last.changes["visibility"] = Change("shared", "private")
                for other in unshares[:-1]:
                    last.after(other, "every other member is removed first")
            else:
                for unshare in unshares[:-1]:
                    last.after(unshare, "every other member is removed first")  # type: ignore[union-attr]
                if last is not None:
                    state.last = last  # strict: the visibility bracket comes after every member is removed
                update = self._patch(
                    state,
                    "update",
                    "visibility",
                    {"visibility": Change("shared", "private")},
                    Reason("visibility", "share is empty: the image is made private again", source),
                )
                del update
            state.visibility = "private"

    def _live_members(self, spec: ImageSpec, state: _ImageState, source: str | None) -> dict[str, Any]:
        """The image's live members the tool could have added (project ids, as a manifest's share holds), by
        id. Any other member (".." or a text with a newline, which anyone in the project can add) is never
        acted on: an unshare of it would send its id as a path segment, and its action id would not be one
        a saved plan accepts. One invalid_member warning names them."""
        live = {m.member_id: m for m in self.snapshot.members.get(state.image_id or "", ())}
        invalid = sorted(member_id for member_id in live if not markers.PROJECT_ID.fullmatch(member_id))
        if invalid:
            self.warn(
                "invalid_member",
                spec.key,
                state.region,
                f"image {state.image_id} has {_and([_quoted(m) for m in invalid])} as "
                f"{'a member' if len(invalid) == 1 else 'members'}, which the tool never adds (a member is a "
                "project id, 32 lowercase hexadecimal characters): nothing is planned for "
                f"{'it' if len(invalid) == 1 else 'them'}; remove {'it' if len(invalid) == 1 else 'them'} by hand",
                source,
            )
        return {member_id: member for member_id, member in live.items() if member_id not in invalid}

    def _warn_rejected(
        self,
        spec: ImageSpec,
        state: _ImageState,
        live_members: Mapping[str, Any],
        kept: set[str],
        source: str | None,
    ) -> None:
        """A member that rejected the share (only it can change its status): the owner's plan says so,
        for every member that stays."""
        for member_id in sorted(kept & set(live_members)):
            if live_members[member_id].status == "rejected":
                self.warn(
                    "share_rejected",
                    spec.key,
                    state.region,
                    f"project {member_id} rejected the share: the image is not in its image list (only that "
                    "project can accept it; remove it from share if it is no longer meant to use it)",
                    source,
                )

    # -- protection -------------------------------------------------------------------------------

    def _plan_protection(
        self, spec: ImageSpec, state: _ImageState, protected: bool | None, field_path: str = "protected"
    ) -> None:
        if protected is None or protected == state.protected:
            return
        kind = "protect" if protected else "unprotect"
        source = _src(spec, field_path) if spec.location(field_path) else _src(spec, "protected")
        action = self.add(
            kind,
            spec.key,
            state.region,
            Reason(kind, f"{'protected: true' if protected else 'protected: false'} is declared", source),
            state.image_id,
        )
        action.changes["protected"] = Change(state.protected, protected)
        action.after(state.last, "earlier changes first")
        # Protect last: after the copies that read it and the shares that need it.
        for other in self.actions.values():
            if (
                other.key == spec.key
                and other.region == state.region
                and other.kind in ("share", "copy")
                and other is not action
            ):
                action.after(other, "protected once everything else is in place")
        action.expects[state.ref] = {"protected": state.protected}
        state.protected = protected
        state.last = action

    # -- removals ---------------------------------------------------------------------------------

    def _plan_removals(self) -> None:
        """`removed:` entries (docs/manifest.md). destroy: false releases each live image of the key, home and
        copies: one update removes every reconciler_* marker, restoring a download flag the tool enabled, and
        leaves the image, its members, protection and property values as they are; the image is then
        unmanaged. destroy: true leaves the key's images to _plan_deletions, as a key that is simply gone.
        A removed key with no live image is warned: the entry has nothing left to do."""
        for removal in self.desired.removed:
            if removal.key not in self.scope:
                continue
            live = self._live_images_of(removal.key)
            source = _removal_source(removal)
            if not live:
                self.warn(
                    "removed_nothing",
                    removal.key,
                    None,
                    f"{removal.key} is listed under removed:, but set {self.set} has no live image of it: nothing to "
                    f"{'delete' if removal.destroy else 'release'}; the entry can go",
                    source,
                )
                continue
            if removal.destroy:
                continue
            for image in live:
                if image.id in self.handled or image.id in self.referenced:
                    continue  # another declaration accounts for it (an adopt by id is planned, or refused, there)
                if image.properties.get(markers.COPY_OF) is not None and image.status in INCOMPLETE:
                    # A copy the tool never finished is its own unfinished work, not an image anyone had.
                    self._delete_left(
                        removal.key,
                        image,
                        f"{removal.key} is released, but its copy in {image.region} is one an interrupted copy left "
                        f"{image.status}: the tool's own unfinished work is deleted, not released",
                        source=source,
                        keep_hint=False,
                    )
                    continue
                self._release(removal.key, image, source)

    def _live_images_of(self, key: str) -> list[Image]:
        """Every live image of this set carrying `key`: its home images, then its copies by region."""
        found = list(self.own.home.get(key, []))
        for region in sorted(self.copy_regions.get(key, set())):
            found.extend(self.own.copies.get((key, region), []))
        return found

    def _release(self, key: str, image: Image, source: str) -> None:
        """One update removing every reconciler_* marker from `image`; the download flag the tool enabled for
        copies (its reconciler_download_was record) is restored in the same call. Strict mode brackets it."""
        self.handled.add(image.id)
        props = image.properties
        changes = {
            name: Change(value, None) for name, value in sorted(props.items()) if name.startswith(markers.PREFIX)
        }
        state = _ImageState(
            key=key,
            region=image.region,
            image_id=image.id,
            made_by=None,
            live=image,
            protected=image.protected,
            visibility=image.visibility,
            download=props.get(markers.DOWNLOAD_FLAG),
        )
        was = props.get(markers.DOWNLOAD_WAS)
        restored = ""
        if isinstance(was, str) and state.download == TRUE:
            restore = self._recorded_download(state, was)
            if restore != TRUE:
                changes[markers.DOWNLOAD_FLAG] = Change(TRUE, restore)
                restored = ", and the download flag an interrupted run left enabled for copies is restored"
        what = f"its copy in {image.region}" if markers.COPY_OF in props else "the image"
        # Several images of the key in one region (a home and a stray copy, duplicates): one release each.
        same_region = [i.id for i in self._live_images_of(key) if i.region == image.region]
        label = "release"
        if len(same_region) > 1:
            short = [i[:8] for i in same_region]
            label += "-" + (image.id[:8] if short.count(image.id[:8]) == 1 else image.id)
        release = self._patch(
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
        )
        # It is this set's image of that key when it runs, as when it was planned.
        release.expects[state.ref].update({markers.SET: self.set, markers.KEY: key})

    # -- deletions and leftovers ------------------------------------------------------------------

    def _delete_left(
        self,
        key: str,
        live: Image,
        why: str,
        *,
        unprotect_hint: str | None = None,
        source: str | None = None,
        keep_hint: bool = True,
    ) -> None:
        """`unprotect_hint`: how to unprotect it when it is protected (default: the key's `protected`).
        `source`: the manifest line that asks for the delete (a `removed:` entry), if any. `keep_hint`: say how
        to keep an image the project had before the tool (not when a removed: entry asked for the delete)."""
        self.handled.add(live.id)
        if live.id in self.referenced:
            return
        if live.protected:
            self.refuse(
                "protected_undeclared",
                key,
                live.region,
                f"{live.name} ({live.id}) is protected and no longer declared: it will not be deleted",
                unprotect_hint
                or (
                    f"to keep it, unmanaged, list {key} under removed: with destroy: false; to delete it, set "
                    f"protected: false on {key}, apply, then remove it and apply"
                ),
                source,
            )
            return
        why += "; not protected"
        if keep_hint and live.properties.get(markers.SOURCE) == f"image:{live.id}":
            # Adopted by id (what `reconciler import` declares): an image the project had before the tool.
            if markers.COPY_OF in live.properties and key in self.declared:
                why += f". It was imported (adopted by id): to keep it, keep it under copies: of {key}"
            else:
                why += (
                    f". It was imported (adopted by id): to keep it, unmanaged, list {key} under removed: with "
                    "destroy: false"
                )
        delete = self.add(
            "delete",
            key,
            live.region,
            Reason("undeclared", why, source),
            live.id,
            image_suffix=(
                (live.properties.get(markers.COPY_OF) is None and len(self.own.home.get(key, [])) > 1)
                # Two images of one key in one region (two copies, or a home and a copy): each delete
                # needs its own id.
                or self._live_in_region(key, live.region) > 1
            ),
            name=live.name,
        )
        delete.expects[f"{live.region}/{live.id}"] = {"protected": False, markers.SET: self.set, markers.KEY: key}
        # Unshares and other changes come before deletes; deletes are last.
        self.deletions.append(delete)

    def _live_in_region(self, key: str, region: str) -> int:
        homes = sum(1 for image in self.own.home.get(key, []) if image.region == region)
        return homes + len(self.own.copies.get((key, region), []))

    def _plan_deletions(self) -> None:
        """Every live image, home or copy, of a key that left the manifests (a copy whose home is gone too)."""
        removals = {removal.key: removal for removal in self.desired.removed}
        for key in sorted(set(self.own.home) | set(self.copy_regions)):
            if key in self.declared or key in self.moved_from or key not in self.scope:
                continue
            removal = removals.get(key)
            gone, source, hint = f"{key} is no longer declared", None, None
            if removal is not None:
                gone = f"{key} is listed under removed: with destroy: true"
                source = _removal_source(removal)
                hint = (
                    f"to keep it, unmanaged, set destroy: false on the removed: entry of {key}; to delete it, declare "
                    f"{key} again with protected: false instead of the entry, apply, then remove it and apply"
                )
            for live in self.own.home.get(key, []):
                if live.id not in self.handled:
                    self._delete_left(key, live, gone, source=source, unprotect_hint=hint, keep_hint=removal is None)
            for region in sorted(self.copy_regions.get(key, set())):
                for live in self.own.copies.get((key, region), []):
                    if live.id not in self.handled:
                        self._delete_left(
                            key,
                            live,
                            f"{gone} (its copy in {region})",
                            source=source,
                            unprotect_hint=hint,
                            keep_hint=removal is None,
                        )


def _removal_source(removal: Removal) -> str:
    return f"{removal.location.file}:{removal.location.line}" if removal.location else removal.file


def _describe_changes(changes: Mapping[str, Change]) -> str:
    parts = []
    for name in sorted(changes):
        change = changes[name]
        if name.startswith("reconciler_"):
            continue
        if change.after is None:
            parts.append(f"{name} {_quoted(change.before)} removed")
        elif change.before is None:
            parts.append(f"{name} set to {_quoted(change.after)}")
        else:
            parts.append(f"{name} {_quoted(change.before)} -> {_quoted(change.after)}")
    return "; ".join(parts) or "markers"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _quoted(value: Any) -> str:
    """A value inside a message, quoted: a `"` or `\\` inside is escaped, so a name from the cloud cannot close
    its quotes and read as more of the message (the renderers show hidden characters)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def _looks_like_a_version_bump(before: Any, after: Any) -> bool:
    """A rename whose version numbers changed (web-base-v1 -> web-base-v2, web-2026-11 -> web-2026-12): a new
    build under the same key, which a rename would misrepresent. A rename that keeps every number and
    changes only words (web-2026-12 -> web-base-2026-12) is only a rename."""
    old, new = VERSION_LIKE.findall(str(before or "")), VERSION_LIKE.findall(str(after or ""))
    return bool(old) and bool(new) and [n.lstrip("0") for n in old] != [n.lstrip("0") for n in new]


def _made_from(image: Image, server: Server | None) -> bool:
    """Was a finishable candidate made from the declared instance? On the local-disk path (Nova
    createImage, which records `instance_uuid`) only if its instance_uuid is that server; an image that
    records none came from the volume path, which is fine unless the server is known to be local-disk."""
    uuid = image.properties.get("instance_uuid")
    if server is not None and isinstance(uuid, str) and uuid.lower() == server.id.lower():
        return True
    return uuid is None and (server is None or server.root_device != "local")


def _seconds(value: float) -> str:
    return f"{int(value)} s" if float(value).is_integer() else f"{value} s"
