"""How a cancelled job's signals reach the tool through the recipe scripts, with a fake `reconciler` that
logs its process group, the signals it gets, and its compensations. The tool stays in the job's process
group, so a runner that kills the group with SIGKILL leaves no tool behind; SIGINT to the job's process
(GitHub's runner) reaches it once, through each script, and it exits 130 after its compensations; a
SIGTERM to the whole group (GitLab's runner) reaches it once, not once more through each script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from recipes.harness import CI, Job

FAKE_TOOL = r"""
import json, os, signal, sys, time
log = open(os.environ["SIGNAL_LOG"], "a", buffering=1)
ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
log.write(f"start {os.getpid()} {os.getpgid(0)} {'int-ignored' if ignored else 'int-default'}\n")
got = []
def handle(signum, frame):
    got.append(signum)
    log.write(f"got {signal.Signals(signum).name}\n")
signal.signal(signal.SIGINT, handle)
signal.signal(signal.SIGTERM, handle)
deadline = time.monotonic() + 20
while not got and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.5)  # the compensations; a second signal arriving meanwhile is logged too
log.write("compensated\n")
if sys.argv[1] == "apply":
    print(json.dumps({"outcome": "interrupted" if got else "applied"}))
sys.exit({signal.SIGINT: 130, signal.SIGTERM: 143}.get(got[0], 1) if got else 0)
"""

REPO = "acme/images"
SHA = "a" * 40
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_SHA": SHA, "GITHUB_REF_NAME": "main"}


def job_with_a_slow_tool(tmp_path: Path) -> Job:
    """The fake tool first on PATH, a saved plan, and GitHub saying this commit is main's tip."""
    job = Job(tmp_path)
    tool = job.bin / "reconciler"
    tool.write_text(f"#!{sys.executable}\n{FAKE_TOOL}")
    tool.chmod(0o755)
    (tmp_path / "plans.json").write_text("{}")
    job.answer_gh([{"args": ["api", f"repos/{REPO}/branches/main"], "stdout": json.dumps({"commit": {"sha": SHA}})}])
    return job


def start(job: Job, shell_script: str, **env: str) -> subprocess.Popen[str]:
    """The job's shell in a process group of its own, as a runner starts it."""
    return subprocess.Popen(
        ["bash", "-c", shell_script],
        cwd=job.tmp,
        env={**job.environment(), "SIGNAL_LOG": str(job.tmp / "signals.log"), **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def log_lines(job: Job) -> list[str]:
    path = job.tmp / "signals.log"
    return path.read_text().splitlines() if path.exists() else []


def wait_for(job: Job, line: str, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = log_lines(job)
        if any(entry.startswith(line) for entry in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"the tool never logged {line!r}: {log_lines(job)}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def tool_pid_and_group(job: Job) -> tuple[int, int, str]:
    (started,) = [line for line in wait_for(job, "start ") if line.startswith("start ")]
    _, pid, group, disposition = started.split()
    return int(pid), int(group), disposition


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_killing_the_jobs_process_group_leaves_no_tool_behind(tmp_path, command):
    """GitLab kills a cancelled job's process group with SIGKILL: a tool in a group of its own would go on
    changing images with nobody watching."""
    job = job_with_a_slow_tool(tmp_path)
    process = start(job, f'"{CI}/run.sh" {command} . --plan "{tmp_path}/plans.json" || exit $?', **GITHUB)
    pid, group, _ = tool_pid_and_group(job)
    try:
        assert group == process.pid, "the tool left the job's process group"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "the tool outlived its job"
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigint_to_the_jobs_process_reaches_the_tool_once_through_each_script(tmp_path):
    """GitHub's runner sends SIGINT to the step's process alone: run.sh passes it to apply.sh, which passes
    it to the tool, which was not started with SIGINT ignored; it compensates and the job exits 130."""
    job = job_with_a_slow_tool(tmp_path)
    process = start(job, f'exec "{CI}/run.sh" apply . --plan "{tmp_path}/plans.json"', **GITHUB)
    pid, group, disposition = tool_pid_and_group(job)
    assert disposition == "int-default" and group == process.pid
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert [line for line in log_lines(job) if not line.startswith("start")] == ["got SIGINT", "compensated"]
    assert job.outputs()["outcome"] == "interrupted"


def test_a_sigterm_to_the_whole_group_on_gitlab_reaches_the_tool_once(tmp_path):
    """GitLab's shell executor signals the job's process group, the tool included: the scripts wait for it
    and pass nothing on, so the tool gets one SIGTERM (a second would cut its grace for calls in flight)."""
    job = job_with_a_slow_tool(tmp_path)
    process = start(job, f'"{CI}/run.sh" plan . || code=$?; exit "${{code:-0}}"', GITLAB_CI="true")
    tool_pid_and_group(job)
    os.killpg(process.pid, signal.SIGTERM)
    wait_for(job, "compensated")
    process.wait(timeout=10)
    assert [line for line in log_lines(job) if not line.startswith("start")] == ["got SIGTERM", "compensated"]
