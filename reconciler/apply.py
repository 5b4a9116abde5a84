"""Apply: carry a plan out through the CloudClient, exactly as planned.

- The plan's graph runs with bounded parallelism: an action starts once everything it depends on is done.
  Which action starts, is skipped or is owed as a compensation is decided by apply_schedule.py (pure);
  this module runs the threads and the calls.
- Before each mutating call, the action's `expects` are checked against a fresh read; a mismatch stops
  that action as stale before it touches anything. `protected` is re-read before every delete: a
  protected image is never deleted, whatever the plan said.
- After the first failure no new action starts; running ones finish. Compensating actions (the restart
  after a stop, the protect closing a strict bracket, the download-flag restore) still run once the
  action they compensate was done (or started, for a stop or an unprotect that may have taken effect).
- A create goes under the temporary name, then one PATCH sets the markers and the final name, so a lost
  answer or a crash leaves an image the next plan recognises.
- Apply never branches on an action's reason; it executes the plan it was given.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reconciler import cancel, markers
from reconciler.apply_guard import GuardContext, image_refusal, server_refusal, upload_refusal
from reconciler.apply_schedule import (  # the statuses are part of apply's interface: re-exported here
    DEFERRED,
    DONE,
    FAILED,
    INTERRUPTED,
    LEFT,
    SKIPPED,
    STALE,
    STATUSES,
    STILL_IN_FLIGHT,
    SUCCEEDED,
    Schedule,
    Skip,
    Start,
    State,
    owed,
)
from reconciler.cancel import Cancellation
from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import (
    CloudCancelled,
    CloudError,
    CloudTimeout,
    CloudTransportError,
    Conflict,
    Forbidden,
    NotFound,
)
from reconciler.cloud.records import IMAGE_BASE_ATTRIBUTES, Image, PatchOp
from reconciler.errors import ReconcilerError
from reconciler.live import ImageUser, described
from reconciler.plan import Action, Change, Plan, Ref
from reconciler.plan_kinds import KINDS, MEMBER_STATUS, SERVER

if TYPE_CHECKING:
    from reconciler.lock import LockSession
from reconciler.image_upload import Upload, upload_image, upload_source
from reconciler.region_copy import copy_image
from reconciler.snapshot import users_by_image
from reconciler.sources.access import SourceAccess

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.05
# After a cancellation a compensation waits at most this long for its object (then: left for the next run).
COMPENSATION_WAIT_S = 3.0
# A lost answer to an imaging call: the image is looked for by its temporary name this long, this often.
LOST_ANSWER_SEARCH_S, LOST_ANSWER_POLL_S = 60.0, 5.0
# Image attributes an `expects` entry may name directly (everything else is a custom property).
IMAGE_FIELDS = ("status", "protected", "name", "visibility", "min_disk", "min_ram", "owner", "checksum")


class StaleError(ReconcilerError):
    """The live object no longer matches what the plan expected: the action did not touch it."""


class Deferred(ReconcilerError):
    """A retirement whose image is in use now: not deleted, and not a failure (the next plan retires it)."""


class LeftForNextRun(ReconcilerError):
    """A compensation that cannot run yet (the server is busy with a task): the next plan does it."""


@dataclass
class StepResult:
    action: Action
    status: str  # done | failed | stale | skipped | interrupted | left | deferred
    message: str = ""
    seconds: float = 0.0
    image_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.action.id,
            "kind": self.action.kind,
            "key": self.action.key,
            "region": self.action.region,
            "status": self.status,
            "image_id": self.image_id or self.action.image_id,
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ApplyReport:
    results: list[StepResult] = field(default_factory=list)
    # applied | plan_mismatch | refused | lock_held | failed | interrupted; by default from the results.
    outcome: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def succeeded(self) -> bool:
        return all(r.status in SUCCEEDED for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": "1",
            "outcome": self.outcome or ("applied" if self.succeeded else "failed"),
            "results": [r.to_json() for r in self.results],
            "summary": {s: self.count(s) for s in STATUSES},
        }


# What an action's `expects` check read: images by (region, image id), servers by (region, "server/<id>").
Observed = Mapping[tuple[str, str], Any]
# (event, action, payload): "start" (None), "end" / "skip" (StepResult), "progress" (CopyProgress).
Progress = Callable[[str, Action, Any], None]


def _no_progress(event: str, action: Action, payload: Any) -> None:
    pass


@dataclass
class _Run:
    """One run of the schedule: where it stands (the schedule's State), the report's results so far, and the
    calls in flight (a future per running action)."""

    actions: Mapping[str, Action]
    schedule: Schedule
    state: State = field(default_factory=State)
    results: dict[str, StepResult] = field(default_factory=dict)
    running: dict[Future[StepResult], str] = field(default_factory=dict)


# How old apply's listing of a region's servers and volumes may be when it deletes there: older, it lists
# them again (one pair of paged lists), so that a server booted during a long run is seen.
USAGE_MAX_AGE_S = 60.0


class Applier:
    def __init__(
        self,
        client: CloudClient,
        plan: Plan,
        *,
        parallelism: int = 8,
        region_parallelism: int | None = None,
        timeout: float = 3600.0,
        progress: Progress = _no_progress,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        lock: LockSession | None = None,
        guard: GuardContext | None = None,
        cancellation: Cancellation | None = None,
        access: SourceAccess | None = None,
        root_folder: Path | None = None,
    ) -> None:
        if not plan.applicable:
            raise ReconcilerError("the plan has refusals: nothing can be applied until they are resolved")
        self.client = client
        self.plan = plan
        self.set = plan.set
        self.parallelism = max(1, parallelism)
        # At most this many actions touch one region at once (a copy touches its source region too):
        # one busy region must not take every slot, nor get more calls than its endpoint is asked to bear.
        self.region_parallelism = max(1, region_parallelism or self.parallelism)
        self.timeout = timeout
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        # The apply lock held for this run: consulted before each action starts (the client it gave us
        # checks it before each change); compensations run exempt. Its token marks what this run stops.
        self.apply_lock = lock
        self.run_token = lock.token if lock is not None else None
        # What the root at hand lets each key touch: checked on the live object before every change
        # (apply_guard.py), whatever the plan says.
        self.guard = guard
        self.cancel = cancellation
        # Where an upload's bytes may be read (the operator's options) and the root its files are relative to.
        self.access = access or SourceAccess()
        self.root_folder = root_folder
        self.expects_waived: set[str] = set()  # compensations owed for an action that did not finish
        self.unprotected: set[str] = set()  # images this run unprotected (a strict bracket's close may protect)
        self._lock = threading.Lock()
        # Images made by this run, by (key, region): later actions on them name no image id.
        self.made: dict[tuple[str, str], str] = {}
        self.made_by_action: dict[str, str] = {}
        self.notes: dict[str, str] = {}  # what a done action wants reported (e.g. refused properties)
        # Who uses each image, by region, and when it was listed (self.clock): listed again before this
        # run's first delete there and whenever that listing is older than USAGE_MAX_AGE_S (_users_now), one
        # lock per region so that one region's listing does not hold up another's deletes.
        self._usage: dict[str, tuple[float, Mapping[str, tuple[ImageUser, ...]]]] = {}
        self._usage_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    # -- running the schedule (apply_schedule.py decides; this runs the calls and the threads) --------

    def run(self) -> ApplyReport:
        schedule = Schedule.of(
            self.plan.actions, parallelism=self.parallelism, region_parallelism=self.region_parallelism
        )
        run = _Run({a.id: a for a in self.plan.actions}, schedule)
        cancelled = False
        # Not a `with` block: a cancelled run must not wait for calls still in flight past the grace period.
        pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="apply")
        try:
            while not schedule.over(run.state):
                if self.cancel is not None and self.cancel.requested:
                    cancelled = True
                    self._wind_down(run)
                    break
                self._take_next_steps(run, pool)
                if not run.running:
                    for skip in schedule.never_ready(run.state):  # nothing runnable: a broken graph
                        run.results[skip.action_id] = StepResult(run.actions[skip.action_id], SKIPPED, skip.why)
                    break
                # With a cancellation to notice, wake up now and then even when nothing finishes.
                timeout = CANCEL_POLL_S if self.cancel is not None else None
                finished, _ = wait(run.running, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._end(run, run.running.pop(future), future.result())
        finally:
            pool.shutdown(wait=not cancelled, cancel_futures=True)
        return ApplyReport([run.results[a.id] for a in self.plan.actions], outcome="interrupted" if cancelled else None)

    def _take_next_steps(self, run: _Run, pool: ThreadPoolExecutor) -> None:
        """Ask the schedule what to do now, and do it: record the skips, submit the starts."""
        lock_lost = self.apply_lock is not None and self.apply_lock.lost
        next_pass = run.schedule.next(run.state, lock_lost=lock_lost)
        run.state = next_pass.state
        for step in next_pass.steps:
            if isinstance(step, Skip):
                self._skip(run, step)
            else:
                self._begin(run, step)
                run.running[pool.submit(self._run_one, run.actions[step.action_id])] = step.action_id

    @staticmethod
    def _owed(action: Action, actions: Mapping[str, Action], results: Mapping[str, StepResult]) -> bool:
        """Whether a compensation is owed (apply_schedule.owed), from the results so far."""
        compensated = action.details["compensates"]
        result = results.get(compensated)
        if result is None:
            return False
        return owed(actions[compensated].kind, result.status)

    def _begin(self, run: _Run, step: Start) -> None:
        """About to run: a compensation owed for an action that did not finish runs with `expects` waived."""
        if step.unchecked:
            with self._lock:
                self.expects_waived.add(step.action_id)
        self.progress("start", run.actions[step.action_id], None)

    def _skip(self, run: _Run, step: Skip) -> None:
        run.results[step.action_id] = result = StepResult(run.actions[step.action_id], SKIPPED, step.why)
        self.progress("skip", result.action, result)

    def _end(self, run: _Run, action_id: str, result: StepResult) -> None:
        run.results[action_id] = result
        run.state = run.schedule.finished(run.state, action_id, result.status)
        self.progress("end", result.action, result)

    def _wind_down(self, run: _Run) -> None:
        """After a cancellation: calls in flight get what is left of the grace period (a second signal ends
        it), then the compensations this run owes run here, one by one, and nothing else starts."""
        assert self.cancel is not None
        while run.running and (left := self.cancel.grace_left()) > 0:
            finished, _ = wait(run.running, timeout=min(CANCEL_POLL_S, left), return_when=FIRST_COMPLETED)
            for future in finished:
                self._end(run, run.running.pop(future), future.result())
        for action_id in run.running.values():
            self._end(run, action_id, StepResult(run.actions[action_id], INTERRUPTED, STILL_IN_FLIGHT))
        run.running.clear()
        while (wind := run.schedule.after_cancel(run.state)).steps:
            run.state = wind.state
            for step in wind.steps:
                if isinstance(step, Skip):
                    self._skip(run, step)
                else:
                    self._begin(run, step)
                    self._end(run, step.action_id, self._run_one(run.actions[step.action_id]))

    def _run_one(self, action: Action) -> StepResult:
        started = self.clock()
        compensating = "compensates" in action.details
        exempt = self.apply_lock is not None and compensating
        try:
            with (
                self.apply_lock.compensation() if exempt else contextlib.nullcontext(),  # type: ignore[union-attr]
                cancel.compensating() if compensating else contextlib.nullcontext(),
            ):
                image_id = self._execute(action)
        except LeftForNextRun as err:
            return StepResult(action, LEFT, err.message, self.clock() - started)
        except StaleError as err:
            return StepResult(action, STALE, err.message, self.clock() - started)
        except Deferred as err:
            return StepResult(action, DEFERRED, err.message, self.clock() - started)
        except CloudCancelled as err:
            return StepResult(action, INTERRUPTED, err.message, self.clock() - started)
        except ReconcilerError as err:
            message = err.message + (f" (hint: {err.hint})" if err.hint else "")
            return StepResult(action, FAILED, message, self.clock() - started)
        except Exception as err:  # a bug must not leave the run half-reported
            log.exception("action %s failed unexpectedly", action.id)
            return StepResult(action, FAILED, f"unexpected error: {type(err).__name__}: {err}", self.clock() - started)
        return StepResult(action, DONE, self.notes.get(action.id, ""), self.clock() - started, image_id)

    # -- references -------------------------------------------------------------------------------

    def _image_id(self, action: Action) -> str:
        if action.image_id:
            return action.image_id
        with self._lock:
            made = self.made.get((action.key, action.region))
        if made is None:
            raise CloudError(f"{action.id}: the image it acts on was not made by this run")
        return made

    def _resolve(self, ref: Ref) -> tuple[str, str]:
        """An image reference as (region, image id): an image made by an earlier action of the plan, by the
        id this run gave it."""
        if ref.made_by is None:
            return ref.region, str(ref.image_id)
        with self._lock:
            made = self.made_by_action.get(ref.made_by)
        if made is None:
            raise CloudError(f"the image made by {ref.made_by} does not exist")
        return ref.region, made

    def _check_expects(self, action: Action) -> dict[tuple[str, str], Any]:
        """Check every `expects` entry on a fresh read; return the objects read, images by (region, id) and
        servers by (region, "server/<id>"), so the guard and the action work from the same observation
        instead of reading again."""
        observed: dict[tuple[str, str], Any] = {}
        for text, fields in action.expects.items():
            ref = Ref.parse(text)
            if ref.server_id is not None:
                server = self.client.get_server(ref.region, ref.server_id)
                observed[_server_seen(ref.region, ref.server_id)] = server
                found = {"status": server.status, **dict(server.metadata)}
            else:
                region, image_id = self._resolve(ref)
                image = self._read_expected_image(action, region, image_id)
                observed[(region, image_id)] = image
                found = _image_fields(image)
            for name, expected in fields.items():
                if found.get(name) != expected:
                    raise StaleError(
                        f"{text}: {name} is {found.get(name)!r}, the plan expected {expected!r}; "
                        "it changed since the plan was made: plan again"
                    )
        return observed

    def _read_expected_image(self, action: Action, region: str, image_id: str) -> Image:
        try:
            return self.client.get_image(region, image_id)
        except NotFound:
            if action.kind not in MEMBER_STATUS:
                raise
            # The owner may unshare or delete at any time: an accept or reject has nothing left to set.
            raise StaleError(
                f"image {image_id} is no longer shared with this project (the owner unshared or deleted it): "
                "its member status was not set"
            ) from None

    def _check_guard(self, action: Action, observed: Mapping[tuple[str, str], Any]) -> None:
        """Refuse (stale: nothing touched) an action whose live object is not one its key may touch."""
        assert self.guard is not None
        why: str | None = None
        if action.kind == "create" and "server" not in action.details:  # an upload: no server, no image yet
            why = upload_refusal(self.guard, action.key, action.region, upload_source(action))
        elif KINDS[action.kind].subject == SERVER:  # imaging, stopping or starting an instance
            server_id = action.details["server"]
            server = observed.get(_server_seen(action.region, server_id)) or self.client.get_server(
                action.region, server_id
            )
            why = server_refusal(self.guard, action.kind, action.key, action.region, server)
        else:
            if action.kind == "copy":
                region = action.details["source_region"]
                image_id = self._copy_source_id(action)
            else:
                region, image_id = action.region, self._image_id(action)
            image = observed.get((region, image_id)) or self.client.find_image(region, image_id)
            if image is None:
                return  # gone: the action's own read reports it (a delete's goal is met)
            with self._lock:
                created = set(self.made.values())
                unprotected = set(self.unprotected)
            why = image_refusal(
                self.guard, action.kind, action.key, region, image,
                created_here=created, unprotected_here=unprotected,
            )  # fmt: skip
        if why is not None:
            raise StaleError(why)

    # -- actions ----------------------------------------------------------------------------------

    def _execute(self, action: Action) -> str | None:
        with self._lock:
            waived = action.id in self.expects_waived
        observed = {} if waived else self._check_expects(action)
        if self.guard is not None:
            self._check_guard(action, observed)
        return EXECUTORS[action.kind](self, action, observed)

    def _do_stop_instance(self, action: Action, _observed: Observed) -> None:
        server_id = action.details["server"]
        # Marked first: a crash between the stop and the restart leaves a server the next plan restarts.
        self.client.set_server_metadata(
            action.region, server_id, {markers.STOPPED_BY: markers.stopped_by(self.set, self.run_token)}
        )
        self.client.stop_server(action.region, server_id)
        self.client.wait_for_server(action.region, server_id, status="SHUTOFF", timeout=self.timeout)

    def _do_start_instance(self, action: Action, _observed: Observed) -> None:
        server_id = action.details["server"]
        if self.apply_lock is not None and self.apply_lock.lost:
            # Another apply may hold the lock now: restart only a server still marked by this very run.
            mark = self.client.get_server(action.region, server_id).metadata.get(markers.STOPPED_BY)
            if mark != markers.stopped_by(self.set, self.run_token):
                raise StaleError(
                    f"the lock was lost and server {server_id} no longer carries this run's mark ({mark!r}): "
                    "left for the next run"
                )
        if action.id in self.expects_waived:
            self._stop_may_still_land(action, server_id)
        try:
            self.client.start_server(action.region, server_id)
        except Conflict:
            # Busy with a task (an image still being made from it, a stop still powering off): a
            # compensation is not waited for. The server keeps its mark; the next plan restarts it.
            server = self.client.get_server(action.region, server_id)
            raise LeftForNextRun(
                f"{server.name} is {server.status}"
                + (f" in task {server.task_state}" if server.task_state else "")
                + f"; it keeps {markers.STOPPED_BY} and the next plan starts it"
            ) from None
        cancelled = self.cancel is not None and self.cancel.requested
        wait_s = min(self.timeout, COMPENSATION_WAIT_S) if cancelled else self.timeout
        try:
            self.client.wait_for_server(action.region, server_id, status="ACTIVE", timeout=wait_s)
        except CloudTimeout:
            if not cancelled:
                raise
            raise LeftForNextRun(
                f"started, but not ACTIVE within {wait_s:g} s of the cancellation; the next plan clears its mark"
            ) from None
        self.client.delete_server_metadata(action.region, server_id, markers.STOPPED_BY)

    def _stop_may_still_land(self, action: Action, server_id: str) -> None:
        """The restart owed for a stop that did not finish (its answer lost, or a timeout). A server still
        ACTIVE with no task has not seen the stop yet, and the request may still be carried out after this
        run ends: "already running" is no proof, and clearing the mark now would leave a late stop's SHUTOFF
        unexplained. The mark stays; the next plan starts the server, or just clears the mark."""
        server = self.client.get_server(action.region, server_id)
        if server.status == "ACTIVE" and server.task_state is None:
            raise LeftForNextRun(
                f"{server.name} is still ACTIVE, but the stop whose answer was lost may yet be carried out; it "
                f"keeps {markers.STOPPED_BY} and the next plan starts it or clears the mark"
            )

    def _do_create(self, action: Action, observed: Observed) -> str:
        if "server" not in action.details:
            return self._do_upload(action)
        region = action.region
        server_id = action.details["server"]
        server = observed.get(_server_seen(region, server_id)) or self.client.get_server(region, server_id)
        temporary = action.details["temporary_name"]
        marks = {name: change.after for name, change in action.changes.items() if name in markers.ALL}
        try:
            image_id = self.client.create_image_from_server(region, server, temporary, metadata=marks)
        except CloudTransportError:
            # The answer was lost: the image may exist, or appear a little later. Re-observe by the temporary
            # name for a while, never repeat blindly (a second image would be a duplicate).
            image_id = self._search_by_name(region, temporary, server.root_volume_id)
            if image_id is None:
                raise
        self._remember(action, image_id)
        try:
            self.client.wait_for_image(region, image_id, status="active", timeout=self.timeout)
        except CloudCancelled:
            # Cancelled: delete the image being made, so the snapshot (and the server's task) ends sooner.
            with contextlib.suppress(CloudError):
                self.client.delete_image(region, image_id)
            raise
        live = self.client.get_image(region, image_id)
        self.client.update_image(region, image_id, _ops(action.changes, live))
        return image_id

    def _do_upload(self, action: Action) -> str:
        """A create from a file or a URL (reconciler/image_upload.py): streamed, verified, and deleted on any
        failure or cancellation. What is uploaded is the fresh plan's, made from the manifest at hand."""
        if self.root_folder is None:
            raise ReconcilerError(f"{action.id}: an upload needs the root folder its source.file is relative to")
        upload = Upload(
            source=upload_source(action),
            temporary_name=action.details["temporary_name"],
            os_type=action.details["os_type"],
        )
        result = upload_image(
            self.client,
            action.region,
            upload,
            root=self.root_folder,
            access=self.access,
            timeout=self.timeout,
            ops=lambda live: _ops(action.changes, live),
            progress=lambda state: self.progress("progress", action, state),
            made=lambda image_id: self._remember(action, image_id),
        )
        note = f"uploaded {result.bytes:,} bytes from {result.where}"
        if result.unchecked_algorithm:
            note += f" (the image's {result.unchecked_algorithm} hash was not checked: only its size and md5)"
        self.notes[action.id] = note
        return result.image_id

    def _search_by_name(self, region: str, name: str, volume_id: str | None) -> str | None:
        """After a lost imaging answer: look for the temporary name every LOST_ANSWER_POLL_S, for at most
        LOST_ANSWER_SEARCH_S; on the volume path, for as long as the root volume is `uploading` (Cinder is
        still making an image of it), up to --timeout. A cancellation ends the search."""
        started = self.clock()
        while True:
            found = self._find_by_name(region, name)
            if found is not None:
                return found
            now = self.clock()
            if now - started >= LOST_ANSWER_SEARCH_S and not (
                volume_id is not None and now - started < self.timeout and self._uploading(region, volume_id)
            ):
                return None
            if self.cancel is not None and self.cancel.requested:
                return None
            self.sleep(LOST_ANSWER_POLL_S)

    def _uploading(self, region: str, volume_id: str) -> bool:
        try:
            return self.client.get_volume(region, volume_id).status == "uploading"
        except CloudError:
            return False  # cannot tell: the search ends as it would without a volume

    def _find_by_name(self, region: str, name: str) -> str | None:
        matches = [i for i in self.client.list_images(region, owner=self.client.project_id) if i.name == name]
        return matches[0].id if matches else None

    def _remember(self, action: Action, image_id: str) -> None:
        with self._lock:
            self.made[(action.key, action.region)] = image_id
            self.made_by_action[action.id] = image_id

    def _patch(self, action: Action, observed: Observed) -> str:
        """adopt and update: one JSON patch from the live image; the `expects` read is that observation
        when there was one (one request less per action, and no second window for a change to slip in)."""
        image_id = self._image_id(action)
        live = observed.get((action.region, image_id)) or self.client.get_image(action.region, image_id)
        changes = dict(action.changes)
        if markers.DOWNLOAD_WAS in changes:
            changes.update(_download_flag_changes(changes, live))
        ops = _ops(changes, live)
        if ops:
            self.client.update_image(action.region, image_id, ops)
        return image_id

    def _do_protect(self, action: Action, _observed: Observed) -> str:
        image_id = self._image_id(action)
        self.client.update_image(action.region, image_id, [PatchOp("replace", "protected", True)])
        return image_id

    def _do_unprotect(self, action: Action, _observed: Observed) -> str:
        image_id = self._image_id(action)
        self.client.update_image(action.region, image_id, [PatchOp("replace", "protected", False)])
        with self._lock:
            self.unprotected.add(image_id)
        return image_id

    def _do_share(self, action: Action, _observed: Observed) -> str:
        image_id = self._image_id(action)
        if "visibility" in action.changes:
            self.client.update_image(action.region, image_id, [PatchOp("replace", "visibility", "shared")])
        self.client.add_member(action.region, image_id, action.details["member"])
        return image_id

    def _do_unshare(self, action: Action, _observed: Observed) -> str:
        image_id = self._image_id(action)
        self.client.remove_member(action.region, image_id, action.details["member"])
        if "visibility" in action.changes:
            # Members first: Glance keeps member records, so a later re-share would re-grant them.
            self.client.update_image(action.region, image_id, [PatchOp("replace", "visibility", "private")])
        return image_id

    def _do_member_status(self, action: Action, _observed: Observed) -> str:
        """accept / reject: this project's own member status on an image another project shares with it, set
        with the root's client (the consumer's token). The status comes from the kind, never from the plan's
        words; the guard checked that the root's rules want it now."""
        try:
            self.client.set_member_status(action.region, self._image_id(action), MEMBER_STATUS[action.kind])
        except (NotFound, Forbidden) as err:
            # Unshared (404) or made public (403) since it was read: nothing of this project's to set.
            raise StaleError(
                f"image {self._image_id(action)} is no longer shared with this project ({err.message}): its "
                "member status was not set"
            ) from None
        return self._image_id(action)

    def _do_delete(self, action: Action, _observed: Observed) -> str:
        image_id = self._image_id(action)
        live = self.client.find_image(action.region, image_id)
        if live is None:
            return image_id  # already gone: the goal
        if live.protected:
            # Never delete a protected image, whatever the plan says.
            raise StaleError(f"image {image_id} is protected now: it was not deleted")
        retirement = action.details.get("family") is not None
        if retirement or self.guard is None or self.guard.delete_in_use != "allow":
            users = self._users_now(action.region).get(image_id)
            if users and retirement:
                # A retirement waits, whatever delete_in_use says: one old version in use blocks nothing.
                raise Deferred(
                    f"image {image_id} is in use now by {described(users)}: its retirement is deferred (not a "
                    "failure); a later plan retires it once they are gone"
                )
            if users:
                # A server was booted from it, or a volume made from it, since the plan was made.
                raise StaleError(f"image {image_id} is in use now by {described(users)}: it was not deleted")
        self.client.delete_image(action.region, image_id)
        return image_id

    def _users_now(self, region: str) -> Mapping[str, tuple[ImageUser, ...]]:
        """Who uses the images of `region`, listed (servers and volumes, paged) before this run's first
        delete there, and again when that listing is older than USAGE_MAX_AGE_S: the plan's usage data may
        be minutes old, and deletes come last, after creates and copies that may take an hour."""
        with self._lock:
            region_lock = self._usage_locks[region]
        with region_lock:
            listed = self._usage.get(region)
            if listed is None or self.clock() - listed[0] > USAGE_MAX_AGE_S:
                servers, volumes = self.client.list_servers(region), self.client.list_volumes(region)
                listed = self._usage[region] = (self.clock(), users_by_image(servers, volumes))
            return listed[1]

    def _remove_unfinished_copies(self, action: Action, marks: Mapping[str, str]) -> None:
        """A copy interrupted by a crash left its target unfinished: that is this copy's own work, which
        it removes before starting again (never two copies of one image in one region)."""
        for image in self.client.list_images(action.region, owner=self.client.project_id):
            if _unfinished(image, marks):
                log.info("removing %s, an unfinished copy left by an interrupted run", image.id)
                self.client.delete_image(action.region, image.id)

    def _copy_source_id(self, action: Action) -> str:
        source_region = action.details["source_region"]
        sources = (ref for ref in map(Ref.parse, action.expects) if ref.region == source_region and not ref.server_id)
        source_id = next((self._resolve(ref)[1] for ref in sources), None) or self.made.get((action.key, source_region))
        if source_id is None:
            raise CloudError(f"{action.id}: no source image to copy")
        return source_id

    def _do_copy(self, action: Action, _observed: Observed) -> str:
        """Streamed, verified copy (region_copy.py); a destination that fails is deleted by the copy itself."""
        source_region = action.details["source_region"]
        source_id = self._copy_source_id(action)
        source = self.client.wait_for_image(source_region, source_id, status="active", timeout=self.timeout)
        marks = {k: str(c.after) for k, c in action.changes.items() if k in markers.ALL and c.after is not None}
        marks[markers.COPY_OF] = source.id
        self._remove_unfinished_copies(action, marks)
        result = copy_image(
            self.client,
            source,
            action.region,
            name=action.details.get("name") or source.name or action.key,
            marks=marks,
            timeout=self.timeout,
            progress=lambda state: self.progress("progress", action, state),
            clock=self.clock,
        )
        self._remember(action, result.destination_id)
        if result.refused_properties:
            self.notes[action.id] = f"the copy refused properties: {', '.join(result.refused_properties)}"
        return result.destination_id


# How each kind of action is carried out (plan_kinds.KINDS names them all: a test holds the two together).
# An executor gets the objects the `expects` check read and returns the image it acted on or made.
Executor = Callable[[Applier, Action, Observed], "str | None"]
EXECUTORS: Mapping[str, Executor] = MappingProxyType(
    {
        "create": Applier._do_create,
        "adopt": Applier._patch,
        "copy": Applier._do_copy,
        "update": Applier._patch,
        "protect": Applier._do_protect,
        "unprotect": Applier._do_unprotect,
        "share": Applier._do_share,
        "unshare": Applier._do_unshare,
        "delete": Applier._do_delete,
        "stop_instance": Applier._do_stop_instance,
        "start_instance": Applier._do_start_instance,
        "accept": Applier._do_member_status,
        "reject": Applier._do_member_status,
    }
)


def _server_seen(region: str, server_id: str) -> tuple[str, str]:
    """Where the `expects` check leaves a server it read, beside the images it read."""
    return region, f"server/{server_id}"


def _unfinished(image: Image, marks: Mapping[str, str]) -> bool:
    """This key's copy in this region, left unfinished by an interrupted run (never a protected one)."""
    props = image.properties
    return (
        props.get(markers.SET) == marks.get(markers.SET)
        and props.get(markers.KEY) == marks.get(markers.KEY)
        and markers.COPY_OF in props
        and image.status != "active"
        and not image.protected
    )


def _image_fields(image: Image) -> dict[str, Any]:
    fields = {name: getattr(image, name) for name in IMAGE_FIELDS}
    fields.update(image.properties)
    return fields


def _download_flag_changes(changes: Mapping[str, Any], live: Image) -> dict[str, Any]:
    """Turning the download flag on for copies records the value really found (the plan's record is what it
    saw when it was made). Any other change of the record (the restore after copies, a release, a stale
    record cleared) is carried out as planned: the plan chose the flag's value, the declared one or the
    record's, never odd text, and when it leaves the flag alone so does apply."""
    if changes[markers.DOWNLOAD_WAS].after is None:
        return {}
    return {markers.DOWNLOAD_WAS: Change(None, markers.download_record(live.properties.get(markers.DOWNLOAD_FLAG)))}


def _ops(changes: Mapping[str, Any], live: Image) -> list[PatchOp]:
    """JSON-patch operations for the changes, against the live image: base attributes are replaced,
    custom properties added (which overwrites) or removed when present."""
    ops: list[PatchOp] = []
    for name in sorted(changes):
        after = changes[name].after
        if name in IMAGE_BASE_ATTRIBUTES:
            if after is not None and getattr(live, name, None) != after:
                ops.append(PatchOp("replace", name, after))
        elif after is None:
            if name in live.properties:
                ops.append(PatchOp("remove", name))
        elif live.properties.get(name) != after:
            ops.append(PatchOp("add", name, str(after)))
    return ops


def summarise(report: ApplyReport) -> str:
    words = {LEFT: "left for the next run"}
    counts = ", ".join(f"{report.count(s)} {words.get(s, s)}" for s in STATUSES if report.count(s))
    return f"Apply: {counts or 'nothing to do'}."


def failures(report: ApplyReport) -> Iterable[StepResult]:
    return (r for r in report.results if r.status in (FAILED, STALE, INTERRUPTED, LEFT))
