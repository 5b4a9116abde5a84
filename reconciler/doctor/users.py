"""Which images are in use in a region: a server booted from one (its `image.id`) or a volume made from
one (its `volume_image_metadata.image_id`). Only used before deleting a scratch image a killed run left
behind: when the users cannot be read, the image is kept.
"""

from __future__ import annotations

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudConfigError, NotFound


def images_in_use(client: CloudClient, region: str) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """(ids of images in use, or None when unknown; notes for the report)."""
    notes: list[str] = []
    try:
        used = {server.image_id for server in client.list_servers(region) if server.image_id}
    except CloudConfigError:
        # No compute endpoint in this region's catalog (a bare Glance): no server can use an image.
        notes.append("no compute endpoint: users not checked")
        return frozenset(), tuple(notes)
    try:
        used |= {volume.image_id for volume in client.list_volumes(region) if volume.image_id}
    except CloudConfigError:
        notes.append("no volume endpoint: servers checked, volumes not")
    except NotFound:
        notes.append("the volume list is not served here: servers checked, volumes not")
    return frozenset(used), tuple(notes)
