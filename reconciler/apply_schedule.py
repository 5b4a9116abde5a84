"""Apply's scheduling, as pure functions: which action starts next, which is skipped, which compensation
is owed, when the run is over. No threads, no clock, no client: `apply.Applier` runs the calls and the
threads, and asks this module what to do after each change of state.

The rules (docs/safety.md tells why):

- Actions are considered in plan order (a topological order). An action is ready once every action it
  depends on has an outcome.
- At most `parallelism` actions run at once, and at most `region_parallelism` touch one region (a copy
  touches its source region too). When every slot is taken nothing more is decided in that pass: a
  failure meanwhile must still be able to stop what has not started.
- After the first failure (failed, stale, or left for the next run) or once the apply lock is lost, no
  new action starts; running ones finish. A ready action whose dependency did not complete is skipped. A
  deferred retirement is no failure: the run goes on (what depends on it is skipped: it did not happen).
- A compensation (an action with `compensates` in its details: the restart after a stop, the protect
  closing a strict bracket, the download-flag restore) runs whatever failed, but only when it is owed:
  what it compensates was done, or started and may have taken effect (see `owed`). When that action did
  not finish, the compensation cannot rely on its outcome and runs with its `expects` unchecked.
- After a cancellation nothing new starts; once the calls in flight are over (finished, or interrupted
  when the grace period ends), the owed compensations run one at a time, in plan order, and every other
  action is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler.plan import Action

DONE, FAILED, STALE, SKIPPED = "done", "failed", "stale", "skipped"
# Cancelled while in flight; a compensation that could not run yet (reported "left for the next run").
INTERRUPTED, LEFT = "interrupted", "left"
# A retirement (the delete of a declared family's old version) whose image gained a user since the plan:
# not done, and not a failure either: the next plan retires it once its users are gone.
DEFERRED = "deferred"
STATUSES = (DONE, FAILED, STALE, SKIPPED, INTERRUPTED, LEFT, DEFERRED)
# The outcomes of a run that went as it should.
SUCCEEDED = frozenset({DONE, DEFERRED})
# An action that ends so stops the run: nothing new starts after it (compensations still run).
STOPS_THE_RUN = frozenset({FAILED, STALE, LEFT})
# A compensation is owed once these started, even if they did not finish (see `owed`).
OWED_ONCE_STARTED = frozenset({"stop_instance", "unprotect"})

# Why an action was skipped (the apply report's message).
NOT_OWED = "what it compensates did not run"
LOCK_LOST = "the apply lock was lost"
EARLIER_FAILURE = "an earlier action failed"
DEPENDENCY_INCOMPLETE = "a dependency did not complete"
NEVER_READY = "never became ready"
CANCELLED = "cancelled before it started"
# The outcome given to an action still in flight when the grace period after a cancellation ends.
STILL_IN_FLIGHT = "still in flight when cancelled"


@dataclass(frozen=True, slots=True)
class Node:
    """What scheduling needs to know about one action."""

    id: str
    kind: str
    regions: tuple[str, ...]  # the regions it occupies while it runs
    needs: frozenset[str] = frozenset()  # the actions it depends on
    compensates: str | None = None  # the action it compensates, if it is a compensation


def node_of(action: Action) -> Node:
    compensates = action.details.get("compensates")
    return Node(action.id, action.kind, regions_of(action), frozenset(d.id for d in action.depends_on), compensates)


def regions_of(action: Action) -> tuple[str, ...]:
    """The regions an action occupies: its own, and a copy's source region."""
    source = action.details.get("source_region") if action.kind == "copy" else None
    return (action.region, source) if source and source != action.region else (action.region,)


@dataclass(frozen=True, slots=True)
class Caps:
    parallelism: int  # actions running at once
    region_parallelism: int  # actions touching one region at once


@dataclass(frozen=True, slots=True)
class Start:
    """Start this action; `unchecked`: a compensation owed for an action that did not finish, whose
    `expects` (the state after that action) are not checked."""

    action_id: str
    unchecked: bool = False


@dataclass(frozen=True, slots=True)
class Skip:
    action_id: str
    why: str


Step = Start | Skip


@dataclass(frozen=True, slots=True)
class State:
    """Where a run stands: the outcome of every action that has one, what is running, and whether the run
    is stopped (a failure or a lost lock: nothing new starts). Never changed: each step makes a new one."""

    outcomes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    running: tuple[str, ...] = ()  # in the order they started
    stopped: bool = False

    def resolved(self, action_id: str) -> bool:
        return action_id in self.outcomes

    def with_outcome(self, action_id: str, status: str, *, stops: bool = False) -> State:
        draft = _Draft.of(self)
        draft.end(action_id, status, stops=stops)
        return draft.state()

    def with_started(self, action_id: str) -> State:
        return State(self.outcomes, (*self.running, action_id), self.stopped)


@dataclass(slots=True)
class _Draft:
    """A State being worked on within one pass: copied once, changed step by step, frozen at the end (one
    copy per pass instead of one per step keeps a pass linear in the plan's size)."""

    outcomes: dict[str, str]
    running: list[str]
    stopped: bool

    @classmethod
    def of(cls, state: State) -> _Draft:
        return cls(dict(state.outcomes), list(state.running), state.stopped)

    def end(self, action_id: str, status: str, *, stops: bool = False) -> None:
        self.outcomes[action_id] = status
        if action_id in self.running:
            self.running.remove(action_id)
        self.stopped = self.stopped or stops

    def state(self) -> State:
        return State(MappingProxyType(self.outcomes), tuple(self.running), self.stopped)


@dataclass(frozen=True, slots=True)
class Pass:
    """One look at the plan: the steps to take, in order, and the state once they are taken."""

    steps: tuple[Step, ...]
    state: State


def owed(compensated_kind: str | None, status: str | None) -> bool:
    """Whether a compensation is owed, given the kind and outcome of what it compensates: that was done, or
    it was started and may have taken effect (a stop that timed out while the server was powering off is
    still this run's stop; an unprotect whose answer was lost may have unprotected)."""
    if status is None:
        return False
    if status == DONE:
        return True
    return status in (FAILED, INTERRUPTED) and compensated_kind in OWED_ONCE_STARTED


@dataclass(frozen=True)
class Schedule:
    """The plan's actions in plan order, and the caps; every method is a pure function of a `State`."""

    nodes: tuple[Node, ...]
    caps: Caps
    by_id: Mapping[str, Node] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", MappingProxyType({n.id: n for n in self.nodes}))

    @classmethod
    def of(cls, actions: Iterable[Action], *, parallelism: int, region_parallelism: int) -> Schedule:
        return cls(tuple(node_of(a) for a in actions), Caps(max(1, parallelism), max(1, region_parallelism)))

    # -- while the run goes on --------------------------------------------------------------------

    def next(self, state: State, *, lock_lost: bool = False) -> Pass:
        """The steps to take now, in plan order: skips, and starts while slots are free."""
        draft = _Draft.of(state)
        busy = Counter(region for action_id in draft.running for region in self.by_id[action_id].regions)
        steps: list[Step] = []
        for node in self.nodes:
            if node.id in draft.outcomes or node.id in draft.running:
                continue
            if len(draft.running) >= self.caps.parallelism:
                break  # decide more only when a slot frees: a failure meanwhile stops new starts
            if not node.needs <= draft.outcomes.keys():
                continue
            step = self._decide(node, draft, busy, lock_lost)
            if step is None:
                continue  # its region is full: a later action in another region may start
            steps.append(step)
            if isinstance(step, Skip):
                draft.end(node.id, SKIPPED, stops=step.why == LOCK_LOST)
            else:
                draft.running.append(node.id)
                busy.update(node.regions)
        return Pass(tuple(steps), draft.state())

    def _decide(self, node: Node, draft: _Draft, busy: Counter[str], lock_lost: bool) -> Step | None:
        """A ready action: skip it, start it, or (None) leave it until its region has room."""
        if node.compensates is not None:
            if not self._owed(node, draft.outcomes):
                return Skip(node.id, NOT_OWED)
        elif lock_lost:
            return Skip(node.id, LOCK_LOST)
        elif draft.stopped:
            return Skip(node.id, EARLIER_FAILURE)
        elif any(draft.outcomes[need] != DONE for need in node.needs):
            return Skip(node.id, DEPENDENCY_INCOMPLETE)
        if any(busy[region] >= self.caps.region_parallelism for region in node.regions):
            return None
        return self._start(node, draft.outcomes)

    def finished(self, state: State, action_id: str, status: str) -> State:
        """The state once a running action ended with `status`."""
        return state.with_outcome(action_id, status, stops=status in STOPS_THE_RUN)

    def over(self, state: State) -> bool:
        return len(state.outcomes) >= len(self.nodes)

    def never_ready(self, state: State) -> tuple[Skip, ...]:
        """With nothing running and actions left (only possible with a broken graph): they never start."""
        if state.running:
            return ()
        return tuple(Skip(n.id, NEVER_READY) for n in self.nodes if not state.resolved(n.id))

    # -- after a cancellation ---------------------------------------------------------------------

    def after_cancel(self, state: State) -> Pass:
        """The steps once the calls in flight are over: the actions left, in plan order, are skipped up to
        the first owed compensation, which starts and ends the pass (one at a time: its outcome may decide
        the next). No steps when the run is over."""
        assert not state.running, "after a cancellation, steps are decided once nothing runs"
        draft = _Draft.of(state)
        steps: list[Step] = []
        for node in self.nodes:
            if node.id in draft.outcomes:
                continue
            if node.compensates is not None and self._owed(node, draft.outcomes):
                steps.append(self._start(node, draft.outcomes))
                draft.running.append(node.id)
                break
            steps.append(Skip(node.id, CANCELLED))
            draft.end(node.id, SKIPPED)
        return Pass(tuple(steps), draft.state())

    # -- compensations ----------------------------------------------------------------------------

    def _owed(self, node: Node, outcomes: Mapping[str, str]) -> bool:
        assert node.compensates is not None
        compensated = self.by_id.get(node.compensates)
        return owed(compensated.kind if compensated is not None else None, outcomes.get(node.compensates))

    def _start(self, node: Node, outcomes: Mapping[str, str]) -> Start:
        compensated = outcomes.get(node.compensates) if node.compensates is not None else None
        return Start(node.id, unchecked=compensated is not None and compensated != DONE)
