"""Apply's scheduling as data, with no client and no threads: each case gives the plan's actions, where the
run stands and the caps, and says in one sentence why the schedule answers what it does. A Hypothesis
property then drives random graphs through random outcomes, lost locks and cancellations."""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import apply_schedule
from reconciler.apply_schedule import (
    CANCELLED,
    DEPENDENCY_INCOMPLETE,
    DONE,
    EARLIER_FAILURE,
    FAILED,
    INTERRUPTED,
    LEFT,
    LOCK_LOST,
    NEVER_READY,
    NOT_OWED,
    SKIPPED,
    STALE,
    Caps,
    Node,
    Schedule,
    Skip,
    Start,
    State,
    node_of,
)
from reconciler.plan import Action, Dependency, Reason

WIDE = Caps(8, 8)

# All the schedule may import: no threads, no clock, no client, no lock, no signals.
PURE_IMPORTS = {"__future__", "collections", "collections.abc", "dataclasses", "types", "reconciler.plan"}


def test_the_schedule_imports_nothing_that_runs_or_waits():
    tree = ast.parse(Path(apply_schedule.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= PURE_IMPORTS, f"apply_schedule.py imports {sorted(imported - PURE_IMPORTS)}"


def node(id_: str, *needs: str, kind: str = "update", region: str = "KR1", source: str | None = None, comp=None):
    regions = (region, source) if source and source != region else (region,)
    return Node(id_, kind, regions, frozenset(needs), comp)


def state(running=(), stopped=False, **outcomes: str) -> State:
    return State(MappingProxyType(outcomes), tuple(running), stopped)


@dataclass(frozen=True)
class Case:
    reason: str
    nodes: tuple[Node, ...]
    state: State
    steps: tuple[Start | Skip, ...]
    caps: Caps = WIDE
    lock_lost: bool = False


NEXT = [
    Case(
        "independent actions start in plan order until every slot is taken",
        (node("a"), node("b", region="JP1"), node("c", region="KR2")),
        state(),
        (Start("a"), Start("b")),
        caps=Caps(2, 8),
    ),
    Case(
        "an action waits until every action it depends on has an outcome",
        (node("a"), node("b", "a")),
        state(running=["a"]),
        (),
    ),
    Case(
        "an action whose dependencies are all done starts",
        (node("a"), node("b", "a")),
        state(a=DONE),
        (Start("b"),),
    ),
    Case(
        "after a failure a ready action is skipped, whatever it depends on",
        (node("a"), node("b"), node("c", "b")),
        state(stopped=True, a=FAILED, b=DONE),
        (Skip("c", EARLIER_FAILURE),),
    ),
    Case(
        "a dependency that did not complete skips its dependent even when the run goes on",
        (node("a"), node("b", "a")),
        state(a=SKIPPED),
        (Skip("b", DEPENDENCY_INCOMPLETE),),
    ),
    Case(
        "a compensation whose action was done runs with its expects checked",
        (node("stop", kind="stop_instance"), node("start", "stop", kind="start_instance", comp="stop")),
        state(stop=DONE),
        (Start("start"),),
    ),
    Case(
        "a stop that failed may have stopped the server: its restart runs after the failure, expects unchecked",
        (node("stop", kind="stop_instance"), node("start", "stop", kind="start_instance", comp="stop")),
        state(stopped=True, stop=FAILED),
        (Start("start", unchecked=True),),
    ),
    Case(
        "an unprotect whose answer was lost may have unprotected: the protect closing the bracket is owed",
        (node("u", kind="unprotect"), node("p", "u", kind="protect", comp="u")),
        state(stopped=True, u=FAILED),
        (Start("p", unchecked=True),),
    ),
    Case(
        "a failed update recorded nothing to restore: its compensation is skipped",
        (node("on"), node("restore", "on", comp="on")),
        state(stopped=True, on=FAILED),
        (Skip("restore", NOT_OWED),),
    ),
    Case(
        "a stale stop touched nothing: its restart is not owed",
        (node("stop", kind="stop_instance"), node("start", "stop", kind="start_instance", comp="stop")),
        state(stopped=True, stop=STALE),
        (Skip("start", NOT_OWED),),
    ),
    Case(
        "skips in one pass are seen later in the same pass",
        (node("on"), node("restore", "on", comp="on"), node("after", "restore")),
        state(on=SKIPPED),
        (Skip("restore", NOT_OWED), Skip("after", DEPENDENCY_INCOMPLETE)),
    ),
    Case(
        "a full region holds its action back while a later one in another region starts",
        (node("a"), node("b"), node("c", region="JP1")),
        state(running=["a"]),
        (Start("c"),),
        caps=Caps(8, 1),
    ),
    Case(
        "a copy occupies its source region too",
        (node("copy", kind="copy", region="JP1", source="KR1"), node("b"), node("c", region="KR2")),
        state(running=["copy"]),
        (Start("c"),),
        caps=Caps(8, 1),
    ),
    Case(
        "a copy waits while its source region is full",
        (node("a"), node("copy", kind="copy", region="JP1", source="KR1")),
        state(running=["a"]),
        (),
        caps=Caps(8, 1),
    ),
    Case(
        "with every slot taken nothing is decided, not even a skip: a failure meanwhile still counts",
        (node("a"), node("b"), node("c")),
        state(running=["a"], stopped=True, b=FAILED),
        (),
        caps=Caps(1, 8),
    ),
    Case(
        "once the lock is lost ready actions are skipped, but an owed compensation still runs",
        (node("stop", kind="stop_instance"), node("x"), node("start", "stop", kind="start_instance", comp="stop")),
        state(stop=DONE),
        (Skip("x", LOCK_LOST), Start("start")),
        lock_lost=True,
    ),
    Case(
        "an action depending on one not in the plan never becomes ready (nothing is decided for it)",
        (node("a", "ghost"),),
        state(),
        (),
    ),
]


@pytest.mark.parametrize("case", NEXT, ids=[c.reason for c in NEXT])
def test_next(case: Case):
    schedule = Schedule(case.nodes, case.caps)
    assert schedule.next(case.state, lock_lost=case.lock_lost).steps == case.steps, case.reason


AFTER_CANCEL = [
    Case(
        "actions not started are skipped up to the first owed compensation, which starts alone",
        (
            node("stop", kind="stop_instance"),
            node("create", "stop", kind="create"),
            node("x"),
            node("start", "create", kind="start_instance", comp="stop"),
            node("y"),
        ),
        state(stop=DONE, create=INTERRUPTED),
        (Skip("x", CANCELLED), Start("start")),
    ),
    Case(
        "a stop interrupted in flight may still land: its restart runs with expects unchecked",
        (node("stop", kind="stop_instance"), node("start", "stop", kind="start_instance", comp="stop")),
        state(stop=INTERRUPTED),
        (Start("start", unchecked=True),),
    ),
    Case(
        "a compensation that is not owed is skipped like any other action",
        (node("on"), node("restore", "on", comp="on"), node("z")),
        state(on=INTERRUPTED),
        (Skip("restore", CANCELLED), Skip("z", CANCELLED)),
    ),
    Case(
        "with every action decided there is nothing left to do",
        (node("a"),),
        state(a=DONE),
        (),
    ),
]


@pytest.mark.parametrize("case", AFTER_CANCEL, ids=[c.reason for c in AFTER_CANCEL])
def test_after_cancel(case: Case):
    assert Schedule(case.nodes, case.caps).after_cancel(case.state).steps == case.steps, case.reason


FINISHED = [
    (DONE, False, "a done action lets the run go on"),
    (FAILED, True, "a failure stops new starts"),
    (STALE, True, "a stale action means the plan is out of date: nothing more starts"),
    (LEFT, True, "a compensation left for the next run is reported as a failure"),
    (INTERRUPTED, False, "only a cancellation interrupts, and it has its own wind-down"),
]


@pytest.mark.parametrize(("status", "stops", "reason"), FINISHED, ids=[c[2] for c in FINISHED])
def test_which_outcomes_stop_the_run(status, stops, reason):
    schedule = Schedule((node("a"), node("b")), WIDE)
    after = schedule.finished(state(running=["a"]), "a", status)
    assert (after.outcomes["a"], after.running, after.stopped) == (status, (), stops), reason


def test_a_broken_graph_ends_with_what_never_became_ready():
    schedule = Schedule((node("a"), node("b", "ghost"), node("c", "b")), WIDE)
    assert schedule.never_ready(state(a=DONE)) == (Skip("b", NEVER_READY), Skip("c", NEVER_READY))
    assert schedule.never_ready(state(running=["a"])) == (), "while something runs, the run is not stuck"


def test_a_plan_action_is_read_as_a_node():
    reason = Reason("c", "m")
    stop = Action("stop_instance:web:KR1", "stop_instance", "web", "KR1", reason, details={"server": "s"})
    copy = Action(
        "copy:web:JP1",
        "copy",
        "web",
        "JP1",
        reason,
        depends_on=(Dependency(stop.id, "r"),),
        details={"source_region": "KR1"},
    )
    start = Action("start_instance:web:KR1", "start_instance", "web", "KR1", reason, details={"compensates": stop.id})
    assert node_of(copy) == Node(copy.id, "copy", ("JP1", "KR1"), frozenset({stop.id}), None)
    assert node_of(start).compensates == stop.id
    assert node_of(stop).regions == ("KR1",)


# -- the property: random graphs, random outcomes, a lock that may be lost, a cancel that may come ----------

REGIONS = ("KR1", "JP1", "KR2")
KINDS = ("update", "create", "copy", "protect", "unprotect", "stop_instance", "start_instance", "delete")
OWED_ONCE_STARTED = {"stop_instance", "unprotect"}


@st.composite
def schedules(draw) -> Schedule:
    """A plan in topological order; a compensation depends on what it compensates, as the planner's do."""
    nodes: list[Node] = []
    for i in range(draw(st.integers(1, 9))):
        earlier = [n.id for n in nodes]
        needs = set(draw(st.sets(st.sampled_from(earlier)))) if earlier else set()
        compensates = draw(st.sampled_from(earlier)) if earlier and draw(st.booleans()) else None
        if compensates is not None:
            needs.add(compensates)
        kind = draw(st.sampled_from(KINDS))
        region = draw(st.sampled_from(REGIONS))
        source = draw(st.sampled_from(REGIONS)) if kind == "copy" else None
        nodes.append(node(f"a{i}", *needs, kind=kind, region=region, source=source, comp=compensates))
    return Schedule(tuple(nodes), Caps(draw(st.integers(1, 4)), draw(st.integers(1, 3))))


def oracle_owed(schedule: Schedule, compensated: str, outcomes: dict[str, str]) -> bool:
    status = outcomes.get(compensated)
    return status == DONE or (status in (FAILED, INTERRUPTED) and schedule.by_id[compensated].kind in OWED_ONCE_STARTED)


class Witness:
    """Replays the schedule's steps on its own book-keeping and checks each against the rules."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.outcomes: dict[str, str] = {}
        self.running: list[str] = []
        self.started: Counter[str] = Counter()
        self.stopped = False
        self.lock_lost = False
        self.cancelled = False

    def step(self, step: Start | Skip) -> None:
        assert step.action_id not in self.outcomes and step.action_id not in self.running, "decided twice"
        if isinstance(step, Skip):
            self.outcomes[step.action_id] = SKIPPED
            self.stopped |= step.why == LOCK_LOST
        else:
            self.start(step)

    def start(self, step: Start) -> None:
        n = self.schedule.by_id[step.action_id]
        assert n.needs <= self.outcomes.keys(), "started before its dependencies had an outcome"
        if n.compensates is None:
            assert not self.cancelled, "after a cancel nothing new starts but owed compensations"
            assert not self.stopped and not self.lock_lost, "started after a failure or a lost lock"
            assert all(self.outcomes[d] == DONE for d in n.needs), "started though a dependency did not complete"
        else:
            assert oracle_owed(self.schedule, n.compensates, self.outcomes), "a compensation that is not owed"
            assert step.unchecked == (self.outcomes[n.compensates] != DONE)
            assert not (self.cancelled and self.running), "after a cancel, compensations run one at a time"
        busy = Counter(r for running in self.running for r in self.schedule.by_id[running].regions)
        assert len(self.running) < self.schedule.caps.parallelism, "parallelism exceeded"
        assert all(busy[r] < self.schedule.caps.region_parallelism for r in n.regions), "region cap exceeded"
        self.running.append(n.id)
        self.started[n.id] += 1

    def end(self, action_id: str, status: str) -> None:
        self.running.remove(action_id)
        self.outcomes[action_id] = status
        self.stopped |= status in (FAILED, STALE, LEFT)

    def agrees(self, state: State) -> None:
        assert dict(state.outcomes) == self.outcomes and list(state.running) == self.running


ENDINGS = st.sampled_from((DONE, DONE, DONE, FAILED, STALE, LEFT))


def run_until_cancel(schedule: Schedule, witness: Witness, data: st.DataObject) -> State:
    run = State()
    while not schedule.over(run):
        if data.draw(st.integers(0, 9)) == 0:
            return run  # a cancellation arrives
        witness.lock_lost |= data.draw(st.integers(0, 19)) == 0  # once lost, lost for good
        step = schedule.next(run, lock_lost=witness.lock_lost)
        for s in step.steps:
            witness.step(s)
        run = step.state
        witness.agrees(run)
        assert run.running or schedule.over(run), "a plan in topological order never gets stuck"
        assert not schedule.never_ready(run)
        if run.running:
            ending = data.draw(st.sampled_from(run.running))
            run = schedule.finished(run, ending, data.draw(ENDINGS))
            witness.end(ending, run.outcomes[ending])
    return run


def wind_down(schedule: Schedule, witness: Witness, run: State, data: st.DataObject) -> State:
    witness.cancelled = True
    for action_id in run.running:  # each ends within the grace period, or is interrupted
        run = schedule.finished(run, action_id, data.draw(st.sampled_from((DONE, FAILED, INTERRUPTED))))
        witness.end(action_id, run.outcomes[action_id])
    while (step := schedule.after_cancel(run)).steps:
        *skips, last = step.steps
        assert all(isinstance(s, Skip) and s.why == CANCELLED for s in skips), "only the last step may start"
        for s in step.steps:
            witness.step(s)
        run = step.state
        if isinstance(last, Start):
            run = schedule.finished(run, last.action_id, data.draw(st.sampled_from((DONE, FAILED, LEFT))))
            witness.end(last.action_id, run.outcomes[last.action_id])
        witness.agrees(run)
    return run


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(), data=st.data())
def test_the_schedule_keeps_its_rules_whatever_happens(schedule: Schedule, data: st.DataObject):
    witness = Witness(schedule)
    run = run_until_cancel(schedule, witness, data)
    if not schedule.over(run):
        run = wind_down(schedule, witness, run, data)
    assert schedule.over(run) and not run.running, "every action ends with one outcome"
    assert set(witness.outcomes) == set(schedule.by_id)
    assert all(count == 1 for count in witness.started.values()), "an action runs at most once"
    for n in schedule.nodes:
        if n.compensates is not None:
            owed = oracle_owed(schedule, n.compensates, witness.outcomes)
            assert witness.started[n.id] == owed, "a compensation runs exactly once when owed, never otherwise"
