"""Saved plans: `plan --out FILE` keeps what was reviewed; `apply --plan FILE` applies the fresh plan only
if it still says the same (docs/safety.md, "Saved plans"; the comparison is plan_match.py).

A saved plan is untrusted input: in CI it is an artifact of a pull-request run, which the pull request
controls. Nothing in it is ever carried out, and no image id read from it ever addresses a call: it is
only the reviewed reference that the fresh plan must match. It is the plan's JSON document plus a
`saved` section:
- `target`: what it was made against (for the simulator, the state file's absolute path);
- `tool`: the version of reconciler that made it and, where the installed distribution records one,
  its commit; another version or commit refuses it (a plan's meaning may change between versions).

Saved plans are whole: `--target`, `--exclude` and `--max-deletions` cannot narrow one (refuse_narrowing).
While applying, a journal beside the saved plan (`FILE.progress.json`) records the actions done, for
display only: `--resume` trusts the fresh plan, never the journal. Each rule of `plan --out` and
`apply --plan` is a function here; the command line only calls them in turn.
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.cloud.records import Image
from reconciler.desired import CloudConfig
from reconciler.errors import ReconcilerError, UsageError
from reconciler.plan import FORMAT_VERSIONS, Action, Plan, Target
from reconciler.plan_codec import plan_to_json
from reconciler.plan_kinds import KINDS
from reconciler.plan_match import Match, match
from reconciler.render import escape
from reconciler.render.json import render_json

log = logging.getLogger(__name__)

# (event, action, payload), as reconciler.apply calls its progress callback.
Progress = Callable[[str, Action, Any], None]


class StalePlanError(ReconcilerError):
    """The saved plan no longer matches the fresh plan, the target or the tool; `details` names each
    difference."""


def saved_target(cloud: CloudConfig, target: Target) -> dict[str, Any]:
    saved = {"kind": target.kind, "project": target.project}
    if cloud.kind == "simulator":
        saved["state"] = str(cloud.state)
    else:
        saved["identity"] = target.identity
    return saved


@functools.cache
def tool_identity() -> dict[str, str | None]:
    """This tool's version, and the commit its installed distribution records (`direct_url.json` of an
    install from a VCS URL), or None."""
    commit = None
    try:
        from importlib import metadata

        names = metadata.packages_distributions().get("reconciler", [])
        raw = metadata.distribution(names[0]).read_text("direct_url.json") if names else None
        info = json.loads(raw) if raw else {}
        vcs = info.get("vcs_info") if isinstance(info, dict) else None
        if isinstance(vcs, dict) and isinstance(vcs.get("commit_id"), str):
            commit = vcs["commit_id"]
    except (ImportError, ValueError, OSError, IndexError, KeyError):
        commit = None
    return {"version": __version__, "commit": commit}


def check_destination(path: Path) -> None:
    """Where `plan --out` is to write, checked before the cloud is read: an existing regular file is
    replaced, but a folder, a path under a file, or a folder that does not exist is refused (a mistyped
    folder is not created: the plan would be saved where nobody looks for it), and so is anything else that
    exists and is not a regular file (see `_refuse_unreplaceable`)."""
    shown = _shown(path)
    if path.is_dir() and not path.is_symlink():
        raise UsageError(
            f"plan --out {shown}: that is a folder", hint=f"name a file in it, e.g. {_shown(path / 'plan.json')}"
        )
    folder = path.parent
    if not folder.is_dir():
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise UsageError(f"plan --out {shown}: {_shown(blocking)} is a file, not a folder")
        raise UsageError(
            f"plan --out {shown}: the folder {_shown(folder)} does not exist", hint="create it first, or fix the path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"plan --out {shown}: the folder {_shown(folder)} is not writable")
    _refuse_unreplaceable(path)


def _refuse_unreplaceable(path: Path) -> None:
    """A saved plan replaces the file it names by renaming a new file over it. Over a symbolic link that
    replaces the link, not what it points to (a plan "saved" through a link is not where the link leads);
    over a device, a pipe or a socket it replaces that node (as root, /dev/null itself). Both are refused."""
    shown = _shown(path)
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        raise UsageError(f"plan --out {shown}: cannot check it ({err.strerror or err})") from None
    if stat.S_ISLNK(mode):
        raise UsageError(
            f"plan --out {shown}: that is a symbolic link; a saved plan replaces the file it names, so it would "
            "replace the link, not write where it points",
            hint="name the file itself",
        )
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"plan --out {shown}: that is {_kind(mode)}, not a regular file; a saved plan replaces the file it names",
            hint="name a regular file (a new one, or a plan saved before)",
        )


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def save(path: Path, plan: Plan, cloud: CloudConfig) -> None:
    _refuse_unreplaceable(path)  # again: reading the cloud took a while, and the path may have changed meanwhile
    _write_json(path, _saved_document(plan, cloud))
    _discard_journals(path)


def _discard_journals(path: Path) -> None:
    """The journals of the plan a new one replaces: they list actions of that plan, and would ask the new
    one for --resume (or, by position, name another root's actions)."""
    for journal in path.parent.glob(f"{glob.escape(path.name)}.*progress.json"):
        rest = journal.name[len(path.name) :]
        if rest == ".progress.json" or re.fullmatch(r"\.root-[0-9]+\.progress\.json", rest):
            journal.unlink(missing_ok=True)


def save_roots(path: Path, plans: Sequence[tuple[str, Plan, CloudConfig]]) -> None:
    """The plans of a run of several roots, (root as given, plan, its cloud) in the run's order, as one
    `reconciler-plans` document whose roots[] are each a saved plan."""
    from reconciler import roots_document

    _refuse_unreplaceable(path)
    entries = [{"root": root, "plan": _saved_document(plan, cloud)} for root, plan, cloud in plans]
    _write_json(path, roots_document.document(entries))
    _discard_journals(path)


def _saved_document(plan: Plan, cloud: CloudConfig) -> dict[str, Any]:
    document = plan_to_json(plan)
    document["saved"] = {"target": saved_target(cloud, plan.target), "tool": tool_identity()}
    return document


def _shown(path: Path) -> str:
    """A path as messages print it: it may hold any character, and it is not the tool's own text."""
    return escape.text(str(path))


def _read_text(path: Path) -> str:
    """The saved plan's text, or an error that says in words why it cannot be read."""
    shown = _shown(path)
    try:
        return path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise UsageError(f"apply --plan {shown}: that is a folder, not a saved plan") from None
    except FileNotFoundError:
        raise UsageError(f"apply --plan {shown}: no such file", hint="give the file `plan --out` wrote") from None
    except OSError as err:
        raise UsageError(f"apply --plan {shown}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"apply --plan {shown}: not a saved plan (not UTF-8 text at byte {err.start})") from None


def _read_document(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except ValueError as err:
        raise ReconcilerError(f"{_shown(path)} is not a saved plan: not JSON ({err})") from None


def _holds_several(document: Any) -> bool:
    from reconciler import roots_document

    return isinstance(document, dict) and document.get("format") == roots_document.FORMAT


def load(path: Path) -> dict[str, Any]:
    """The saved plan of one root, checked against the plan schema (it is a file anyone may have edited): a
    located error for anything else."""
    document = _read_document(path)
    if _holds_several(document):
        raise UsageError(
            f"{_shown(path)} holds the saved plans of several roots, and this run names one",
            hint="apply it naming the same roots, in the same order, as the plan that saved it",
        )
    return _checked(document, path)


def load_roots(path: Path, roots: Sequence[str]) -> list[dict[str, Any]]:
    """The saved plan of each of `roots` (as given, normalised), from a `reconciler-plans` file saved by
    `plan ROOT ROOT ... --out`: it must name the same roots in the same order."""
    from reconciler import roots_document

    document = _read_document(path)
    if not _holds_several(document):
        raise UsageError(
            f"{_shown(path)} holds the saved plan of one root, and this run names {len(roots)}",
            hint="make the plan of these roots in one run: reconciler plan ROOT ROOT ... --out FILE",
        )
    problems = roots_document.validate(document)
    if problems:
        raise StalePlanError(
            f"{_shown(path)} is not a valid saved plan of several roots: nothing was applied",
            hint="make a new plan with `reconciler plan ROOT ROOT ... --out`",
            details=[f"  {_shown(path)}: {escape.text(problem)}" for problem in problems[:20]],
        )
    entries = roots_document.entries(document)
    saved_roots = [str(entry["root"]) for entry in entries]
    if saved_roots != list(roots):
        raise StalePlanError(
            f"{_shown(path)} was saved for the roots {_listed(saved_roots)}; this run names {_listed(roots)}: "
            "nothing was applied",
            hint="name the same roots, in the same order, as the plan that saved it",
        )
    return [_checked(entry.get("plan"), path, where=f"{entry['root']}: ") for entry in entries]


def _listed(roots: Sequence[str]) -> str:
    return ", ".join(escape.text(root) for root in roots)


def _checked(document: Any, path: Path, where: str = "") -> dict[str, Any]:
    """One root's saved plan, checked: `where` names the root inside a file of several."""
    version = document.get("format_version") if isinstance(document, dict) else None
    if version not in FORMAT_VERSIONS or "saved" not in document:
        raise ReconcilerError(
            f"{_shown(path)}: {escape.text(where)}not a plan saved by `reconciler plan --out` (format_version "
            f"{' or '.join(FORMAT_VERSIONS)})"
        )
    import jsonschema

    from reconciler.schemas import load_schema

    validator = jsonschema.Draft202012Validator(load_schema("plan"))
    problems = sorted(_schema_problem(path, error, where) for error in validator.iter_errors(document))
    saved = document.get("saved")
    if not isinstance(saved, dict) or not isinstance(saved.get("target"), dict):
        problems.append(f"  {_shown(path)}: {escape.text(where)}saved/target: missing")
    ids = [a.get("id") for a in document.get("actions", []) if isinstance(a, dict)]
    for twice in sorted({i for i in ids if ids.count(i) > 1 and isinstance(i, str)}):
        problems.append(
            f"  {_shown(path)}: {escape.text(where)}actions: the id {escape.text(twice)} appears more than once"
        )
    if problems:
        raise StalePlanError(
            f"{_shown(path)} is not a valid saved plan: nothing was applied",
            hint="make a new plan with `reconciler plan --out`",
            details=problems[:20],
        )
    return document


def _schema_problem(path: Path, error: Any, root: str = "") -> str:
    where = "/".join(escape.text(str(p)) for p in error.absolute_path) or "(document)"
    return f"  {_shown(path)}: {escape.text(root)}{where}: {escape.text(error.message[:200])}"


def check_tool(document: Mapping[str, Any], path: Path) -> None:
    """A plan saved by another version or commit of the tool is refused: what its actions mean may differ."""
    saved = document["saved"].get("tool")
    now = tool_identity()
    if not isinstance(saved, dict):
        raise StalePlanError(
            f"{_shown(path)} was saved by an older reconciler that did not record its version: nothing was applied",
            hint=f"make a new plan with this reconciler ({_tool_text(now)})",
        )
    if saved.get("version") != now["version"] or saved.get("commit") != now["commit"]:
        raise StalePlanError(
            f"{_shown(path)} was saved by reconciler {_tool_text(saved)}; this is reconciler {_tool_text(now)}: "
            "nothing was applied",
            hint="make the plan and apply it with the same reconciler (pin one version in CI)",
        )


def _tool_text(tool: Mapping[str, Any]) -> str:
    version = escape.text(str(tool.get("version")))  # from the saved file: untrusted
    commit = tool.get("commit")
    return f"{version} (commit {escape.text(str(commit)[:12])})" if commit else version


def check_target(document: Mapping[str, Any], cloud: CloudConfig, target: Target) -> None:
    saved = document["saved"]["target"]
    now = saved_target(cloud, target)
    if saved != now:
        differences = [
            f"  {escape.text(str(k))}: saved {saved.get(k)!r}, now {now.get(k)!r}"
            for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)
        ]
        raise StalePlanError(
            "the target is not the one the plan was saved for: nothing was applied",
            hint="apply the plan against the target it was made for, or make a new plan",
            details=["the target differs:", *differences],
        )


def check_target_offline(
    document: Mapping[str, Any], cloud: CloudConfig, project: str | None, identity: str | None, path: Path
) -> None:
    """check_target's verdict where it can be had without a cloud (a run of several roots checks every root
    before the first is applied): the kind, the project (when known without asking the simulator), the
    state file or the identity URL. check_target still runs when the root's turn comes."""
    saved = document["saved"]["target"]
    now: dict[str, Any] = {"kind": cloud.kind}
    if project is not None:
        now["project"] = project
    if cloud.kind == "simulator":
        now["state"] = str(cloud.state)
    elif identity is not None:
        now["identity"] = identity
    differences = [
        f"  {escape.text(k)}: saved {saved.get(k)!r}, now {v!r}" for k, v in sorted(now.items()) if saved.get(k) != v
    ]
    if differences:
        raise StalePlanError(
            f"{_shown(path)}: the saved plan of set {escape.text(str(document.get('set')))} was made for another "
            "target: nothing was applied",
            hint="apply the plan against the target it was made for, or make a new plan",
            details=["the target differs:", *differences],
        )


# -- the rules of `plan --out` and `apply --plan` ----------------------------------------------------


def refuse_narrowing(
    command: str, *, targets: Sequence[str], excludes: Sequence[str], max_deletions: int | None
) -> None:
    """Saved plans are whole: a narrowed one would have to be matched against a narrowed fresh plan, and a
    large intended deletion belongs in the reviewed root (settings.max_deletions), not on a command line."""
    flags = (("--target", bool(targets)), ("--exclude", bool(excludes)), ("--max-deletions", max_deletions is not None))
    given = [flag for flag, present in flags if present]
    if given:
        raise UsageError(
            f"{command} cannot be combined with {', '.join(given)}: saved plans cover the whole root",
            hint=_whole_plan_hint(given),
        )


def _whole_plan_hint(given: list[str]) -> str:
    """What to do instead, for the flags that were given."""
    hints = []
    if "--target" in given or "--exclude" in given:
        hints.append(
            "save a plan of the whole root (without --target and --exclude), or plan and apply only some keys "
            "without a saved plan (reconciler apply --target KEY)"
        )
    if "--max-deletions" in given:
        hints.append("to allow more deletions, raise settings.max_deletions in the reviewed root")
    return "; ".join(hints)


def apply_command(path: Path, *, resume: bool = False, roots: Sequence[str] | None = None) -> str:
    """The command that applies the plan saved at `path` (or resumes it), to copy and paste: the path is
    quoted (a space or a `;` in it would split or extend the command) and escaped like every string the tool
    did not write. `roots`: the roots a plan of several was saved for, named in their order."""
    # A path that starts with "-" would read as an option: "./" keeps it a path.
    paths = [f"./{word}" if word.startswith("-") else word for word in (str(path), *(roots or []))]
    command = "reconciler apply --plan " + " ".join(escape.text(shlex.quote(word)) for word in paths)
    return command + (" --resume" if resume else "")


def check_not_partly_applied(journal: Journal, path: Path, *, resume: bool, command: str | None = None) -> None:
    """A saved plan that an earlier run partly applied is finished with --resume, never applied again as a
    whole: the fresh plan no longer has what is done, and would not match the saved one. `command`: the
    one that resumes it (default: apply --plan PATH --resume)."""
    if journal.done and not resume:
        raise UsageError(
            f"{_shown(path)} was partly applied already ({len(journal.done)} actions done)",
            hint=f"finish it with: {command or apply_command(path, resume=True)}",
        )


def check_set(document: Mapping[str, Any], set_name: str, path: Path) -> None:
    """A plan saved for another set of images is refused: its markers name other images."""
    if document.get("set") != set_name:
        raise StalePlanError(
            f"{_shown(path)} was saved for set {document.get('set')!r}, this root is set {set_name!r}: "
            "nothing was applied"
        )


def check_fresh(
    document: Mapping[str, Any],
    path: Path,
    fresh: Sequence[Action],
    images: Iterable[Image],
    set_name: str,
    *,
    resume: bool,
) -> Match:
    """The fresh plan's actions matched against the saved plan's (plan_match.match, with `images` the live
    images the fresh plan was made from); every difference is named in the error, and nothing runs."""
    deferred = {
        (str(w.get("key")), str(w.get("region")))
        for w in document.get("warnings", [])
        if isinstance(w, Mapping) and w.get("code") == "retirement_deferred"
    }
    result = match(document["actions"], fresh, images, set_name, resume=resume, saved_deferred=deferred)
    if not result.ok:
        raise StalePlanError(
            f"the plan made now differs from the saved plan {_shown(path)} in {len(result.differences)} "
            "place(s): nothing was applied",
            hint="the root or the cloud changed since the review: make and review a new plan",
            details=["differences (saved vs now):", *[f"  {escape.text(d.line())}" for d in result.differences]],
        )
    return result


def deferred_results(
    document: Mapping[str, Any], result: Match, left_out: Sequence[Action], acceptances: Sequence[Action] = ()
) -> list[Any]:
    """What `apply --plan` does not run by design, as results with the status `deferred` (no failure), for
    the report: the saved plan's retirements the fresh plan defers (rule (f): the image is in use now), the
    fresh plan's retirements the reviewed plan had deferred, and the fresh plan's accepts and rejects the
    reviewed plan lacks (rule (g): the owner shared since the review). The last two are left for the next
    plan, whose review shows them."""
    from reconciler.apply import DEFERRED, StepResult
    from reconciler.plan_codec import action_from_json

    saved = {str(a.get("id")): a for a in document["actions"] if isinstance(a, Mapping)}
    found = [
        StepResult(action_from_json(saved[s_id]), DEFERRED, "its image is in use now: a later plan retires it")
        for s_id in result.deferred
    ]
    found += [
        StepResult(action, DEFERRED, "its retirement was deferred when the plan was reviewed: the next plan retires it")
        for action in left_out
    ]
    found += [
        StepResult(action, DEFERRED, "the owner shared it since the review: the next plan shows it for review")
        for action in acceptances
    ]
    return found


# -- the progress journal ------------------------------------------------------------------------


@dataclass
class Journal:
    """What an apply of a saved plan has done so far: action ids, and the images they made. For display
    only: nothing read from it decides what runs."""

    path: Path
    done: list[str] = field(default_factory=list)
    made: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan_path: Path, part: int | None = None) -> Journal:
        """The journal beside `plan_path` (`part`: of its Nth root, in a saved plan of several); one that
        cannot be read as a journal is set aside with a warning (it is untrusted, and decides nothing: it
        only tells a user to pass --resume)."""
        suffix = ".progress.json" if part is None else f".root-{part}.progress.json"
        path = plan_path.with_name(plan_path.name + suffix)
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            done, made = doc["done"], doc.get("made", {})
            if not (isinstance(done, list) and all(isinstance(d, str) for d in done) and isinstance(made, dict)):
                raise TypeError("not a journal")
            return cls(path, list(done), {str(k): str(v) for k, v in made.items()})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            log.warning("%s is not a readable journal of this plan: ignored", _shown(path))
            return cls(path)

    def record(self, action_id: str, image_id: str | None, made: bool) -> None:
        self.done.append(action_id)
        if made and image_id:
            self.made[action_id] = image_id
        _write_json(self.path, {"done": self.done, "made": self.made})

    def recording(self, progress: Progress) -> Progress:
        """`progress`, which also records each action done (and the image it made, for a kind that makes
        one) as it ends."""

        def record(event: str, action: Action, payload: Any) -> None:
            progress(event, action, payload)
            if event == "end" and payload.status == "done":
                self.record(action.id, payload.image_id, made=KINDS[action.kind].makes_image)

        return record

    def resumable(self, statuses: Iterable[str]) -> bool:
        """After a run that did not succeed (`statuses`: its actions'), whether --resume would finish it:
        whether some action of the plan is done, in that run or an earlier one."""
        return "done" in set(statuses) or bool(self.done)

    def discard(self) -> None:
        """The plan is applied in full: nothing is left to resume."""
        self.path.unlink(missing_ok=True)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write through a temporary file beside `path`, so a reader never sees half a document; on any failure
    the temporary file goes too. No folder is created (check_destination refused a missing one)."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # The plan's own JSON rendering: hidden characters from the cloud written as escapes.
            handle.write(render_json(dict(document)))
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ReconcilerError(f"cannot write {_shown(path)}: {err.strerror or err}") from None


def _mode_for(path: Path) -> int:
    """The mode the written file gets: the replaced file's, else what a new file gets from open() (0666 less
    the umask). mkstemp's 0600 would hide a plan from a CI step that runs as another user."""
    try:
        existing = path.stat()
    except OSError:
        return 0o666 & ~_umask()
    return stat.S_IMODE(existing.st_mode)


def _umask() -> int:
    """The process's umask. Linux shows it in /proc/self/status; elsewhere, reading it means setting it, which
    is done briefly."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current
