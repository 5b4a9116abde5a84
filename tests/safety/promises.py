"""The promises apply must keep whatever goes wrong, checked on the simulator's state (ground truth)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SET = "platform"
DECLARED = {"web-base", "batch-base", "cache-base", "api-base", "legacy-gold"}
COPIES = {("web-base", "JP1")}


def state(root: Path) -> dict[str, Any]:
    return json.loads((root / ".reconciler" / "sim-state.json").read_text())


def fingerprint(root: Path) -> dict[str, Any]:
    """What must never change: every image the tool must not touch, and every protected image."""
    doc = state(root)
    untouchable = {
        image_id: record["fields"]
        for image_id, record in doc["images"].items()
        if record["fields"].get("reconciler_set") != SET
    }
    protected = {image_id for image_id, record in doc["images"].items() if record["fields"]["protected"]}
    servers = {server_id: server["status"] for server_id, server in doc["servers"].items()}
    return {"untouchable": untouchable, "protected": protected, "servers": servers}


def violations(root: Path, before: dict[str, Any], *, converged: bool) -> list[str]:
    doc = state(root)
    found = _untouched_violations(doc["images"], before)
    if converged:
        found += _convergence_violations(doc["images"])
        found += _server_violations(doc["servers"], before)
    return found


def _untouched_violations(images: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Whatever happened: no protected image deleted, no image of another owner deleted or changed."""
    found = [f"protected image {image_id} was deleted" for image_id in before["protected"] if image_id not in images]
    for image_id, fields in before["untouchable"].items():
        if image_id not in images:
            found.append(f"image {image_id} of another owner was deleted")
        elif images[image_id]["fields"] != fields:
            found.append(f"image {image_id} of another owner was changed")
    return found


def _convergence_violations(images: dict[str, Any]) -> list[str]:
    """Once converged: one active image per declared identity (home or copy), each present."""
    found = []
    identities = Counter(
        (r["fields"].get("reconciler_key"), r["region"] if "reconciler_copy_of" in r["fields"] else "home")
        for r in images.values()
        if r["fields"].get("reconciler_set") == SET
    )
    for identity, count in identities.items():
        if count > 1:
            found.append(f"{identity} is held by {count} images")
    homes = {k for (k, where) in identities if where == "home"}
    for key in DECLARED - homes:
        found.append(f"declared image {key} is missing")
    for key, region in COPIES:
        if (key, region) not in identities:
            found.append(f"the copy of {key} in {region} is missing")
    for record in images.values():
        if record["fields"].get("reconciler_set") == SET and record["fields"]["status"] != "active":
            found.append(f"{record['fields']['id']} of this set is left {record['fields']['status']}")
    return found


def _server_violations(servers: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Once converged: every instance as it was, and none still marked as stopped by the tool."""
    found = []
    for server_id, status in before["servers"].items():
        server = servers[server_id]
        if server["status"] != status:
            found.append(f"instance {server['name']} is {server['status']}, it was {status}")
        if "reconciler_stopped_by" in server["metadata"]:
            found.append(f"instance {server['name']} still carries reconciler_stopped_by")
    return found


def fault_hits(root: Path) -> dict[str, int]:
    return dict(state(root).get("fault_hits", {}))


def clear_faults(root: Path) -> None:
    path = root / ".reconciler" / "sim-state.json"
    doc = json.loads(path.read_text())
    behaviour = doc["behaviour"]
    behaviour["faults"] = []
    behaviour.pop("random_faults", None)
    behaviour.pop("revoke_tokens_every", None)
    path.write_text(json.dumps(doc))
