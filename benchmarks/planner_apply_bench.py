"""The planner alone, apply's concurrency, and start-up, each against a baseline in the same run.

    python benchmarks/planner_apply_bench.py [--small 10000] [--large 100000] [--updates 1000] [--latency-ms 20]

- planner alone: classification, plan and JSON rendering of an in-memory snapshot of --small and
  --large images (best of 3 fresh child processes each: CPU time and peak RSS); growth should be near
  linear (target: at most 12x for 10x the images);
- apply: --updates independent renames at --latency-ms per request, `Applier` with parallelism 16
  against 1 (target: at least 8x faster), each against a fresh simulator served in memory in its own
  process (benchmarks/served.py), so the client is what is measured;
- start-up: `reconciler --help` against `python -c 'import requests'`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType

from served import request_counts, served_simulator

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
USER, PASSWORD = "bench@example.com", "local-only"


def planner_alone(images: int) -> dict:
    from reconciler.cloud.records import Image, Member
    from reconciler.desired import CloudConfig, CopySpec, DesiredState, ImageSpec, RootConfig, Settings, Source
    from reconciler.plan import Target
    from reconciler.planner import build_plan
    from reconciler.render.json import render_json
    from reconciler.snapshot import Snapshot

    keys = images // 3
    specs, by_region, members = [], {"KR1": [], "KR2": [], "JP1": []}, {}
    for i in range(keys):
        key, home = f"img-{i:06d}", f"00000000-0000-4000-8000-{i:012d}"
        shared = i % 10 == 0
        copies = (CopySpec("KR2"), CopySpec("JP1"))
        share = (PARTNER,) if shared else None
        specs.append(ImageSpec(key, "images.yaml", "KR1", Source(image=home), copies=copies, share=share))
        for j, region in enumerate(("KR1", "KR2", "JP1")):
            image_id = home if j == 0 else f"00000000-0000-4000-{8000 + j}-{i:012d}"
            props = {
                "os_type": "linux",
                "reconciler_set": "scale",
                "reconciler_key": key,
                "reconciler_source": f"image:{home}",
            }
            if j:
                props["reconciler_copy_of"] = home
            by_region[region].append(Image(region, image_id, key, "active", "shared" if shared else "private", False,
                                           OWNER, 0, 0, 1, 1, "c", None, "qcow2", "bare", (), "t", None,
                                           MappingProxyType(props)))  # fmt: skip
            if shared:
                members[image_id] = (Member(image_id, PARTNER, "accepted"),)
    root = RootConfig(Path("."), "scale", CloudConfig("nhn", OWNER, None), "KR1", Settings())
    desired = DesiredState(root, tuple(specs), ("images.yaml",))
    snapshot = Snapshot(OWNER, ("JP1", "KR1", "KR2"), ("JP1", "KR1", "KR2"),
                        MappingProxyType({r: tuple(v) for r, v in by_region.items()}), MappingProxyType(members),
                        MappingProxyType({}), MappingProxyType({}))  # fmt: skip
    started = time.process_time()
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, "x", snapshot.regions))
    render_json(plan.to_json())
    cpu = time.process_time() - started
    assert not plan.actions and not plan.refusals
    return {"images": keys * 3, "cpu_s": cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def apply_run(updates: int, parallelism: int, latency_ms: int) -> dict:
    """Time `Applier.run` of `updates` independent renames against a fresh simulator served in memory
    in its own process (so the run measures the client, not the simulator's state file or its GIL)."""
    from reconciler.apply import Applier
    from reconciler.cloud.auth import Credentials
    from reconciler.cloud.nhn import connect
    from reconciler.plan import Target
    from reconciler.planner import build_plan
    from reconciler.snapshot import read_snapshot
    from reconciler.validate import load_desired_state

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        images = [
            {"id": f"00000000-0000-4000-8000-{i:012d}", "project": OWNER, "region": "KR1", "name": f"old-{i}",
             "properties": {"os_type": "linux", "reconciler_set": "bench", "reconciler_key": f"img-{i}"}}
            for i in range(updates)
        ]  # fmt: skip
        users = [{"username": USER, "api_password": PASSWORD}]
        seed = {"regions": ["KR1"], "projects": [{"id": OWNER, "users": users}], "images": images,
                "behaviour": {"latency_ms": latency_ms}}  # fmt: skip
        (root / "reconciler.yaml").write_text(f"version: 1\nset: bench\ncloud: {{kind: nhn, project: {OWNER}}}\n"
                                              "defaults: {region: KR1}\n")  # fmt: skip
        lines = ["version: 1", "images:"] + [
            f"  img-{i}: {{name: new-{i}, source: {{image: 00000000-0000-4000-8000-{i:012d}}}}}" for i in range(updates)
        ]
        (root / "images.yaml").write_text("\n".join(lines) + "\n")
        desired = load_desired_state(root)
        with served_simulator(seed, Path(tmp)) as identity:
            client = connect(Credentials(USER, PASSWORD, identity_url=identity), OWNER)
            plan = build_plan(desired, read_snapshot(client, desired), Target("nhn", OWNER, identity, ("KR1",)))
            assert len(plan.actions) == updates
            request_counts(identity, reset=True)
            started = time.perf_counter()
            report = Applier(client, plan, parallelism=parallelism).run()
            seconds = time.perf_counter() - started
            assert report.succeeded
            sent = sum(request_counts(identity).values())
    return {"seconds": seconds, "requests": sent}


def startup(command: list[str], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--planner-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--apply-worker", type=int, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.planner_worker:
        print(json.dumps(planner_alone(args.planner_worker)))
        return 0
    if args.apply_worker:
        print(json.dumps(apply_run(*args.apply_worker)))
        return 0

    # Best of 3 fresh processes each: the small run is a tenth of a second, where noise shows most.
    small, large = (
        min((child(["--planner-worker", str(n)]) for _ in range(3)), key=lambda run: run["cpu_s"])
        for n in (args.small, args.large)
    )
    serial = child(["--apply-worker", str(args.updates), "1", str(args.latency_ms)])
    parallel = child(["--apply-worker", str(args.updates), "16", str(args.latency_ms)])
    requests_import = startup([sys.executable, "-c", "import requests"])
    help_time = startup([sys.executable, "-m", "reconciler", "--help"])
    print(f"{'measure':<40} {'result':>12} {'note':<40}")
    label = f"planner alone, {small['images']:,} images"
    print(f"{label:<40} {small['cpu_s']:>10.2f} s {small['peak_rss_mb']:.0f} MB peak RSS")
    print(f"{'planner alone, ' + format(large['images'], ',') + ' images':<40} {large['cpu_s']:>10.2f} s "
          f"{large['peak_rss_mb']:.0f} MB peak RSS; {large['cpu_s'] / small['cpu_s']:.1f}x for "
          f"{large['images'] / small['images']:.0f}x the images (target <= 12x)")  # fmt: skip
    for label, run in (("1", serial), ("16", parallel)):
        note = "baseline" if run is serial else f"{serial['seconds'] / run['seconds']:.1f}x faster (target >= 8x)"
        print(f"{'apply ' + str(args.updates) + ' updates, parallelism ' + label:<40} {run['seconds']:>10.2f} s "
              f"{run['requests']:,} requests; {note}")  # fmt: skip
    print(f"{'python -c import requests':<40} {requests_import:>10.2f} s baseline")
    print(f"{'reconciler --help':<40} {help_time:>10.2f} s {help_time / requests_import:.1f}x the baseline")
    print(f"\nreproduce: python benchmarks/planner_apply_bench.py --small {args.small} --large {args.large} "
          f"--updates {args.updates} --latency-ms {args.latency_ms}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
