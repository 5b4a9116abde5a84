"""The pure layers stay pure, checked in a fresh interpreter: importing the planner, the plan, the live
snapshot's data and the renderers loads no HTTP, YAML, schema or diff library, no socket, and none of the
cloud client, the lock or the simulator. (The plan is a pure function of its inputs: docs/architecture.md.)"""

from __future__ import annotations

import json
import subprocess
import sys

PURE = (
    "reconciler.planner",
    "reconciler.plan",
    "reconciler.live",
    "reconciler.desired",
    "reconciler.ownership",
    "reconciler.markers",
    "reconciler.render.text",
    "reconciler.render.markdown",
    "reconciler.apply_schedule",
)
FORBIDDEN_TOP = ("requests", "urllib3", "yaml", "socket", "jsonschema", "deepdiff")
FORBIDDEN = (
    "reconciler.cloud.client",
    "reconciler.cloud.transport",
    "reconciler.cloud.auth",
    "reconciler.cloud.nhn",
    "reconciler.lock",
    "reconciler.simulator",
    "reconciler.snapshot",
    "reconciler.yaml_source",
)


def loaded_after_importing(modules: tuple[str, ...]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_pure_layers_load_no_io():
    loaded = loaded_after_importing(PURE)
    offending = [
        name
        for name in loaded
        if name.split(".")[0] in FORBIDDEN_TOP or any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offending == []


def test_the_check_sees_an_io_module():
    # The same check on a layer that does I/O finds it: the test can fail.
    assert "requests" in loaded_after_importing(("reconciler.cloud.transport",))
