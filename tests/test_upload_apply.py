"""Uploads end to end (issue 25): the CLI plans and applies a root whose image comes from a file or from a URL
served by a loopback HTTP server in the test, against the simulator; what happened is read back through the
simulator's own API (a fresh simulator on the root's state file, the owner's token), never from the tool's
output. Every failure must leave no image behind: the upload deletes its own.

The kill test runs the CLI as a subprocess against a served simulator, SIGKILLs it mid-upload, reads from the
simulator's request log that the upload stopped before all its bytes arrived, and checks that the next apply
deletes the leftover and uploads again from byte 0."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import yaml
from support import CREDENTIAL_VARIABLES, OWNER, OWNER_USER, Api, cli, quiet_env

from reconciler.cli import main
from reconciler.simulator.embedded import running_simulator

FILE_ROUTE = "PUT /image/{region}/v2/images/{image_id}/file"
CONTENT = bytes(range(256)) * 4096 * 3  # 3 MiB: several chunks
SHA256 = hashlib.sha256(CONTENT).hexdigest()
SEED = {
    "regions": ["KR1", "JP1"],
    "projects": [{"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]}],
    "behaviour": {"image_ready_after_polls": 1},
}


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def make_root(folder: Path, source: dict[str, Any], *, faults: list[dict[str, Any]] | None = None, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(
        "version: 1\nset: uploads\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
    )
    seed = json.loads(json.dumps(SEED))
    if faults:
        seed["behaviour"]["faults"] = faults
    (folder / "seed.yaml").write_text(yaml.safe_dump(seed))
    image = {"source": source, "properties": {"os_type": "linux"}, **extra}
    (folder / "images.yaml").write_text(yaml.safe_dump({"version": 1, "images": {"hardened": image}}))
    return folder


def file_root(folder: Path, content: bytes = CONTENT, **kwargs) -> Path:
    root = make_root(folder, {"file": "build/hardened.raw", "sha256": SHA256, "disk_format": "raw"}, **kwargs)
    (root / "build").mkdir()
    (root / "build" / "hardened.raw").write_bytes(content)
    return root


@contextlib.contextmanager
def cloud(root: Path) -> Iterator[Api]:
    with running_simulator(root / ".reconciler" / "sim-state.json", seed_path=root / "seed.yaml") as server:
        yield Api(server, *OWNER_USER, OWNER)


def images(root: Path, region: str = "KR1") -> list[dict[str, Any]]:
    with cloud(root) as api:
        answer = api.image("GET", f"/v2/images?owner={OWNER}", region)
    assert answer.status_code == 200, answer.text
    return answer.json()["images"]


def apply(root: Path, *extra: str) -> int:
    return main(["apply", str(root), "--auto-approve", "--no-color", *extra])


# -- a loopback HTTP server for URL sources -----------------------------------------------------------


class Origin:
    """Serves `body` at /image.raw over plain http on 127.0.0.1; `misbehave` may change how."""

    def __init__(self) -> None:
        self.body = CONTENT
        self.headers: dict[str, str] = {}
        self.drop_after: int | None = None  # close the connection after this many body bytes
        self.pace_s = 0.0  # pause between 64 KiB pieces
        self.sent = 0  # body bytes written so far
        self.requests: list[str] = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                origin.requests.append("HEAD")
                self._head()

            def do_GET(self) -> None:
                origin.requests.append("GET")
                self._head()
                for start in range(0, len(origin.body), 65536):
                    if origin.drop_after is not None and start >= origin.drop_after:
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(origin.body[start : start + 65536])
                    except OSError:
                        return
                    origin.sent += len(origin.body[start : start + 65536])
                    if origin.pace_s:
                        time.sleep(origin.pace_s)

            def _head(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(origin.body)))
                self.send_header("Content-Type", "application/octet-stream")
                for name, value in origin.headers.items():
                    self.send_header(name, value)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/image.raw"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    served = Origin()
    try:
        yield served
    finally:
        served.close()


def url_root(folder: Path, origin: Origin, **kwargs) -> Path:
    return make_root(folder, {"url": origin.url, "sha256": SHA256, "disk_format": "raw"}, **kwargs)


# -- what succeeds ------------------------------------------------------------------------------------


def assert_uploaded(root: Path, content: bytes = CONTENT) -> dict[str, Any]:
    (image,) = images(root)
    assert image["name"] == "hardened" and image["status"] == "active"
    assert image["size"] == len(content)
    assert image["checksum"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(content).hexdigest()
    assert image["reconciler_set"] == "uploads" and image["reconciler_key"] == "hardened"
    assert image["reconciler_source"] == f"sha256:{SHA256}"
    assert image["disk_format"] == "raw" and image["os_type"] == "linux"
    return image


def test_a_file_is_uploaded_verified_and_named_and_the_next_plan_is_empty(tmp_path, capsys):
    root = file_root(tmp_path / "root")
    assert main(["plan", str(root), "--format", "json"]) == 0
    (create,) = json.loads(capsys.readouterr().out)["actions"]
    assert create["kind"] == "create" and create["file"] == "build/hardened.raw"
    assert create["bytes"] == len(CONTENT)

    assert apply(root) == 0
    assert "uploaded 3,145,728 bytes from build/hardened.raw" in capsys.readouterr().out
    assert_uploaded(root)
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def test_a_file_under_an_artifacts_directory_is_found(tmp_path, capsys):
    root = make_root(tmp_path / "root", {"file": "hardened.raw", "sha256": SHA256, "disk_format": "raw"})
    artifacts = tmp_path / "out"
    artifacts.mkdir()
    (artifacts / "hardened.raw").write_bytes(CONTENT)
    assert apply(root, "--artifacts", str(tmp_path / "elsewhere"), "--artifacts", str(artifacts)) == 0
    assert_uploaded(root)


def test_a_url_is_streamed_with_identity_encoding_and_uploaded(tmp_path, origin, capsys):
    root = url_root(tmp_path / "root", origin)
    assert apply(root, "--allow-http-loopback") == 0
    assert_uploaded(root)
    assert origin.requests == ["GET"], "plan contacts no URL without --fetch-sources"


def test_plan_reads_a_urls_size_only_with_fetch_sources(tmp_path, origin, capsys):
    root = url_root(tmp_path / "root", origin)
    assert main(["plan", str(root), "--format", "json", "--allow-http-loopback"]) == 0
    (create,) = json.loads(capsys.readouterr().out)["actions"]
    assert create.get("bytes") is None and origin.requests == []
    assert main(["plan", str(root), "--format", "json", "--allow-http-loopback", "--fetch-sources"]) == 0
    (create,) = json.loads(capsys.readouterr().out)["actions"]
    assert create["bytes"] == len(CONTENT) and origin.requests == ["HEAD"]


def test_a_plain_http_url_is_refused_without_the_loopback_option(tmp_path, origin, capsys):
    root = url_root(tmp_path / "root", origin)
    assert apply(root) == 1
    assert "--allow-http-loopback" in capsys.readouterr().err
    assert images(root) == [] and origin.requests == []


# -- every failure deletes its own image --------------------------------------------------------------


def failed_leaving_nothing(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert apply(root, *extra) == 1
    out = capsys.readouterr()
    assert images(root) == [], "a failed upload deletes its image"
    return out.out + out.err


def test_a_wrong_digest_fails_and_deletes_the_image(tmp_path, capsys):
    root = file_root(tmp_path / "root", content=CONTENT[:-1] + b"!")
    said = failed_leaving_nothing(root, capsys)
    assert "do not have the declared sha256" in said and "the image was deleted" in said


def test_a_connection_dropped_mid_stream_fails_and_deletes_the_image(tmp_path, origin, capsys):
    origin.drop_after = 1024 * 1024
    said = failed_leaving_nothing(url_root(tmp_path / "root", origin), capsys, "--allow-http-loopback")
    assert "broke off" in said


def test_a_server_error_on_the_upload_fails_and_deletes_the_image(tmp_path, capsys):
    root = file_root(tmp_path / "root", faults=[{"route": FILE_ROUTE, "on_call": 1, "status": 500}])
    said = failed_leaving_nothing(root, capsys)
    assert "500" in said


def test_a_gzip_content_encoding_is_refused(tmp_path, origin, capsys):
    origin.headers["Content-Encoding"] = "gzip"
    said = failed_leaving_nothing(url_root(tmp_path / "root", origin), capsys, "--allow-http-loopback")
    assert "gzip" in said


def test_a_symlinked_file_is_refused_before_any_image_is_made(tmp_path, capsys):
    root = make_root(tmp_path / "root", {"file": "build/hardened.raw", "sha256": SHA256, "disk_format": "raw"})
    (root / "build").mkdir()
    (tmp_path / "real.raw").write_bytes(CONTENT)
    (root / "build" / "hardened.raw").symlink_to(tmp_path / "real.raw")
    said = failed_leaving_nothing(root, capsys)
    assert "symlink" in said or "symbolic link" in said


def test_a_file_over_the_upload_limit_is_refused(tmp_path, capsys):
    said = failed_leaving_nothing(file_root(tmp_path / "root"), capsys, "--max-upload-bytes", "1048576")
    assert "--max-upload-bytes" in said or "1,048,576" in said or "1048576" in said


def test_a_missing_file_is_a_warning_at_plan_and_a_failure_at_apply(tmp_path, capsys):
    root = make_root(tmp_path / "root", {"file": "build/hardened.raw", "sha256": SHA256, "disk_format": "raw"})
    assert main(["plan", str(root), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [w["code"] for w in plan["warnings"]] == ["source_not_built"] and len(plan["actions"]) == 1
    failed_leaving_nothing(root, capsys)


def test_an_upload_with_a_copy_lands_in_both_regions(tmp_path, capsys):
    root = file_root(tmp_path / "root", copies=["JP1"])
    assert apply(root) == 0
    home = assert_uploaded(root)
    (copy,) = images(root, "JP1")
    assert copy["checksum"] == home["checksum"] and copy["reconciler_copy_of"] == home["id"]


# -- a kill mid-upload: the simulator shows it stopped short; the next apply starts again -------------


@contextlib.contextmanager
def served(folder: Path) -> Iterator[SimpleNamespace]:
    (folder / "seed.yaml").write_text(yaml.safe_dump(SEED))
    subprocess.run(cli("simulator", "init", folder / "state.json", "--seed", folder / "seed.yaml"), check=True,
                   capture_output=True, env=quiet_env())  # fmt: skip
    process = subprocess.Popen(
        cli("simulator", "serve", "--state", folder / "state.json"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=quiet_env(),
    )  # fmt: skip
    identity = process.stdout.readline().strip()
    env = {
        **quiet_env(),
        "NHN_CLOUD_IDENTITY_URL": identity,
        "NHN_CLOUD_USERNAME": OWNER_USER[0],
        "NHN_CLOUD_API_PASSWORD": OWNER_USER[1],
        "NHN_CLOUD_TENANT_ID": OWNER,
    }
    base = identity.removesuffix("/v2.0")
    try:
        yield SimpleNamespace(
            env=env,
            log=lambda: requests.get(f"{base}/_simulator/requests", timeout=10).json(),
            api=lambda: Api(SimpleNamespace(identity_url=identity), *OWNER_USER, OWNER),
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def until(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def nhn_url_root(root: Path, origin: Origin) -> Path:
    """A root reaching the served simulator as NHN Cloud is reached (NHN_CLOUD_* in `served`'s env)."""
    root.mkdir()
    (root / "reconciler.yaml").write_text(f"version: 1\nset: uploads\ncloud: {{kind: nhn, project: {OWNER}}}\n"
                                          "defaults: {region: KR1}\n")  # fmt: skip
    image = {"source": {"url": origin.url, "sha256": SHA256, "disk_format": "raw"}, "properties": {"os_type": "linux"}}
    (root / "images.yaml").write_text(yaml.safe_dump({"version": 1, "images": {"hardened": image}}))
    return root


def test_a_kill_mid_upload_leaves_a_leftover_the_next_apply_deletes_before_uploading_again(tmp_path, origin):
    origin.pace_s = 0.05  # 48 pieces of 64 KiB: about 2.4 s of upload
    root = nhn_url_root(tmp_path / "root", origin)
    with served(tmp_path) as sim:
        # The shortest lease: the killed run's claim blocks the next apply for 30 s at most.
        command = cli("apply", root, "--auto-approve", "--allow-http-loopback", "--lock-lease", "30")
        process = subprocess.Popen(command, env=sim.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # The tool reads 1 MiB at a time: once the origin has sent 2 MiB, the first has been forwarded,
            # and the third is not complete.
            until(lambda: origin.sent >= 2 * 1024 * 1024 + 65536)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        put = until(lambda: next((e for e in sim.log() if e["route"] == FILE_ROUTE and e["end"]), None))
        assert put["status"] != 204 and 0 < put["received"] < len(CONTENT), put
        (left,) = sim.api().image("GET", f"/v2/images?owner={OWNER}").json()["images"]
        assert left["name"].startswith("hardened~rc-") and left["status"] == "queued"
        assert "reconciler_set" not in left, "no markers until the upload is verified"

        origin.pace_s = 0.0
        plan = subprocess.run(cli("plan", root, "--format", "json", "--allow-http-loopback"), env=sim.env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        kinds = [(a["kind"], a["key"]) for a in json.loads(plan.stdout)["actions"]]
        assert ("delete", left["name"][len("hardened") :]) in kinds and ("create", "hardened") in kinds, kinds
        again = subprocess.run(
            [*command, "--lock-timeout", "60"], env=sim.env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stdout + again.stderr
        (image,) = sim.api().image("GET", f"/v2/images?owner={OWNER}").json()["images"]
        assert image["name"] == "hardened" and image["size"] == len(CONTENT)
        puts = [e for e in sim.log() if e["route"] == FILE_ROUTE and e["status"] == 204]
        assert [e["received"] for e in puts] == [len(CONTENT)], "the second upload starts from byte 0"


def test_ctrl_c_mid_upload_deletes_the_image_and_exits_130(tmp_path, origin):
    origin.pace_s = 0.1  # about 5 s of upload: the signal comes well inside it
    root = nhn_url_root(tmp_path / "root", origin)
    with served(tmp_path) as sim:
        command = cli("apply", root, "--auto-approve", "--allow-http-loopback")
        process = subprocess.Popen(command, env=sim.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        until(lambda: any(e["route"] == FILE_ROUTE and e["end"] is None for e in sim.log()))
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 130, out
        assert "stopped after" in out and "bytes of the transfer: the apply was cancelled" in out
        assert time.monotonic() - signalled < 7.0
        assert sim.api().image("GET", f"/v2/images?owner={OWNER}").json()["images"] == [], out


def test_bytes_that_are_not_the_declared_disk_format_are_refused_in_words(tmp_path, capsys):
    root = make_root(tmp_path / "root", {"file": "build/hardened.raw", "sha256": SHA256, "disk_format": "qcow2"})
    (root / "build").mkdir()
    (root / "build" / "hardened.raw").write_bytes(CONTENT)
    said = failed_leaving_nothing(root, capsys)
    assert "refused the bytes of build/hardened.raw as qcow2 (415" in said and "qemu-img info" in said


@pytest.mark.parametrize("value", ["Authorization: Bearer S€CRET", "Authorization: Bearer S\x01CRET"])
def test_a_header_that_is_not_visible_ascii_is_a_usage_error_that_never_shows_it(tmp_path, capsys, monkeypatch, value):
    root = file_root(tmp_path / "root")
    monkeypatch.setenv("ARTIFACT_AUTH", value)
    assert main(["plan", str(root), "--url-header-env", "ARTIFACT_AUTH"]) == 1
    said = capsys.readouterr()
    assert "visible ASCII" in said.err and "CRET" not in said.out + said.err


def test_an_empty_file_is_named_at_plan_and_never_uploaded(tmp_path, capsys):
    """A build that failed may still write an empty output, and e3b0c442… (sha256 of nothing) is a digest no
    reviewer recognises: the plan says so and apply refuses before making an image."""
    root = make_root(
        tmp_path / "root",
        {"file": "build/hardened.raw", "sha256": hashlib.sha256(b"").hexdigest(), "disk_format": "raw"},
    )
    (root / "build").mkdir()
    (root / "build" / "hardened.raw").write_bytes(b"")
    assert main(["plan", str(root), "--format", "json"]) == 0
    (create,) = json.loads(capsys.readouterr().out)["actions"]
    assert create["bytes"] == 0 and create["artifact_note"] == "empty: 0 bytes (apply will refuse it)"
    said = failed_leaving_nothing(root, capsys)
    assert "build/hardened.raw is empty: 0 bytes" in said


def test_an_empty_url_body_is_never_kept(tmp_path, origin, capsys):
    origin.body = b""
    source = {"url": origin.url, "sha256": hashlib.sha256(b"").hexdigest(), "disk_format": "raw"}
    root = make_root(tmp_path / "root", source)
    said = failed_leaving_nothing(root, capsys, "--allow-http-loopback")
    assert "is empty: 0 bytes" in said


def test_unlock_import_and_doctor_read_a_root_the_loopback_option_admits(tmp_path, origin, capsys):
    """The emergency command (and import, doctor) must not be blocked by a manifest that validate and plan
    accept with --allow-http-loopback: each takes the option and reads the root."""
    root = url_root(tmp_path / "root", origin)
    claim = "00000000-0000-4000-8000-000000000000"
    commands = {
        "unlock": ["unlock", str(root), "--claim", claim, "--auto-approve"],
        "import": ["import", str(root), "--region", "KR1"],
        "doctor": ["doctor", str(root)],
    }
    for name, command in commands.items():
        main(command)
        assert "plain http" in capsys.readouterr().err, f"{name} without the option refuses the root"
        main([*command, "--allow-http-loopback"])
        assert "plain http" not in capsys.readouterr().err, f"{name} with the option reads the root"
