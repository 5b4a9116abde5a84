"""Reading the live state the planner plans against (reconciler/live.py's `Snapshot`) through the cloud
client: everything the planner needs is observed first; the planner itself does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudConfigError, CloudError, NotFound
from reconciler.cloud.records import Image, Server, Volume
from reconciler.desired import DesiredState
from reconciler.gc_pause import gc_paused
from reconciler.live import UUID, Artifact, ImageUser, SharedImage, Snapshot, frozen
from reconciler.ownership import classify_desired, referenced_ids
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import probe

T = TypeVar("T")


def read_snapshot(
    client: CloudClient,
    desired: DesiredState,
    *,
    concurrency: int | None = None,
    access: SourceAccess | None = None,
) -> Snapshot:
    """Observe everything `desired` could touch, with lists, not one read per image: each region's
    images in paged list calls (regions in parallel), then members only of the shared images the plan
    may change, `concurrency` calls at a time (settings.refresh_concurrency), and the servers the
    manifests name (_read_servers).

    The cyclic collector is paused meanwhile (reconciler/gc_pause.py): a refresh builds tens of thousands of
    records that all stay alive, so a collection there frees nothing (8% of a 5,000-key refresh's CPU,
    measured 2.90 s against 2.66 s, three runs each, in docs/performance.md)."""
    with gc_paused():
        return _read_snapshot(client, desired, concurrency=concurrency, access=access)


def _read_snapshot(
    client: CloudClient,
    desired: DesiredState,
    *,
    concurrency: int | None,
    access: SourceAccess | None,
) -> Snapshot:
    workers = concurrency or desired.root.settings.refresh_concurrency
    catalog = client.image_regions()
    declared = desired.root.cloud.regions
    if declared:
        missing = sorted(set(declared) - set(catalog))
        if missing:
            raise CloudConfigError(
                f"cloud.regions names {', '.join(missing)}, which the service catalog does not offer "
                f"(it has: {', '.join(catalog) or 'none'})"
            )
    regions = tuple(declared) if declared else catalog
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(regions) or 1))) as pool:
        listed = list(pool.map(lambda region: client.list_images_dated(region, owner=client.project_id), regions))
    images = {
        region: tuple(sorted(found.images, key=lambda i: i.id)) for region, found in zip(regions, listed, strict=True)
    }
    server_time = {region: found.server_time for region, found in zip(regions, listed, strict=True)}

    # Members of the shared images the plan may share or unshare: this set's, and those a manifest adopts
    # by id (Glance lists members of shared images only; a private image has none that count).
    referenced = referenced_ids(desired)
    shared = [
        image
        for region in regions
        for image in images[region]
        if image.visibility == "shared"
        and (image.properties.get("reconciler_set") == desired.root.set or image.id in referenced)
    ]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = pool.map(lambda image: client.list_members(image.region, image.id), shared)
        members = {
            image.id: tuple(sorted(listing, key=lambda m: m.member_id))
            for image, listing in zip(shared, found, strict=True)
        }

    owned_ids = {image.id for region in regions for image in images[region]}
    foreign: dict[str, Image | None] = {}
    for spec in desired.images:
        if spec.region not in regions:
            continue
        if spec.source.image is not None and spec.source.image not in owned_ids:
            foreign[spec.source.image] = client.find_image(spec.region, spec.source.image)
        for copy in spec.copies:
            if copy.image is not None and copy.image not in owned_ids and copy.region in regions:
                foreign[copy.image] = client.find_image(copy.region, copy.image)
    servers = _read_servers(client, desired, regions, images, workers)
    shared_with_us = _read_shared(client, desired, regions, workers)
    artifacts = _read_artifacts(desired, regions, images, access or SourceAccess())
    return Snapshot(
        project=client.project_id,
        regions=regions,
        catalog_regions=catalog,
        images=frozen(images),
        members=frozen(members),
        servers=frozen(servers),
        foreign=frozen(foreign),
        server_time=frozen(server_time),
        shared=frozen(shared_with_us),
        artifacts=frozen(artifacts),
    )


def _read_artifacts(
    desired: DesiredState, regions: tuple[str, ...], images: Mapping[str, tuple[Image, ...]], access: SourceAccess
) -> dict[str, Artifact]:
    """What plan time knows of the bytes of each uploaded key the planner may create (no image of this set
    carries its key; the same sorting as the planner's, like _read_servers): a file's presence and size, a
    URL's size only with --fetch-sources. A key whose image exists is not probed: a plan must not contact a
    URL for an image that is made already."""
    uploaded = [spec for spec in desired.images if spec.source.uploaded and spec.region in regions]
    if not uploaded:
        return {}
    homes = classify_desired((image for region in regions for image in images[region]), desired).home.keys()
    return {
        spec.key: probe(spec.source, desired.root.path, access)
        for spec in uploaded
        if spec.key not in homes and (spec.moved_from is None or spec.moved_from not in homes)  # a re-key makes none
    }


def _read_shared(
    client: CloudClient, desired: DesiredState, regions: tuple[str, ...], workers: int
) -> dict[str, tuple[SharedImage, ...]]:
    """The images other projects share with this one, per region (in parallel), with this project's member
    status: only for a root with accept: or reject: rules, so that any other root makes no such request."""
    if not desired.rules:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(regions) or 1))) as pool:
        lister = _listing(client.list_shared_images, "images shared with this project", "accept:/reject: rules")
        listed = pool.map(lister, regions)
        return {
            region: tuple(SharedImage(image, status) for image, status in sorted(found, key=lambda pair: pair[0].id))
            for region, found in zip(regions, listed, strict=True)
        }


def with_usage(client: CloudClient, snapshot: Snapshot, regions: Iterable[str], workers: int) -> Snapshot:
    """`snapshot` with who uses each image in `regions` added: every server (any status) and every volume
    (attached or not) of the project there, each list paged, the regions in parallel."""
    wanted = sorted(set(regions) - set(snapshot.usage))
    if not wanted:
        return snapshot
    with ThreadPoolExecutor(max_workers=max(1, min(workers, 2 * len(wanted)))) as pool:
        servers = pool.map(_listing(client.list_servers, "servers"), wanted)
        volumes = pool.map(_listing(client.list_volumes, "volumes"), wanted)
        read = {region: users_by_image(s, v) for region, s, v in zip(wanted, servers, volumes, strict=True)}
    return dataclasses.replace(snapshot, usage=frozen({**snapshot.usage, **read}))


def _listing(lister: Callable[[str], list[T]], what: str, why: str = "") -> Callable[[str], list[T]]:
    """`lister`, whose error says why the plan reads that list: by default, for the in-use check."""
    purpose = f"for the root's {why}" if why else "to know which images they use before deleting any"
    hint = (
        "the root's rules are planned from that list"
        if why
        else "the plan deletes images in that region, and never deletes one it cannot check"
    )

    def listed(region: str) -> list[T]:
        try:
            return lister(region)
        except CloudError as err:
            message = f"listing the {what} in {region}, {purpose}: {err.message}"
            raise CloudError(message, hint=err.hint or hint) from err

    return listed


def users_by_image(servers: list[Server], volumes: list[Volume]) -> Mapping[str, tuple[ImageUser, ...]]:
    """Who uses each image, from one region's servers and volumes (an image nobody uses is absent)."""
    found: dict[str, list[ImageUser]] = defaultdict(list)
    names = {server.id: server.name or server.id for server in servers}
    for server in servers:
        if server.image_id:
            found[server.image_id].append(ImageUser("server", server.id, server.name))
    for volume in volumes:
        if volume.image_id:
            servers_of = tuple(names.get(server_id, server_id) for server_id in volume.attached_to)
            found[volume.image_id].append(ImageUser("volume", volume.id, volume.name, servers_of))
    return frozen(
        {
            image_id: tuple(sorted(users, key=lambda u: (u.kind, u.name or "", u.id)))
            for image_id, users in found.items()
        }
    )


def _read_servers(
    client: CloudClient,
    desired: DesiredState,
    regions: tuple[str, ...],
    images: Mapping[str, tuple[Image, ...]],
    workers: int,
) -> dict[tuple[str, str], Server | None]:
    """The servers the manifests name, by (region, name or id), None for one that does not exist.

    Each home region with instance sources is listed once (paged): enough to resolve names, check a
    recorded source and find a server an interrupted run left stopped. The reads imaging needs (root
    volume, flavor name) are made only for a key that has no home image yet, the only case in which the
    planner can plan a create (planner/identity.py find_home), so a steady-state plan makes none of them.
    """
    named = [spec for spec in desired.images if spec.source.instance is not None and spec.region in regions]
    if not named:
        return {}
    # The keys the planner will find a home image for, by its own sorting (ownership.classify_desired): a
    # bookkeeping image, an interrupted create under a temporary name (finishing it needs the root device:
    # the local-disk path checks the image's instance_uuid) or one with invalid markers is no home, and any
    # other rule here could leave the planner planning a create without what the create needs.
    homes = classify_desired((image for region in regions for image in images[region]), desired).home.keys()
    listed_regions = sorted({spec.region for spec in named})
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(listed_regions)))) as pool:
        listed = {
            region: ServerIndex(region, found)
            for region, found in zip(listed_regions, pool.map(client.list_servers, listed_regions), strict=True)
        }
    servers: dict[tuple[str, str], Server | None] = {}
    to_image: dict[tuple[str, str], Server] = {}
    for spec in named:
        ref = (spec.region, spec.source.instance)
        server = listed[spec.region].find(spec.source.instance)
        servers[ref] = server
        if server is not None and spec.key not in homes:
            to_image[ref] = server
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        detailed = pool.map(lambda server: _server_details(client, server), to_image.values())
        servers.update(zip(to_image, detailed, strict=True))
    return servers


def _server_details(client: CloudClient, server: Server) -> Server | None:
    """The listed server with what imaging needs; None if it was deleted since the list."""
    try:
        return client.get_server(server.region, server.id)
    except NotFound:
        return None


class ServerIndex:
    """One region's listed servers, by id and by name: each manifest's instance is found in constant
    time, not by scanning the list once per key."""

    def __init__(self, region: str, servers: list[Server]) -> None:
        self.region = region
        self._by_id = {server.id.lower(): server for server in servers}
        self._by_name: dict[str, list[Server]] = {}
        for server in servers:
            self._by_name.setdefault(server.name, []).append(server)

    def find(self, name_or_id: str) -> Server | None:
        """The server with this id, else the one with exactly this name (a name is text, not a pattern);
        None if there is none; an error if the name is ambiguous."""
        if UUID.match(name_or_id) and name_or_id.lower() in self._by_id:
            return self._by_id[name_or_id.lower()]
        matches = self._by_name.get(name_or_id, [])
        if len(matches) > 1:
            ids = ", ".join(sorted(server.id for server in matches))
            raise CloudError(
                f"{len(matches)} servers in {self.region} are named {name_or_id} ({ids})",
                hint="name the instance by id in the manifest",
            )
        return matches[0] if matches else None
