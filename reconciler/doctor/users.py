"""Which images are in use in a region: a server booted from one (`image.id` in Nova's server detail) or
a volume made from one (`volume_image_metadata.image_id` in Cinder's volume detail), design-v2 section 1.

The CloudClient protocol has no call for this yet (`list_servers` returns no image id, and there is no
volume list), so doctor reads the two detail lists itself through the HTTP client's transport. Only used
before deleting a scratch image a killed run left behind: when the users cannot be read, it is kept.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudConfigError, CloudResponseError, NotFound
from reconciler.cloud.transport import json_body

PAGE = 1000


def images_in_use(client: CloudClient, region: str) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """(ids of images in use, or None when unknown; notes for the report)."""
    http = getattr(client, "_http", None)
    if http is None:
        return None, ("this client cannot list servers' images: scratch images of earlier runs are kept",)
    notes: list[str] = []
    used: set[str] = set()
    try:
        for server in _paged(http, "compute", region, "/servers/detail", "servers"):
            image = server.get("image")
            if isinstance(image, dict) and isinstance(image.get("id"), str):
                used.add(image["id"])
    except CloudConfigError:
        # No compute endpoint in this region's catalog (a bare Glance): no server can use an image.
        notes.append("no compute endpoint: users not checked")
        return frozenset(), tuple(notes)
    try:
        for volume in _paged(http, "volumev2", region, "/volumes/detail", "volumes"):
            meta = volume.get("volume_image_metadata")
            if isinstance(meta, dict) and isinstance(meta.get("image_id"), str):
                used.add(meta["image_id"])
    except CloudConfigError:
        notes.append("no volume endpoint: servers checked, volumes not")
    except NotFound:
        notes.append("the volume list is not served here: servers checked, volumes not")
    return frozenset(used), tuple(notes)


def _paged(http: Any, service: str, region: str, path: str, key: str) -> list[dict[str, Any]]:
    """Every item of a Nova/Cinder detail list, following the `<key>_links` next marker."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": PAGE}
    seen: set[str] = set()
    while True:
        body = json_body(http.request(service, region, "GET", path, params=params), f"listing {key} in {region}")
        docs = body.get(key) if isinstance(body, dict) else None
        if not isinstance(docs, list):
            raise CloudResponseError(f"listing {key} in {region}: the answer has no {key!r} list")
        items.extend(d for d in docs if isinstance(d, dict))
        marker = _next_marker(body.get(f"{key}_links"))
        if marker is None or not docs or marker in seen:
            return items
        seen.add(marker)
        params = {"limit": PAGE, "marker": marker}


def _next_marker(links: Any) -> str | None:
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            markers = parse_qs(urlsplit(link["href"]).query).get("marker")
            if markers:
                return markers[0]
    return None
