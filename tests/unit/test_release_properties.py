"""Properties of `removed:` plans (docs/manifest.md, "Stopping management without deleting"), on random live
images of removed keys: homes and copies, protected or not, finished or not, download flags on or off with
or without a record, under protected_patch strict and permissive. The planner is pure: hand-made
snapshots in, plan out.

- A released key (destroy: false) gets updates, and unprotect/protect brackets in strict mode, never a
  delete, except for a copy the tool never finished.
- Each released image gets exactly one update: every reconciler_* property it had goes (before = its value,
  after = None), plus at most the download flag, restored from its record when downloads were left on.
- Under strict, a protected image's update is bracketed and the image ends protected; under permissive
  no released image changes protection.
- A release never counts as a deletion: with max_deletions 0 the plan is refused only when it deletes.
- A destroyed key (destroy: true) is deleted, never updated; a removed key with nothing live warns.

The last test pins a gap found with issue 18 and since closed: a destroyed key's copy whose home image is
gone is deleted too.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_worlds import image_record

from reconciler import markers
from reconciler.cloud.records import Image, Member
from reconciler.desired import DesiredState
from reconciler.plan import Plan, Target
from reconciler.planner import INCOMPLETE, build_plan
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
REGIONS = ("JP1", "KR1", "KR2")
TARGET = Target("simulator", PROJECT, "loopback", REGIONS, ".reconciler/sim-state.json")
SET = "web"
WEB_ID = "00000000-0000-4000-8000-00000000beef"
RELEASED = ("legacy-a", "legacy-b")  # destroy: false
DESTROYED = "legacy-c"  # destroy: true
MANIFEST = f"""\
version: 1
images:
  web:
    source: {{image: {WEB_ID}}}
removed:
  - {{key: legacy-a, destroy: false}}
  - {{key: legacy-b, destroy: false}}
  - {{key: legacy-c, destroy: true}}
"""


@functools.cache
def desired(strict: bool) -> DesiredState:
    """The root, read once per mode (validation does the reading; the plans are built in memory)."""
    patch = ", protected_patch: strict" if strict else ""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "reconciler.yaml").write_text(
            f"version: 1\nset: {SET}\ncloud: {{kind: nhn, project: {PROJECT}{patch}}}\ndefaults: {{region: KR1}}\n"
        )
        (root / "m.yaml").write_text(MANIFEST)
        return load_desired_state(root)


def image(image_id: str, region: str, name: str, status: str, protected: bool, props: dict[str, str]) -> Image:
    return image_record(PROJECT, image_id, region, name, status, protected, props)


@dataclass(frozen=True)
class Live:
    """One generated live image of a removed key."""

    image: Image
    key: str

    @property
    def is_copy(self) -> bool:
        return markers.COPY_OF in self.image.properties

    @property
    def unfinished_copy(self) -> bool:
        return self.is_copy and self.image.status in INCOMPLETE


FLAGS = st.sampled_from([None, "true", "false"])
RECORDS = st.sampled_from([None, "true", "false", "absent", "yes"])  # "yes": set by hand, never written by the tool


@st.composite
def live_image(draw: st.DrawFn, key: str, number: int, home_id: str | None) -> Live:
    """A home image (home_id None) or a copy of `home_id` (or of an image long gone)."""
    image_id = f"00000000-0000-4000-8000-{number:012x}"
    copy = home_id is not None
    statuses = ["active", "queued", "saving", "killed"] if copy else ["active", "deactivated", "queued", "killed"]
    props: dict[str, str] = {
        markers.SET: SET,
        markers.KEY: key,
        markers.SOURCE: f"image:{home_id or image_id}",
    }
    if copy:
        props[markers.COPY_OF] = draw(st.sampled_from([home_id, "00000000-0000-4000-8000-0000000000ff"]))
    custom = draw(st.lists(st.sampled_from(["login_username", "team"]), unique=True))
    props.update({name: f"{name}-value" for name in custom})
    if custom and draw(st.booleans()):
        props[markers.PROPS] = ",".join(custom)
    if draw(st.booleans()):
        props["reconciler_note"] = "written by hand"  # a reconciler_* name the tool never writes goes too
    flag, record = draw(FLAGS), draw(RECORDS)
    if flag is not None:
        props[markers.DOWNLOAD_FLAG] = flag
    if record is not None:
        props[markers.DOWNLOAD_WAS] = record
    region = draw(st.sampled_from(REGIONS))
    status = draw(st.sampled_from(statuses))
    return Live(image(image_id, region, key, status, draw(st.booleans()), props), key)


@st.composite
def cloud(draw: st.DrawFn) -> tuple[list[Live], Snapshot]:
    """Live images of the removed keys (0-2 homes and 0-2 copies each) next to the declared web image."""
    found: list[Live] = []
    number = 0x100
    for key in (*RELEASED, DESTROYED):
        homes = []
        for _ in range(draw(st.integers(0, 2))):
            number += 1
            homes.append(draw(live_image(key, number, None)))
        for _ in range(draw(st.integers(0, 2))):
            number += 1
            home_id = homes[0].image.id if homes else "00000000-0000-4000-8000-0000000000ff"
            found.append(draw(live_image(key, number, home_id)))
        found.extend(homes)
    web = image(
        WEB_ID, "KR1", "web", "active", False, {markers.SET: SET, markers.KEY: "web", markers.SOURCE: f"image:{WEB_ID}"}
    )
    images = [web, *(live.image for live in found)]
    members = {live.image.id: (Member(live.image.id, PARTNER, "accepted"),) for live in found}
    snapshot = Snapshot(
        project=PROJECT, regions=REGIONS, catalog_regions=REGIONS,
        images=MappingProxyType({r: tuple(sorted((i for i in images if i.region == r), key=lambda i: i.id)) for r in REGIONS}),
        members=MappingProxyType(members),
    )  # fmt: skip
    return found, snapshot


def expected_release_changes(props: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """What a release's one update changes: every reconciler_* property removed and, when a record says
    downloads were turned on for copies and the flag is still on, the flag put back (hand-written text: "false")."""
    changes: dict[str, tuple[str | None, str | None]] = {
        name: (value, None) for name, value in props.items() if name.startswith(markers.PREFIX)
    }
    record = props.get(markers.DOWNLOAD_WAS)
    if record is not None and props.get(markers.DOWNLOAD_FLAG) == "true":
        restore = {"true": "true", "false": "false", "absent": None}.get(record, "false")
        if restore != "true":
            changes[markers.DOWNLOAD_FLAG] = ("true", restore)
    return changes


def actions_on(plan: Plan, image_id: str) -> list:
    return [a for a in plan.actions if a.image_id == image_id]


def check_released(plan: Plan, live: Live, strict: bool) -> None:
    ours = actions_on(plan, live.image.id)
    kinds = [a.kind for a in ours]
    if live.unfinished_copy:
        # The tool's own unfinished work: deleted (a protected one refused), never released.
        assert kinds == ([] if live.image.protected else ["delete"]), (live, kinds)
        return
    assert "delete" not in kinds, (live, kinds)
    bracket = strict and live.image.protected
    assert kinds == (["unprotect", "update", "protect"] if bracket else ["update"]), (live, kinds)
    update = next(a for a in ours if a.kind == "update")
    assert update.reason.code == "released"
    changes = {name: (c.before, c.after) for name, c in update.changes.items()}
    assert changes == expected_release_changes(dict(live.image.properties)), live
    record, flag = live.image.properties.get(markers.DOWNLOAD_WAS), live.image.properties.get(markers.DOWNLOAD_FLAG)
    odd_record = record is not None and record not in ("true", "false", "absent") and flag == "true"
    warned = [f for f in plan.warnings if f.code == "invalid_download_was" and live.image.id in f.message]
    assert bool(warned) == odd_record, "a hand-written record is warned, and never written to the flag"
    if bracket:
        opening, _, closing = ours
        assert closing.changes["protected"].after is True, "a protected image in strict mode ends protected"
        assert closing.details["compensates"] == opening.id
        assert {d.id for d in update.depends_on} == {opening.id}
        assert {d.id for d in closing.depends_on} == {update.id}
        order = [a.id for a in plan.actions]
        assert order.index(opening.id) < order.index(update.id) < order.index(closing.id)


def check_destroyed(plan: Plan, live: Live, homes: set[str]) -> None:
    kinds = [a.kind for a in actions_on(plan, live.image.id)]
    assert kinds == ([] if live.image.protected else ["delete"]), (live, kinds)
    if live.image.protected:
        assert any(f.code == "protected_undeclared" and live.image.id in f.message for f in plan.refusals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud(), st.booleans())
def test_releases_only_take_markers_off_and_never_delete_what_anyone_had(generated, strict):
    found, snapshot = generated
    plan = build_plan(desired(strict), snapshot, TARGET, max_deletions=1000)
    homes = {live.key for live in found if not live.is_copy}
    for live in found:
        if live.key == DESTROYED:
            check_destroyed(plan, live, homes)
        else:
            check_released(plan, live, strict)
    # Nothing else is touched: not the declared image, not the members of any image.
    assert {a.image_id for a in plan.actions} <= {live.image.id for live in found}
    assert not [a for a in plan.actions if a.kind in ("share", "unshare", "create", "copy", "adopt")]
    # A removed key with nothing live says so, at its entry.
    keys_live = {live.key for live in found}
    nothing = {f.key for f in plan.warnings if f.code == "removed_nothing"}
    assert nothing == {*RELEASED, DESTROYED} - keys_live


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud(), st.booleans())
def test_a_release_is_not_a_deletion_for_max_deletions(generated, strict):
    found, snapshot = generated
    plan = build_plan(desired(strict), snapshot, TARGET, max_deletions=0)
    deletes = [a for a in plan.actions if a.kind == "delete"]
    refused = [f for f in plan.refusals if f.code == "max_deletions"]
    assert bool(refused) == bool(deletes), (deletes, refused)
    releases = [a for a in plan.actions if a.reason.code == "released"]
    released_ids = {live.image.id for live in found if live.key in RELEASED and not live.unfinished_copy}
    assert {a.image_id for a in releases} == released_ids


def one_image_plan(*images: Image) -> Plan:
    snapshot = Snapshot(
        project=PROJECT, regions=REGIONS, catalog_regions=REGIONS,
        images=MappingProxyType({r: tuple(i for i in images if i.region == r) for r in REGIONS}),
    )  # fmt: skip
    return build_plan(desired(False), snapshot, TARGET, max_deletions=1000)


def marked(image_id: str, key: str, region: str, **props: str) -> Image:
    return image(image_id, region, key, "active", False, {markers.SET: SET, markers.KEY: key, **props})


def test_destroy_true_deletes_a_copy_whose_home_image_is_gone():
    copy_id = "00000000-0000-4000-8000-000000000201"
    copy = marked(copy_id, DESTROYED, "JP1", reconciler_copy_of="00000000-0000-4000-8000-0000000000ff")
    plan = one_image_plan(copy)
    # Today: no action and no removed_nothing warning either; the plan says the cloud matches the manifests.
    assert [(a.kind, a.image_id) for a in plan.actions] == [("delete", copy_id)]
