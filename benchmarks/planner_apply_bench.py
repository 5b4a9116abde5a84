"""The planner alone, apply's concurrency, and start-up, each against a baseline in the same run.

    python benchmarks/planner_apply_bench.py [--small 10000] [--large 100000] [--updates 300]

- planner alone: classification, plan and JSON rendering of an in-memory snapshot of --small and
  --large images (each measured in a fresh child process: time and peak RSS); growth should be near
  linear (target: at most 12x for 10x the images);
- apply: --updates independent renames at 20 ms simulator latency, `--parallelism 16` against 1
  (target: at least 8x faster);
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

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"


def planner_alone(images: int) -> dict:
    from reconciler.cloud.model import Image, Member
    from reconciler.model import CloudTarget, CopySpec, DesiredState, ImageSpec, RootConfig, Settings, Source
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
    root = RootConfig(Path("."), "scale", CloudTarget("nhn", OWNER, None), "KR1", Settings())
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


def apply_run(updates: int, parallelism: int) -> float:
    from reconciler.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = [
            {"id": f"00000000-0000-4000-8000-{i:012d}", "project": OWNER, "region": "KR1", "name": f"old-{i}",
             "properties": {"os_type": "linux", "reconciler_set": "bench", "reconciler_key": f"img-{i}"}}
            for i in range(updates)
        ]  # fmt: skip
        seed = {"regions": ["KR1"], "projects": [{"id": OWNER, "users": [{"username": "u", "api_password": "p"}]}],
                "images": images, "behaviour": {"latency_ms": 20}}  # fmt: skip
        (root / "seed.json").write_text(json.dumps(seed))
        (root / "reconciler.yaml").write_text("version: 1\nset: bench\ncloud: {kind: simulator, seed: seed.json}\n"
                                              "defaults: {region: KR1}\n")  # fmt: skip
        lines = ["version: 1", "images:"] + [
            f"  img-{i}: {{name: new-{i}, source: {{image: 00000000-0000-4000-8000-{i:012d}}}}}" for i in range(updates)
        ]
        (root / "images.yaml").write_text("\n".join(lines) + "\n")
        main(["plan", str(root), "--format", "json"])  # creates the state; not timed
        started = time.perf_counter()
        code = main(["apply", str(root), "--auto-approve", "--parallelism", str(parallelism), "--format", "json"])
        seconds = time.perf_counter() - started
        assert code == 0
    return seconds


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
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--planner-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--apply-worker", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.planner_worker:
        print(json.dumps(planner_alone(args.planner_worker)))
        return 0
    if args.apply_worker:
        print(json.dumps({"seconds": apply_run(*args.apply_worker)}))
        return 0

    small, large = child(["--planner-worker", str(args.small)]), child(["--planner-worker", str(args.large)])
    serial = child(["--apply-worker", str(args.updates), "1"])["seconds"]
    parallel = child(["--apply-worker", str(args.updates), "16"])["seconds"]
    requests_import = startup([sys.executable, "-c", "import requests"])
    help_time = startup([sys.executable, "-m", "reconciler", "--help"])
    print(f"{'measure':<40} {'result':>12} {'note':<40}")
    label = f"planner alone, {small['images']:,} images"
    print(f"{label:<40} {small['cpu_s']:>10.2f} s {small['peak_rss_mb']:.0f} MB peak RSS")
    print(f"{'planner alone, ' + format(large['images'], ',') + ' images':<40} {large['cpu_s']:>10.2f} s "
          f"{large['peak_rss_mb']:.0f} MB peak RSS; {large['cpu_s'] / small['cpu_s']:.1f}x for "
          f"{large['images'] / small['images']:.0f}x the images (target <= 12x)")  # fmt: skip
    print(f"{'apply ' + str(args.updates) + ' updates, --parallelism 1':<40} {serial:>10.2f} s baseline")
    print(f"{'apply ' + str(args.updates) + ' updates, --parallelism 16':<40} {parallel:>10.2f} s "
          f"{serial / parallel:.1f}x faster (target >= 8x)")  # fmt: skip
    print(f"{'python -c import requests':<40} {requests_import:>10.2f} s baseline")
    print(f"{'reconciler --help':<40} {help_time:>10.2f} s {help_time / requests_import:.1f}x the baseline")
    print(f"\nreproduce: python benchmarks/planner_apply_bench.py --small {args.small} --large {args.large} "
          f"--updates {args.updates}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
