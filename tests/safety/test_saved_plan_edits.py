"""Edits to a saved plan, one row each, over every action kind (issue 15, point 2; docs/safety.md, "Saved
plans"). A saved plan is a file a pull request can edit, so whatever it says, `apply --plan` carries out
only the fresh plan, and only when that plan matches the file:

- an action aimed at an unmanaged image, another set's image, another key's image or an unrelated server,
  an edited detail (member, server, source region), emptied or redirected `expects`, a removed
  `compensates` or dropped `depends_on`: exit 1 `plan_mismatch`, stderr names the edited action, and the
  simulator's state is unchanged but for the lock's traces;
- refusals removed from the file: exit 3 `refused`, nothing changed (refusals come from the fresh plan);
- reordered `depends_on` (a set), an edited `info`, display-only fields, the reason's words and a resume
  journal claiming work that was never done: ignored, the fresh plan runs in full and the next plan is empty;
- the unedited plan applies, and so do `moved_from` re-keys of a home image and of its copy.

Every root here also holds bystanders (`BYSTANDER_IMAGES`, `BYSTANDER_SERVERS`): an unmanaged image, another
set's image of the same key, an image of another key of this set, a running and a stopped server that no
manifest names. Each kind of `reconciler.plan.ACTION_KINDS` must have a row aiming it at one of them:
a kind added later without its row fails `test_every_action_kind_has_a_row_aiming_it_elsewhere`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import cloud_unchanged_but_lock_traces

from reconciler.cli import main
from reconciler.plan import ACTION_KINDS

CASES = Path(__file__).resolve().parents[1] / "cases"
SET = "web-platform"
OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
OUTSIDER = "0123456789abcdef0123456789abcdef"

# Ids of the golden cases' seeds.
HOME = "00000000-0000-4000-8000-000000000011"
SECOND = "00000000-0000-4000-8000-000000000012"
GOLDEN_SERVER = "00000000-0000-4000-8000-000000000001"

# The bystanders added to every root: what an edited plan might aim at.
UNMANAGED = "00000000-0000-4000-8000-0000000000f1"
OTHER_SET = "00000000-0000-4000-8000-0000000000f2"
OTHER_KEY = "00000000-0000-4000-8000-0000000000f3"
RUNNING_SERVER = "00000000-0000-4000-8000-0000000000f4"
STOPPED_SERVER = "00000000-0000-4000-8000-0000000000f5"
OTHER_KEY_NAME = "bystander-key"
IMAGE_TARGETS = {"unmanaged": UNMANAGED, "another set's": OTHER_SET, "another key's": OTHER_KEY}

BYSTANDER_IMAGES = [
    {"id": UNMANAGED, "name": "web-base", "properties": {"os_type": "linux"}},
    {
        "id": OTHER_SET,
        "name": "web-base",
        "properties": {
            "os_type": "linux",
            "reconciler_set": "data-platform",
            "reconciler_key": "web-base",
            "reconciler_source": f"image:{OTHER_SET}",
        },
    },
    {
        "id": OTHER_KEY,
        "name": OTHER_KEY_NAME,
        "properties": {
            "os_type": "linux",
            "reconciler_set": SET,
            "reconciler_key": OTHER_KEY_NAME,
            "reconciler_source": f"image:{OTHER_KEY}",
        },
    },
]
BYSTANDER_SERVERS = [
    {"id": RUNNING_SERVER, "name": "bystander-running", "flavor": "u2.c2m4", "status": "ACTIVE"},
    {"id": STOPPED_SERVER, "name": "bystander-stopped", "flavor": "u2.c2m4", "status": "SHUTOFF"},
]
# The other key's image is declared, so the fresh plan leaves it alone (and never deletes it).
BYSTANDER_MANIFEST = {"version": 1, "images": {OTHER_KEY_NAME: {"region": "KR1", "source": {"image": OTHER_KEY}}}}

# Roots made here, where no golden case has what a row needs: a re-key of a home image and of its copy.
REKEY_WITH_COPY = {
    "reconciler.yaml": """\
version: 1
set: web-platform
cloud: {kind: simulator, seed: seed.yaml}
defaults: {region: KR1}
""",
    "seed.yaml": f"""\
regions: [KR1, JP1]
projects:
  - id: {OWNER}
    users: [{{username: dev@example.com, api_password: local-only}}]
images:
  - {{id: {HOME}, project: {OWNER}, region: KR1, name: web-base-nov, size_mb: 4, content: web-base-nov,
     properties: {{os_type: linux, reconciler_set: web-platform, reconciler_key: web-base-nov,
                  reconciler_source: "image:{HOME}"}}}}
  - {{id: {SECOND}, project: {OWNER}, region: JP1, name: web-base-nov, size_mb: 4, content: web-base-nov,
     properties: {{os_type: linux, reconciler_set: web-platform, reconciler_key: web-base-nov,
                  reconciler_source: "image:{HOME}", reconciler_copy_of: {HOME}}}}}
""",
    "images/web.yaml": f"""\
version: 1
images:
  web-base-dec:
    source: {{image: {HOME}}}
    moved_from: web-base-nov
    copies: [JP1]
""",
}
BUILT = {"rekey-with-copy": REKEY_WITH_COPY}

# -- outcomes -----------------------------------------------------------------------------------------

REFUSED = "refused-nothing-changed"  # exit 1, outcome plan_mismatch, the edited action named, state unchanged
INVALID = "invalid-file"  # exit 1, outcome plan_mismatch, the file is not a valid saved plan, state unchanged
REFUSED_3 = "refused-3"  # exit 3, outcome refused, state unchanged
APPLIES = "applies"  # exit 0, outcome applied, exactly the fresh plan ran, the next plan is empty
IGNORED = "ignored"  # the edit is in no compared field: as APPLIES
PARTLY_APPLIED = "refused-partly-applied"  # a journal without --resume: exit 1 naming --resume, nothing changed


@dataclass(frozen=True)
class Row:
    reason: str  # one sentence: why this row's outcome is the right one
    case: str  # a golden case in tests/cases, or a root of BUILT
    expect: str
    edit: Callable[[dict[str, Any]], None] | None = None  # over the saved JSON document
    action: str | None = None  # the action the edit aims; stderr must name it when refused
    aims: str | None = None  # set on rows aiming `action` at what it must never touch: its kind is covered
    journal: Any = None  # the resume journal written beside the plan (a document, or raw text)
    resume: bool = False
    plans: tuple[str, ...] | None = None  # the reviewed plan's action ids, where the row is about them
    misbehaviour: str | None = None  # the product does otherwise today: the row is a strict xfail saying how


def action_of(document: dict[str, Any], action_id: str) -> dict[str, Any]:
    (found,) = [a for a in document["actions"] if a["id"] == action_id]
    return found


def retarget(action_id: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Aim one action elsewhere the way an attacker would: every mention of `old` in it (image_id, the
    `expects` key, a server detail, a marker value) becomes `new`; its id stays."""

    def edit(document: dict[str, Any]) -> None:
        action = action_of(document, action_id)
        edited = json.loads(json.dumps(action).replace(old, new))
        assert edited != action, f"{old} is not in {action_id}"
        action.clear()
        action.update(edited, id=action_id)

    return edit


def set_field(action_id: str, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        action = action_of(document, action_id)
        assert name in action, f"{action_id} has no {name}"
        action[name] = value

    return edit


def drop_field(action_id: str, name: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        action_of(document, action_id).pop(name)

    return edit


def redirect_expects(action_id: str, image: str) -> Callable[[dict[str, Any]], None]:
    """Keep the image acted on, but make the precondition read another image."""

    def edit(document: dict[str, Any]) -> None:
        action = action_of(document, action_id)
        ((ref, fields),) = action["expects"].items()
        region = ref.split("/", 1)[0]
        action["expects"] = {f"{region}/{image}": fields}

    return edit


def reverse_depends_on(action_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        action = action_of(document, action_id)
        assert len(action["depends_on"]) > 1
        action["depends_on"].reverse()

    return edit


def duplicate_aimed(action_id: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """A second action with the same id, placed first and aimed elsewhere: a reader of the file sees both."""

    def edit(document: dict[str, Any]) -> None:
        index = document["actions"].index(action_of(document, action_id))
        twin = json.loads(json.dumps(document["actions"][index]).replace(old, new))
        twin["id"] = action_id
        document["actions"].insert(index, twin)

    return edit


def add_restart(server: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["actions"].append({
            "id": "start_instance:web-base:KR1", "kind": "start_instance", "key": "web-base", "region": "KR1",
            "image_id": None, "server": server, "changes": {},
            "expects": {f"KR1/server/{server}": {"status": "SHUTOFF", "reconciler_stopped_by": SET}},
            "reason": {"code": "left_stopped", "message": "restart", "source": None}, "depends_on": [],
        })  # fmt: skip

    return edit


def every_action(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for action in document["actions"]:
            if name in action:
                action[name] = value

    return edit


def aim_rows(case: str, action_id: str, kind: str, old: str) -> list[Row]:
    return [
        Row(
            f"a {kind} aimed at {what} image instead of the one the root means is not what the fresh plan says",
            case,
            REFUSED,
            retarget(action_id, old, image),
            action_id,
            aims=kind,
        )
        for what, image in IMAGE_TARGETS.items()
    ]


# Misbehaviours found by this table are fixed; a row that finds a new one names it here and becomes a
# strict xfail until it is fixed: {"what the product does": the exception the row's assertion raises}.
RAISES: dict[str, type[BaseException] | tuple[type[BaseException], ...]] = {}

CREATE = "create:web-base:KR1"
STOP = "stop_instance:web-base:KR1"
START = "start_instance:web-base:KR1"
COPY_JP1 = "copy:web-base:JP1"
DOWNLOAD_OFF = "update:web-base:KR1:download-off"
RENAME = "update:web-base:KR1"
SHARE = f"share:web-base:KR1:{PARTNER}"
UNSHARE = f"unshare:web-base:KR1:{PARTNER}"
DELETE = "delete:web-base-old:KR1"
REKEY = "update:web-base-dec:KR1:rekey"
REKEY_COPY = "update:web-base-dec:JP1"

ACCEPT = "accept:00000000-0000-4000-8000-000000000101:KR1"  # tests/cases/accept-family-and-glob
REJECT = "reject:00000000-0000-4000-8000-000000000201:KR1"  # tests/cases/reject-by-name

# fmt: off
# The table: one row per line of thought, aligned by hand.
ROWS: list[Row] = [
    # -- each kind aimed at what it must never touch ---------------------------------------------------
    Row("a create from an unrelated running server is not the reviewed create", "running-u2-stop", REFUSED,
        retarget(CREATE, GOLDEN_SERVER, RUNNING_SERVER), CREATE, aims="create"),
    Row("a live create from an unrelated server is not the reviewed create", "create-running-m2", REFUSED,
        retarget(CREATE, GOLDEN_SERVER, RUNNING_SERVER), CREATE, aims="create"),
    *aim_rows("adopt-by-id", "adopt:web-base:KR1", "adopt", HOME),
    *aim_rows("copies-two-regions", COPY_JP1, "copy", HOME),
    Row("a copy read from another region than the home region is not the reviewed copy", "copies-two-regions",
        REFUSED, set_field(COPY_JP1, "source_region", "KR2"), COPY_JP1, aims="copy"),
    *aim_rows("rename-in-place", RENAME, "update", HOME),
    *aim_rows("adopt-moved-from", REKEY, "update", HOME),
    *aim_rows("protect-unprotect", "protect:web-base:KR1", "protect", HOME),
    *aim_rows("protect-unprotect", "unprotect:api-base:KR1", "unprotect", SECOND),
    *aim_rows("share", SHARE, "share", HOME),
    *aim_rows("unshare-last-member", UNSHARE, "unshare", HOME),
    *aim_rows("delete-unprotected", DELETE, "delete", SECOND),
    Row("stopping an unrelated running server is not the reviewed stop", "running-u2-stop", REFUSED,
        retarget(STOP, GOLDEN_SERVER, RUNNING_SERVER), STOP, aims="stop_instance"),
    Row("starting an unrelated stopped server is not the reviewed restart", "running-u2-stop", REFUSED,
        retarget(START, GOLDEN_SERVER, STOPPED_SERVER), START, aims="start_instance"),
    *aim_rows("duplicate-made-by-tool", "delete:web-base:KR1:00000000", "delete", SECOND),
    Row("an action whose kind is edited is not the reviewed action", "protect-unprotect", REFUSED,
        set_field("protect:web-base:KR1", "kind", "unprotect"), "protect:web-base:KR1"),
    Row("an action moved to another key is not the reviewed action", "rename-in-place", REFUSED,
        set_field(RENAME, "key", OTHER_KEY_NAME), RENAME),
    Row("a restart of an unrelated stopped server added as if a crash had left it stopped is not planned",
        "rename-in-place", REFUSED, add_restart(STOPPED_SERVER), START),
    Row("a second delete under the reviewed delete's id, aimed at an unmanaged image, makes the file invalid",
        "delete-unprotected", INVALID, duplicate_aimed(DELETE, SECOND, UNMANAGED), DELETE),
    # --resume matches the same way, except that file actions the fresh plan lacks count as already done.
    Row("with --resume too, a delete aimed at an unmanaged image is not the fresh delete", "delete-unprotected",
        REFUSED, retarget(DELETE, SECOND, UNMANAGED), DELETE, resume=True),
    Row("with --resume too, a create from an unrelated server is not the fresh create", "running-u2-stop", REFUSED,
        retarget(CREATE, GOLDEN_SERVER, RUNNING_SERVER), CREATE, resume=True),
    Row("with --resume too, a fresh action the file lost is not planned in it", "running-u2-stop", REFUSED,
        lambda d: d["actions"].remove(action_of(d, START)), START, resume=True),
    Row("with --resume, a file action the fresh plan lacks is reported done and never carried out",
        "rename-in-place", APPLIES, add_restart(STOPPED_SERVER), START, resume=True),
    # Housekeeping (an interrupted run's leftovers) may be in the fresh plan without being in the file; when
    # the file has it, what it acts on must be the same.
    Row("a housekeeping restart of a server this set left stopped, edited to start an unrelated server, "
        "differs from the fresh restart", "crash-left-stopped", REFUSED,
        retarget(START, GOLDEN_SERVER, STOPPED_SERVER), START),
    Row("a housekeeping download-flag restore edited to patch an unmanaged image differs from the fresh one",
        "download-flag-left-on", REFUSED, retarget("update:web-base:KR1:download-restore", HOME, UNMANAGED),
        "update:web-base:KR1:download-restore"),
    Row("a housekeeping delete of an incomplete copy edited to delete an unmanaged image differs from the "
        "fresh one", "incomplete-copy", REFUSED, retarget("delete:web-base:JP1:replace", SECOND, UNMANAGED),
        "delete:web-base:JP1:replace"),
    # -- edited details ------------------------------------------------------------------------------
    Row("an accept aimed at a shared image no rule wants (another set's version of the family) is not the "
        "reviewed accept", "accept-family-and-glob", REFUSED,
        retarget(ACCEPT, "00000000-0000-4000-8000-000000000101", "00000000-0000-4000-8000-000000000103"), ACCEPT,
        aims="accept"),
    Row("a reject aimed at an image already rejected is not the reviewed reject", "reject-by-name", REFUSED,
        retarget(REJECT, "00000000-0000-4000-8000-000000000201", "00000000-0000-4000-8000-000000000203"), REJECT,
        aims="reject"),
    Row("sharing with another project than the reviewed member is not the reviewed share", "share", REFUSED,
        set_field(SHARE, "member", OUTSIDER), SHARE),
    Row("removing another member than the reviewed one is not the reviewed unshare", "unshare-last-member",
        REFUSED, set_field(UNSHARE, "member", OUTSIDER), UNSHARE),
    Row("a create that now says it images a running instance live is another create", "running-u2-stop",
        REFUSED, set_field(CREATE, "running", True), CREATE),
    Row("a create under another final name is another create", "running-u2-stop", REFUSED,
        set_field(CREATE, "name", "legacy-base"), CREATE),
    # -- expects ---------------------------------------------------------------------------------------
    Row("an update without preconditions is not the reviewed update", "rename-in-place", REFUSED,
        set_field(RENAME, "expects", {}), RENAME),
    Row("a delete without preconditions is not the reviewed delete", "delete-unprotected", REFUSED,
        set_field(DELETE, "expects", {}), DELETE),
    Row("a stop without preconditions is not the reviewed stop", "running-u2-stop", REFUSED,
        set_field(STOP, "expects", {}), STOP),
    Row("a delete whose precondition reads an unmanaged image is not the reviewed delete", "delete-unprotected",
        REFUSED, redirect_expects(DELETE, UNMANAGED), DELETE),
    Row("a copy whose precondition reads another set's image is not the reviewed copy", "copies-two-regions",
        REFUSED, redirect_expects(COPY_JP1, OTHER_SET), COPY_JP1),
    # -- compensates and depends_on --------------------------------------------------------------------
    Row("a restart that no longer runs after a failed create is not the reviewed restart", "running-u2-stop",
        REFUSED, drop_field(START, "compensates"), START),
    Row("a download restore that no longer runs after a failed copy is not the reviewed restore",
        "copies-two-regions", REFUSED, drop_field(DOWNLOAD_OFF, "compensates"), DOWNLOAD_OFF),
    Row("a bracket's closing protect that no longer runs after a failed rename is not the reviewed one",
        "protect-strict", REFUSED, drop_field("protect:db-base:KR1:update", "compensates"),
        "protect:db-base:KR1:update"),
    Row("a compensation pointed at another action is not the reviewed compensation", "copies-two-regions",
        REFUSED, set_field(DOWNLOAD_OFF, "compensates", COPY_JP1), DOWNLOAD_OFF),
    Row("a create that no longer waits for the stop is not the reviewed create", "running-u2-stop", REFUSED,
        set_field(CREATE, "depends_on", []), CREATE),
    Row("depends_on is compared as a set: its order changes nothing", "copies-two-regions", APPLIES,
        reverse_depends_on(DOWNLOAD_OFF), DOWNLOAD_OFF),
    # -- refusals --------------------------------------------------------------------------------------
    Row("refusals come from the fresh plan: removing a protected_undeclared one changes nothing",
        "delete-protected-refused", REFUSED_3, lambda d: d.update(refusals=[])),
    Row("refusals come from the fresh plan: removing max_deletions does not let three deletes run",
        "max-deletions", REFUSED_3, lambda d: d.update(refusals=[])),
    Row("refusals come from the fresh plan: removing running_local_disk does not image a running u2",
        "running-u2-allow", REFUSED_3, lambda d: d.update(refusals=[])),
    Row("refusals come from the fresh plan: removing renamed_set does not let the create run", "renamed-set-two-keys",
        REFUSED_3, lambda d: d.update(refusals=[])),
    # -- what is for reading only ----------------------------------------------------------------------
    Row("info describes the cloud for readers: it is not compared", "copies-two-regions", IGNORED,
        lambda d: d.update(info={"images": 999, "this_set": 0, "other_sets": 7, "unmanaged": 0,
                                 "pending_members": [{"key": "web-base", "region": "KR1", "member": OUTSIDER}]})),
    Row("an info claiming the plan was narrowed changes nothing: saved plans are whole", "delete-unprotected",
        IGNORED, lambda d: d["info"].update(partial={"target": ["web-base"]})),
    Row("warnings and the summary are for readers: they are not compared", "running-u2-stop", IGNORED,
        lambda d: d.update(warnings=[], summary={"actions": {}, "refusals": 0, "warnings": 0})),
    Row("a reason's words are for humans: they are not compared", "delete-unprotected", IGNORED,
        every_action("reason", {"code": "edited", "message": "harmless", "source": None})),
    Row("bytes are display-only", "copies-two-regions", IGNORED, every_action("bytes", 1)),
    Row("server_name, downtime and flavor are display-only", "running-u2-stop", IGNORED,
        lambda d: [every_action(name, "edited")(d) for name in ("server_name", "downtime", "flavor")]),
    # -- the resume journal ----------------------------------------------------------------------------
    Row("a journal claiming every action done decides nothing: --resume runs the whole fresh plan",
        "running-u2-stop", APPLIES, journal={"done": [STOP, CREATE, START], "made": {CREATE: UNMANAGED}},
        resume=True),
    Row("a journal claiming the copies made other sets' images decides nothing: --resume runs the whole plan",
        "copies-two-regions", APPLIES,
        journal={"done": [COPY_JP1, "copy:web-base:KR2"], "made": {COPY_JP1: OTHER_SET, "copy:web-base:KR2": UNMANAGED}},
        resume=True),
    Row("a journal claiming a delete done decides nothing: --resume still deletes, and only that image",
        "delete-unprotected", APPLIES, journal={"done": [DELETE], "made": {}}, resume=True),
    Row("a journal naming actions that no plan has decides nothing: --resume runs the fresh plan",
        "rename-in-place", APPLIES, journal={"done": [f"delete:{OTHER_KEY_NAME}:KR1"], "made": {}}, resume=True),
    *[
        Row(f"an unreadable journal ({what}) decides nothing: --resume runs the fresh plan", "rename-in-place",
            APPLIES, journal=text, resume=True)
        for what, text in (("not JSON", "done: everything"), ("a list", "[]"), ("done not a list", '{"done": 5}'))
    ],
    Row("without --resume, a plan whose journal says it was partly applied is refused before any change",
        "rename-in-place", PARTLY_APPLIED, journal={"done": [RENAME], "made": {}}),
    # -- unedited plans, and moved_from ----------------------------------------------------------------
    *[
        Row("the unedited saved plan still matches the fresh plan and applies", case, APPLIES)
        for case in ("running-u2-stop", "create-running-m2", "adopt-by-id", "copies-two-regions",
                     "rename-in-place", "protect-unprotect", "protect-strict", "share", "unshare-last-member",
                     "delete-unprotected", "crash-left-stopped")
    ],
    Row("a moved_from re-key of a home image is one update, planned and applied", "adopt-moved-from", APPLIES,
        plans=(REKEY,)),
    Row("a moved_from re-key of a home image and its copy re-keys both, planned and applied", "rekey-with-copy",
        APPLIES, plans=(REKEY, REKEY_COPY)),
    Row("a copy's re-key aimed at another key's image is not the reviewed re-key", "rekey-with-copy", REFUSED,
        retarget(REKEY_COPY, SECOND, OTHER_KEY), REKEY_COPY),
]
# fmt: on


def row_id(row: Row) -> str:
    return f"{row.case}-{row.expect}-{row.reason[:60]}"


# -- making a root and its saved plan ------------------------------------------------------------------


def make_root(case: str, root: Path) -> None:
    if case in BUILT:
        for name, text in BUILT[case].items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
    else:
        shutil.copytree(CASES / case / "root", root)
    if yaml.safe_load((root / "reconciler.yaml").read_text()).get("set") != SET:
        # A consumer root (accept:/reject: rules, its own set): the images it must not touch are the shares
        # no rule wants, which its case holds; the bystanders are this set's.
        return
    seed_path = root / "seed.yaml"
    seed = yaml.safe_load(seed_path.read_text())
    project = seed["projects"][0]["id"]
    seed.setdefault("images", []).extend(
        {"project": project, "region": "KR1", "size_mb": 1, **image} for image in BYSTANDER_IMAGES
    )
    seed.setdefault("servers", []).extend(
        {"project": project, "region": "KR1", "os_type": "linux", "base_image": "Ubuntu Server 22.04 LTS (2024.01.16)",
         **server} for server in BYSTANDER_SERVERS
    )  # fmt: skip
    seed_path.write_text(yaml.safe_dump(seed, sort_keys=False))
    (root / "bystanders.yaml").write_text(yaml.safe_dump(BYSTANDER_MANIFEST, sort_keys=False))


def state_of(root: Path) -> dict[str, Any]:
    return json.loads((root / ".reconciler" / "sim-state.json").read_text())


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def params() -> list[Any]:
    return [
        pytest.param(
            row,
            id=row_id(row),
            marks=[pytest.mark.xfail(strict=True, reason=row.misbehaviour, raises=RAISES[row.misbehaviour])],
        )
        if row.misbehaviour
        else pytest.param(row, id=row_id(row))
        for row in ROWS
    ]


@pytest.mark.parametrize("row", params())
def test_an_edited_saved_plan(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    make_root(row.case, root)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) in (0, 3)
    capsys.readouterr()
    reviewed = json.loads(plan_file.read_text())
    if row.plans is not None:
        assert sorted(a["id"] for a in reviewed["actions"]) == sorted(row.plans)
    assert reviewed["refusals"] == [] or row.expect == REFUSED_3, "only refusal rows start from a refused plan"
    document = json.loads(plan_file.read_text())
    if row.edit is not None:
        row.edit(document)
        assert document != reviewed, "the edit changed nothing"
        plan_file.write_text(json.dumps(document, indent=2))
    if row.action is not None:
        named = {a["id"] for a in [*reviewed["actions"], *document["actions"]]}
        assert row.action in named, "the row names an action of the reviewed or the edited file"
    journal = plan_file.with_name(plan_file.name + ".progress.json")
    if row.journal is not None:
        journal.write_text(row.journal if isinstance(row.journal, str) else json.dumps(row.journal))
    before = state_of(root)

    argv = ["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]
    code = main([*argv, "--resume"] if row.resume else argv)
    out, err = capsys.readouterr()

    if row.expect in (REFUSED, REFUSED_3, PARTLY_APPLIED, INVALID):
        cloud_unchanged_but_lock_traces(before, state_of(root))
        if row.expect == INVALID:
            assert code == 1, err
            assert json.loads(out)["outcome"] == "plan_mismatch"
            assert "is not a valid saved plan" in err and f"the id {row.action} appears more than once" in err
        elif row.expect == REFUSED:
            assert code == 1, err
            assert json.loads(out)["outcome"] == "plan_mismatch"
            assert "differs from the saved plan" in err and "nothing was applied" in err
            assert f"{row.action}: saved:" in err, f"stderr does not name {row.action}:\n{err}"
        elif row.expect == REFUSED_3:
            assert code == 3, err
            assert json.loads(out)["outcome"] == "refused"
            assert "Nothing was applied: the plan has refusals." in err
        else:
            assert code == 1, err
            assert "partly applied already" in err and "--resume" in err
        return

    assert row.expect in (APPLIES, IGNORED)
    assert code == 0, err
    report = json.loads(out)
    assert report["outcome"] == "applied"
    # Exactly the fresh plan ran, which is the reviewed plan: every action of it, nothing skipped or added.
    assert sorted(r["id"] for r in report["results"]) == sorted(a["id"] for a in reviewed["actions"])
    assert all(r["status"] == "done" for r in report["results"]), report["results"]
    assert not journal.exists(), "a finished apply removes its journal"
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0, "the next plan is empty"
    capsys.readouterr()
    after = state_of(root)
    for bystander in (UNMANAGED, OTHER_SET, OTHER_KEY):
        assert _image(after, bystander) == _image(before, bystander), f"bystander {bystander} was changed"
    for bystander in (RUNNING_SERVER, STOPPED_SERVER):
        assert _server(after, bystander) == _server(before, bystander), f"bystander {bystander} was changed"


def _image(state: dict[str, Any], image_id: str) -> Any:
    return state["images"].get(image_id) if isinstance(state["images"], dict) else image_id


def _server(state: dict[str, Any], server_id: str) -> Any:
    return state["servers"].get(server_id) if isinstance(state["servers"], dict) else server_id


def test_every_action_kind_has_a_row_aiming_it_elsewhere() -> None:
    """A kind added to the vocabulary without its row here fails: each kind must be shown to refuse when
    a saved plan aims it at what the root does not mean."""
    covered = {row.aims for row in ROWS if row.aims and not row.misbehaviour}
    missing = [kind for kind in ACTION_KINDS if kind not in covered]
    assert not missing, f"add a row aiming each of these kinds elsewhere: {missing}"
    assert covered <= set(ACTION_KINDS), f"rows name kinds outside the vocabulary: {covered - set(ACTION_KINDS)}"


def test_each_aiming_row_edits_an_action_of_its_kind() -> None:
    """A row's `aims` is the kind of the action it edits in its golden plan, so coverage cannot be claimed
    by a row that edits something else."""
    for row in ROWS:
        if row.aims:
            assert row.case not in BUILT and row.action is not None
            action = action_of(json.loads((CASES / row.case / "plan.json").read_text()), row.action)
            assert action["kind"] == row.aims, row_id(row)


def test_every_row_says_why_in_one_sentence() -> None:
    for row in ROWS:
        assert row.reason and "\n" not in row.reason and row.expect in (
            REFUSED, REFUSED_3, APPLIES, IGNORED, PARTLY_APPLIED, INVALID
        ), row_id(row)  # fmt: skip
