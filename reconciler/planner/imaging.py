"""Imaging a declared instance: the create (with the stop and restart around it when `running: stop`), the
warnings about preparing the instance, and the restart of an instance an interrupted run left stopped
(docs/manifest.md; the rules for running and local-disk instances are in docs/cloud-client.md)."""

from __future__ import annotations

import re

from reconciler import markers
from reconciler.cloud.records import Server
from reconciler.desired import ImageSpec
from reconciler.plan import Change, Reason, Ref

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
    for cleanup in ctx.cleanups.get((spec.key, spec.region), []):
        create.after(cleanup, "the leftover under the same temporary name goes first")
    create.expects[str(Ref.server(spec.region, server.id))] = {"status": "SHUTOFF" if stop or not running else "ACTIVE"}
    for marker, value in (
        (markers.SET, ctx.set),
        (markers.KEY, spec.key),
        (markers.SOURCE, f"instance:{server.id}"),
    ):
        create.changes[marker] = Change(None, value)
    create.changes["name"] = Change(None, name)
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
    return ImageState.made(spec.key, spec.region, create)


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
        ctx.warn(
            "windows_sysprep",
            spec.key,
            spec.region,
            f"run Sysprep (ToastSysprep) on {server.name} and stop it before imaging; Sysprep blanks the password",
            source,
        )
        date = BASE_IMAGE_DATE.search(server.base_image_name or "")
        if imaged_running and date and (date.group(1), date.group(2), date.group(3)) <= ("2019", "05", "28"):
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
