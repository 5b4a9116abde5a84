"""`reconciler simulator init` / `serve`, the global `--sim-state` flag, and the in-process starter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from support import OWNER, OWNER_USER

from reconciler.cli import build_parser, main
from reconciler.simulator import running_simulator

SEED = textwrap.dedent(
    f"""\
    regions: [KR1, JP1]
    projects:
      - id: {OWNER}
        users: [{{username: "{OWNER_USER[0]}", api_password: "{OWNER_USER[1]}"}}]
    images:
      - {{project: {OWNER}, region: KR1, name: base, properties: {{os_type: linux}}}}
    """
)


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    return path


def token(identity_url: str) -> requests.Response:
    return requests.post(
        f"{identity_url}/tokens",
        json={
            "auth": {"tenantId": OWNER, "passwordCredentials": {"username": OWNER_USER[0], "password": OWNER_USER[1]}}
        },
        timeout=10,
    )


def test_init_writes_a_state_and_refuses_to_overwrite(tmp_path, seed_file, capsys):
    state = tmp_path / "state.json"
    assert main(["simulator", "init", str(state), "--seed", str(seed_file)]) == 0
    assert "1 projects, 0 servers, 1 images in KR1, JP1" in capsys.readouterr().out
    assert json.loads(state.read_text())["regions"] == ["KR1", "JP1"]

    assert main(["simulator", "init", str(state), "--seed", str(seed_file)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["simulator", "init", str(state), "--seed", str(seed_file), "--force"]) == 0


def test_init_reports_an_invalid_seed_with_its_location(tmp_path, capsys):
    seed = tmp_path / "bad.yaml"
    seed.write_text("regions: [KR1]\nprojects: []\nextra: 1\n")
    assert main(["simulator", "init", str(tmp_path / "s.json"), "--seed", str(seed)]) == 1
    err = capsys.readouterr().err
    assert f"{seed}:3:1: extra: unknown key" in err
    assert f"{seed}:2:11: projects: [] should be non-empty" in err
    assert not (tmp_path / "s.json").exists()


def test_serve_without_state_explains_how_to_create_one(tmp_path, capsys):
    assert main(["simulator", "serve", "--state", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "reconciler simulator init" in err


def test_serve_prints_its_identity_url_and_serves_until_terminated(tmp_path, seed_file):
    state = tmp_path / "state.json"
    assert main(["simulator", "init", str(state), "--seed", str(seed_file)]) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "simulator", "serve", "--state", str(state), "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v2.0")
        answer = token(url)
        assert answer.status_code == 200
        # The password is a secret: the simulator never echoes it, in answers or its own output.
        assert OWNER_USER[1] not in answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert OWNER_USER[1] not in out + err


def test_serve_rejects_a_malformed_fault_flag(tmp_path, seed_file, capsys):
    state = tmp_path / "state.json"
    main(["simulator", "init", str(state), "--seed", str(seed_file)])
    assert main(["simulator", "serve", "--state", str(state), "--fault", "{route: x, status: 503, drop: true}"]) == 1
    assert "a fault needs exactly one of status, drop, lose_answer, cut_after_bytes, stall_s" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--fault", "{route: 'GET /image/{region}/v2/imagez', status: 503}"],
            "no such route: GET /image/{region}/v2/imagez",
        ),
        (["--fault", "{route: 'GET /v2.0', status: '503'}"], "'503' is not of type 'integer'"),
        (["--latency-ms", "-5"], "-5 is less than the minimum of 0"),
    ],
)
def test_serve_validates_knobs_like_a_seed(tmp_path, seed_file, capsys, flags, message):
    state = tmp_path / "state.json"
    main(["simulator", "init", str(state), "--seed", str(seed_file)])
    assert main(["simulator", "serve", "--state", str(state), *flags]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--sim-state", "s.json", "-v", "simulator", "init", "x", "--seed", "y"],
        ["simulator", "init", "x", "--seed", "y", "--sim-state", "s.json", "-v"],
        ["simulator", "--sim-state", "s.json", "init", "x", "-v", "--seed", "y"],
    ],
)
def test_global_flags_are_accepted_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.sim_state == "s.json" and args.verbose == 1


def test_running_simulator_creates_the_state_from_the_seed_and_serves_it(tmp_path, seed_file):
    state = tmp_path / "nested" / "state.json"
    with running_simulator(state, seed_path=seed_file) as server:
        assert server.identity_url.startswith("http://127.0.0.1:")
        assert token(server.identity_url).status_code == 200
    assert state.exists()
    # Without a seed, a missing state is an error, not an empty cloud.
    with pytest.raises(Exception, match="does not exist and no seed was given"):
        with running_simulator(tmp_path / "other.json"):
            pass


def test_the_example_seed_is_valid_and_its_copy_verifies_against_its_home_image():
    from reconciler.simulator.seed import load_seed, state_from_seed

    state = state_from_seed(load_seed(Path(__file__).resolve().parent.parent / "examples/simulator/seed.yaml"))
    legacy = [i["fields"] for i in state["images"].values() if i["fields"]["name"] == "legacy-base"]
    assert len(legacy) == 2 and legacy[0]["checksum"] == legacy[1]["checksum"]


def test_the_readme_seed_example_is_valid(tmp_path):
    import re

    from reconciler.simulator.seed import load_seed

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (example,) = [block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "projects:" in block]
    path = tmp_path / "seed.yaml"
    path.write_text(example)
    assert load_seed(path)["regions"] == ["KR1", "JP1"]
