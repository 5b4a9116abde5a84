"""`reconciler --help` stays cheap (issue 10): building the command line imports no heavy module.

Each case runs in a fresh interpreter, because this test process has imported everything already. Not a
timed test: it checks which modules were imported, which is what makes the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler import cli
from reconciler.simulator import behaviour

# Third-party packages that only the commands themselves need, and the simulator (which imports jsonschema
# and yaml, and is only needed by `simulator` and --sim-state).
HEAVY_PACKAGES = {"jsonschema", "deepdiff", "requests", "yaml", "urllib3"}

PROBE = """
import json, sys
from reconciler.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["plan", "--help"],
        ["apply", "--help"],
        ["validate", "--help"],
        ["import", "--help"],
        ["simulator", "--help"],
        ["simulator", "serve", "--help"],
        ["--version"],
    ],
    ids=" ".join,
)
def test_help_imports_no_heavy_module(argv):
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, timeout=60)
    modules = json.loads(done.stdout.splitlines()[-1])
    heavy = [
        m
        for m in modules
        if m.split(".")[0] in HEAVY_PACKAGES or m == "reconciler.simulator" or m.startswith("reconciler.simulator.")
    ]
    assert heavy == [], f"`reconciler {' '.join(argv)}` imported {heavy}: import them inside the command that runs"


def test_the_parsers_protected_patch_modes_are_the_simulators():
    """The parser spells the modes out so as not to import the simulator; the two must not drift."""
    assert cli.SIMULATOR_PROTECTED_PATCH_MODES == behaviour.PROTECTED_PATCH_MODES


def test_the_parsers_lock_lease_settings_are_the_locks():
    """The parser spells the lease's default and range out so as not to import the lock; they must agree."""
    from reconciler import lock_claims

    assert cli.LOCK_LEASE_DEFAULT_S == lock_claims.DEFAULT_LEASE_S
    assert cli.LOCK_LEASE_RANGE_S == lock_claims.LEASE_RANGE_S
