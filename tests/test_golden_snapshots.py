"""The live state behind each golden plan, as data: `tests/cases/<name>/snapshot.json` is the `Snapshot`
that `reconciler plan` reads from the embedded simulator for that case, written by tests/snapshot_data.py.
tests/test_golden_pure.py plans from it with no simulator. Like the command, the capture reads who uses the
images (servers and volumes) only in the regions where a first plan deletes something (reconciler/planning.py):
the snapshot holds that usage, so one pure plan from it is the command's second plan.

Capture (with the goldens' flag, and review the diff):
`RECONCILER_UPDATE_GOLDEN=1 python -m pytest -q tests/test_golden_snapshots.py`.
Without the flag, each case is captured again and must equal the stored file.

Times are the one part of a live snapshot that is not the same twice: the simulator stamps every seeded
image with the real time at seeding and answers with the real time a moment later (the `Date` header,
`server_time`). The capture writes them as one fixed instant, seeding and reading alike. That keeps what
the planner reads of time (the order of images by `created_at`, and a temporary-name image's age against
the timeout, a few seconds live, 0 here) and is checked, not assumed: a case whose images were stamped at
different times, or read long after seeding, fails the capture instead of being rewritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
from snapshot_data import snapshot_from_json, snapshot_to_json

from reconciler import target
from reconciler.cloud.records import Image, parse_server_time
from reconciler.connect import open_cloud
from reconciler.live import SharedImage
from reconciler.plan import Target
from reconciler.planning import plan_live
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")
# The instant every captured time is written as (seeding and reading alike).
SEEDED_AT = "2026-01-01T00:00:00Z"
SEEDED_EPOCH = 1767225600.0
# Longest a capture may take from seeding to reading for its times to count as "the same instant".
MOST_SECONDS_TO_READ = 120.0


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "root").is_dir())


def capture(case: str, tmp_path: Path) -> tuple[Snapshot, Target]:
    """The snapshot and target `reconciler plan <root>` reads for `case`, as reconciler/commands/plan.py
    gets them (plan_live: usage read where the plan deletes), times fixed (normalize_times). The root is
    copied without `.reconciler/` (ignored by git): a state left there by an earlier run would be read
    instead of the seed."""
    root = tmp_path / case / "root"
    shutil.copytree(CASES / case / "root", root, ignore=shutil.ignore_patterns(".reconciler"))
    desired = load_desired_state(root)
    cloud = target.effective_cloud(desired.root, None)
    env = {name: value for name, value in os.environ.items() if name not in CREDENTIAL_VARIABLES}
    with open_cloud(desired.root, cloud, env) as (client, plan_target):
        snapshot, _ = plan_live(client, desired, plan_target, lambda _: {})
    return normalize_times(case, snapshot), plan_target


def normalize_times(case: str, snapshot: Snapshot) -> Snapshot:
    shared = [each.image for found in snapshot.shared.values() for each in found]
    images = [*snapshot.all_images(), *(i for i in snapshot.foreign.values() if i is not None), *shared]
    stamps = {stamp for image in images for stamp in (image.created_at, image.updated_at) if stamp is not None}
    assert len(stamps) <= 1, f"{case}: the images were stamped at different times ({sorted(stamps)})"
    seeded = parse_server_time(next(iter(stamps))) if stamps else None
    for region, now in snapshot.server_time.items():
        if now is not None and seeded is not None:
            assert 0 <= now - seeded <= MOST_SECONDS_TO_READ, (
                f"{case}: {region} was read {now - seeded} s after seeding"
            )
    return dataclasses.replace(
        snapshot,
        images=MappingProxyType({region: tuple(_fixed(i) for i in found) for region, found in snapshot.images.items()}),
        foreign=MappingProxyType({k: None if i is None else _fixed(i) for k, i in snapshot.foreign.items()}),
        server_time=MappingProxyType({r: None if t is None else SEEDED_EPOCH for r, t in snapshot.server_time.items()}),
        shared=MappingProxyType(
            {region: tuple(_fixed_shared(s) for s in found) for region, found in snapshot.shared.items()}
        ),
    )


def _fixed(image: Image) -> Image:
    return dataclasses.replace(
        image,
        created_at=None if image.created_at is None else SEEDED_AT,
        updated_at=None if image.updated_at is None else SEEDED_AT,
    )


def _fixed_shared(shared: SharedImage) -> SharedImage:
    return dataclasses.replace(shared, image=_fixed(shared.image))


def plan_target(case: str) -> Mapping:
    return json.loads((CASES / case / "plan.json").read_text(encoding="utf-8"))["target"]


def test_the_fixed_instant_is_the_one_written():
    assert parse_server_time(SEEDED_AT) == SEEDED_EPOCH


@pytest.mark.parametrize("case", case_names())
def test_snapshot_json_is_the_live_snapshot(case, tmp_path):
    snapshot, live_target = capture(case, tmp_path)
    assert live_target.to_json() == plan_target(case), "the target the CLI puts in plan.json"
    document = snapshot_to_json(snapshot)
    assert snapshot_from_json(document) == snapshot, "the codec round-trips the live snapshot"
    path = CASES / case / "snapshot.json"
    if UPDATE:
        path.write_text(document, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with RECONCILER_UPDATE_GOLDEN=1 and review it"
    assert document == path.read_text(encoding="utf-8"), f"{path} is stale: re-capture it and review the diff"
