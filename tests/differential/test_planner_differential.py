"""The planner, while issue 20 splits it into concern modules, plans exactly what it planned before: on
generated (manifests, live state) pairs, `reconciler.planner.build_plan` and the frozen copy of the planner
the issue started from (frozen_planner.py, frozen_ownership.py: commit 20bb059) give the same plan JSON,
or fail with the same error.

The worlds are small on purpose, so that things collide: a few keys with homes and copies in three
regions, protected or not, strict or permissive; shares and their members (one added by hand); download
flags and their records; temporary-name images (running, finished, killed, old-form tokens, other sets');
other sets' images under the same keys; `removed:` entries (release and destroy); `moved_from`; adoption
by id (unmanaged, another set's, another key's, another project's, missing); instances listed or read in
full, stopped by a run or not; and the plan options (max_deletions, --target / --exclude, --timeout).

Deterministic (derandomized, no example database): CI runs the same 200 examples each time, in about
10 s. A failure shows the diff of the two plans' JSON (frozen, then live) and the smallest world found;
RECONCILER_DIFFERENTIAL_SHRINK=0 skips the search for the smallest one. Deleted at the end of issue 20
with the frozen copy.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from reconciler import markers
from reconciler.cloud.records import Image, Member, Server
from reconciler.desired import DesiredState
from reconciler.plan import Target
from reconciler.planner import build_plan
from reconciler.render.json import render_json
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

from . import frozen_planner
from .frozen_ownership import classify_desired

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
ELSEWHERE = "aaaabbbbccccddddeeeeffff00001111"  # another project: its images cannot be adopted
PARTNERS = ("8989447062e04a818baf9e073fd04fa7", "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f")
BY_HAND = "partner-added-by-hand"  # a member no run of the tool would add
REGIONS = ("JP1", "KR1", "KR2")
HOME = "KR1"  # defaults.region
SET, OTHER_SET = "web", "mobile"
KEYS = ("web-a", "web-b", "web-c")
GONE = ("gone-x", "gone-y")  # keys no longer declared: under removed:, or simply dropped
OLD = ("old-a", "old-b")  # keys a moved_from re-keys
SERVERS = {"golden-1": "00000000-0000-4000-8000-00000000a001", "golden-2": "00000000-0000-4000-8000-00000000a002"}
TARGET = Target("nhn", PROJECT, "https://api-identity.example.com/v2.0", REGIONS)
# created_at values around the server's clock, so a temporary-name image is younger, as old as, or older
# than the timeout (an hour by default, a minute with timeout=60).
CREATED = ("2026-11-26T00:00:00Z", "2026-11-26T00:59:30Z", "2026-11-26T01:00:00Z", None)
SERVER_NOW = 1795654800.0  # 2026-11-26T01:00:00Z
FLAGS = (None, "true", "false", "yes")
RECORDS = (None, "true", "false", "absent", "odd")


def image_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012x}"


# -- the root ------------------------------------------------------------------------------------------


@functools.cache
def load_root(config: str, manifest: str) -> DesiredState:
    """The root with these two files, validated (cached: many examples share a root)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "reconciler.yaml").write_text(config, encoding="utf-8")
        (root / "images.yaml").write_text(manifest, encoding="utf-8")
        return load_desired_state(root)


@st.composite
def root_config(draw: st.DrawFn) -> str:
    patch = draw(st.sampled_from(["permissive", "strict"]))
    lines = [
        "version: 1",
        f"set: {SET}",
        f"cloud: {{kind: nhn, project: {PROJECT}, protected_patch: {patch}}}",
        f"defaults: {{region: {HOME}}}",
    ]
    knobs = {}
    if draw(st.booleans()):
        knobs["max_deletions"] = draw(st.sampled_from([0, 1, 10]))
    if draw(st.booleans()):
        knobs["allow_empty_set"] = draw(st.booleans())
    if knobs:
        lines.append("settings: " + json.dumps(knobs))
    return "\n".join(lines) + "\n"


@dataclass
class Ids:
    """Image ids, handed out once each per world."""

    next: int = 0x100

    def new(self) -> str:
        self.next += 1
        return image_id(self.next)


@st.composite
def image_entry(draw: st.DrawFn, key: str, ids: Ids, old_keys: list[str]) -> dict[str, Any]:
    """One key's manifest entry (as YAML data)."""
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["name"] = draw(st.sampled_from([key, f"{key}-v2", "shared-name"]))
    if draw(st.booleans()):
        entry["region"] = draw(st.sampled_from(REGIONS))
    home = entry.get("region", HOME)
    entry["source"] = draw_source(draw, ids)
    if old_keys and draw(st.booleans()):
        entry["moved_from"] = old_keys.pop()
    for field_name, values in (
        ("protected", [True, False]),
        ("download", [True, False]),
        ("min_disk", [0, 20]),
        ("min_ram", [1024]),
        ("description", ["Golden image"]),
    ):
        if draw(st.booleans()):
            entry[field_name] = draw(st.sampled_from(values))
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(["login_username", "team", "os_type"]), unique=True))
        entry["properties"] = {name: draw(st.sampled_from(["ubuntu", "linux", "web"])) for name in names}
    copies = draw_copies(draw, key, home, ids)
    if copies:
        entry["copies"] = copies
    if draw(st.booleans()):
        entry["share"] = draw(st.sampled_from([[], [PARTNERS[0]], list(PARTNERS)]))
    return entry


# The draw_* helpers draw with their caller's `draw` (no strategy of their own), so the examples drawn are
# the same as when their bodies were inline.


def draw_source(draw: st.DrawFn, ids: Ids) -> dict[str, Any]:
    """An entry's source: an image (taken over or not) or an instance (with a running policy or not)."""
    if draw(st.booleans()):
        source: dict[str, Any] = {"image": ids.new()}
        if draw(st.booleans()):
            source["takeover"] = draw(st.sampled_from([True, False]))
    else:
        source = {"instance": draw(st.sampled_from([*SERVERS, SERVERS["golden-1"]]))}
        if draw(st.booleans()):
            source["running"] = draw(st.sampled_from(["stop", "allow", "refuse"]))
    return source


def draw_copies(draw: st.DrawFn, key: str, home: str, ids: Ids) -> list[Any]:
    """An entry's copies, in regions other than `home`: plain, named, protected or adopted by id."""
    copies: list[Any] = []
    for region in draw(st.lists(st.sampled_from([r for r in REGIONS if r != home]), unique=True)):
        shape = draw(st.sampled_from(["plain", "named", "protected", "adopted"]))
        if shape == "plain":
            copies.append(region)
        elif shape == "named":
            copies.append({"region": region, "name": f"{key}-{region.lower()}"})
        elif shape == "protected":
            copies.append({"region": region, "protected": draw(st.booleans())})
        else:
            copies.append({"region": region, "image": ids.new()})
    return copies


@st.composite
def manifest(draw: st.DrawFn, ids: Ids) -> str:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=0 if draw(st.integers(0, 9)) == 9 else 1))
    old_keys = list(OLD)
    images = {key: draw(image_entry(key, ids, old_keys)) for key in keys}
    removed = [
        {"key": key, "destroy": draw(st.booleans())} for key in draw(st.lists(st.sampled_from(GONE), unique=True))
    ]
    document: dict[str, Any] = {"version": 1, "images": images}
    if removed:
        document["removed"] = removed
    return yaml.safe_dump(document, sort_keys=False)


# -- the live state ------------------------------------------------------------------------------------


@dataclass
class Cloud:
    """The live images drawn so far, and the members of the shared ones."""

    ids: Ids
    images: list[Image]
    members: dict[str, tuple[Member, ...]]


@st.composite
def live_image(
    draw: st.DrawFn,
    cloud: Cloud,
    region: str,
    name: str,
    marks: dict[str, str],
    *,
    image: str | None = None,
    statuses: tuple[str, ...] = ("active", "active", "active", "queued", "saving", "killed", "deactivated"),
) -> Image:
    """An image of this project with `marks` and drawn attributes, added to `cloud`."""
    props: dict[str, Any] = dict(marks)
    if draw(st.booleans()):
        props["os_type"] = draw(st.sampled_from(["linux", "windows"]))
    for name_ in ("login_username", "team", "description"):
        if draw(st.booleans()):
            props[name_] = draw(st.sampled_from(["ubuntu", "web", "Golden image"]))
    if marks and draw(st.booleans()):
        props[markers.PROPS] = ",".join(draw(st.lists(st.sampled_from(["login_username", "team", "os_type"]))))
    flag, record = draw(st.sampled_from(FLAGS)), draw(st.sampled_from(RECORDS))
    if flag is not None:
        props[markers.DOWNLOAD_FLAG] = flag
    if record is not None:
        props[markers.DOWNLOAD_WAS] = record
    if draw(st.booleans()):
        props["instance_uuid"] = draw(st.sampled_from([*SERVERS.values(), image_id(0xDEAD)]))
    visibility = draw(st.sampled_from(["shared", "private"]))
    found = Image(
        region=region,
        id=image or cloud.ids.new(),
        name=name,
        status=draw(st.sampled_from(statuses)),
        visibility=visibility,
        protected=draw(st.booleans()),
        owner=PROJECT,
        min_disk=draw(st.sampled_from([0, 20])),
        min_ram=draw(st.sampled_from([0, 1024])),
        size=draw(st.sampled_from([None, 17104896])),
        virtual_size=16777216,
        checksum=draw(st.sampled_from([None, "c" * 32])),
        os_hash_value=None,
        disk_format="qcow2",
        container_format="bare",
        tags=(),
        created_at=draw(st.sampled_from(CREATED)),
        updated_at=None,
        properties=MappingProxyType(props),
    )
    cloud.images.append(found)
    if visibility == "shared" and draw(st.integers(0, 2)) != 0:
        members = draw(st.lists(st.sampled_from([*PARTNERS, BY_HAND]), unique=True))
        cloud.members[found.id] = tuple(
            Member(found.id, member, draw(st.sampled_from(["accepted", "pending", "rejected"]))) for member in members
        )
    return found


def marks(set_name: str, key: str, source: str, copy_of: str | None = None) -> dict[str, str]:
    found = {markers.SET: set_name, markers.KEY: key, markers.SOURCE: source}
    if copy_of is not None:
        found[markers.COPY_OF] = copy_of
    return found


def source_of(spec_source: Any) -> str:
    if spec_source.image is not None:
        return f"image:{spec_source.image}"
    return f"instance:{SERVERS.get(spec_source.instance, spec_source.instance)}"


@st.composite
def home_of(draw: st.DrawFn, cloud: Cloud, spec: Any, foreign: dict[str, Image | None]) -> str | None:
    """The key's live home image, in one of the ways one can be (or none); its id."""
    elsewhere = draw(st.sampled_from([spec.region, spec.region, *REGIONS]))
    ways = ["marked", "none", "temporary", "marked-elsewhere", "none", "duplicate"]
    if spec.source.image is not None:
        ways = ["adoptable", *ways, "adoptable", "other-set", "other-key", "foreign", "invisible"]
    if spec.moved_from is not None:
        ways += ["moved", "moved"]
    way = draw(st.sampled_from(ways))
    mine = marks(SET, spec.key, draw(st.sampled_from([source_of(spec.source), "image:" + image_id(0xBEEF)])))
    if way in ("adoptable", "other-set", "other-key", "foreign", "invisible"):
        return draw_adoption_home(draw, cloud, spec, foreign, way, elsewhere)
    return draw_own_home(draw, cloud, spec, way, mine, elsewhere)


def draw_own_home(
    draw: st.DrawFn, cloud: Cloud, spec: Any, way: str, mine: dict[str, str], elsewhere: str
) -> str | None:
    """A home image this set made (`mine`: its markers), in `way`; its id, or None for none."""
    key, region, name = spec.key, spec.region, spec.display_name
    if way == "none":
        return None
    if way in ("marked", "duplicate"):
        adopt = spec.source.image
        first = draw(live_image(cloud, region, name, mine, image=adopt if draw(st.booleans()) else None))
        if way == "duplicate":
            draw(live_image(cloud, region, draw(st.sampled_from([name, f"{name}-copy"])), mine))
        return first.id
    if way == "marked-elsewhere":
        return draw(live_image(cloud, elsewhere, name, mine)).id
    if way == "temporary":
        temporary = markers.temporary_name(name, SET, key, region)
        extra = mine if draw(st.booleans()) else {}
        return draw(live_image(cloud, region, temporary, extra, statuses=("active", "queued", "saving", "killed"))).id
    assert way == "moved" and spec.moved_from is not None
    return draw(live_image(cloud, region, name, marks(SET, spec.moved_from, source_of(spec.source)))).id


def draw_adoption_home(
    draw: st.DrawFn, cloud: Cloud, spec: Any, foreign: dict[str, Image | None], way: str, elsewhere: str
) -> str | None:
    """The image `source.image` names, in `way`: adoptable, another set's or key's, another project's
    (in `foreign`) or none at all; its id when this project sees it."""
    key, region, name, adopt = spec.key, spec.region, spec.display_name, spec.source.image
    if way == "adoptable":
        return draw(live_image(cloud, elsewhere, draw(st.sampled_from([name, "by-hand"])), {}, image=adopt)).id
    if way == "other-set":
        return draw(live_image(cloud, region, name, marks(OTHER_SET, key, f"image:{adopt}"), image=adopt)).id
    if way == "other-key":
        other = draw(st.sampled_from([k for k in KEYS if k != key]))
        return draw(live_image(cloud, region, name, marks(SET, other, f"image:{adopt}"), image=adopt)).id
    if way == "foreign":
        foreign[adopt] = Image(
            region=region, id=adopt, name=name, status="active", visibility="shared", protected=False,
            owner=ELSEWHERE, min_disk=0, min_ram=0, size=None, virtual_size=None, checksum=None, os_hash_value=None,
            disk_format="qcow2", container_format="bare", tags=(), created_at=CREATED[0], updated_at=None,
        )  # fmt: skip
        return None
    foreign[adopt] = None  # invisible: no such image, or not visible to this project
    return None


@st.composite
def copies_of(draw: st.DrawFn, cloud: Cloud, spec: Any, home: str | None, foreign: dict[str, Image | None]) -> None:
    """Live copies of the key: in its declared copy regions and elsewhere, finished or not, adoptable."""
    regions = [copy.region for copy in spec.copies] + draw(st.lists(st.sampled_from(REGIONS), max_size=1))
    for region in regions:
        declared = next((copy for copy in spec.copies if copy.region == region), None)
        name = (declared.name if declared is not None else None) or spec.display_name
        way = draw(st.sampled_from(["copy", "none", "adopt", "unfinished", "temporary", "stale", "copy"]))
        of = home if home is not None and way != "stale" else image_id(0xFF)
        mine = marks(SET, spec.key, source_of(spec.source), copy_of=of)
        if way in ("copy", "stale"):
            draw(live_image(cloud, region, name, mine))
        elif way == "unfinished":
            draw(live_image(cloud, region, name, mine, statuses=("queued", "saving", "killed")))
        elif way == "temporary":
            draw(live_image(cloud, region, markers.temporary_name(name, SET, spec.key, region), mine))
        elif way == "adopt" and declared is not None and declared.image is not None:
            if draw(st.booleans()):
                draw(live_image(cloud, region, name, {}, image=declared.image))
            else:
                foreign[declared.image] = None


@st.composite
def strays(draw: st.DrawFn, cloud: Cloud, desired: DesiredState) -> None:
    """Images no declared key owns: removed and dropped keys' (homes and copies), other sets', unmanaged
    ones under a declared name, temporary-name leftovers (this set's, old-form, another set's), and an image
    with markers no run of the tool writes."""
    for key in (*GONE, *OLD):
        for _ in range(draw(st.integers(0, 2))):
            region = draw(st.sampled_from(REGIONS))
            home = draw(live_image(cloud, region, key, marks(SET, key, "image:" + image_id(0xA0)))).id
            if draw(st.booleans()):
                copy_region = draw(st.sampled_from([r for r in REGIONS if r != region]))
                of = draw(st.sampled_from([home, image_id(0xFF)]))
                draw(live_image(cloud, copy_region, key, marks(SET, key, f"image:{home}", copy_of=of)))
    names = [spec.display_name for spec in desired.images] + ["unrelated"]
    for _ in range(draw(st.integers(0, 3))):
        region = draw(st.sampled_from(REGIONS))
        name = draw(st.sampled_from(names))
        key = draw(st.sampled_from([*KEYS, *GONE]))
        way = draw(st.sampled_from(["other-set", "unmanaged", "leftover", "old-token", "other-token", "invalid"]))
        if way == "other-set":
            draw(live_image(cloud, region, name, marks(OTHER_SET, key, "image:" + image_id(0xB0))))
        elif way == "unmanaged":
            draw(live_image(cloud, region, name, {}))
        elif way == "leftover":
            draw(live_image(cloud, region, markers.temporary_name(name, SET, key, region), {}))
        elif way == "old-token":
            draw(live_image(cloud, region, f"{name}~rc-{markers.name_token(SET, key, region)}", {}))
        elif way == "other-token":
            draw(live_image(cloud, region, markers.temporary_name(name, OTHER_SET, key, region), {}))
        else:
            draw(live_image(cloud, region, name, marks(SET, "bad:key", "image:" + image_id(0xC0))))


@st.composite
def server(draw: st.DrawFn, region: str, ref: str, full: bool) -> Server | None:
    """The instance `ref` names: missing, as a list shows it, or read in full for imaging (`full`)."""
    if draw(st.integers(0, 5)) == 5:
        return None
    server_id = SERVERS.get(ref, ref)
    name = next((n for n, i in SERVERS.items() if i == server_id), "golden-x")
    root = draw(st.sampled_from(["local", "volume"])) if full else None
    metadata = {"os_type": draw(st.sampled_from(["linux", "windows"]))}
    metadata["image_name"] = draw(st.sampled_from(["Ubuntu 22.04 (2024.01.16)", "Windows 2016 (2019.05.28)", "Plain"]))
    if draw(st.booleans()):
        metadata[markers.STOPPED_BY] = draw(st.sampled_from([f"{SET}:run-1", SET, f"{OTHER_SET}:run-2"]))
    return Server(
        region=region,
        id=server_id,
        name=name,
        status=draw(st.sampled_from(["ACTIVE", "SHUTOFF", "SHUTOFF", "ERROR"])),
        task_state=draw(st.sampled_from([None, None, "image_snapshot"])),
        flavor_id="flavor-1",
        flavor_name=draw(st.sampled_from(["u2.c2m4", "m2.c4m8"])) if full else None,
        root_device=root,
        root_volume_id="vol-1" if root == "volume" else None,
        metadata=MappingProxyType(metadata),
        image_id=draw(st.sampled_from([None, image_id(0xBA5E)])),
    )


@st.composite
def live_state(draw: st.DrawFn, desired: DesiredState, ids: Ids) -> Snapshot:
    cloud = Cloud(ids, [], {})
    foreign: dict[str, Image | None] = {}
    for spec in desired.images:
        home = draw(home_of(cloud, spec, foreign))
        draw(copies_of(cloud, spec, home, foreign))
    draw(strays(cloud, desired))
    regions = draw(st.sampled_from([REGIONS, REGIONS, REGIONS, ("JP1", "KR1")]))
    # As read_snapshot reads them: in full only for a key without a home image (by the frozen sorting).
    homes = classify_desired((i for i in cloud.images if i.region in regions), desired).home
    servers = {
        (spec.region, spec.source.instance): draw(server(spec.region, spec.source.instance, spec.key not in homes))
        for spec in desired.images
        if spec.source.instance is not None
    }
    clock = {region: draw(st.sampled_from([SERVER_NOW, SERVER_NOW, None])) for region in regions}
    return Snapshot(
        project=PROJECT,
        regions=regions,
        catalog_regions=REGIONS,
        images=MappingProxyType(
            {r: tuple(sorted((i for i in cloud.images if i.region == r), key=lambda i: i.id)) for r in regions}
        ),
        members=MappingProxyType(cloud.members),
        servers=MappingProxyType(servers),
        foreign=MappingProxyType(foreign),
        server_time=MappingProxyType(clock),
    )


@dataclass(frozen=True)
class World:
    desired: DesiredState
    snapshot: Snapshot
    options: dict[str, Any]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    ids = Ids()
    desired = load_root(draw(root_config()), draw(manifest(ids)))
    snapshot = draw(live_state(desired, ids))
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        options["max_deletions"] = draw(st.sampled_from([0, 1, 3]))
    if draw(st.integers(0, 9)) == 9:  # a partial plan: rare, since it leaves most of the world out
        field_name = draw(st.sampled_from(["targets", "excludes"]))
        options[field_name] = frozenset(draw(st.lists(st.sampled_from([*KEYS, *GONE]), min_size=1, unique=True)))
    if draw(st.booleans()):
        options["timeout"] = draw(st.sampled_from([60.0, 3600.0, 7200.0]))
    return World(desired, snapshot, options)


# -- the property --------------------------------------------------------------------------------------


def outcome(build: Callable[..., Any], world: World) -> tuple[str, str]:
    """The plan's JSON, or the error it failed with: both planners must agree on either."""
    try:
        plan = build(world.desired, world.snapshot, TARGET, **world.options)
    except Exception as error:  # noqa: BLE001 - the same failure is the same behaviour
        return "error", f"{type(error).__name__}: {error}"
    return "plan", render_json(plan.to_json())


# RECONCILER_DIFFERENTIAL_SHRINK=0: report the first failing example as found, in seconds, instead of the
# smallest one (shrinking a failure can take minutes).
SHRINK = os.environ.get("RECONCILER_DIFFERENTIAL_SHRINK", "1") != "0"


@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    phases=tuple(Phase) if SHRINK else (Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(worlds())
def test_the_planner_plans_what_the_frozen_planner_planned(world):
    live, frozen = outcome(build_plan, world), outcome(frozen_planner.build_plan, world)
    assert live == frozen, "\n".join(
        difflib.unified_diff(frozen[1].splitlines(), live[1].splitlines(), "frozen (20bb059)", "live", lineterm="")
    )
