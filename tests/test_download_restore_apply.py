"""The download flag after apply is the one the plan showed: a record a crash or a hand left behind
(`reconciler_download_was`) is cleared, and the flag ends declared, restored from a record the tool could
have written, or left alone, never set to the record's text (which anyone in the project can edit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
IMAGE_ID = "00000000-0000-4000-8000-000000000011"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def make_root(tmp_path: Path, flag: str | None, record: str, manifest: dict) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    config = {"version": 1, "set": "web", "cloud": {"kind": "simulator", "seed": "seed.yaml"}}
    config["defaults"] = {"region": "KR1"}
    (root / "reconciler.yaml").write_text(yaml.safe_dump(config))
    properties = {
        "os_type": "linux",
        "reconciler_set": "web",
        "reconciler_key": "web-base",
        "reconciler_source": f"image:{IMAGE_ID}",
        "reconciler_download_was": record,
    }
    if flag is not None:
        properties["nhncloud_allow_download"] = flag
    seed = {
        "regions": ["KR1"],
        "projects": [{"id": PROJECT, "users": [{"username": "dev@example.com", "api_password": "local-only"}]}],
        "images": [
            {"id": IMAGE_ID, "project": PROJECT, "region": "KR1", "name": "web-base", "size_mb": 1,
             "properties": properties},
        ],
    }  # fmt: skip
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    (root / "images.yaml").write_text(yaml.safe_dump({"version": 1, **manifest}))
    return root


def image_after_apply(root: Path, capsys) -> dict:
    assert main(["apply", str(root), "--auto-approve"]) == 0, capsys.readouterr()
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0, "apply did not converge"
    return state["images"][IMAGE_ID]["fields"]


DECLARED = {"images": {"web-base": {"source": {"image": IMAGE_ID}}}}


def declared(download: bool) -> dict:
    return {"images": {"web-base": {"source": {"image": IMAGE_ID}, "download": download}}}


RELEASED = {"removed": [{"key": "web-base", "destroy": False}]}


@pytest.mark.parametrize(
    ("flag", "record", "manifest", "expected"),
    [
        # A record set by hand with the flag off: only the record goes; the flag stays off.
        ("false", "x\ny", DECLARED, "false"),
        # ... with the flag on: restored to "false", not to the record's text.
        ("true", "x\ny", DECLARED, "false"),
        # A stale record ("true") with no flag at all: the record goes, the flag stays absent.
        (None, "true", DECLARED, None),
        # A crash left the flag on: the declared value wins over the record.
        ("true", "false", declared(True), "true"),
        ("true", "true", declared(False), "false"),
        # Released: the flag is restored from the record in the same update that takes the markers off.
        ("true", "false", RELEASED, "false"),
        ("true", "absent", RELEASED, None),
    ],
)
def test_the_flag_ends_as_planned(tmp_path, capsys, flag, record, manifest, expected):
    image = image_after_apply(make_root(tmp_path, flag, record, manifest), capsys)
    assert image.get("nhncloud_allow_download") == expected
    assert "reconciler_download_was" not in image


def test_a_release_takes_every_marker_off_and_keeps_the_rest(tmp_path, capsys):
    root = make_root(tmp_path, "true", "false", RELEASED)
    image = image_after_apply(root, capsys)
    assert [name for name in image if name.startswith("reconciler_")] == []
    assert (image["name"], image["os_type"], image["protected"]) == ("web-base", "linux", False)
