"""The planner never crashes: on worlds with several images of one key in one region (duplicates, a home
and a stray copy, two copies, an adopted image next to the image a `moved_from` names, leftovers under
temporary names), shared or not, protected or not, strict or permissive, `build_plan` returns a plan (or a
plan with refusals), never a traceback. Every action id in it is unique, and each depends only on actions
of the plan. The planner is pure: hand-made snapshots in, plan out (as tests/unit/test_release_properties.py).
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_worlds import image_record

from reconciler import markers
from reconciler.cloud.records import Image, Member, Server
from reconciler.desired import DesiredState
from reconciler.plan import Target
from reconciler.planner import build_plan
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNERS = ("8989447062e04a818baf9e073fd04fa7", "0123456789abcdef0123456789abcdef")
REGIONS = ("KR1", "KR2")
TARGET = Target("simulator", PROJECT, "loopback", REGIONS, ".reconciler/sim-state.json")
SET = "web"
ADOPTED = "00000000-0000-4000-8000-0000000000a1"  # web's source.image
COPY_ADOPTED = "00000000-0000-4000-8000-0000000000c1"  # web's copies[].image in KR2
# Keys the live images may carry: declared (web, api), re-keyed away (old), released (kept), destroyed
# (gone), and simply undeclared (stray).
KEYS = ("web", "api", "app", "app2", "old", "kept", "gone", "stray")
SHARES = {"absent": None, "none": "[]", "one": f"[{PARTNERS[0]}]"}


def manifest(share: str, protected: str, copy_image: bool) -> str:
    share_line = "" if SHARES[share] is None else f"    share: {SHARES[share]}\n"
    protected_line = "" if protected == "absent" else f"    protected: {protected}\n"
    copy = f"{{region: KR2, image: {COPY_ADOPTED}}}" if copy_image else "{region: KR2}"
    return (
        "version: 1\nimages:\n"
        f"  web:\n    source: {{image: {ADOPTED}}}\n    moved_from: old\n    copies: [{copy}]\n"
        f"{share_line}{protected_line}"
        f"  api:\n    source: {{image: {ADOPTED[:-2]}b1}}\n{share_line}{protected_line}"
        # Two keys imaging one instance; app's copy in KR2 overrides the key's protection.
        f"  app:\n    source: {{instance: app-vm, running: stop}}\n    copies: [{{region: KR2, protected: false}}]\n"
        f"{share_line}{protected_line}"
        "  app2:\n    source: {instance: app-vm, running: stop}\n"
        "removed:\n  - {key: kept, destroy: false}\n  - {key: gone, destroy: true}\n"
    )


@functools.cache
def desired(strict: bool, share: str, protected: str, copy_image: bool) -> DesiredState:
    """The root, read once per variant (validation does the reading; the plans are built in memory)."""
    patch = ", protected_patch: strict" if strict else ""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "reconciler.yaml").write_text(
            f"version: 1\nset: {SET}\ncloud: {{kind: nhn, project: {PROJECT}{patch}}}\ndefaults: {{region: KR1}}\n"
        )
        (root / "m.yaml").write_text(manifest(share, protected, copy_image))
        return load_desired_state(root)


def image(image_id: str, region: str, name: str, status: str, protected: bool, props: dict[str, str]) -> Image:
    return image_record(PROJECT, image_id, region, name, status, protected, props)


@st.composite
def live_image(draw: st.DrawFn, image_id: str, homes: list[str]) -> Image:
    """An image of this set (a home, or a copy of one of `homes` or of an image long gone), one with no
    markers, or one under this set's temporary name."""
    kind = draw(st.sampled_from(["home", "copy", "unmanaged", "temporary"]))
    key = draw(st.sampled_from(KEYS))
    region = draw(st.sampled_from(REGIONS))
    props: dict[str, str] = {}
    name = key
    if kind in ("home", "copy"):
        props = {markers.SET: SET, markers.KEY: key, markers.SOURCE: f"image:{image_id}"}
    if kind == "copy":
        props[markers.COPY_OF] = draw(st.sampled_from([*homes, "00000000-0000-4000-8000-0000000000ff"]))
    if kind == "temporary":
        name = markers.temporary_name(key, SET, key, region)
    if draw(st.booleans()):
        props[markers.DOWNLOAD_FLAG] = "true"
        props[markers.DOWNLOAD_WAS] = draw(st.sampled_from(["false", "absent"]))
    status = draw(st.sampled_from(["active", "active", "queued", "killed"]))
    return image(image_id, region, name, status, draw(st.booleans()), props)


@st.composite
def cloud(draw: st.DrawFn) -> Snapshot:
    """Up to eight live images, ids that may share their first 8 characters, with or without members."""
    images: list[Image] = []
    ids = [ADOPTED, f"{ADOPTED[:-2]}b1", COPY_ADOPTED] + [
        f"0000000{n}-0000-4000-8000-000000000{n:03x}" for n in range(6)
    ]
    ids += [f"00000000-0000-4000-8000-000000000{n:03x}" for n in range(6)]
    chosen = draw(st.lists(st.sampled_from(ids), unique=True, max_size=8))
    for image_id in chosen:
        homes = [i.id for i in images if markers.COPY_OF not in i.properties]
        images.append(draw(live_image(image_id, homes)))
    members = {
        i.id: tuple(
            Member(i.id, p, draw(st.sampled_from(["accepted", "pending"])))
            for p in draw(st.sets(st.sampled_from(PARTNERS)))
        )
        for i in images
    }
    server = Server(
        region="KR1",
        id="5e000000-0000-4000-8000-000000000001",
        name="app-vm",
        status=draw(st.sampled_from(["ACTIVE", "SHUTOFF"])),
        task_state=None,
        flavor_id="f1",
        flavor_name="m2.c1m2",
        root_device=draw(st.sampled_from(["local", "volume"])),
        root_volume_id=None,
        metadata=MappingProxyType(draw(st.sampled_from([{}, {markers.STOPPED_BY: f"{SET}:t0k3n"}]))),
    )
    return Snapshot(
        project=PROJECT, regions=REGIONS, catalog_regions=REGIONS,
        servers=MappingProxyType({("KR1", "app-vm"): server}),
        images=MappingProxyType({r: tuple(sorted((i for i in images if i.region == r), key=lambda i: i.id)) for r in REGIONS}),
        members=MappingProxyType(members),
        server_time=MappingProxyType({r: 1798243200.0 for r in REGIONS}),
    )  # fmt: skip


@settings(
    max_examples=int(os.environ.get("NEVER_CRASHES_EXAMPLES", "1500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    cloud(),
    st.booleans(),
    st.sampled_from(sorted(SHARES)),
    st.sampled_from(["absent", "true", "false"]),
    st.booleans(),
    st.sampled_from([frozenset(), frozenset({"web"}), frozenset({"app", "kept"})]),
)
def test_build_plan_never_raises_and_ids_are_unique(snapshot, strict, share, protected, copy_image, targets):
    plan = build_plan(
        desired(strict, share, protected, copy_image), snapshot, TARGET, max_deletions=1000, targets=targets
    )
    ids = [a.id for a in plan.actions]
    assert len(ids) == len(set(ids)), ids
    for action in plan.actions:
        assert {d.id for d in action.depends_on} <= set(ids), action
        if "compensates" in action.details:
            assert action.details["compensates"] in ids, action


def test_a_home_image_in_a_declared_copy_region_refuses_the_copy_instead_of_crashing():
    """The shape the property found first: web's home image lives in KR2 (its region changed), where web
    declares a copy, next to a stray copy there; shared, protected, strict. Before, the copy's protect and
    shares took the home image's ids and build_plan raised on a duplicate id."""
    home_id, stray_id = ADOPTED, "00000000-0000-4000-8000-000000000002"
    marks = {markers.SET: SET, markers.KEY: "web", markers.SOURCE: f"image:{home_id}"}
    home = image(home_id, "KR2", "web", "active", False, marks)
    stray = image(stray_id, "KR2", "web", "active", False, {**marks, markers.COPY_OF: home_id})
    snapshot = Snapshot(
        project=PROJECT, regions=REGIONS, catalog_regions=REGIONS,
        images=MappingProxyType({"KR1": (), "KR2": (home, stray)}),
        members=MappingProxyType({i: (Member(i, PARTNERS[1], "accepted"),) for i in (home_id, stray_id)}),
    )  # fmt: skip
    plan = build_plan(desired(True, "one", "true", False), snapshot, TARGET, targets=frozenset({"web"}))
    conflicts = [f for f in plan.refusals if f.code == "ownership_conflict"]
    assert [(f.key, f.region) for f in conflicts] == [("web", "KR2")]
    # The home image's own sharing and protection are planned once; the stray copy is left alone.
    assert sorted(a.id for a in plan.actions if a.region == "KR2") == [
        "protect:web:KR2",
        f"share:web:KR2:{PARTNERS[0]}",
        f"unshare:web:KR2:{PARTNERS[1]}",
    ]
    assert all(a.image_id == home_id for a in plan.actions if a.region == "KR2")
