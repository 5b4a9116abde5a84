"""Plan against the live cloud: read the snapshot, plan, and where the plan deletes an image in a region
whose usage was not read, read who uses the images there (servers and volumes, paged) and plan again.

Both plans are made by the pure planner; the I/O is here and in reconciler/snapshot.py. A root whose plan
deletes nothing reads no server or volume list for it (tests/test_request_counts.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.cloud.client import CloudClient
from reconciler.desired import DesiredState
from reconciler.live import Snapshot
from reconciler.plan import Plan, Target
from reconciler.planner import build_plan, usage_needed
from reconciler.snapshot import read_snapshot, with_usage
from reconciler.sources.access import SourceAccess

# The planner's options for a snapshot (--target, --exclude, --max-deletions, --timeout): they are checked
# against what the snapshot holds (a --target key that names nothing is an error).
Options = Callable[[Snapshot], dict[str, Any]]


def plan_live(
    client: CloudClient, desired: DesiredState, target: Target, options: Options, *, access: SourceAccess | None = None
) -> tuple[Snapshot, Plan]:
    """The snapshot the plan was made from, and the plan. `access`: where uploads' bytes may be looked up
    (the operator's options; the defaults without)."""
    snapshot = read_snapshot(client, desired, access=access or SourceAccess())
    chosen = options(snapshot)
    plan = build_plan(desired, snapshot, target, **chosen)
    # Each round reads at least one more region, so this ends: a plan with usage data can delete in a
    # region the first plan did not (a leftover kept for the deletion budget frees the budget once another
    # is kept for being in use), and that region is read in turn.
    while regions := usage_needed(snapshot, plan):
        snapshot = with_usage(client, snapshot, regions, desired.root.settings.refresh_concurrency)
        plan = build_plan(desired, snapshot, target, **chosen)
    return snapshot, plan
