"""Imaging a declared instance: the create (with the stop and restart around it when `running: stop`), the
warnings about preparing the instance, and the restart of an instance an interrupted run left stopped
(docs/manifest.md; the rules for running and local-disk instances are in docs/cloud-client.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from reconciler import markers
from reconciler.cloud.records import Server
from reconciler.desired import ImageSpec
from reconciler.plan import Reason, Ref

from .context import PlanContext, src
from .graph import ImageState

BASE_IMAGE_DATE = re.compile(r"\((\d{4})\.(\d{2})\.(\d{2})\)")


def create(ctx: PlanContext, spec: ImageSpec) -> ImageState | None:
    """A create from the key's instance (and the stop and restart around it for `running: stop`), or None
    with a refusal when the instance cannot be imaged as declared."""
    instance = spec.source.instance
    assert instance is not None
    source = src(spec, "source.instance")
    server = ctx.snapshot.servers.get((spec.region, instance))
    if server is None:
        ctx.refuse(
            "source_missing",
            spec.key,
            spec.region,
            f"instance {instance} does not exist in {spec.region}",
            "check source.instance (a name or id in the home region)",
            source,
        )
        return None
    running = server.status == "ACTIVE"
    if server.status not in ("ACTIVE", "SHUTOFF"):
        ctx.refuse(
            "source_missing",
            spec.key,
            spec.region,
            f"instance {server.name} is {server.status}: only ACTIVE or SHUTOFF instances can be imaged",
            "bring the instance to ACTIVE or SHUTOFF, then plan again",
            source,
        )
        return None
    if server.root_device is None:
        # read_snapshot reads what imaging needs for every key without a home image; reaching here
        # without it is a bug, and guessing the root device would image the wrong way.
        raise RuntimeError(f"{spec.key}: the snapshot has no root device for {server.name}")
    flavor = server.flavor_name or server.flavor_id
    kind = "local disk" if server.root_device == "local" else "volume root"
    describe = f"{flavor}, {kind}, {'running' if running else 'stopped'}"
    running_src = src(spec, "source.running") if "source.running" in spec.locations else source
    if running and spec.source.running == "refuse":
        ctx.refuse(
            "running_refused",
            spec.key,
            spec.region,
            f"instance {server.name} is running ({describe})",
            "stop it, or set running: stop to let the tool stop and restart it",
            running_src,
        )
        return None
    if running and spec.source.running == "allow" and server.root_device == "local":
        ctx.refuse(
            "running_local_disk",
            spec.key,
            spec.region,
            f"instance {server.name} is running and has a local disk ({flavor}): NHN images local disks "
            "only when stopped",
            "set running: stop to let the tool stop it, image it and start it again",
            running_src,
        )
        return None
    _preparation_warnings(ctx, spec, server, running and spec.source.running == "allow")
    name = spec.display_name
    temporary = markers.temporary_name(name, ctx.set, spec.key, spec.region)
    stop = None
    if running and spec.source.running == "stop":
        stop = ctx.graph.add(
            "stop_instance",
            spec.key,
            spec.region,
            Reason(
                "running_stop",
                f"running: stop: {server.name} is stopped for imaging, then started again",
                running_src,
            ),
            None,
            server=server.id,
            server_name=server.name,
        )
        stop.expects[str(Ref.server(spec.region, server.id))] = {"status": "ACTIVE"}
    create = ctx.graph.add(
        "create",
        spec.key,
        spec.region,
        Reason("image_missing", f"{spec.file} declares it; no image of this set has this key", src(spec)),
        None,
        server=server.id,
        server_name=server.name,
        flavor=flavor,
        root_device=server.root_device,
        running=running and stop is None,
        temporary_name=temporary,
        name=name,
    )
    ctx.server_steps[server.id].append(create)
    create.after(stop, "the instance must be stopped first")
    made = ctx.made_by(create, spec, f"instance:{server.id}", name)
    create.expects[str(Ref.server(spec.region, server.id))] = {"status": "SHUTOFF" if stop or not running else "ACTIVE"}
    if stop is not None:
        start = ctx.graph.add(
            "start_instance",
            spec.key,
            spec.region,
            Reason(
                "running_stop",
                f"restarts {server.name}, stopped for imaging (runs even if the create fails)",
                running_src,
            ),
            None,
            server=server.id,
            server_name=server.name,
            compensates=stop.id,
        )
        ctx.server_steps[server.id].append(start)
        start.after(create, "the image is made (or its create failed)")
        start.expects[str(Ref.server(spec.region, server.id))] = {"status": "SHUTOFF"}
        stop.details["downtime"] = "from the stop until the image is active"
    if not server.os_type and spec.copies:
        ctx.refuse(
            "os_type_missing",
            spec.key,
            spec.region,
            f"instance {server.name} has no os_type: its image could not be copied (NHN requires os_type)",
            "set the instance's os_type metadata, or drop copies",
            src(spec, "copies"),
        )
    return made


def _preparation_warnings(ctx: PlanContext, spec: ImageSpec, server: Server, imaged_running: bool) -> None:
    source = src(spec, "source.instance")
    os_type = (server.os_type or "").lower()
    if imaged_running:
        ctx.warn(
            "running_instance",
            spec.key,
            spec.region,
            f"instance {server.name} is running: the image is taken live and data consistency is not guaranteed",
            src(spec, "source.running") if "source.running" in spec.locations else source,
        )
    if os_type == "linux":
        ctx.warn(
            "linux_machine_id",
            spec.key,
            spec.region,
            f"reset /etc/machine-id on {server.name} before imaging, or instances made from the image share it",
            source,
        )
    if os_type == "windows":
        _windows_warnings(ctx, spec, server, imaged_running, source)


# NHN's Windows Sysprep guide: base images of this date or later ship ToastSysprep; older ones are prepared
# with Cloudbase-Init's Unattend.xml. The console shows the base image (and its date) as the instance's image.
TOAST_SYSPREP_SINCE = date(2020, 8, 18)
# NHN's guide to imaging a running Windows instance: base images of this date or earlier need a scheduled
# `ipconfig /renew` task first.
IPCONFIG_RENEW_UNTIL = date(2019, 5, 28)
CLOUDBASE_CONF = r"C:\Program Files\Cloudbase Solutions\Cloudbase-Init\conf"
SYSPREP_UNATTEND = r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /unattend:Unattend.xml"
# The guide's answer to the blank password is a console option when creating the image; NHN's image-creation
# APIs document no such field (docs/manifest.md, "Windows instances"), so the warning can only say so.
PASSWORD_BLANKED = (
    "Sysprep blanks the Windows password (NHN's console resets it at image creation; its API documents no such option)"
)


def base_image_date(name: str | None) -> date | None:
    """The date in an NHN base image's name, e.g. 2020-08-18 for "Windows 2019 STD (2020.08.18) KO"; None
    when the name has no such date or it is not a real day (the name is whatever the instance reports)."""
    found = BASE_IMAGE_DATE.search(name or "")
    if found is None:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SysprepAdvice:
    """Which of the guide's Sysprep procedures fits an instance, said on one line (`summary`) and step by
    step (`steps`: the warning's `details.steps`, listed under it in Markdown)."""

    variant: str  # "toast_sysprep" | "unattend_xml" | "either" (the base image's date is unknown)
    summary: str
    steps: tuple[str, ...]


def sysprep_advice(instance: str, base_date: date | None, running: bool) -> SysprepAdvice:
    """The guide's procedure for a Windows instance whose base image is of `base_date` (None: unreadable, so
    both, briefly), then the password it blanks, then, for a running instance, what its shutdown means."""
    if base_date is None:
        variant, summary = (
            "either",
            f"run Sysprep on {instance} before imaging: ToastSysprep if its base image is of 2020-08-18 or later, "
            "else sysprep.exe with Cloudbase-Init's Unattend.xml (no date in its base image's name)",
        )
        steps: tuple[str, ...] = (
            "base image of 2020-08-18 or later: run ToastSysprep in an administrator PowerShell",
            f"older base image: in an administrator command prompt, cd {CLOUDBASE_CONF}, then run {SYSPREP_UNATTEND}",
            "the console shows the base image, with its date, as the instance's image name",
        )
    elif base_date >= TOAST_SYSPREP_SINCE:
        variant, summary = (
            "toast_sysprep",
            f"run ToastSysprep in an administrator PowerShell on {instance} (base image of {base_date}) before imaging",
        )
        steps = (
            f"connect to {instance} and open PowerShell as administrator",
            "run ToastSysprep: the instance shuts itself down when Sysprep finishes",
        )
    else:
        variant, summary = (
            "unattend_xml",
            f"run sysprep.exe with Cloudbase-Init's Unattend.xml on {instance} (base image of {base_date}, before "
            "2020-08-18) before imaging",
        )
        steps = (
            f"connect to {instance} and open a command prompt as administrator",
            f"cd {CLOUDBASE_CONF}",
            f"run {SYSPREP_UNATTEND}: the instance shuts down when Sysprep finishes",
        )
    steps += (
        "Sysprep blanks the Windows password: NHN's guide recommends the image-creation option that resets it "
        "(the new password then shows in the instance's connection information); the image API this tool "
        "calls documents no such option (docs/manifest.md, Windows instances)",
    )
    if running:
        steps += (f"Sysprep leaves {instance} stopped: plan again then, as this plan expects it running",)
    return SysprepAdvice(variant, f"{summary}; {PASSWORD_BLANKED}", steps)


def _windows_warnings(
    ctx: PlanContext, spec: ImageSpec, server: Server, imaged_running: bool, source: str | None
) -> None:
    """The Sysprep procedure that fits the instance's base image, and, for one imaged running from a base
    image of 2019-05-28 or earlier, the scheduled `ipconfig /renew` task: both read the date the same way."""
    base_date = base_image_date(server.base_image_name)
    advice = sysprep_advice(server.name, base_date, server.status == "ACTIVE")
    details = {
        "variant": advice.variant,
        "base_image": server.base_image_name,
        "base_image_date": base_date.isoformat() if base_date else None,
        "steps": list(advice.steps),
    }
    ctx.warn("windows_sysprep", spec.key, spec.region, advice.summary, source, details)
    if imaged_running and base_date is not None and base_date <= IPCONFIG_RENEW_UNTIL:
        ctx.warn(
            "windows_pre_20190528",
            spec.key,
            spec.region,
            f"{server.name} comes from {server.base_image_name}: base images of 2019-05-28 or earlier need a "
            "scheduled 'ipconfig /renew' task before a running instance can be imaged",
            source,
        )


def restart_left_stopped(ctx: PlanContext, spec: ImageSpec) -> None:
    """Start the key's instance again when an interrupted run of this set left it stopped (or left its mark)."""
    if spec.source.instance is None:
        return
    server = ctx.snapshot.servers.get((spec.region, spec.source.instance))
    if server is None or markers.stopped_by_set(server.metadata.get(markers.STOPPED_BY)) != ctx.set:
        return
    if server.status not in ("SHUTOFF", "ACTIVE"):
        return
    steps = ctx.server_steps.get(server.id, [])
    if any(step.kind == "start_instance" for step in steps):
        return
    creates = [step for step in steps if step.kind == "create"]
    if server.status == "SHUTOFF":
        why = f"{server.name} was stopped by this set for imaging and left stopped by an interrupted run"
    else:
        # Started again, but the run was interrupted before it cleared its mark: starting is a no-op
        # for an active instance, and the step clears the mark.
        why = f"{server.name} was restarted, but an interrupted run left its {markers.STOPPED_BY} mark: clear it"
    start = ctx.graph.add(
        "start_instance",
        spec.key,
        spec.region,
        Reason("left_stopped", why, src(spec, "source.instance")),
        None,
        server=server.id,
        server_name=server.name,
    )
    ctx.server_steps[server.id].append(start)  # one restart, however many keys image this server
    start.expects[str(Ref.server(spec.region, server.id))] = {
        "status": server.status,
        markers.STOPPED_BY: server.metadata[markers.STOPPED_BY],
    }
    for create in creates:
        # A local disk is imaged only stopped: the restart waits for the images made from it.
        start.after(create, "the instance is imaged while stopped")
