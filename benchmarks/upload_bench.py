"""Uploads from a file and from a URL: throughput and peak memory of `reconciler apply` against bare `requests`.

Run on demand (not part of the test suite):

    python benchmarks/upload_bench.py [--size-mb 2048] [--runs 1]

Three processes of their own: a simulator (`reconciler simulator serve --in-memory`, images active at the
first poll), a loopback HTTP server giving one file of --size-mb random bytes (written once per run, 1 MiB at
a time), and each measurement in a fresh child, so the peak RSS is that child's (`os.wait4`), never this
script's. For each case, file and url:

- baseline: bare `requests` creates the image (POST) and streams the bytes into `PUT /v2/images/{id}/file`
  (the file read 1 MiB at a time, or a streaming GET from the loopback server), computing md5, sha512 and
  sha256 on the way as the tool does, then polls until the image is active;
- reconciler: the real command line, `python -m reconciler apply ROOT --auto-approve` on a root declaring
  `source: {file | url, sha256, disk_format: raw}` (validation, refresh, lock, plan, upload, verify, rename).

Both are timed from the child's start to its exit, start-up included; the table also gives each child's CPU
seconds, steadier than wall time when other work shares the machine. Between measurements the image is
deleted and the simulator's blob files are checked gone (it keeps them on disk, under this run's folder).

Targets (issue 25): peak RSS at most 100 MB whatever the size; throughput at least 80% of the baseline.
Machines here are shared and noisy: compare the ratio, measured in the same run. A missed target is
reported, not an error: the exit status is non-zero only when something failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
USER, PASSWORD = "bench@example.com", "local-only"
REGION = "KR1"
PAYLOAD = "payload.raw"
MIB = 1024 * 1024
RSS_TARGET_MB, RATIO_TARGET = 100, 0.80


@dataclass(frozen=True)
class Run:
    """One measured child: wall seconds from spawn to exit, its CPU seconds (user + system: steadier than
    wall time on a shared machine) and its peak RSS."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    output: str


# -- the children -------------------------------------------------------------------------------------------


def serve_file(folder: Path) -> None:
    """Serve `folder/PAYLOAD` on 127.0.0.1 over plain HTTP (HTTP/1.1, Content-Length, sendfile); print the
    port, then serve until killed."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            if self.path != f"/{PAYLOAD}":
                self.send_error(404)
                return
            path = folder / PAYLOAD
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            if body:
                with path.open("rb") as handle:
                    # sendfile: the server spends next to no CPU, leaving the two cores to what is measured.
                    self.connection.sendfile(handle)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def baseline(identity: str, payload: Path, url: str | None) -> None:
    """Create an image and stream `payload` (or `url`'s bytes) into it with bare `requests`, hashing as the
    tool does; print the image id and the digests as JSON."""
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    auth = {"auth": {"tenantId": PROJECT, "passwordCredentials": {"username": USER, "password": PASSWORD}}}
    access = session.post(f"{identity}/tokens", json=auth).json()["access"]
    session.headers["X-Auth-Token"] = access["token"]["id"]
    glance = next(
        e["publicURL"]
        for s in access["serviceCatalog"]
        if s["type"] == "image"
        for e in s["endpoints"]
        if e["region"] == REGION
    )
    image = session.post(
        f"{glance}/v2/images",
        json={"name": "baseline-upload", "disk_format": "raw", "container_format": "bare", "os_type": "linux",
              "visibility": "private"},
    ).json()  # fmt: skip
    hashes = [hashlib.md5(usedforsecurity=False), hashlib.sha512(), hashlib.sha256()]

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            for h in hashes:
                h.update(chunk)
            yield chunk

    with contextlib.ExitStack() as stack:
        if url is None:
            handle = stack.enter_context(payload.open("rb", buffering=0))
            chunks = iter(lambda: handle.read(MIB), b"")
        else:
            download = stack.enter_context(requests.get(url, stream=True, timeout=60))
            download.raise_for_status()
            chunks = download.iter_content(MIB)
        session.put(
            f"{glance}/v2/images/{image['id']}/file",
            data=hashed(chunks),
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()
    while session.get(f"{glance}/v2/images/{image['id']}").json()["status"] != "active":
        time.sleep(0.02)
    md5, sha512, sha256 = (h.hexdigest() for h in hashes)
    print(json.dumps({"id": image["id"], "md5": md5, "sha512": sha512, "sha256": sha256}))


# -- measuring ----------------------------------------------------------------------------------------------


def measured(command: list[str], env: dict[str, str], log: Path) -> Run:
    """Run `command` to its end; its wall time, CPU time and peak RSS (wait4's rusage is that child's own)."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}:\n{output[-3000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)  # ru_maxrss: KiB


def write_payload(path: Path, size_mb: int) -> str:
    """--size-mb of random bytes, written and hashed 1 MiB at a time; their sha256."""
    rng, sha256 = random.Random(25), hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mb):
            block = rng.randbytes(MIB)
            sha256.update(block)
            out.write(block)
    return sha256.hexdigest()


def write_root(folder: Path, case: str, source: str) -> None:
    folder.mkdir()
    (folder / "reconciler.yaml").write_text(
        f"version: 1\nset: upload-bench-{case}\ncloud: {{kind: nhn, project: {PROJECT}}}\n"
        f"defaults: {{region: {REGION}}}\n"
    )
    (folder / "images.yaml").write_text(
        f"version: 1\nimages:\n  bench-{case}:\n    source: {source}\n    properties: {{os_type: linux}}\n"
    )


@contextlib.contextmanager
def served_simulator(folder: Path) -> Iterator[str]:
    """benchmarks/served.py's simulator, with its temporary folder (where --in-memory keeps uploaded blobs)
    under `folder/tmp`, so this script can see the blobs come and go. Yields the identity URL."""
    seed = {
        "regions": [REGION],
        "projects": [{"id": PROJECT, "users": [{"username": USER, "api_password": PASSWORD}]}],
        "images": [],
        "behaviour": {"image_ready_after_polls": 0},
    }
    seed_file, state, blobs = folder / "seed.yaml", folder / "state.json", folder / "tmp"
    seed_file.write_text(yaml.safe_dump(seed))
    blobs.mkdir()
    cli = [sys.executable, "-m", "reconciler", "simulator"]
    subprocess.run([*cli, "init", str(state), "--seed", str(seed_file)], check=True, capture_output=True)
    server = subprocess.Popen(
        [*cli, "serve", "--state", str(state), "--in-memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(blobs)},
    )
    try:
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def served_file(folder: Path) -> Iterator[str]:
    """The loopback HTTP server of `folder/PAYLOAD`, in its own process; yields the payload's URL."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--worker", "serve", "--folder", str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}/{PAYLOAD}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class Glance:
    """The simulator's image API as this script's own user, to find and delete what a measurement made."""

    def __init__(self, identity: str) -> None:
        auth = {"auth": {"tenantId": PROJECT, "passwordCredentials": {"username": USER, "password": PASSWORD}}}
        access = requests.post(f"{identity}/tokens", json=auth, timeout=30).json()["access"]
        self.headers = {"X-Auth-Token": access["token"]["id"], "Accept": "application/json"}
        self.url = next(
            e["publicURL"]
            for s in access["serviceCatalog"]
            if s["type"] == "image"
            for e in s["endpoints"]
            if e["region"] == REGION
        )

    def images(self) -> list[dict]:
        answer = requests.get(f"{self.url}/v2/images", params={"owner": PROJECT}, headers=self.headers, timeout=30)
        return answer.json()["images"]

    def delete_all(self) -> None:
        for image in self.images():
            requests.delete(f"{self.url}/v2/images/{image['id']}", headers=self.headers, timeout=30)


def blob_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def clean(glance: Glance, blobs: Path) -> str:
    """Delete every image; the simulator's blob files must go with them (the disk is not left to fill)."""
    stored = blob_files(blobs)
    if not stored:
        raise RuntimeError(f"no blob file under {blobs}: the simulator keeps its uploads elsewhere")
    glance.delete_all()
    left = blob_files(blobs)
    if left:
        raise RuntimeError(f"the simulator kept {len(left)} blob file(s) after the images were deleted: {left}")
    return f"image deleted, its {len(stored)} simulator blob file(s) gone"


# -- the run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    run: int
    case: str
    what: str
    mib: float
    measured: Run
    ratio: float  # the baseline's wall seconds / these
    cpu_ratio: float  # the baseline's CPU seconds / these


def measure_case(
    run: int, case: str, work: Path, identity: str, url: str, glance: Glance, size: int, stored: dict
) -> list[Row]:
    """Baseline then reconciler for one case; checks each stored the expected bytes; cleans after each."""
    blobs = work / "sim" / "tmp"
    root = work / f"root-{case}"
    env = {**os.environ, "NHN_CLOUD_USERNAME": USER, "NHN_CLOUD_API_PASSWORD": PASSWORD,
           "NHN_CLOUD_TENANT_ID": PROJECT, "NHN_CLOUD_IDENTITY_URL": identity}  # fmt: skip
    base_cmd = [sys.executable, __file__, "--worker", "baseline", "--identity", identity, "--folder", str(work)]
    if case == "url":
        base_cmd += ["--url", url]
    theirs = measured(base_cmd, env, work / f"baseline-{case}.log")
    digests = json.loads(theirs.output.strip().splitlines()[-1])
    check_stored(glance, digests["id"], size, digests["md5"], digests["sha256"], stored["sha256"])
    print(f"  run {run} {case} baseline: {theirs.seconds:.2f} s; {clean(glance, blobs)}", flush=True)

    apply_cmd = [sys.executable, "-m", "reconciler", "apply", str(root), "--auto-approve", "--no-color"]
    apply_cmd += ["--artifacts", str(work / "data")] if case == "file" else ["--allow-http-loopback"]
    ours = measured(apply_cmd, env, work / f"reconciler-{case}.log")
    made = [i for i in glance.images() if i.get("reconciler_key") == f"bench-{case}"]
    if len(made) != 1:
        raise RuntimeError(f"apply made {len(made)} images for bench-{case}:\n{ours.output[-3000:]}")
    check_stored(glance, made[0]["id"], size, digests["md5"], digests["sha256"], stored["sha256"])
    print(f"  run {run} {case} reconciler: {ours.seconds:.2f} s; {clean(glance, blobs)}", flush=True)
    mib = size / MIB
    return [
        Row(run, case, "baseline", mib, theirs, 1.0, 1.0),
        Row(run, case, "reconciler", mib, ours, theirs.seconds / ours.seconds, theirs.cpu_seconds / ours.cpu_seconds),
    ]


def check_stored(glance: Glance, image_id: str, size: int, md5: str, sent_sha256: str, sha256: str) -> None:
    """The image is active and holds the payload: the bytes sent hash to the payload's sha256, the image's
    size and checksum are theirs."""
    image = next(i for i in glance.images() if i["id"] == image_id)
    if sent_sha256 != sha256 or image["status"] != "active" or image["size"] != size or image["checksum"] != md5:
        raise RuntimeError(f"image {image_id} does not hold the payload: {image}")


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(f"\n{'run':<4} {'case':<5} {'what':<11} {'MiB':>7} {'seconds':>8} {'MiB/s':>8} {'CPU s':>7} "
          f"{'peak RSS MB':>12} {'vs baseline':>12} {'CPU vs baseline':>16}")  # fmt: skip
    for row in rows:
        run = row.measured
        print(
            f"{row.run:<4} {row.case:<5} {row.what:<11} {row.mib:>7.0f} {run.seconds:>8.2f} "
            f"{row.mib / run.seconds:>8.1f} {run.cpu_seconds:>7.2f} {run.peak_rss_mb:>12.1f} "
            f"{row.ratio:>11.0%} {row.cpu_ratio:>15.0%}"
        )
    ours = [row for row in rows if row.what == "reconciler"]
    rss = max(row.measured.peak_rss_mb for row in ours)
    ratio = min(row.ratio for row in ours)
    cpu_ratio = min(row.cpu_ratio for row in ours)
    print(f"\nreconciler peak RSS: at most {rss:.1f} MB (target <= {RSS_TARGET_MB} MB: "
          f"{verdict(rss <= RSS_TARGET_MB)})")  # fmt: skip
    print(f"reconciler throughput: at worst {ratio:.0%} of the baseline (target >= {RATIO_TARGET:.0%}: "
          f"{verdict(ratio >= RATIO_TARGET)}); in CPU seconds, at worst {cpu_ratio:.0%}")  # fmt: skip
    print(f"reproduce: python benchmarks/upload_bench.py --size-mb {args.size_mb} --runs {args.runs}")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--worker", choices=("serve", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--identity", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "serve":
        serve_file(args.folder)
        return 0
    if args.worker == "baseline":
        baseline(args.identity, args.folder / "data" / PAYLOAD, args.url)
        return 0

    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        (work / "sim").mkdir()
        print(f"writing {args.size_mb} MiB of random bytes ...", flush=True)
        sha256 = write_payload(work / "data" / PAYLOAD, args.size_mb)
        size = args.size_mb * MIB
        with served_simulator(work / "sim") as identity, served_file(work / "data") as url:
            write_root(work / "root-file", "file", f"{{file: {PAYLOAD}, sha256: {sha256}, disk_format: raw}}")
            write_root(work / "root-url", "url", f"{{url: '{url}', sha256: {sha256}, disk_format: raw}}")
            glance = Glance(identity)
            rows = []
            for run in range(1, args.runs + 1):
                for case in ("file", "url"):
                    rows += measure_case(run, case, work, identity, url, glance, size, {"sha256": sha256})
    print_table(rows, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, requests.RequestException) as err:
        print(f"upload_bench: {err}", file=sys.stderr)
        sys.exit(1)
