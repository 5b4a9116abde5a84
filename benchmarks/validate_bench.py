"""Validate at scale: `load_desired_state` (what `reconciler validate` runs) against plain PyYAML.

    python benchmarks/validate_bench.py [--keys 1000 10000] [--runs 3]

For each --keys, a root is written to a temporary folder: reconciler.yaml (kind nhn, defaults.region
KR1) and one images.yaml holding that many keys, each adopting an image by id and copied to KR2 and
JP1, 10% of them also named and shared with a project. Entries are written compactly (flow style) so
that 10,000 keys stay under the 1 MiB a manifest may hold. Measured, each in a fresh process (imports
excluded), best of --runs:

- baselines: `yaml.load(CSafeLoader)` (libyaml's parser, C) and `yaml.safe_load` (PyYAML's pure-Python
  loader) of images.yaml: no locations, no checks;
- reconciler: `load_located` of images.yaml alone (located YAML: the parser, our builder, duplicate keys
  and bounds), and `load_desired_state(root)`: that, the schemas (compiled checks; jsonschema only for a
  document they do not vouch for, see reconciler/schemas.py), the cross-file rules and the frozen model.

Target (issue 26): validating 10,000 keys at most 2x `yaml.load(CSafeLoader)`, the reference, on the same
file. Machines here are shared and noisy: compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
WHAT = {
    "libyaml": "yaml.load(CSafeLoader) (reference)",
    "baseline": "yaml.safe_load",
    "located": "reconciler load_located",
    "reconciler": "reconciler load_desired_state",
}
REFERENCE = "libyaml"


def write_root(folder: Path, keys: int) -> None:
    (folder / "reconciler.yaml").write_text(
        f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {PROJECT}}}\ndefaults: {{region: KR1}}\n"
    )
    lines = ["version: 1", "images:"]
    for i in range(keys):
        source = f"source: {{image: 00000000-0000-4000-8000-{i:012d}}}"
        if i % 10 == 0:
            lines.append(f"  img-{i:05d}: {{name: image-{i:05d}, {source}, copies: [KR2, {{region: JP1}}], "
                         f"share: [{PARTNER}]}}")  # fmt: skip
        else:
            lines.append(f"  img-{i:05d}: {{{source}, copies: [KR2, JP1]}}")
    (folder / "images.yaml").write_text("\n".join(lines) + "\n")


def measure(what: str, folder: Path, keys: int) -> float:
    """In this (fresh) process: the seconds `what` takes, imports excluded."""
    text = (folder / "images.yaml").read_text(encoding="utf-8")
    if what in ("libyaml", "baseline"):
        import yaml

        started = time.perf_counter()
        data = yaml.load(text, Loader=yaml.CSafeLoader) if what == "libyaml" else yaml.safe_load(text)
        seconds = time.perf_counter() - started
        assert len(data["images"]) == keys
        return seconds
    if what == "located":
        from reconciler.yaml_source import load_located

        started = time.perf_counter()
        doc = load_located(text, "images.yaml", refuse_hidden=True)
        seconds = time.perf_counter() - started
        assert len(doc.data["images"]) == keys and not doc.problems
        return seconds
    from reconciler.validate import load_desired_state

    started = time.perf_counter()
    state = load_desired_state(folder)
    seconds = time.perf_counter() - started
    assert len(state.images) == keys
    return seconds


def best_of(what: str, folder: Path, keys: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        child = [sys.executable, __file__, "--measure", what, str(folder), str(keys)]
        times.append(json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout))
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # what, folder, keys: in a child
    args = parser.parse_args()
    if args.measure:
        what, folder, keys = args.measure
        print(json.dumps(measure(what, Path(folder), int(keys))))
        return 0

    import yaml

    print(
        f"PyYAML {yaml.__version__} (libyaml: {yaml.__with_libyaml__}); best of {args.runs}, each in a fresh process\n"
    )
    print(f"{'keys':>7}  {'what':<36} {'seconds':>8} {'vs reference':>13}")
    for keys in args.keys:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_root(folder, keys)
            size = (folder / "images.yaml").stat().st_size
            results = {what: best_of(what, folder, keys, args.runs) for what in WHAT}
        for what, seconds in results.items():
            ratio = seconds / results[REFERENCE]
            print(f"{keys:>7,}  {WHAT[what]:<36} {seconds:>8.3f} {ratio:>12.2f}x")
        print(f"{'':>7}  (images.yaml: {size:,} bytes)")
    print(f"\nreproduce: python benchmarks/validate_bench.py --keys {' '.join(map(str, args.keys))} --runs {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
