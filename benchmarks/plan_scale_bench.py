"""Plan at scale: reconciler's list-based refresh against a per-resource refresh, in the same run.

    python benchmarks/plan_scale_bench.py [--keys 5000 10000] [--latency-ms 20]

For each --keys, a simulator is served in a separate process (`--in-memory`, with the given latency per
request) holding that many managed keys in KR1, each copied to KR2 and JP1 (3 images per key), 10% of them
shared with two projects. Measured, each from a cold client:

- reconciler, in a fresh child process (the plan alone in it): `load_desired_state` (what `reconciler
  validate` runs), then `read_snapshot` (paged lists per region, regions in parallel, members only of shared
  images, 32 at a time) + `build_plan` + the JSON rendering, timed apart; the plan process's CPU and peak
  RSS; the simulator process's CPU meanwhile; the requests it made, from the simulator's counter, against
  the minimum (list pages + one members call per shared image);
- baseline: what a per-resource refresh does (Terraform's OpenStack provider): one GET and one members
  GET per image, 10 threads.

Targets (issue 26): at least 25x faster than the baseline at 5,000 keys and 30x at 10,000; requests 1.00x
the minimum. Client and simulator share the machine's cores (printed): the plan's CPU is reported apart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from served import request_counts, served_simulator

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNERS = ["8989447062e04a818baf9e073fd04fa7", "0123456789abcdef0123456789abcdef"]
USER, PASSWORD = "bench@example.com", "local-only"


def seed(keys: int, latency_ms: int) -> dict:
    images = []
    for i in range(keys):
        key = f"img-{i:05d}"
        home = f"00000000-0000-4000-8000-{i:012d}"
        marks = {"reconciler_set": "scale", "reconciler_key": key, "reconciler_source": f"image:{home}"}
        shared = i % 10 == 0
        extra = (
            {"visibility": "shared", "members": [{"project": p, "status": "accepted"} for p in PARTNERS]}
            if shared
            else {}
        )
        images.append({"id": home, "project": OWNER, "region": "KR1", "name": key, "content": "same",
                       "properties": {"os_type": "linux", **marks}, **extra})  # fmt: skip
        for j, region in enumerate(("KR2", "JP1")):
            copy = {"os_type": "linux", **marks, "reconciler_copy_of": home}
            images.append({"id": f"00000000-0000-4000-{8001 + j}-{i:012d}", "project": OWNER, "region": region,
                           "name": key, "content": "same", "properties": copy, **extra})  # fmt: skip
    return {
        "regions": ["KR1", "KR2", "JP1"],
        "projects": [{"id": OWNER, "users": [{"username": USER, "api_password": PASSWORD}]}]
        + [{"id": p} for p in PARTNERS],
        "images": images,
        "behaviour": {"latency_ms": latency_ms},
    }


def write_root(folder: Path, keys: int) -> None:
    (folder / "reconciler.yaml").write_text(f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\n"
                                           "defaults: {region: KR1}\n")  # fmt: skip
    lines = ["version: 1", "images:"]
    for i in range(keys):
        share = f", share: [{', '.join(PARTNERS)}]" if i % 10 == 0 else ""
        lines.append(
            f"  img-{i:05d}: {{source: {{image: 00000000-0000-4000-8000-{i:012d}}}, copies: [KR2, JP1]{share}}}"
        )
    (folder / "images.yaml").write_text("\n".join(lines) + "\n")


def reconciler_plan(folder: Path, identity: str) -> dict[str, float]:
    """In this (fresh) process: the validation's seconds, the refresh + plan + JSON's seconds, the process's
    CPU seconds and peak RSS (MB)."""
    from reconciler.cloud.auth import Credentials
    from reconciler.cloud.nhn import connect
    from reconciler.plan import Target
    from reconciler.planner import build_plan
    from reconciler.render.json import render_json
    from reconciler.snapshot import read_snapshot
    from reconciler.validate import load_desired_state

    cpu_before = _own_cpu()
    started = time.perf_counter()
    desired = load_desired_state(folder)
    validated = time.perf_counter()
    client = connect(Credentials(USER, PASSWORD, identity_url=identity), OWNER)
    snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, identity, snapshot.regions))
    render_json(plan.to_json())
    finished = time.perf_counter()
    assert not plan.actions and not plan.refusals, "the benchmark inventory should need no change"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"validate": validated - started, "plan": finished - validated, "cpu": _own_cpu() - cpu_before,
            "peak_mb": peak_mb}  # fmt: skip


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plan_in_a_child(folder: Path, identity: str) -> dict[str, float]:
    child = [sys.executable, __file__, "--measure", str(folder), identity]
    return json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)


def simulator_cpu() -> float:
    """The CPU seconds used so far by this process's children that serve a simulator (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if b"serve" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def baseline_refresh(identity: str, image_ids: list[tuple[str, str]]) -> float:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    started = time.perf_counter()
    access = session.post(f"{identity}/tokens", json={"auth": {"tenantId": OWNER, "passwordCredentials": {
        "username": USER, "password": PASSWORD}}}).json()["access"]  # fmt: skip
    headers = {"X-Auth-Token": access["token"]["id"], "Accept": "application/json"}
    urls = {
        e["region"]: e["publicURL"] for s in access["serviceCatalog"] if s["type"] == "image" for e in s["endpoints"]
    }

    def refresh(item: tuple[str, str]) -> None:
        region, image_id = item
        session.get(f"{urls[region]}/v2/images/{image_id}", headers=headers).raise_for_status()
        session.get(f"{urls[region]}/v2/images/{image_id}/members", headers=headers)  # 403 on a private image

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(refresh, image_ids))
    return time.perf_counter() - started


def measure(keys: int, latency_ms: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "root"  # the manifests; the seed and state stay outside it
        folder.mkdir()
        document = seed(keys, latency_ms)
        write_root(folder, keys)
        with served_simulator(document, folder.parent) as identity:
            request_counts(identity, reset=True)
            simulator_before = simulator_cpu()
            ours = plan_in_a_child(folder, identity)
            ours["simulator_cpu"] = simulator_cpu() - simulator_before
            our_requests = sum(request_counts(identity).values())
            request_counts(identity, reset=True)
            theirs = baseline_refresh(identity, [(image["region"], image["id"]) for image in document["images"]])
            their_requests = sum(request_counts(identity).values())
    shared = sum(1 for i in document["images"] if i.get("visibility") == "shared")
    pages = sum(math.floor(n / 1000) + 1 for n in (keys, keys, keys))
    return {"keys": keys, "images": len(document["images"]), "shared": shared, "minimum": 1 + pages + shared,
            "ours": ours, "our_requests": our_requests, "theirs": theirs, "their_requests": their_requests}  # fmt: skip


TARGETS = {5_000: 25, 10_000: 30}


def report(run: dict, latency_ms: int) -> None:
    ours, keys = run["ours"], run["keys"]
    print(f"\n{run['images']:,} images ({keys:,} keys x 3 regions), {run['shared']:,} shared, {latency_ms} ms latency")
    print(f"{'what':<40} {'seconds':>8} {'requests':>9}")
    print(f"{'baseline: GET + members per image':<40} {run['theirs']:>8.2f} {run['their_requests']:>9,}")
    print(f"{'reconciler: refresh + plan + JSON':<40} {ours['plan']:>8.2f} {run['our_requests']:>9,}")
    print(f"{'reconciler: validation before it':<40} {ours['validate']:>8.2f}")
    target = TARGETS.get(keys)
    print(f"speed-up: {run['theirs'] / ours['plan']:.1f}x" + (f" (target >= {target}x)" if target else "")
          + f"; with the validation: {run['theirs'] / (ours['validate'] + ours['plan']):.1f}x")  # fmt: skip
    print(f"requests: {run['our_requests'] / run['minimum']:.2f}x the minimum {run['minimum']:,} (target 1.00x)")
    print(f"plan process: {ours['cpu']:.2f} s CPU (validation included), peak RSS {ours['peak_mb']:.0f} MB; "
          f"simulator meanwhile: {ours['simulator_cpu']:.2f} s CPU; {os.cpu_count()} cores shared by both")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[5_000, 10_000])
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # folder, identity: in a child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(reconciler_plan(Path(args.measure[0]), args.measure[1])))
        return 0
    for keys in args.keys:
        report(measure(keys, args.latency_ms), args.latency_ms)
    print(f"\nreproduce: python benchmarks/plan_scale_bench.py --keys {' '.join(map(str, args.keys))} "
          f"--latency-ms {args.latency_ms}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
