"""What the recipe scripts' tests share: the scripts run as a CI job runs them, with a fake `gh` and,
where a test says so, a fake `reconciler` first on PATH, and a fake GitLab API on loopback. The fakes
record every call and replay the answers a test gives them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CI = REPO / "examples" / "gitops" / "ci"


@dataclass
class Job:
    """One CI job's surroundings: a bin folder with the fakes, a work folder, GITHUB_OUTPUT."""

    tmp: Path
    fake_reconciler: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bin = self.tmp / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.work = self.tmp / "work"
        self.outputs_file = self.tmp / "github-output"
        self.outputs_file.touch()
        self._shim("gh", HERE / "fake_gh.py")
        if self.fake_reconciler:
            self._shim("reconciler", HERE / "fake_reconciler.py")
        self.answer_gh([])
        self.answer_reconciler({})

    def _shim(self, name: str, script: Path) -> None:
        shim = self.bin / name
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
        shim.chmod(0o755)

    def answer_gh(self, answers: list[dict[str, Any]]) -> None:
        (self.tmp / "gh-answers.json").write_text(json.dumps(answers))

    def answer_reconciler(self, answers: dict[str, Any]) -> None:
        (self.tmp / "reconciler-answers.json").write_text(json.dumps(answers))

    def environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "NHN_", "OS_"))}
        keep = {k: v for k, v in keep.items() if not k.startswith(("RECONCILER_", "RUNNER_"))}
        path = os.pathsep.join([str(self.bin), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
        return {
            **keep,
            "PATH": path,
            "NO_COLOR": "1",
            "RECONCILER_WORK": str(self.work),
            "GITHUB_OUTPUT": str(self.outputs_file),
            "FAKE_GH_LOG": str(self.tmp / "gh-calls.jsonl"),
            "FAKE_GH_ANSWERS": str(self.tmp / "gh-answers.json"),
            "FAKE_RECONCILER_LOG": str(self.tmp / "reconciler-calls.jsonl"),
            "FAKE_RECONCILER_ANSWERS": str(self.tmp / "reconciler-answers.json"),
            **self.env,
        }

    def run(self, script: str, *args: Any, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CI / script), *map(str, args)],
            cwd=self.tmp,
            env={**self.environment(), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, script: str, *args: Any, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(CI / script), *map(str, args)],
            cwd=self.tmp,
            env={**self.environment(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def outputs(self) -> dict[str, str]:
        """The step outputs written so far (a later line wins, as on GitHub)."""
        lines = self.outputs_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def gh_calls(self) -> list[dict[str, Any]]:
        return _json_lines(self.tmp / "gh-calls.jsonl")

    def reconciler_calls(self) -> list[list[str]]:
        return _json_lines(self.tmp / "reconciler-calls.jsonl")


def _json_lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]


class FakeGitLab:
    """GitLab's REST API on loopback: `routes` maps "METHOD /api/v4/PATH" (no query) to (status, JSON);
    a page after the first of a list is empty; every request is kept in `requests`."""

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.routes = routes
        self.requests: list[Request] = []

    @contextmanager
    def serving(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode()) if length else {}
                fake.requests.append(Request(self.command, url.path, query, dict(self.headers), form))
                status, body = fake.routes.get(f"{self.command} {url.path}", (404, {"message": "404 Not found"}))
                if query.get("page", ["1"]) != ["1"] and isinstance(body, list):
                    body = []
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
        finally:
            server.shutdown()
            server.server_close()
