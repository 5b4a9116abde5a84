"""The simulator's layering (issue 20): its modules import one another one way only, and nothing on a
real-cloud path loads it; the one-line target description loads no HTTP client.

The module graph is read from the source with `ast`, so every import counts: those under `TYPE_CHECKING` and
those inside functions too. A loop hidden behind either is still two modules that each need the other.
The "not loaded" checks run in a fresh interpreter, because this test process has imported everything.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).resolve().parents[2] / "reconciler" / "simulator"
PACKAGE = "reconciler.simulator"
# The modules that answer requests: they may know the app and the HTTP plumbing, never the server, the
# routing table or the layers that run before them (faults, authentication).
HANDLERS = ("admin", "identity", "images", "image_data", "image_members", "image_records", "compute", "volumes")
PIPELINE = ("server", "routes", "faults", "authentication")
PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"


def module_name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def simulator_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SIMULATOR.glob("*.py"))}


def imported_by(path: Path, modules: dict[str, Path]) -> set[str]:
    """The simulator modules that `path` imports, anywhere in the file."""
    found: set[str] = set()
    package_parts = PACKAGE.split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this file is in
                base = ".".join([*package_parts[: len(package_parts) - node.level + 1], *filter(None, [base])])
            # `from reconciler.simulator import images` names a module; `... import running_simulator` a name.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
    return {name for name in found if name in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    modules = simulator_modules()
    return {name: imported_by(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop as the list of modules around it (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_loop_and_only_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_under_type_checking_and_inside_functions(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from reconciler.simulator import images, running_simulator\n"
        "if TYPE_CHECKING:\n    from reconciler.simulator.state import StateStore\n"
        "def f():\n    import reconciler.simulator.qcow2\n"
    )
    modules = simulator_modules()
    assert imported_by(source, modules) == {
        PACKAGE,
        f"{PACKAGE}.images",
        f"{PACKAGE}.state",
        f"{PACKAGE}.qcow2",
    }


def test_the_simulators_modules_import_each_other_one_way():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import loop in the simulator: {' -> '.join(cycle or [])}"


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_knows_neither_the_server_nor_the_layers_before_it(handler):
    graph = import_graph()
    name = f"{PACKAGE}.{handler}"
    assert name in graph, f"{name} is gone: update HANDLERS"
    wrong = sorted(graph[name] & {f"{PACKAGE}.{layer}" for layer in PIPELINE})
    assert wrong == [], f"{name} imports {wrong}: a handler gets what it needs from the app it is handed"


# -- fresh interpreters ---------------------------------------------------------------------------------


def loaded_modules(script: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a fresh interpreter has loaded after `script`, which prints them as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def simulator_loaded(modules: list[str]) -> list[str]:
    return [m for m in modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]


@pytest.fixture
def nhn_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "reconciler.yaml").write_text(
        f"version: 1\nset: web-platform\ncloud: {{kind: nhn, project: {PROJECT}, regions: [KR1]}}\n"
        "defaults: {region: KR1}\n"
    )
    return root


@pytest.fixture
def closed_identity_url() -> str:
    """A loopback identity URL nobody listens on: a real-cloud run fails there at once, without network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2.0"


def cloud_env(identity_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("NHN_CLOUD_", "OS_", "RECONCILER_"))}
    return {
        **keep,
        "NHN_CLOUD_USERNAME": "dev@example.com",
        "NHN_CLOUD_API_PASSWORD": "not-a-real-password",
        "NHN_CLOUD_IDENTITY_URL": identity_url,
        "RECONCILER_HTTP_TIMEOUT": "5",
    }


def test_opening_a_real_cloud_loads_no_simulator(nhn_root, closed_identity_url):
    """`open_cloud` of a kind: nhn root builds its client (regions given: nothing is sent) without the
    simulator, which only a simulator target needs."""
    modules = loaded_modules(
        """
        import json, os, sys
        from pathlib import Path
        from reconciler.connect import open_cloud
        from reconciler.validate import load_desired_state

        desired = load_desired_state(Path(sys.argv[1]))
        assert desired.root.cloud.kind == "nhn"
        with open_cloud(desired.root, desired.root.cloud, os.environ) as (client, target):
            assert target.kind == "nhn" and target.regions == ("KR1",), target
        print(json.dumps(sorted(sys.modules)))
        """,
        str(nhn_root),
        env=cloud_env(closed_identity_url),
    )
    assert "reconciler.connect" in modules and "reconciler.cloud.nhn" in modules
    assert simulator_loaded(modules) == [], "a real-cloud run loaded the simulator: import it where it is used"


def test_a_real_cloud_plan_loads_no_simulator(nhn_root, closed_identity_url):
    """The whole `reconciler plan` path of a kind: nhn root, up to the identity call that nobody answers."""
    modules = loaded_modules(
        """
        import json, sys
        from reconciler.cli import main
        try:
            code = main(["plan", sys.argv[1]])
        except SystemExit as exit:
            code = exit.code
        assert code not in (0, None), "the plan cannot succeed: nobody answers the identity URL"
        print(json.dumps(sorted(sys.modules)))
        """,
        str(nhn_root),
        env=cloud_env(closed_identity_url),
    )
    assert "reconciler.connect" in modules and "reconciler.cloud.nhn" in modules
    assert simulator_loaded(modules) == [], "a real-cloud plan loaded the simulator: import it where it is used"


def test_the_target_description_loads_no_http_client():
    """`target.describe` is a pure description: it needs the identity URL's setting, not the auth client."""
    modules = loaded_modules(
        """
        import json, sys
        from reconciler import target
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert "reconciler.target" in modules
    heavy = [m for m in modules if m.split(".")[0] in ("requests", "urllib3") or m == "reconciler.cloud.auth"]
    assert heavy == [], f"importing reconciler.target loaded {heavy}"


def test_doctors_scratch_image_loads_only_the_qcow2_builder():
    """`reconciler doctor` on a real cloud uploads a scratch qcow2 made by the simulator's builder: that
    import must not start the package's server, seed schema or YAML."""
    modules = loaded_modules(
        """
        import json, sys
        from reconciler.doctor.probes import scratch_qcow2

        assert scratch_qcow2("layers").startswith(b"QFI")
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert simulator_loaded(modules) == [PACKAGE, f"{PACKAGE}.qcow2"]
    heavy = [m for m in modules if m.split(".")[0] in ("jsonschema", "yaml")]
    assert heavy == [], f"building doctor's scratch image loaded {heavy}"
