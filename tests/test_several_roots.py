"""`reconciler validate|plan|apply ROOT ROOT ...` over real HTTP, driven through the command line as a user
runs it, checked in the simulator's state file (the server's own record), never through the tool's output.

The world: one simulator (--sim-state) with three projects, each with one image the tool manages in its own
set. Root N declares its project's image with a new property: its plan is one update. Roots can be made to
refuse (an undeclared protected image of the set), to fail while applying (a fault on the share call, which
only that root makes) or to error (a project the simulator does not have)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli import main
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.state import write_state_file

PROJECTS = {
    1: "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b",
    2: "8989447062e04a818baf9e073fd04fa7",
    3: "0123456789abcdef0123456789abcdef",
}
UNKNOWN_PROJECT = "ffffffffffffffffffffffffffffffff"
CONSUMER = PROJECTS[3]
SHARE_ROUTE = "POST /image/{region}/v2/images/{image_id}/members"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR")


def image_id(n: int, extra: int = 0) -> str:
    return f"00000000-0000-4000-8000-0000000000{n}{extra}"


def managed_image(n: int, *, extra: int = 0, protected: bool = False, key: str = "app") -> dict[str, Any]:
    return {
        "id": image_id(n, extra),
        "project": PROJECTS[n],
        "region": "KR1",
        "name": f"{key}-{n}",
        "size_mb": 1,
        "protected": protected,
        "properties": {
            "os_type": "linux",
            "reconciler_set": f"set-{n}",
            "reconciler_key": key,
            "reconciler_source": f"image:{image_id(n, extra)}",
        },
    }


def seed(
    faults: list[dict[str, Any]] | None = None, refusing: tuple[int, ...] = (), latency_ms: int = 0
) -> dict[str, Any]:
    images = [managed_image(n) for n in PROJECTS]
    # An undeclared protected image of the set: its root's plan deletes it, which is refused.
    images += [managed_image(n, extra=9, protected=True, key="old") for n in refusing]
    doc: dict[str, Any] = {
        "regions": ["KR1"],
        "projects": [
            {"id": project, "users": [{"username": f"user{n}@example.com", "api_password": f"pass-{n}"}]}
            for n, project in PROJECTS.items()
        ],
        "images": images,
    }
    if faults or latency_ms:
        doc["behaviour"] = {"faults": faults or [], "latency_ms": latency_ms}
    return doc


def make_root(tmp_path: Path, n: int, *, project: str | None = None, share: bool = False, name: str = "") -> Path:
    root = tmp_path / (name or f"root{n}")
    (root / "images").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        f"version: 1\nset: set-{n}\ncloud: {{kind: simulator, project: {project or PROJECTS[n]}}}\n"
        "defaults: {region: KR1}\n",
        encoding="utf-8",
    )
    spec: dict[str, Any] = {"source": {"image": image_id(n)}, "properties": {"os_type": "linux", "tier": "gold"}}
    if share:
        spec["share"] = [CONSUMER]
    (root / "images" / "app.yaml").write_text(yaml.safe_dump({"version": 1, "images": {"app": spec}}), "utf-8")
    return root


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def make(**kwargs: Any) -> Path:
        state = tmp_path / "state.json"
        write_state_file(state, state_from_seed(seed(**kwargs)))
        return state

    return make


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--no-color"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tier(state: Path, n: int) -> str | None:
    """What the server holds: the tier property of project N's image."""
    return json.loads(state.read_text(encoding="utf-8"))["images"][image_id(n)]["fields"].get("tier")


def roots(*names: str) -> list[str]:
    return list(names)


def saved_plan_of_two_roots(world, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Roots 1 and 2 on a fresh state, planned together into plans.json; the state file."""
    state = world()
    for n in (1, 2):
        make_root(tmp_path, n)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    return state


def reviewed_change_to_root2(tmp_path: Path) -> None:
    """Root 2's manifest changes after the review: its fresh plan no longer matches its saved one."""
    app = tmp_path / "root2" / "images" / "app.yaml"
    app.write_text(app.read_text(encoding="utf-8").replace("gold", "silver"), encoding="utf-8")


# -- plan ---------------------------------------------------------------------------------------------------


def test_plan_of_three_roots_is_one_document_in_the_order_given(world, tmp_path, capsys):
    state = world()
    for n in (1, 2, 3):
        make_root(tmp_path, n)
    code, out, err = run(capsys, "plan", "root3", "root1", "root2", "--sim-state", str(state), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["format"] == "reconciler-plans" and document["format_version"] == "1"
    assert [r["root"] for r in document["roots"]] == ["root3", "root1", "root2"]
    assert [r["target"]["project"] for r in document["roots"]] == [PROJECTS[3], PROJECTS[1], PROJECTS[2]]
    assert [[a["kind"] for a in r["actions"]] for r in document["roots"]] == [["update"]] * 3
    from reconciler import roots_document

    assert roots_document.validate(document) == []
    # Every root's target is named before anything was read, in the order given.
    lines = err.splitlines()
    assert lines[0] == "reconciler plan · 3 roots"
    assert [line.split(":")[0].strip() for line in lines[1:4]] == ["1. root3", "2. root1", "3. root2"]
    assert all(tier(state, n) is None for n in PROJECTS)  # plan changes nothing


def test_one_root_prints_the_v1_document_unchanged(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    code, out, err = run(capsys, "plan", "root1", "--sim-state", str(state), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert "format" not in document and document["format_version"] == "1" and "root" not in document


def test_plan_renders_every_root_even_when_one_errors(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    broken = make_root(tmp_path, 2)
    (broken / "images" / "app.yaml").write_text("version: 1\nimages:\n  app:\n    sourc: {}\n", encoding="utf-8")
    make_root(tmp_path, 3, project=UNKNOWN_PROJECT)
    code, out, err = run(capsys, "plan", "root1", "root2", "root3", "--sim-state", str(state), "--format", "json")
    assert code == 1, err
    document = json.loads(out)
    first, second, third = document["roots"]
    assert first["root"] == "root1" and [a["kind"] for a in first["actions"]] == ["update"]
    assert second["root"] == "root2" and second["target"] is None  # it did not validate
    assert "images/app.yaml:4" in json.dumps(second["error"]), second["error"]
    assert third["root"] == "root3" and UNKNOWN_PROJECT in third["error"]["message"]
    assert third["target"] and "set-3" in third["target"]
    assert document["summary"]["errors"] == 2


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_and_markdown_have_one_verdict_and_a_section_per_root(world, tmp_path, capsys, fmt):
    state = world(refusing=(2,))
    for n in (1, 2):
        make_root(tmp_path, n)
    code, out, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--format", fmt)
    assert code == 3, err
    assert out.index("root1") < out.index("root2")
    assert out.count("set set-1") >= 1 and out.count("set set-2") >= 1
    assert "refused" in out.lower()


@pytest.mark.parametrize(
    ("refusing", "error", "detailed", "expected"),
    [
        ((), False, False, 0),
        ((), False, True, 2),
        ((2,), False, True, 3),
        ((2,), True, True, 1),
        ((), True, False, 1),
    ],
    ids=["no-changes-flag", "changes", "refusal-beats-changes", "error-beats-refusal", "error"],
)
def test_plan_exit_code_combines_the_roots(world, tmp_path, capsys, refusing, error, detailed, expected):
    state = world(refusing=refusing)
    make_root(tmp_path, 1)
    make_root(tmp_path, 2)
    make_root(tmp_path, 3, project=UNKNOWN_PROJECT if error else None)
    flags = ["--detailed-exitcode"] if detailed else []
    code, _, err = run(capsys, "plan", "root1", "root2", "root3", "--sim-state", str(state), *flags)
    assert code == expected, err


# -- usage errors ----------------------------------------------------------------------------------------------


def test_the_same_root_twice_is_a_usage_error(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    before = state.read_bytes()
    code, out, err = run(capsys, "plan", "root1", "./root1/", "--sim-state", str(state))
    assert code == 1 and out == ""
    assert "the same root" in err or "named twice" in err, err
    assert state.read_bytes() == before


def test_the_same_project_and_set_twice_is_a_usage_error(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 1, name="copy-of-root1")
    code, out, err = run(capsys, "apply", "root1", "copy-of-root1", "--sim-state", str(state), "--auto-approve")
    assert code == 1 and out == ""
    assert "both manage set set-1" in err, err
    assert tier(state, 1) is None


def test_target_and_exclude_name_keys_of_one_root(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 2)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--target", "app")
    assert code == 1 and "--target and --exclude" in err, err


# -- apply ---------------------------------------------------------------------------------------------------


def test_apply_of_three_roots_applies_each_in_turn(world, tmp_path, capsys):
    state = world()
    for n in (1, 2, 3):
        make_root(tmp_path, n)
    code, out, err = run(capsys, "apply", "root1", "root2", "root3", "--sim-state", str(state), "--auto-approve")
    assert code == 0, err
    assert [tier(state, n) for n in (1, 2, 3)] == ["gold", "gold", "gold"]
    assert out.index("root1") < out.index("root2") < out.index("root3")


def test_apply_stops_at_a_root_that_fails_and_leaves_the_next_untouched(world, tmp_path, capsys):
    # Only root 2 shares: the fault on the share call makes its apply fail.
    state = world(faults=[{"route": SHARE_ROUTE, "on_call": 1, "status": 403}])
    make_root(tmp_path, 1)
    make_root(tmp_path, 2, share=True)
    make_root(tmp_path, 3)
    code, out, err = run(
        capsys, "apply", "root1", "root2", "root3", "--sim-state", str(state), "--auto-approve", "--format", "json"
    )
    assert code == 1, err
    assert tier(state, 1) == "gold"
    assert tier(state, 3) is None  # never planned, never touched
    report = json.loads(out)
    assert report["format"] == "reconciler-apply-reports" and report["outcome"] == "failed"
    assert [(r["root"], r["outcome"]) for r in report["roots"]] == [
        ("root1", "applied"),
        ("root2", "failed"),
        ("root3", "not_run"),
    ]
    assert "root3: not run" in err


def test_apply_stops_at_a_refusing_root(world, tmp_path, capsys):
    state = world(refusing=(2,))
    for n in (1, 2, 3):
        make_root(tmp_path, n)
    code, out, err = run(capsys, "apply", "root1", "root2", "root3", "--sim-state", str(state), "--auto-approve")
    assert code == 3, err
    assert [tier(state, n) for n in (1, 2, 3)] == ["gold", None, None]
    assert "root3: not run" in out


def test_apply_stops_at_a_root_that_errors(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 2, project=UNKNOWN_PROJECT)
    make_root(tmp_path, 3)
    code, out, err = run(capsys, "apply", "root1", "root2", "root3", "--sim-state", str(state), "--auto-approve")
    assert code == 1, err
    assert [tier(state, n) for n in (1, 2, 3)] == ["gold", None, None]
    assert UNKNOWN_PROJECT in err


def test_an_invalid_root_stops_the_apply_before_any_root_is_applied(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 2)
    broken = make_root(tmp_path, 3)
    (broken / "reconciler.yaml").write_text("version: 1\nset: set-3\ncloud: {kind: nowhere}\n", encoding="utf-8")
    code, _, err = run(capsys, "apply", "root1", "root2", "root3", "--sim-state", str(state), "--auto-approve")
    assert code == 1
    assert "nothing was applied" in err and "reconciler.yaml:3" in err, err
    assert [tier(state, n) for n in (1, 2, 3)] == [None, None, None]


# -- saved plans of several roots ----------------------------------------------------------------------------


def test_plan_out_then_apply_plan_applies_every_root(world, tmp_path, capsys):
    state = world()
    for n in (1, 2):
        make_root(tmp_path, n)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    assert "reconciler apply --plan plans.json root1 root2" in err
    saved = json.loads((tmp_path / "plans.json").read_text(encoding="utf-8"))
    assert saved["format"] == "reconciler-plans" and all("saved" in r for r in saved["roots"])
    code, _, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 0, err
    assert [tier(state, n) for n in (1, 2)] == ["gold", "gold"]


@pytest.mark.parametrize("named", [["root2", "root1"], ["root1"], ["root1", "root2", "root3"]])
def test_apply_plan_needs_the_same_roots_in_the_same_order(world, tmp_path, capsys, named):
    state = world()
    for n in (1, 2, 3):
        make_root(tmp_path, n)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    code, _, err = run(capsys, "apply", "--plan", "plans.json", *named, "--sim-state", str(state), "--auto-approve")
    assert code == 1, err
    assert "nothing was applied" in err or "names one" in err, err
    assert [tier(state, n) for n in (1, 2, 3)] == [None, None, None]


def test_a_root_that_cannot_be_planned_saves_no_plan(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 2, project=UNKNOWN_PROJECT)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 1
    assert not (tmp_path / "plans.json").exists()
    assert "No plan was saved" in err


def test_apply_plan_matches_each_root_when_its_turn_comes(world, tmp_path, capsys):
    # Root 2's cloud changes after the review: root 1 is applied, root 2's fresh plan differs and nothing of
    # it runs.
    state = saved_plan_of_two_roots(world, tmp_path, capsys)
    reviewed_change_to_root2(tmp_path)
    code, _, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 1, err
    assert "differs from the saved plan" in err, err
    assert [tier(state, n) for n in (1, 2)] == ["gold", None]


# -- validate ------------------------------------------------------------------------------------------------


def test_validate_reports_each_root(world, tmp_path, capsys):
    make_root(tmp_path, 1)
    broken = make_root(tmp_path, 2)
    (broken / "images" / "app.yaml").write_text("version: 1\nimages:\n  app:\n    sourc: {}\n", encoding="utf-8")
    code, out, err = run(capsys, "validate", "root1", "root2")
    assert code == 1
    assert "OK: 1 image in 1 file" in out
    assert "images/app.yaml:4" in err and "1 root of 2 invalid: root2" in err, err
    code, out, err = run(capsys, "validate", "root1", "root1")
    assert code == 1 and "named twice" in err


# -- a cancellation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_first_root_ends_the_run_and_the_next_root_is_not_run(world, tmp_path, signum, expected):
    # Every call takes 200 ms: the signal comes while root 1's update is in flight.
    state = world(latency_ms=200)
    for n in (1, 2):
        make_root(tmp_path, n)
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    command = [sys.executable, "-m", "reconciler", "apply", "root1", "root2", "--sim-state", str(state)]
    with subprocess.Popen(
        [*command, "--auto-approve", "--no-color"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.strip().startswith("start") and "update app" in line:
                process.send_signal(signum)
                break
        out, err = process.communicate(timeout=60)
    assert process.returncode == expected, "".join(seen) + out + err
    assert "root2: not run" in out, out
    assert tier(state, 2) is None
    assert "== root 2 of 2" not in "".join(seen) + out


def test_a_saved_run_that_stopped_at_root_2_is_finished_with_resume(world, tmp_path, capsys):
    state = world(faults=[{"route": SHARE_ROUTE, "on_call": 1, "status": 403}])
    make_root(tmp_path, 1)
    make_root(tmp_path, 2, share=True)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    apply = ["apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"]
    code, out, err = run(capsys, *apply)
    assert code == 1, out + err
    assert [tier(state, n) for n in (1, 2)] == ["gold", "gold"]  # root 2's update ran; its share failed
    assert "finish the run with: reconciler apply --plan plans.json root1 root2 --resume" in out, out
    # Without --resume the partly applied run is refused before root 1 is even planned.
    code, out, err = run(capsys, *apply)
    assert code == 1 and "was partly applied already" in err, err
    assert "== root 1 of 2" not in out
    # The cause is fixed (the fault is gone; each run's simulator counts calls afresh, so it would fire again).
    doc = json.loads(state.read_text(encoding="utf-8"))
    doc["behaviour"]["faults"] = []
    state.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = run(capsys, *apply, "--resume")
    assert code == 0, out + err
    members = json.loads(state.read_text(encoding="utf-8"))["images"][image_id(2)]["members"]
    assert CONSUMER in members
    assert not list(tmp_path.glob("plans.json.*progress.json"))


def test_a_saved_plan_of_another_set_is_refused_before_any_root_is_applied(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    make_root(tmp_path, 2)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    config = tmp_path / "root2" / "reconciler.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("set: set-2", "set: set-9"), encoding="utf-8")
    code, out, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 1 and "was saved for set 'set-2'" in err, err
    assert tier(state, 1) is None


# -- what the hostile review found (issue 21) -----------------------------------------------------------------


def test_a_root_without_project_is_the_simulators_first_project(world, tmp_path, capsys):
    state = world()
    make_root(tmp_path, 1)
    other = make_root(tmp_path, 1, name="no-project")
    config = other / "reconciler.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(f", project: {PROJECTS[1]}", ""), encoding="utf-8")
    code, out, err = run(capsys, "apply", "root1", "no-project", "--sim-state", str(state), "--auto-approve")
    assert code == 1 and "both manage set set-1" in err, err
    assert tier(state, 1) is None


def test_a_refusal_before_the_first_root_still_writes_the_reports_document(world, tmp_path, capsys):
    state = saved_plan_of_two_roots(world, tmp_path, capsys)
    config = tmp_path / "root2" / "reconciler.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("set: set-2", "set: set-9"), encoding="utf-8")
    argv = ["apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"]
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["outcome"] == "plan_mismatch" and "set-2" in report["message"]
    assert [(r["root"], r["outcome"]) for r in report["roots"]] == [("root1", "not_run"), ("root2", "not_run")]
    assert tier(state, 1) is None


def test_a_saved_root_for_another_target_is_refused_before_any_root_is_applied(world, tmp_path, capsys):
    state = world()
    for n in (1, 2, 3):
        make_root(tmp_path, n)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    # Root 2 now targets project 3 under the same set name (dev and prod roots often share one).
    config = tmp_path / "root2" / "reconciler.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(PROJECTS[2], PROJECTS[3]), encoding="utf-8")
    code, out, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 1 and "made for another target" in err, err
    assert "== root 1 of 2" not in out
    assert tier(state, 1) is None


def test_a_missing_credential_of_a_later_root_stops_the_run_before_the_first(world, tmp_path, capsys, monkeypatch):
    root1 = make_root(tmp_path, 1)
    # Without --sim-state (which would make every root a simulator one): root 1 has a state of its own.
    state = root1 / "state.json"
    shutil.move(world(), state)
    config = root1 / "reconciler.yaml"
    text = config.read_text(encoding="utf-8").replace("kind: simulator,", "kind: simulator, state: state.json,")
    config.write_text(text, encoding="utf-8")
    partner = tmp_path / "partner"
    partner.mkdir()
    (partner / "reconciler.yaml").write_text(
        f"version: 1\nset: partner\ncloud: {{kind: nhn, project: {PROJECTS[2]}, credentials: PARTNER}}\n",
        encoding="utf-8",
    )
    for name in ("PARTNER_USERNAME", "PARTNER_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = run(capsys, "apply", "root1", "partner", "--auto-approve")
    assert code == 1 and "PARTNER_USERNAME and PARTNER_API_PASSWORD not set" in err, err
    assert tier(state, 1) is None and "== root 1 of 2" not in out


def test_a_saved_plan_with_refusals_applies_no_root(world, tmp_path, capsys):
    state = world(refusing=(2,))
    for n in (1, 2):
        make_root(tmp_path, n)
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 3, err
    code, _, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 1 and "the saved plan of root2 has refusals" in err, err
    assert tier(state, 1) is None


def test_ctrl_c_at_a_later_roots_prompt_still_writes_the_document_and_the_summary(world, tmp_path, capsys, monkeypatch):
    from reconciler.commands import apply as apply_command

    state = world()
    for n in (1, 2):
        make_root(tmp_path, n)
    answers = iter([True])

    def confirm(self, plan):
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(apply_command._RootRun, "_confirm", confirm)
    code, out, err = run(capsys, "apply", "root1", "root2", "--sim-state", str(state), "--format", "json")
    assert code == 130, err
    report = json.loads(out)
    assert [(r["root"], r["outcome"]) for r in report["roots"]] == [("root1", "applied"), ("root2", "interrupted")]
    assert report["outcome"] == "interrupted"
    assert "root1: applied" in err and "root2: cancelled" in err
    assert [tier(state, n) for n in (1, 2)] == ["gold", None]


def test_a_signal_after_a_roots_work_stops_before_the_next_root(world, tmp_path, capsys, monkeypatch):
    from reconciler.commands import apply as apply_command

    state = world()
    for n in (1, 2):
        make_root(tmp_path, n)
    original = apply_command._apply_root

    def then_a_signal(args, path, document, cancellation, reports, simulators, part=None):
        code = original(args, path, document, cancellation, reports, simulators, part=part)
        cancellation.request(signal.SIGTERM)  # as the handler would, right after the root's last action
        return code

    monkeypatch.setattr(apply_command, "_apply_root", then_a_signal)
    code, out, err = run(
        capsys, "apply", "root1", "root2", "--sim-state", str(state), "--auto-approve", "--format", "json"
    )
    assert code == 143, err
    report = json.loads(out)
    assert report["outcome"] == "interrupted"
    assert [(r["root"], r["outcome"]) for r in report["roots"]] == [("root1", "applied"), ("root2", "not_run")]
    assert "root1: applied" in err and "root2: not run" in err
    assert [tier(state, n) for n in (1, 2)] == ["gold", None]


def test_running_a_stopped_saved_run_again_without_resume_is_refused(world, tmp_path, capsys):
    # Root 2 stops with no action done (its plan no longer matches): root 1's journal is kept, so running
    # the same command again asks for --resume instead of failing root 1's match.
    state = saved_plan_of_two_roots(world, tmp_path, capsys)
    reviewed_change_to_root2(tmp_path)
    apply = ["apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"]
    code, out, err = run(capsys, *apply)
    assert code == 1 and tier(state, 1) == "gold", out + err
    code, out, err = run(capsys, *apply)
    assert code == 1 and "was partly applied already" in err, err
    assert "root1 root2 --resume" in err


def test_a_new_saved_plan_discards_the_journals_of_the_one_it_replaces(world, tmp_path, capsys):
    state = world()
    for n in (1, 2):
        make_root(tmp_path, n)
    stale = [tmp_path / "plans.json.root-2.progress.json", tmp_path / "plans.json.progress.json"]
    for journal in stale:
        journal.write_text('{"done": ["update:app:KR1"], "made": {}}', encoding="utf-8")
    keep = tmp_path / "plans.json.root-2.progress.json.bak"
    keep.write_text("mine", encoding="utf-8")
    code, _, err = run(capsys, "plan", "root1", "root2", "--sim-state", str(state), "--out", "plans.json")
    assert code == 0, err
    assert not any(journal.exists() for journal in stale) and keep.exists()
    code, _, err = run(
        capsys, "apply", "--plan", "plans.json", "root1", "root2", "--sim-state", str(state), "--auto-approve"
    )
    assert code == 0, err
