"""Saved plans: `plan --out FILE` keeps what was reviewed; `apply --plan FILE` applies exactly that, or
refuses when anything it relies on changed since (design.md section 4).

A saved plan is the plan's JSON document plus a `saved` section:
- `files`: a sha256 of each file of the root (reconciler.yaml and every manifest);
- `target`: what it was made against (for the simulator, the state file's absolute path);
- `fingerprints`: each live object the plan touches, as it was read, keyed like `expects`;
- `creates`: the identities (key, region) the plan makes, which must still be free.

Objects the plan does not touch are not fingerprinted: changing them never makes the plan stale.
While applying, a journal beside the saved plan (`FILE.progress.json`) records the actions done and
the images they made, so `--resume` can finish a partial apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import markers
from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import NotFound
from reconciler.cloud.model import Image
from reconciler.errors import ReconcilerError
from reconciler.model import CloudTarget, DesiredState
from reconciler.plan import Action, Change, Dependency, Finding, Plan, Reason, Target
from reconciler.root import ROOT_FILE
from reconciler.snapshot import Snapshot

FINGERPRINT_FIELDS = ("status", "protected", "name", "visibility", "min_disk", "min_ram", "checksum")


class StalePlanError(ReconcilerError):
    """The saved plan no longer matches the root or the cloud; `details` names each difference."""


def root_digests(desired: DesiredState) -> dict[str, str]:
    root = desired.root.path
    files = [ROOT_FILE, *desired.files]
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in files}


def saved_target(cloud: CloudTarget, target: Target) -> dict[str, Any]:
    saved = {"kind": target.kind, "project": target.project}
    if cloud.kind == "simulator":
        saved["state"] = str(cloud.state)
    else:
        saved["identity"] = target.identity
    return saved


def _image_fingerprint(image: Image) -> dict[str, Any]:
    print_ = {name: getattr(image, name) for name in FINGERPRINT_FIELDS}
    print_["properties"] = dict(sorted(image.properties.items()))
    return print_


def fingerprints(plan: Plan, snapshot: Snapshot) -> dict[str, Any]:
    """The live objects the plan's actions rely on, as read when it was made."""
    images = {f"{image.region}/{image.id}": image for image in snapshot.all_images()}
    servers = {
        f"{server.region}/server/{server.id}": server for server in snapshot.servers.values() if server is not None
    }
    prints: dict[str, Any] = {}
    for action in plan.actions:
        refs = set(action.expects)
        if action.image_id:
            refs.add(f"{action.region}/{action.image_id}")
        for ref in sorted(refs):
            if ref in images:
                prints[ref] = _image_fingerprint(images[ref])
            elif ref in servers:
                server = servers[ref]
                prints[ref] = {"status": server.status, "metadata": dict(sorted(server.metadata.items()))}
    return prints


def save(path: Path, plan: Plan, desired: DesiredState, cloud: CloudTarget, snapshot: Snapshot) -> None:
    document = plan.to_json()
    document["saved"] = {
        "files": root_digests(desired),
        "target": saved_target(cloud, plan.target),
        "fingerprints": fingerprints(plan, snapshot),
        "creates": sorted({f"{a.key}/{a.region}" for a in plan.actions if a.kind in ("create", "copy")}),
    }
    _write_json(path, document)


def load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ReconcilerError(f"cannot read the saved plan {path}: {err}") from None
    if document.get("format_version") != "1" or "saved" not in document:
        raise ReconcilerError(f"{path} is not a plan saved by `reconciler plan --out` (format_version 1)")
    return document


def check_root(document: Mapping[str, Any], desired: DesiredState) -> None:
    saved = document["saved"]["files"]
    now = root_digests(desired)
    changed = sorted(name for name in set(saved) | set(now) if saved.get(name) != now.get(name))
    if changed:
        details = [
            f"  {name}: " + ("added" if name not in saved else "removed" if name not in now else "changed")
            for name in changed
        ]
        raise StalePlanError(
            "the root changed since the plan was saved: nothing was applied",
            hint="make and review a new plan",
            details=["changed since the plan was saved:", *details],
        )


def check_target(document: Mapping[str, Any], cloud: CloudTarget, target: Target) -> None:
    saved = document["saved"]["target"]
    now = saved_target(cloud, target)
    if saved != now:
        differences = [
            f"  {k}: saved {saved.get(k)!r}, now {now.get(k)!r}"
            for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)
        ]
        raise StalePlanError(
            "the target is not the one the plan was saved for: nothing was applied",
            hint="apply the plan against the target it was made for, or make a new plan",
            details=["the target differs:", *differences],
        )


def check_cloud(document: Mapping[str, Any], client: CloudClient, *, skip: Iterable[str] = ()) -> None:
    """Re-read every fingerprinted object and compare (deepdiff); and check the identities the plan
    creates are still free. `skip`: objects already changed by this plan's own done actions."""
    problems: list[str] = []
    skipped = set(skip)
    for ref, saved in sorted(document["saved"]["fingerprints"].items()):
        if ref in skipped:
            continue
        now = _read(client, ref)
        if now is None:
            problems.append(f"  {ref}: gone")
            continue
        from deepdiff import DeepDiff  # imported where used: it is heavy, and only apply --plan needs it

        diff = DeepDiff(saved, now, ignore_order=True, verbose_level=2)
        for change in _describe(diff):
            problems.append(f"  {ref}: {change}")
    creates = set(document["saved"]["creates"]) - skipped
    if creates:
        for region in sorted({c.split("/", 1)[1] for c in creates}):
            for image in client.list_images(region, owner=client.project_id):
                key = image.properties.get(markers.KEY)
                unfinished = image.status != "active" and not image.protected  # a copy removes its own
                if (
                    image.properties.get(markers.SET) == document["set"]
                    and f"{key}/{region}" in creates
                    and not unfinished
                ):
                    problems.append(f"  {region}/{image.id}: an image of {key} now exists; the plan would make another")
    if problems:
        raise StalePlanError(
            f"{len(problems)} object{'s' if len(problems) != 1 else ''} the plan relies on changed since it was saved: "
            "nothing was applied",
            hint="make and review a new plan",
            details=["changed since the plan was saved:", *problems],
        )


def _read(client: CloudClient, ref: str) -> dict[str, Any] | None:
    try:
        if "/server/" in ref:
            region, _, server_id = ref.partition("/server/")
            server = client.get_server(region, server_id)
            return {"status": server.status, "metadata": dict(sorted(server.metadata.items()))}
        region, _, image_id = ref.partition("/")
        return _image_fingerprint(client.get_image(region, image_id))
    except NotFound:
        return None


def _describe(diff: Any) -> list[str]:
    lines = []
    for path, change in sorted(diff.get("values_changed", {}).items()):
        lines.append(f"{_field(path)} {change['old_value']!r} -> {change['new_value']!r}")
    for path, change in sorted(diff.get("type_changes", {}).items()):
        lines.append(f"{_field(path)} {change['old_value']!r} -> {change['new_value']!r}")
    for path, value in sorted(diff.get("dictionary_item_added", {}).items()):
        lines.append(f"{_field(path)} added ({value!r})")
    for path, value in sorted(diff.get("dictionary_item_removed", {}).items()):
        lines.append(f"{_field(path)} removed (was {value!r})")
    return lines


def _field(path: str) -> str:
    # deepdiff paths look like root['properties']['name']
    return ".".join(part.strip("'\"]") for part in path.removeprefix("root").split("[") if part)


# -- the saved plan as a Plan, and the progress journal -------------------------------------------


def to_plan(document: Mapping[str, Any]) -> Plan:
    common = {"id", "kind", "key", "region", "image_id", "changes", "expects", "reason", "depends_on"}
    actions = tuple(
        Action(
            id=a["id"],
            kind=a["kind"],
            key=a["key"],
            region=a["region"],
            reason=Reason(a["reason"]["code"], a["reason"]["message"], a["reason"]["source"]),
            image_id=a["image_id"],
            changes={k: Change(v["before"], v["after"]) for k, v in a["changes"].items()},
            expects={k: dict(v) for k, v in a["expects"].items()},
            depends_on=tuple(Dependency(d["id"], d["reason"]) for d in a["depends_on"]),
            details={k: v for k, v in a.items() if k not in common},
        )
        for a in document["actions"]
    )
    t = document["target"]
    return Plan(
        set=document["set"],
        target=Target(t["kind"], t["project"], t["identity"], tuple(t["regions"]), t.get("state")),
        actions=actions,
        refusals=tuple(
            Finding(r["code"], r["key"], r["region"], r["message"], r["source"], r["hint"])
            for r in document["refusals"]
        ),
        warnings=tuple(
            Finding(w["code"], w["key"], w["region"], w["message"], w["source"]) for w in document["warnings"]
        ),
        info=document["info"],
    )


@dataclass
class Journal:
    """What an apply of a saved plan has done so far: action ids, and the images they made."""

    path: Path
    done: list[str] = field(default_factory=list)
    made: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan_path: Path) -> Journal:
        path = plan_path.with_name(plan_path.name + ".progress.json")
        if path.exists():
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, list(doc.get("done", [])), dict(doc.get("made", {})))
        return cls(path)

    def record(self, action_id: str, image_id: str | None, made: bool) -> None:
        self.done.append(action_id)
        if made and image_id:
            self.made[action_id] = image_id
        _write_json(self.path, {"done": self.done, "made": self.made})


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(tmp, path)
