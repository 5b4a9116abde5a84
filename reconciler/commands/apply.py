"""`reconciler apply ROOT [ROOT ...]` (and `--plan FILE`): plan, show, confirm, carry out.

Several roots are applied one after another in the order given. Each root's plan is made when its turn
comes (so a consumer root sees what its owner root's apply just shared), shown, confirmed on its own
without --auto-approve, and carried out under its own set's lock. The run stops at the first root that
errors, refuses or fails, and lists the roots after it as not run: an owner that failed to publish must not
have its consumers act on it. Every root is validated before the first one is applied: bad input changes
nothing anywhere. A cancellation (SIGINT, SIGTERM) ends the root at work as for one root, and the rest are
not run. The exit code combines the roots' (reconciler.exit_codes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import exit_codes
from reconciler.commands import output
from reconciler.errors import ReconcilerError, UsageError
from reconciler.render import escape

REPORTS_FORMAT = "reconciler-apply-reports"


class RunCancelled(ReconcilerError):
    """A signal came before any action of the root started; the lock (if taken) was released on the way out."""


@dataclass
class Reports:
    """apply's JSON output with --format json. One root: its report, written as soon as it is known, as it
    always was. Several: one `reconciler-apply-reports` document holding each root's report (or why it has
    none), written when the run ends."""

    args: argparse.Namespace
    several: bool
    documents: list[dict[str, Any]] = field(default_factory=list)
    root: str = ""
    reported: bool = False
    last: str = ""  # the outcome of the root at work, with or without --format json

    def start(self, root: str) -> None:
        self.root, self.reported, self.last = root, False, ""

    def add(self, document: dict[str, Any]) -> None:
        from reconciler.render.json import render_json

        self.reported, self.last = True, str(document.get("outcome"))
        if self.args.format != "json":
            return
        if not self.several:
            sys.stdout.write(render_json(document))
            return
        self.documents.append({"root": self.root, **document})

    def outcome(self, outcome: str, **extra: Any) -> None:
        """A report of no action: a CI recipe tells a stale plan (plan again) from a failure by `outcome`."""
        from reconciler.apply import ApplyReport

        document = ApplyReport(outcome=outcome).to_json()
        document.update(extra)
        self.add(document)

    def unreported(self, outcome: str, **extra: Any) -> None:
        """After a root ended: `outcome` if it left no report of its own."""
        if not self.reported:
            self.outcome(outcome, **extra)

    def write(self, roots: list[str], stopped: str | None = None, **extra: Any) -> None:
        """The document of a run of several roots: each root's report, `not_run` for the rest. Its `outcome` is
        `stopped` when the run stopped before a root (a signal between two roots, a refusal before the
        first), else the first root's that did not apply (the run stopped there), else "applied": a recipe
        reads it as it reads one root's."""
        from reconciler.render.json import render_json

        if self.args.format != "json" or not self.several:
            return
        done = {d["root"] for d in self.documents}
        items = self.documents + [{"root": root, "outcome": "not_run"} for root in roots if root not in done]
        outcome = stopped or next((r["outcome"] for r in items if r["outcome"] != "applied"), "applied")
        document = {"format": REPORTS_FORMAT, "format_version": "1", "outcome": outcome, **extra, "roots": items}
        sys.stdout.write(render_json(document))


def run(args: argparse.Namespace) -> int:
    from reconciler.cancel import Cancellation
    from reconciler.commands.plan import source_access

    args.access = source_access(args)
    cancellation = Cancellation()
    reports = Reports(args, several=len(args.roots) > 1)
    with cancellation.installed():
        if not reports.several:
            reports.start(str(args.roots[0]))
            return _apply_root(args, args.roots[0], None, cancellation, reports, simulators=None)
        return _apply_several(args, cancellation, reports)


def _apply_several(args: argparse.Namespace, cancellation: Any, reports: Reports) -> int:
    from reconciler.roots import given_name
    from reconciler.saved_plan import StalePlanError

    if args.target or args.exclude:
        raise UsageError(
            "--target and --exclude narrow the plan of one root, and this run names several",
            hint="apply the root whose keys they name on its own",
        )
    names = [given_name(path) for path in args.roots]
    try:
        roots, saved = _ready(args)
    except StalePlanError as err:
        reports.write(names, "plan_mismatch", message=err.message, details=err.details)
        raise
    except ReconcilerError as err:
        reports.write(names, "error", message=err.message)
        raise
    return _apply_in_turn(args, roots, saved, cancellation, reports)


def _ready(args: argparse.Namespace) -> tuple[list[Any], list[dict[str, Any]] | None]:
    """The roots, and their saved plans with --plan, once everything that can stop the run without reading a
    cloud has been checked for every root: nothing is applied anywhere when one of them fails."""
    from reconciler.roots import load_roots

    saved = _saved_roots(args) if args.plan is not None else None
    roots = load_roots(
        args.roots, Path(args.sim_state) if args.sim_state else None, allow_http_loopback=args.allow_http_loopback
    )
    invalid = [root for root in roots if root.error is not None]
    if invalid:
        for root in invalid:
            print(f"{escape.text(root.given)}:", file=sys.stderr)
            output.print_error(root.error)
        raise UsageError(
            f"{output.count(len(invalid), 'root')} of {len(roots)} cannot be read: nothing was applied",
            hint="every root is checked before the first one is applied",
        )
    identities = [_identity(root) for root in roots]
    if saved is not None:
        _check_saved(args, roots, saved, identities)
    return roots, saved


def _identity(root: Any) -> str | None:
    """A real-cloud root's identity URL, from its credentials, which must all be there: a missing variable
    of a later root must not be found after the roots before it were applied."""
    from reconciler.cloud.auth import Credentials

    if root.cloud.kind == "simulator":
        return None
    return Credentials.from_environment(os.environ, prefix=root.cloud.credentials).identity_url


def _apply_in_turn(
    args: argparse.Namespace, roots: list[Any], saved: list[dict[str, Any]] | None, cancellation: Any, reports: Reports
) -> int:
    from reconciler.connect import Simulators
    from reconciler.render.roots import section_heading

    outcomes: dict[str, str] = {}
    codes: list[int] = []
    stopped: str | None = None
    human = output.human_stream(args)
    output.root_headings(args, "apply", roots)
    with Simulators() as simulators:
        for index, (root, path) in enumerate(zip(roots, args.roots, strict=True)):
            if cancellation.requested:  # between two roots: the next one is not started
                stopped = "interrupted"
                codes.append(_cancelled_between(cancellation, roots[index - 1].given))
                break
            print(f"\n{section_heading(index + 1, len(roots), root.given)}", file=human, flush=True)
            reports.start(root.given)
            code = _apply_one_of_several(args, path, saved[index] if saved else None, cancellation, reports,
                                         simulators, index + 1)  # fmt: skip
            codes.append(code)
            outcomes[root.given] = reports.last or "failed"
            if code != exit_codes.OK:
                break
        else:
            if cancellation.requested:  # after the last root's work: still a cancelled job
                stopped = "interrupted"
                codes.append(_cancelled_between(cancellation, roots[-1].given))
    names = [root.given for root in roots]
    reports.write(names, stopped)
    _summary(names, outcomes, human)
    finished = all(code == exit_codes.OK for code in codes) and len(codes) == len(roots)
    if saved is not None:
        _after_saved_run(args, len(roots), finished=finished, started=len(outcomes), human=human)
    return exit_codes.combined(codes)


def _apply_one_of_several(
    args: argparse.Namespace,
    path: Path,
    document: dict[str, Any] | None,
    cancellation: Any,
    reports: Reports,
    simulators: Any,
    part: int,
) -> int:
    """One root of several: its error is printed here, and the run goes on to its summary."""
    try:
        return _apply_root(args, path, document, cancellation, reports, simulators, part=part)
    except KeyboardInterrupt:  # Ctrl-C at this root's prompt: nothing of it had started
        print("Cancelled at the prompt: nothing of this root was changed.", file=sys.stderr)
        reports.unreported("interrupted")
        return exit_codes.SIGINT
    except ReconcilerError as err:
        output.print_error(err)
        reports.unreported("error", message=err.message)
        return err.exit_code


def _cancelled_between(cancellation: Any, after: str) -> int:
    output.CANCELLED.append(cancellation.exit_code)
    print(f"Cancelled by {cancellation.signal_name} after root {escape.text(after)}: the roots after it were not "
          "started.", file=sys.stderr)  # fmt: skip
    return cancellation.exit_code


def _after_saved_run(args: argparse.Namespace, roots: int, *, finished: bool, started: int, human: Any) -> None:
    """A saved run of several roots keeps every root's journal until the whole run is done, so that running
    it again without --resume after a stop is refused and names the command that finishes it."""
    from reconciler import saved_plan

    if finished:
        for part in range(1, roots + 1):
            saved_plan.Journal.for_plan(args.plan, part=part).discard()
    elif started > 1:
        resume = saved_plan_command(args)
        print(f"The roots before it are applied; after fixing the cause, finish the run with: {resume}", file=human)


def saved_plan_command(args: argparse.Namespace) -> str:
    """The command that resumes this run of a saved plan of several roots."""
    from reconciler import saved_plan

    return saved_plan.apply_command(args.plan, resume=True, roots=[str(root) for root in args.roots])


def _check_saved(
    args: argparse.Namespace, roots: list[Any], saved: list[dict[str, Any]], identities: list[str | None]
) -> None:
    """What a saved plan of several roots can be refused for without reading a cloud, for every root before
    the first is applied: the tool that saved it, each root's set and target, a partly applied run, and a
    saved plan with refusals (the comment said it cannot be applied: no root of it is)."""
    from reconciler import saved_plan
    from reconciler.roots import project_of

    resume = saved_plan_command(args)
    for index, (root, document, identity) in enumerate(zip(roots, saved, identities, strict=True), start=1):
        saved_plan.check_tool(document, args.plan)
        saved_plan.check_set(document, root.desired.root.set, args.plan)
        saved_plan.check_target_offline(document, root.cloud, project_of(root.cloud), identity, args.plan)
        journal = saved_plan.Journal.for_plan(args.plan, part=index)
        saved_plan.check_not_partly_applied(journal, args.plan, resume=args.resume, command=resume)
    refused = [root.given for root, document in zip(roots, saved, strict=True) if document.get("refusals")]
    if refused:
        raise UsageError(
            f"the saved plan of {', '.join(escape.text(name) for name in refused)} has refusals: nothing was applied",
            hint="a run of several roots is applied only when its reviewed plan could be applied in full: resolve "
            "the refusals, then plan and review again",
        )


WORDS = {
    "applied": "applied",
    "refused": "refused: nothing applied",
    "declined": "declined: nothing applied",
    "plan_mismatch": "the plan no longer matches: nothing applied",
    "lock_held": "the lock is held: nothing applied",
    "interrupted": "cancelled",
    "failed": "failed",
    "error": "error",
}


def _summary(roots: list[str], outcomes: dict[str, str], stream: Any) -> None:
    print("\nRoots:", file=stream)
    for root in roots:
        word = WORDS.get(outcomes[root], outcomes[root]) if root in outcomes else "not run"
        print(f"  {escape.text(root)}: {word}", file=stream)
    left = [root for root in roots if root not in outcomes]
    if left:
        print(f"{output.count(len(left), 'root')} not run: the run stops at the first root that does not succeed.",
              file=stream)  # fmt: skip
    stream.flush()


def _saved_roots(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The saved plan of each root of the run, in order: the file must hold the plans of exactly these roots."""
    from reconciler import saved_plan
    from reconciler.roots import given_name

    return saved_plan.load_roots(args.plan, [given_name(path) for path in args.roots])


def _apply_root(
    args: argparse.Namespace,
    root: Path,
    document: dict[str, Any] | None,
    cancellation: Any,
    reports: Reports,
    simulators: Any,
    part: int | None = None,
) -> int:
    """One root's apply; every way it ends is an exit code or an error (its JSON outcome recorded first)."""
    from reconciler.lock import LockedError
    from reconciler.saved_plan import StalePlanError

    run = _RootRun(args, root, cancellation, reports, simulators, part, several=reports.several)
    try:
        code = run.saved(document) if args.plan is not None else run.fresh()
    except LockedError:
        if cancellation.requested:
            return run.cancelled(ran=False)
        reports.outcome("lock_held")
        raise
    except StalePlanError as err:
        reports.outcome("plan_mismatch", message=err.message, details=err.details)
        raise
    except RunCancelled:
        return run.cancelled(ran=False)
    if cancellation.requested and not (reports.several and code == exit_codes.OK and reports.last == "applied"):
        return run.cancelled(ran=True)
    return code  # several roots: a signal after this root's work stops the run before the next root


def _stop_if_cancelled(cancellation: Any) -> None:
    if cancellation.requested:
        raise RunCancelled("cancelled")


@dataclass
class _RootRun:
    """The steps of one root's apply, fresh or from a saved plan."""

    args: argparse.Namespace
    root: Path
    cancellation: Any
    reports: Reports
    simulators: Any
    part: int | None
    several: bool

    @property
    def human(self) -> Any:
        return output.human_stream(self.args)

    def cancelled(self, *, ran: bool) -> int:
        """Exit 130 (SIGINT) or 143 (SIGTERM) after a cancellation, saying what it left."""
        cancellation = self.cancellation
        output.CANCELLED.append(cancellation.exit_code)
        if not ran:
            what = "this root" if self.several else "nothing was changed"
            said = f"before any change to {what}" if self.several else f"before any change: {what}"
            print(f"Cancelled by {cancellation.signal_name} {said}.", file=sys.stderr)
            self.reports.outcome("interrupted")
        else:
            print(
                f"Cancelled by {cancellation.signal_name}: compensations ran; what is listed as left is finished by "
                "the next apply.",
                file=sys.stderr,
            )
        return cancellation.exit_code

    def fresh(self) -> int:
        from reconciler.apply import Applier
        from reconciler.apply_guard import GuardContext
        from reconciler.commands.plan import plan_options
        from reconciler.connect import open_cloud
        from reconciler.planning import plan_live

        args, human = self.args, self.human
        desired, cloud = output.start(args, "apply", self.root)
        with (
            open_cloud(desired.root, cloud, os.environ, self.simulators) as (client, plan_target),
            self._locked(client, plan_target, desired) as (guarded, session),
        ):
            _, plan = plan_live(
                client, desired, plan_target, lambda snapshot: plan_options(args, desired, snapshot), access=args.access
            )
            _stop_if_cancelled(self.cancellation)
            output.show_plan(plan, args, human, applying=True)
            if plan.refusals:
                print("Nothing was applied: the plan has refusals.", file=human)
                self.reports.outcome("refused")
                return exit_codes.REFUSED
            if not plan.actions:
                self.reports.outcome("applied")
                return exit_codes.OK
            if not args.auto_approve and not self._confirm(plan):
                return exit_codes.ERROR
            _stop_if_cancelled(self.cancellation)
            applier = Applier(
                guarded, plan, **_concurrency(args, desired), timeout=args.timeout,
                progress=output.progress_printer(human), lock=session, guard=GuardContext.from_desired(desired),
                cancellation=self.cancellation, access=args.access, root_folder=desired.root.path,
            )  # fmt: skip
            report = applier.run()
        return self._report(report, session)

    def saved(self, document: dict[str, Any] | None) -> int:
        """apply --plan FILE [--resume]: compute a fresh plan and run it only if it matches the saved one
        (docs/safety.md, "Saved plans"). Nothing read from the file is ever carried out."""
        from reconciler import saved_plan
        from reconciler.apply import Applier, ApplyReport
        from reconciler.apply_guard import GuardContext
        from reconciler.connect import open_cloud
        from reconciler.planning import plan_live

        args, human = self.args, self.human
        desired, cloud = output.start(args, "apply", self.root)
        if document is None:
            document = saved_plan.load(args.plan)
        saved_plan.check_tool(document, args.plan)
        journal = saved_plan.Journal.for_plan(args.plan, part=self.part)
        resume_command = saved_plan.apply_command(args.plan, resume=True, roots=self._roots())
        saved_plan.check_not_partly_applied(journal, args.plan, resume=args.resume, command=resume_command)
        with (
            open_cloud(desired.root, cloud, os.environ, self.simulators) as (client, plan_target),
            self._locked(client, plan_target, desired) as (guarded, session),
        ):
            saved_plan.check_target(document, cloud, plan_target)
            saved_plan.check_set(document, desired.root.set, args.plan)
            snapshot, fresh = plan_live(
                client, desired, plan_target, lambda _: {"timeout": args.timeout}, access=args.access
            )
            if fresh.refusals:
                # Refusals come from the fresh plan alone: a saved file with its refusals removed changes nothing.
                output.show_plan(fresh, args, human, applying=True)
                print("Nothing was applied: the plan has refusals.", file=human)
                self.reports.outcome("refused")
                return exit_codes.REFUSED
            _stop_if_cancelled(self.cancellation)
            images = snapshot.all_images()
            result = saved_plan.check_fresh(
                document, args.plan, fresh.actions, images, desired.root.set, resume=args.resume
            )
            left_out = [a for a in fresh.actions if a.id in result.left]
            acceptances_left = [a for a in fresh.actions if a.id in result.acceptances_left]
            # Rules (f) and (g): left for the next plan, which a new review sees.
            fresh = fresh.without([*result.left, *result.acceptances_left])
            output.show_plan(fresh, args, human, applying=True)
            for action_id in result.housekeeping:
                shown = escape.text(action_id)
                print(f"  housekeeping: {shown} (finishes what an interrupted run of this set left)", file=human)
            for action_id in result.already_done:
                print(f"  already done: {escape.text(action_id)}", file=human)
            not_run = saved_plan.deferred_results(document, result, left_out, acceptances_left)
            for step in not_run:
                said = "left for the next plan" if step.action in acceptances_left else "deferred"
                print(f"  {said}: {escape.text(step.action.id)} ({escape.text(step.message)})", file=human)
            if not fresh.actions:
                done = "every other action" if not_run else "every action"
                print(f"Nothing {'else ' if not_run else ''}to do: {done} of the saved plan is done.", file=human)
                if not self.several:  # several: every root's journal goes when the whole run is done
                    journal.discard()
                self.reports.add(ApplyReport(list(not_run)).to_json())
                return exit_codes.OK
            if not args.auto_approve and not self._confirm(fresh):
                return exit_codes.ERROR
            _stop_if_cancelled(self.cancellation)
            progress = journal.recording(output.progress_printer(human))
            report = Applier(
                guarded, fresh, **_concurrency(args, desired), timeout=args.timeout, progress=progress,
                lock=session, guard=GuardContext.from_desired(desired), cancellation=self.cancellation,
                access=args.access, root_folder=desired.root.path,
            ).run()  # fmt: skip
            report.results.extend(not_run)  # in the report too: a CI recipe reads what was deferred
        if report.succeeded:
            if not self.several:  # several: every root's journal goes when the whole run is done
                journal.discard()
        elif journal.resumable(r.status for r in report.results):
            print(f"Finish it after fixing the cause with: {resume_command}", file=human)
        return self._report(report, session)

    def _roots(self) -> list[str] | None:
        """The roots a command to copy must name: all of the run's when it has several."""
        return [str(root) for root in self.args.roots] if self.several else None

    def _report(self, report: Any, session: Any) -> int:
        from reconciler.apply import failures, summarise

        human = self.human
        for failure in failures(report):
            print(f"  {failure.status}: {escape.text(failure.action.id)}: {escape.text(failure.message)}", file=human)
        print(summarise(report), file=human)
        if report.outcome == "interrupted":
            self.reports.add(report.to_json())
            return exit_codes.ERROR  # _apply_root turns it into 130 or 143
        if session.lost:
            print(
                f"error: lock lost: the apply lock of set {session.set_name} could not be renewed in time "
                f"({escape.text(str(session.lost_reason))}); the run stopped starting actions",
                file=sys.stderr,
            )
        self.reports.add(report.to_json())
        return exit_codes.OK if report.succeeded and not session.lost else exit_codes.ERROR

    @contextlib.contextmanager
    def _locked(self, client: Any, plan_target: Any, desired: Any) -> Iterator[tuple[Any, Any]]:
        """Hold the set's apply lock (docs/safety.md) and give apply a client that checks it, and the
        cancellation, before each change. Waiting for the lock ends at once on a cancellation."""
        from reconciler.lock import apply_lock
        from reconciler.lock_guard import LockGuardedClient

        cancellation = self.cancellation

        def sleep(seconds: float) -> None:
            cancellation.wait(seconds)
            _stop_if_cancelled(cancellation)

        with apply_lock(
            client,
            desired.root.set,
            lease_s=self.args.lock_lease,
            timeout_s=self.args.lock_timeout,
            legacy_region=plan_target.regions[0] if plan_target.regions else None,
            sleep=sleep,
        ) as session:
            _stop_if_cancelled(cancellation)
            yield LockGuardedClient(client, session, cancellation), session

    def _confirm(self, plan: Any) -> bool:
        stream, cancellation = self.human, self.cancellation
        if not sys.stdin.isatty():
            raise UsageError(
                "no terminal to confirm the plan on", hint="review the plan, then run again with --auto-approve"
            )
        where = "this root's target" if self.several else "the target named above"
        stream.write(f"\nApply these {len(plan.actions)} actions to {where}? Only 'yes' is accepted: ")
        stream.flush()
        cancellation.interrupt_prompt = True  # Ctrl-C at the prompt: nothing has started, stop at once
        try:
            answer = sys.stdin.readline()
        finally:
            cancellation.interrupt_prompt = False
        if answer.strip() != "yes":
            print("Apply cancelled; nothing was changed.", file=stream)
            if self.several:
                self.reports.outcome("declined")
            return False
        return True


def _concurrency(args: argparse.Namespace, desired: Any) -> dict[str, int | None]:
    """Apply's limits: the flags, else the root's settings."""
    settings = desired.root.settings
    return {
        "parallelism": args.parallelism or settings.parallelism,
        "region_parallelism": args.region_parallelism or settings.region_parallelism,
    }
