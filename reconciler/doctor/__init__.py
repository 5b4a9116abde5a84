"""`reconciler doctor [ROOT] [--region R]... [--format json]`: check, with short-lived scratch images, the
behaviours of the target's image service that the tool relies on and that NHN's documents do not settle
(docs/doctor.md).

Modules: probes.py (the checks against one region), scratch.py (scratch images: budget, cleanup, a killed
run's leftovers), users.py (which images servers and volumes use), verdicts.py (each check's verdict,
pure), report.py (the report and its exit code, pure), render.py (the text, pure).

Exit codes: 0, or 1 when a fatal check fails or a scratch image cannot be deleted. Errors that stop the
run (credentials, endpoints, no answer) are ReconcilerErrors, mapped by the CLI like any other command's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from reconciler.errors import UsageError
from reconciler.render import escape


def new_run_id() -> str:
    return secrets.token_hex(6)


def run(args: argparse.Namespace) -> int:
    from reconciler.cli import start_command
    from reconciler.connect import open_cloud
    from reconciler.doctor.probes import check_region
    from reconciler.doctor.render import colorize, render_text
    from reconciler.doctor.report import DoctorReport
    from reconciler.render.json import render_json

    desired, cloud = start_command(args, "doctor")
    run_id = new_run_id()

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with open_cloud(desired.root, cloud, os.environ) as (client, target):
        regions = _regions(args.region, target.regions, client.image_regions())
        reports = []
        for region in regions:
            warn(f"checking {escape.text(region)} with scratch images named reconciler-doctor-{run_id}")
            reports.append(
                check_region(client, region, run_id, protected_patch=desired.root.cloud.protected_patch, warn=warn)
            )
    report = DoctorReport(run_id, target.to_json(), tuple(reports), root_file=desired.root.file)
    document = report.to_json()
    if args.format == "json":
        for item in document["undeletable"]:
            # Names, ids and errors come from the cloud: shown escaped, like the text report (render.py).
            image_id, name, where, error = (escape.text(str(item[k])) for k in ("id", "name", "region", "error"))
            warn(f"could not delete scratch image {image_id} ({name}) in {where}: {error}")
        sys.stdout.write(render_json(document))
    else:
        text = render_text(document)
        colour = sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")
        sys.stdout.write(colorize(text) if colour else text)
    sys.stdout.flush()
    return report.exit_code


def _regions(asked: list[str], root_regions: tuple[str, ...], catalog: tuple[str, ...]) -> list[str]:
    """--region R (repeatable), else every region the root reads; each must have an image endpoint."""
    regions = list(dict.fromkeys(asked)) if asked else list(root_regions)
    unknown = [r for r in regions if r not in catalog]
    if unknown:
        raise UsageError(
            f"no image endpoint in region {', '.join(unknown)}",
            hint=f"the identity catalog offers the image service in: {', '.join(catalog) or 'no region'}",
        )
    return regions
