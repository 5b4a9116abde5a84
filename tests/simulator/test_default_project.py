"""A simulator root without cloud.project acts as the seed's first project on every run, also once the
state file exists (it is written with sorted keys, so its first project is the lowest id, not the seed's)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from reconciler.cli import main

FIRST = "ffffffffffffffffffffffffffffffff"  # sorts last
OTHER = "00000000000000000000000000000001"  # sorts first, and has no user


def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    (folder / "reconciler.yaml").write_text(
        yaml.safe_dump({"version": 1, "set": "web", "cloud": {"kind": "simulator", "seed": "seed.yaml"}})
    )
    seed = {
        "regions": ["KR1"],
        "projects": [
            {"id": FIRST, "users": [{"username": "dev@example.com", "api_password": "local-only"}]},
            {"id": OTHER},
        ],
    }
    (folder / "seed.yaml").write_text(yaml.safe_dump(seed, sort_keys=False))
    return folder


def test_every_run_acts_as_the_seeds_first_project(tmp_path, capsys, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    folder = root(tmp_path)
    for run in ("first run (the state is made from the seed)", "second run (the state file is read)"):
        assert main(["plan", str(folder), "--format", "json"]) == 0, run
        assert json.loads(capsys.readouterr().out)["target"]["project"] == FIRST, run
