"""The plan being built: its steps (actions still open to edits), the state of each image as the steps
planned so far leave it, and the graph that orders them.

Concerns add steps through `ActionGraph.add` and find each other's steps through the image state they
share (`ImageState.last`, `.update`, `.shares`, ...) or the graph's typed lookups, never by rebuilding id
strings. `ActionGraph.ordered` freezes the steps into `Action`s in a deterministic order: Kahn's algorithm
over the explicit dependencies, ties broken by "make before break" (the vocabulary's RANK), then region, key and id.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.plan import Action, ActionId, Change, Dependency, Reason, Ref
from reconciler.plan_kinds import RANK


@dataclass
class Step:
    """An action while the plan is built: mutable until `ActionGraph.ordered` freezes it."""

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
    # The id ends with the full image id while planning; `shorten_image_suffixes` cuts it to 8 characters.
    image_suffix: bool = False

    def after(self, other: Step | None, reason: str) -> None:
        if other is not None and all(d.id != other.id for d in self.depends_on):
            self.depends_on.append(Dependency(other.id, reason))


@dataclass
class ImageState:
    """One image of a key in one region as it will be once the steps planned so far have run, and the steps
    that change it, so that a later concern can wait for them or add to them."""

    key: str
    region: str
    image_id: str | None  # None: made by `made_by`
    made_by: Step | None
    live: Image | None
    protected: bool
    visibility: str
    download: str | None
    last: Step | None = None  # the latest step that changes it: the next one waits for it
    # The adopt that marks it, which also carries its declared fields (one PATCH); None when not adopted.
    adopt: Step | None = None
    update: Step | None = None  # the update of its declared fields, if any
    shares: list[Step] = field(default_factory=list)  # the shares that add members to it

    @property
    def ref(self) -> str:
        """How `expects` names it: `<region>/<image id>`, or `<region>/<<id of the step that makes it>>`."""
        if self.image_id is not None:
            return str(Ref.image(self.region, self.image_id))
        return str(Ref.made(self.region, self.made_by.id if self.made_by else "?"))

    @classmethod
    def of_live(cls, key: str, image: Image) -> ImageState:
        return cls(
            key=key,
            region=image.region,
            image_id=image.id,
            made_by=None,
            live=image,
            protected=image.protected,
            visibility=image.visibility,
            download=image.properties.get(markers.DOWNLOAD_FLAG),
        )

    @classmethod
    def made(cls, key: str, region: str, by: Step) -> ImageState:
        """An image this plan makes (a create, a copy): private, unprotected, known once `by` has run."""
        return cls(key, region, None, by, None, False, "private", None, last=by)


@dataclass(frozen=True, slots=True)
class PatchGroup:
    """One PATCH of an image, and the strict bracket around it when there is one."""

    opening: Step | None
    action: Step
    closing: Step | None

    @property
    def first(self) -> Step:
        return self.opening or self.action


class ActionGraph:
    """The steps by id, with typed lookups."""

    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}
        self._by_kind: dict[str, list[Step]] = defaultdict(list)
        self._by_image: dict[tuple[str, str], list[Step]] = defaultdict(list)  # by (key, region)

    def add(
        self,
        kind: str,
        key: str,
        region: str,
        reason: Reason,
        image_id: str | None,
        phase: str = "",
        *,
        image_suffix: bool = False,
        **details: Any,
    ) -> Step:
        """A new step `kind:key:region[:phase]`. `image_suffix`: one of several images under this kind, key and
        region; the id ends with the image id (shortened at the end, see shorten_image_suffixes)."""
        if image_suffix:
            phase = image_id or ""
        step_id = str(ActionId(kind, key, region, phase or None))
        step = Step(step_id, kind, key, region, reason, image_id, details=dict(details))
        step.image_suffix = image_suffix
        assert step_id not in self._steps, step_id
        self._steps[step_id] = step
        self._by_kind[kind].append(step)
        self._by_image[(key, region)].append(step)
        return step

    def remove(self, step: Step) -> None:
        """Drop a step and every dependency on it."""
        del self._steps[step.id]
        self._by_kind[step.kind].remove(step)
        self._by_image[(step.key, step.region)].remove(step)
        for other in self._steps.values():
            other.depends_on = [d for d in other.depends_on if d.id != step.id]

    def of_kind(self, *kinds: str) -> list[Step]:
        """The steps of these kinds, in the order they were added."""
        found = [step for kind in kinds for step in self._by_kind.get(kind, [])]
        return found if len(kinds) == 1 else sorted(found, key=lambda s: s.id)

    def at(self, key: str, region: str, *kinds: str) -> list[Step]:
        """The steps of these kinds for `key` in `region`, in the order they were added."""
        return [step for step in self._by_image.get((key, region), []) if step.kind in kinds]

    def shorten_image_suffixes(self) -> None:
        """An id that ends with an image id ends with its first 8 characters, as people read them, unless two
        images of its kind, key and region share those (Glance lets a client choose an image id): then every
        image of that group keeps its full id, so that no two actions have one id."""
        groups: dict[tuple[str, str, str], list[Step]] = defaultdict(list)
        for step in self._steps.values():
            if step.image_suffix:
                groups[(step.kind, step.key, step.region)].append(step)
        short: dict[str, str] = {}
        for (kind, key, region), group in groups.items():
            prefixes = {str(step.image_id)[:8] for step in group}
            if len(prefixes) == len(group):
                short.update((s.id, str(ActionId(kind, key, region, str(s.image_id)[:8]))) for s in group)
        if not short:
            return
        self._steps = {short.get(step_id, step_id): step for step_id, step in self._steps.items()}
        for step in self._steps.values():
            step.id = short.get(step.id, step.id)
            step.depends_on = [Dependency(short.get(d.id, d.id), d.reason) for d in step.depends_on]
            if "compensates" in step.details:
                step.details["compensates"] = short.get(step.details["compensates"], step.details["compensates"])

    def ordered(self) -> list[Action]:
        """Kahn's algorithm with a priority: make before break, then region, key, id."""
        pending = {s.id: {d.id for d in s.depends_on} for s in self._steps.values()}
        dependents: dict[str, list[str]] = {s: [] for s in pending}
        for step_id, needs in pending.items():
            for need in needs:
                dependents[need].append(step_id)

        def order(step_id: str) -> tuple[int, str, str, str]:
            s = self._steps[step_id]
            return (RANK[s.kind], s.region, s.key, s.id)

        ready = [order(s) for s, needs in pending.items() if not needs]
        heapq.heapify(ready)
        result: list[Action] = []
        while ready:
            step = self._steps[heapq.heappop(ready)[3]]
            result.append(_frozen(step))
            for dependent in dependents[step.id]:
                pending[dependent].discard(step.id)
                if not pending[dependent]:
                    heapq.heappush(ready, order(dependent))
        assert len(result) == len(self._steps), "the plan's dependencies form a cycle"
        return result


def _frozen(step: Step) -> Action:
    return Action(
        id=step.id,
        kind=step.kind,
        key=step.key,
        region=step.region,
        reason=step.reason,
        image_id=step.image_id,
        changes=step.changes,
        expects={k: dict(v) for k, v in step.expects.items()},
        depends_on=tuple(step.depends_on),
        details=step.details,
    )
