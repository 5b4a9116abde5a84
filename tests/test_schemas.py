"""The JSON Schemas ship with the package: found from the source tree (editable install) and inside a
built wheel (regular install), from one copy in the top-level schemas/ folder."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from reconciler.schemas import load_schema, schema_dir

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILES = sorted(p.name for p in (REPO / "schemas").glob("*.schema.json"))


def test_every_schema_is_a_valid_2020_12_schema():
    assert SCHEMA_FILES, "no schemas found"
    for name in SCHEMA_FILES:
        schema = load_schema(name.removesuffix(".schema.json"))
        jsonschema.Draft202012Validator.check_schema(schema)


def test_lookup_finds_the_one_copy_in_this_install():
    assert sorted(p.name for p in schema_dir().glob("*.schema.json")) == SCHEMA_FILES


@pytest.mark.skipif(not (REPO / "pyproject.toml").exists(), reason="needs the source tree")
def test_the_wheel_carries_the_schemas_inside_the_package(tmp_path):
    pytest.importorskip("hatchling", reason="hatchling is part of the test extra")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("nhncloud_image_reconciler-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = sorted(Path(name).name for name in archive.namelist() if name.startswith("reconciler/_schemas/"))
        assert packaged == SCHEMA_FILES
        seed = json.loads(archive.read("reconciler/_schemas/seed.schema.json"))
    assert seed == load_schema("seed")

    # Installed from the wheel (no source tree beside it), the package finds its own copy.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
    )
    probe = "from reconciler.schemas import schema_dir, load_schema; print(schema_dir()); load_schema('seed')"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == target / "reconciler" / "_schemas"


def test_limits_the_code_repeats_are_the_schemas():
    """The CLI bounds its parallelism flags like the settings, and import leaves out a name a manifest could
    not hold: both copy a schema's limit, and must follow it."""
    from reconciler import cli, importer

    settings = load_schema("root")["properties"]["settings"]["properties"]
    for name in ("parallelism", "region_parallelism"):
        assert cli.PARALLELISM_RANGE == (settings[name]["minimum"], settings[name]["maximum"])
    assert importer.MAX_TEXT == load_schema("manifest")["$defs"]["image"]["properties"]["name"]["maxLength"]
