"""The context every planning concern takes first: the inputs and what is derived from them once (read
only), and the plan being built (the action graph, the findings, and the few records concerns leave for
one another, each written through one method or by one concern, as its comment says).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import DesiredState, Family, ImageSpec, Removal
from reconciler.live import Snapshot
from reconciler.ownership import Ownership, classify_desired, referenced_ids
from reconciler.plan import Change, Finding, Target

from .graph import ActionGraph, ImageState, Step

TRUE, FALSE = "true", "false"
# Image statuses of an upload or copy that has not finished (or failed): such a copy is the tool's own
# unfinished work, replaced or deleted, never kept or released.
INCOMPLETE = frozenset({"queued", "saving", "uploading", "importing", "killed"})


def is_unfinished_copy(image: Image) -> bool:
    """A copy an interrupted copy left unfinished: not a copy anyone had."""
    return image.properties.get(markers.COPY_OF) is not None and image.status in INCOMPLETE


@dataclass(frozen=True)
class Scope:
    """The keys a partial plan (`--target`, `--exclude`) considers; every key when both are empty."""

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


class PlanContext:
    def __init__(
        self,
        desired: DesiredState,
        snapshot: Snapshot,
        target: Target,
        *,
        max_deletions: int | None,
        timeout: float,
        scope: Scope,
    ) -> None:
        # -- inputs, and facts derived from them once (never written after this) ------------------------
        self.desired = desired
        self.snapshot = snapshot
        self.target = target
        self.timeout = timeout
        self.scope = scope
        self.set = desired.root.set
        self.strict = desired.root.cloud.protected_patch == "strict"
        self.max_deletions = desired.root.settings.max_deletions if max_deletions is None else max_deletions
        self.declared = {spec.key for spec in desired.images}
        self.moved_from = {spec.moved_from for spec in desired.images if spec.moved_from}
        # Each declared (key, region) by its temporary-name token K (the image is made in its home region).
        self.by_token = {markers.name_token(self.set, spec.key, spec.region): spec for spec in desired.images}
        # Images a manifest names by id are never deletion candidates, even when adopting them is refused.
        self.referenced = referenced_ids(desired)
        # The one sorting read_snapshot used too (it decided which keys get a create's reads).
        self.own: Ownership = classify_desired(snapshot.all_images(), desired)
        self.copies, self.copy_regions = _copies_by_key(self.own, desired)

        # -- the plan being built -----------------------------------------------------------------------
        self.graph = ActionGraph()
        self.refusals: list[Finding] = []
        self.warnings: list[Finding] = []
        self._accounted: set[str] = set()  # live image ids some concern planned for (account())
        # Written by the deletion concern: the deletes of what left the manifests (max_deletions counts
        # every delete; these are the ones that wait for everything made).
        self.deletions: list[Step] = []
        # Written by the temporary-names concern, read by identity and imaging: this set's temporary-name
        # images by the declared key they are for (running creates; finishable ones), the leftover deletes,
        # and those a create must wait for by (key, region) (an image under the same temporary name).
        self.creating: dict[str, list[Image]] = defaultdict(list)
        self.finishable: dict[str, list[Image]] = defaultdict(list)
        self.leftovers: list[tuple[Step, Image]] = []  # each leftover delete and the image it deletes
        self.cleanups: dict[tuple[str, str], list[Step]] = defaultdict(list)
        # Written by sharing: members that have not accepted yet (the plan's info).
        self.pending: list[dict[str, str]] = []
        # Written through name_of: the name each planned image will have, by (region, name): (key, whether it is
        # a new name, where it is written).
        self.names: dict[tuple[str, str], list[tuple[str, bool, str | None]]] = defaultdict(list)
        # Written by imaging: the steps that act on each server (a create from it, its restart), by server id.
        self.server_steps: dict[str, list[Step]] = defaultdict(list)
        # Written by the driver: each declared key's planned image by (key, region), home and copies, as the
        # steps planned for it leave it (the families concern moves the newest marker on them).
        self.states: dict[tuple[str, str], ImageState] = {}
        # Written by the families concern: the step that takes the newest marker off an image, by image id
        # (that image's retirement waits for it).
        self.newest_removed: dict[str, Step] = {}

    # -- findings -------------------------------------------------------------------------------------

    def refuse(
        self, code: str, key: str | None, region: str | None, message: str, hint: str | None, source: str | None
    ) -> None:
        self.refusals.append(Finding(code, key, region, message, source, hint))

    def warn(
        self,
        code: str,
        key: str | None,
        region: str | None,
        message: str,
        source: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.warnings.append(Finding(code, key, region, message, source, details=MappingProxyType(details or {})))

    # -- live images accounted for --------------------------------------------------------------------

    def made_by(self, create: Step, spec: ImageSpec, source: str, name: str) -> ImageState:
        """What every create of a key's image shares (from an instance or an upload): it waits for the
        leftover under its temporary name, sets the set's markers and the final name, and is the key's home."""
        for cleanup in self.cleanups.get((spec.key, spec.region), []):
            create.after(cleanup, "the leftover under the same temporary name goes first")
        for marker, value in ((markers.SET, self.set), (markers.KEY, spec.key), (markers.SOURCE, source)):
            create.changes[marker] = Change(None, value)
        create.changes["name"] = Change(None, name)
        return ImageState.made(spec.key, spec.region, create)

    def account(self, image_id: str) -> None:
        """Some concern planned for this live image (kept, changed, released, deleted or refused): it is
        no longer a candidate for anything else."""
        self._accounted.add(image_id)

    def accounted(self, image_id: str) -> bool:
        return image_id in self._accounted

    def state_of(self, key: str, image: Image) -> ImageState:
        """The state of a live image some concern now plans for (accounted for)."""
        self.account(image.id)
        return ImageState.of_live(key, image)

    def refuse_invalid_markers(self, spec: ImageSpec, region: str, image: Image, what: str, source: str | None) -> bool:
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

    # -- what the set has live ------------------------------------------------------------------------

    def live_images_of(self, key: str) -> list[Image]:
        """Every live image of this set carrying `key`: its home images, then its copies by region."""
        found = list(self.own.home.get(key, []))
        for region in sorted(self.copy_regions.get(key, set())):
            found.extend(self.copies.get((key, region), []))
        return found

    def family_of(self, image: Image) -> Family | None:
        """The declared family an image of this set belongs to (its reconciler_family marker, naming the family
        or the one it was before `moved_from`), if any: a delete of such an image is a retirement."""
        name = image.properties.get(markers.FAMILY)
        if not isinstance(name, str) or image.properties.get(markers.SET) != self.set:
            return None
        # A renamed family (`moved_from`) is still declared, under its new name: its old images are its own.
        return self.desired.family(name) or next(
            (family for family in self.desired.families if family.moved_from == name), None
        )

    def live_in_region(self, key: str, region: str) -> int:
        homes = sum(1 for image in self.own.home.get(key, []) if image.region == region)
        return homes + len(self.copies.get((key, region), []))

    def name_of(self, spec: ImageSpec, region: str, live: Image | None, name: str, field_path: str) -> None:
        """Remember the name this key's image in `region` will have (new: made, or renamed, here)."""
        new = live is None or live.name != name
        where = src(spec, field_path) if spec.location(field_path) else src(spec, "name")
        self.names[(region, name)].append((spec.key, new, where))


def _copies_by_key(
    own: Ownership, desired: DesiredState
) -> tuple[dict[tuple[str, str], list[Image]], dict[str, set[str]]]:
    """This set's copies by (key, region), and the regions holding copies by key. A re-keyed image's copies
    (`moved_from`) are its new key's: they are the same images, and their key marker follows."""
    renamed = {spec.moved_from: spec.key for spec in desired.images if spec.moved_from}
    copies: dict[tuple[str, str], list[Image]] = defaultdict(list)
    # A key's own copies first, then those it takes over from the key it had before (oldest first in each).
    for (key, region), images in sorted(own.copies.items(), key=lambda item: item[0][0] in renamed):
        copies[(renamed.get(key, key), region)].extend(images)
    regions: dict[str, set[str]] = defaultdict(set)
    for key, region in copies:
        regions[key].add(region)
    return copies, regions


# -- text helpers ---------------------------------------------------------------------------------------


def src(spec: ImageSpec, field_path: str = "") -> str | None:
    """Where `field_path` of `spec` is written, as `file:line` (the key's line when the field is absent)."""
    location = spec.location(field_path)
    return f"{location.file}:{location.line}" if location else None


def removal_source(removal: Removal) -> str:
    return f"{removal.location.file}:{removal.location.line}" if removal.location else removal.file


def bool_text(value: bool) -> str:
    return TRUE if value else FALSE


def quoted(value: Any) -> str:
    """A value inside a message, quoted: a `"` or `\\` inside is escaped, so a name from the cloud cannot close
    its quotes and read as more of the message (the renderers show hidden characters)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def joined(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def seconds(value: float) -> str:
    return f"{int(value)} s" if float(value).is_integer() else f"{value} s"
