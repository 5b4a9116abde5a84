"""Region copy: throughput and peak memory of reconciler's copy against a plain requests baseline.

Run on demand (not part of the test suite):

    python benchmarks/copy_bench.py [--size-mb 2048] [--runs 1]

A simulator is served in a separate process (`reconciler simulator serve --in-memory`) holding a home
image of --size-mb in KR1. Each measurement runs in a fresh child process, so its peak RSS is its own:

- reconciler: `region_copy.copy_image` through the cloud client (create the target, stream GET into PUT
  computing md5 and sha512, wait, verify), as apply does;
- baseline: the same bytes streamed GET-to-PUT with bare `requests` and hashed the same way.

Targets (issue 7): peak RSS at most 100 MB whatever the size; throughput at least 80% of the baseline.
Machines here are shared and noisy: compare the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
USER, PASSWORD = "bench@example.com", "local-only"
HOME_ID = "00000000-0000-4000-8000-00000000b0b0"
MIB = 1024 * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_reconciler(identity_url: str) -> dict:
    from reconciler.cloud.auth import Credentials
    from reconciler.cloud.nhn import connect
    from reconciler.region_copy import copy_image

    client = connect(Credentials(USER, PASSWORD, identity_url=identity_url), PROJECT, poll_delays=(0.05, 0.5))
    source = client.get_image("KR1", HOME_ID)
    started = time.perf_counter()
    result = copy_image(client, source, "JP1", name="bench-copy", marks={"reconciler_set": "bench"}, timeout=600)
    seconds = time.perf_counter() - started
    client.delete_image("JP1", result.destination_id)
    return {"seconds": seconds, "bytes": result.bytes, "peak_rss_mb": peak_rss_mb(), "md5": result.md5}


def run_baseline(identity_url: str) -> dict:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    access = session.post(
        f"{identity_url}/tokens",
        json={"auth": {"tenantId": PROJECT, "passwordCredentials": {"username": USER, "password": PASSWORD}}},
    ).json()["access"]
    session.headers["X-Auth-Token"] = access["token"]["id"]
    urls = {
        e["region"]: e["publicURL"] for s in access["serviceCatalog"] if s["type"] == "image" for e in s["endpoints"]
    }
    target = session.post(
        f"{urls['JP1']}/v2/images",
        json={"name": "baseline-copy", "disk_format": "qcow2", "container_format": "bare", "os_type": "linux",
              "visibility": "private"},
    ).json()  # fmt: skip
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    started = time.perf_counter()
    with session.get(f"{urls['KR1']}/v2/images/{HOME_ID}/file", stream=True) as download:
        download.raise_for_status()

        def body():
            nonlocal size
            for chunk in download.iter_content(1024 * 1024):
                md5.update(chunk)
                sha512.update(chunk)
                size += len(chunk)
                yield chunk

        session.put(
            f"{urls['JP1']}/v2/images/{target['id']}/file",
            data=body(),
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()
    while session.get(f"{urls['JP1']}/v2/images/{target['id']}").json()["status"] != "active":
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    session.delete(f"{urls['JP1']}/v2/images/{target['id']}")
    return {"seconds": seconds, "bytes": size, "peak_rss_mb": peak_rss_mb(), "md5": md5.hexdigest()}


def measure(kind: str, identity_url: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--identity", identity_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--worker", choices=("reconciler", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--identity", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = run_reconciler if args.worker == "reconciler" else run_baseline
        print(json.dumps(work(args.identity)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        seed = {
            "regions": ["KR1", "JP1"],
            "projects": [{"id": PROJECT, "users": [{"username": USER, "api_password": PASSWORD}]}],
            "images": [{"id": HOME_ID, "project": PROJECT, "region": "KR1", "name": "home", "size_mb": args.size_mb,
                        "properties": {"os_type": "linux", "nhncloud_allow_download": "true"}}],
            "behaviour": {"image_ready_after_polls": 0},
        }  # fmt: skip
        seed_path, state = Path(tmp) / "seed.yaml", Path(tmp) / "state.json"
        seed_path.write_text(yaml.safe_dump(seed))
        cli = [sys.executable, "-m", "reconciler", "simulator"]
        subprocess.run([*cli, "init", str(state), "--seed", str(seed_path)], check=True, capture_output=True)
        server = subprocess.Popen(
            [*cli, "serve", "--state", str(state), "--in-memory"], stdout=subprocess.PIPE, text=True
        )
        try:
            identity = server.stdout.readline().strip()
            rows = []
            for _ in range(args.runs):
                baseline = measure("baseline", identity)
                ours = measure("reconciler", identity)
                assert ours["md5"] == baseline["md5"], "the two copies moved different bytes"
                rows.append((baseline, ours))
        finally:
            server.terminate()
            server.wait(timeout=10)

    print(f"{'run':<4} {'what':<11} {'MiB':>7} {'seconds':>8} {'MiB/s':>8} {'peak RSS MB':>12} {'vs baseline':>12}")
    for i, (baseline, ours) in enumerate(rows, 1):
        for name, row in (("baseline", baseline), ("reconciler", ours)):
            rate = row["bytes"] / MIB / row["seconds"]
            ratio = (baseline["seconds"] / row["seconds"]) if name == "reconciler" else 1.0
            print(
                f"{i:<4} {name:<11} {row['bytes'] / MIB:>7.0f} {row['seconds']:>8.2f} {rate:>8.1f} "
                f"{row['peak_rss_mb']:>12.1f} {ratio:>11.0%}"
            )
    print(f"\nreproduce: python benchmarks/copy_bench.py --size-mb {args.size_mb} --runs {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
