"""apply's scheduler: `parallelism` actions at once, at most `region_parallelism` of them in one region,
and the report in plan order whatever order the actions finished in."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from support import OWNER, OWNER_USER

from reconciler.apply import DONE, Applier
from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import connect
from reconciler.plan import Target
from reconciler.planner import build_plan
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

PER_REGION = 6
REGIONS = ("KR1", "JP1")


def seed() -> dict:
    images = [
        {"id": f"00000000-0000-4000-800{r}-{i:012d}", "project": OWNER, "region": region, "name": f"old-{i}",
         "properties": {"os_type": "linux", "reconciler_set": "conc", "reconciler_key": f"{region.lower()}-{i}"}}
        for r, region in enumerate(REGIONS) for i in range(PER_REGION)
    ]  # fmt: skip
    return {
        "regions": list(REGIONS),
        "projects": [{"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]}],
        "images": images,
    }


def manifest(prefix: str) -> str:
    """Every seeded image renamed to `prefix`-N."""
    lines = ["version: 1", "images:"]
    for r, region in enumerate(REGIONS):
        for i in range(PER_REGION):
            lines.append(
                f"  {region.lower()}-{i}: {{name: {prefix}-{i}, region: {region}, "
                f"source: {{image: 00000000-0000-4000-800{r}-{i:012d}}}}}"
            )
    return "\n".join(lines) + "\n"


@pytest.fixture
def renames(make_sim, tmp_path):
    """A client and a plan of 12 independent renames, 6 in each region, against a simulator slow enough
    (25 ms a request) that actions overlap."""
    sim = make_sim(seed(), latency_ms=25)
    (tmp_path / "reconciler.yaml").write_text(f"version: 1\nset: conc\ncloud: {{kind: nhn, project: {OWNER}}}\n")
    (tmp_path / "images.yaml").write_text(manifest("new"))
    desired = load_desired_state(tmp_path)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    plan = build_plan(desired, read_snapshot(client, desired), Target("nhn", OWNER, sim.identity_url, REGIONS))
    assert [a.kind for a in plan.actions] == ["update"] * PER_REGION * len(REGIONS)
    return client, plan


class Occupancy:
    """The most actions running at once, overall and per region, as the scheduler reports them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def __call__(self, event, action, payload) -> None:
        if event not in ("start", "end"):
            return
        with self._lock:
            step = 1 if event == "start" else -1
            for name in (action.region, "all"):
                self.now[name] += step
                self.peak[name] = max(self.peak[name], self.now[name])


def test_a_region_never_runs_more_than_its_cap(renames):
    client, plan = renames
    occupancy = Occupancy()
    report = Applier(client, plan, parallelism=6, region_parallelism=2, progress=occupancy).run()
    assert [r.status for r in report.results] == [DONE] * len(plan.actions)
    assert occupancy.peak == {"KR1": 2, "JP1": 2, "all": 4}


def test_without_a_region_cap_parallelism_alone_bounds_the_run(renames):
    client, plan = renames
    occupancy = Occupancy()
    report = Applier(client, plan, parallelism=6, progress=occupancy).run()
    assert report.succeeded
    assert occupancy.peak["all"] == 6


def test_the_report_keeps_plan_order_whatever_finishes_first(renames):
    client, plan = renames
    report = Applier(client, plan, parallelism=12).run()
    assert [r.action.id for r in report.results] == [a.id for a in plan.actions]
    assert all(client.get_image(a.region, a.image_id).name.startswith("new-") for a in plan.actions)


def test_the_cli_takes_the_cap_from_settings_and_the_flag_overrides_it(tmp_path, monkeypatch, capsys):
    import yaml

    from reconciler.cli import main

    (tmp_path / "seed.yaml").write_text(yaml.safe_dump(seed()))
    (tmp_path / "reconciler.yaml").write_text(
        "version: 1\nset: conc\ncloud: {kind: simulator, seed: seed.yaml}\n"
        "settings: {parallelism: 6, region_parallelism: 3}\n"
    )
    (tmp_path / "images.yaml").write_text(manifest("renamed"))
    used = []
    real_run = Applier.run

    def spy(self):
        used.append((self.parallelism, self.region_parallelism))
        return real_run(self)

    monkeypatch.setattr(Applier, "run", spy)
    assert main(["apply", str(tmp_path), "--auto-approve"]) == 0
    (tmp_path / "images.yaml").write_text(manifest("again"))
    assert main(["apply", str(tmp_path), "--auto-approve", "--region-parallelism", "2"]) == 0
    assert used == [(6, 3), (6, 2)]
    capsys.readouterr()
    assert main(["apply", str(tmp_path), "--auto-approve", "--region-parallelism", "0"]) == 1
    assert "--region-parallelism must be between 1 and 64" in capsys.readouterr().err
