"""Doctor's scratch images: made for one run, at most three alive per region, all deleted at the end
(also after a failed check), and the rules for deleting those a killed run left behind (docs/doctor.md).

A scratch image is named `reconciler-doctor-<run id>` and carries `reconciler_doctor: <run id>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import CloudApiError, CloudError, CloudTransportError, Forbidden, Unauthorized
from reconciler.cloud.records import Image, PatchOp, parse_server_time
from reconciler.doctor.report import Cleanup, Kept, Undeletable
from reconciler.lock_claims import DOCTOR

NAME_PREFIX = "reconciler-doctor-"
PROPERTY = DOCTOR  # one name, shared with the planner, which counts scratch images apart
MAX_ALIVE = 3  # per region, at any moment
LEFTOVER_MAX_SIZE = 1024 * 1024
LEFTOVER_MIN_AGE_S = 3600.0
_RUN_ID = re.compile(r"^[0-9a-z][0-9a-z-]{0,63}$")


def scratch_name(run_id: str) -> str:
    return NAME_PREFIX + run_id


def looks_like_scratch(image: Image) -> bool:
    """Named like a scratch image or carrying the property: a candidate for the leftover rules."""
    return (image.name or "").startswith(NAME_PREFIX) or PROPERTY in image.properties


def leftover_problem(
    image: Image,
    server_time: float | None,
    *,
    members: int | None = None,
    used: bool | None = None,
) -> str | None:
    """Why an earlier run's scratch image must be kept, or None when it may be deleted.

    All must hold: its name with the same run id as its property, no other `reconciler_*` property, no
    members, at most 1 MiB, no users, and `created_at` more than an hour before the server's `server_time`.
    `members` / `used` not yet read (None) are not judged here; the caller reads them only for an image
    that passes the rest.
    """
    run_id = image.properties.get(PROPERTY)
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        return f"no valid {PROPERTY} property"
    if image.name != scratch_name(run_id):
        return f"its name is not {scratch_name(run_id)}, as its {PROPERTY} property says"
    others = sorted(k for k in image.properties if k.startswith("reconciler_") and k != PROPERTY)
    if others:
        return f"it carries {', '.join(others)}"
    if (image.size or 0) > LEFTOVER_MAX_SIZE:
        return f"it holds {image.size:,} bytes (over 1 MiB)"
    created = parse_server_time(image.created_at)
    if created is None or server_time is None:
        return "its age cannot be told (no created_at, or no Date on the answer)"
    if server_time - created <= LEFTOVER_MIN_AGE_S:
        return f"it is {max(0, int(server_time - created) // 60)} min old (under an hour)"
    if members:
        return f"it has {members} member(s)"
    if used:
        return "it is in use by a server or volume"
    return None


def _message(err: Exception) -> str:
    if isinstance(err, CloudApiError):
        return f"{err.status} {err.server_message}"
    return str(err)


@dataclass
class ScratchImages:
    """This run's scratch images in one region: created through here, so that every one is deleted."""

    client: CloudClient
    region: str
    run_id: str
    alive: dict[str, Image] = field(default_factory=dict)
    created: int = 0
    deleted: list[str] = field(default_factory=list)
    undeletable: list[Undeletable] = field(default_factory=list)
    uncertain: int = 0  # creates whose answer never came: they may exist (the final sweep finds them)

    @property
    def name(self) -> str:
        return scratch_name(self.run_id)

    def attributes(self, *, image_id: str | None = None, os_type: bool = True) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "name": self.name,
            "visibility": "private",  # Glance 33 defaults to shared
            "disk_format": "qcow2",
            "container_format": "bare",
            PROPERTY: self.run_id,
        }
        if os_type:
            attributes["os_type"] = "linux"
        if image_id is not None:
            attributes["id"] = image_id
        return attributes

    def create(self, *, image_id: str | None = None, os_type: bool = True) -> Image:
        if len(self.alive) + self.uncertain >= MAX_ALIVE:
            raise RuntimeError(f"doctor would hold more than {MAX_ALIVE} scratch images in {self.region}")
        try:
            image = self.client.create_image(self.region, self.attributes(image_id=image_id, os_type=os_type))
        except CloudApiError:
            raise  # refused: nothing was made
        except CloudError:
            self.uncertain += 1
            raise
        self.alive[image.id] = image
        self.created += 1
        return image

    def delete(self, image_id: str) -> bool:
        """Unprotect if needed, then delete; a failure is recorded as undeletable, never raised (except a
        refused authentication, which no later call would survive either)."""
        image = self.alive.pop(image_id, None)
        name = image.name if image else self.name
        try:
            existed = _unprotect_and_delete(self.client, self.region, image_id)
        except Unauthorized:
            self.undeletable.append(Undeletable(image_id, name, "the credentials were refused"))
            raise
        except (CloudError, OSError) as err:
            self.undeletable.append(Undeletable(image_id, name, _message(err)))
            return False
        if existed:  # not one a lagging list showed after its delete
            self.deleted.append(image_id)
        return True

    def finish(self) -> None:
        """Delete every scratch image of this run still alive, then list the project's images and delete any
        other one of this run (a create whose answer was lost). Never raises a CloudError."""
        for image_id in list(self.alive):
            self.delete(image_id)
        try:
            listed = self.client.list_images(self.region, owner=self.client.project_id)
        except CloudError as err:
            if self.uncertain:
                self.undeletable.append(
                    Undeletable("?", self.name, f"a create's answer was lost and the list failed: {_message(err)}")
                )
            return
        failed = {u.id for u in self.undeletable}
        for image in listed:
            if (
                image.properties.get(PROPERTY) == self.run_id
                and image.id not in self.deleted
                and image.id not in failed
            ):
                # Listed, but a read says whether it still exists (a list may lag behind a delete).
                self.alive[image.id] = image
                self.delete(image.id)
        self.uncertain = 0

    def cleanup(self, earlier: Cleanup | None = None) -> Cleanup:
        earlier = earlier or Cleanup()
        return Cleanup(
            created=self.created,
            deleted=tuple(self.deleted),
            undeletable=(*self.undeletable, *earlier.undeletable),
            earlier_deleted=earlier.earlier_deleted,
            earlier_kept=earlier.earlier_kept,
            notes=earlier.notes,
        )


def _unprotect_and_delete(client: CloudClient, region: str, image_id: str) -> bool:
    """Unprotect the image if it is protected, then delete it; False if it was gone already."""
    current = client.find_image(region, image_id)
    if current is None:
        return False
    if current.protected:
        client.update_image(region, image_id, [PatchOp("replace", "protected", False)])
    try:
        return client.delete_image(region, image_id)
    except Forbidden:
        # Protected again since the read (by another client): gone meanwhile is fine, else it stays.
        if client.find_image(region, image_id) is None:
            return False
        raise


def clean_earlier_runs(
    client: CloudClient,
    region: str,
    run_id: str,
    users: Callable[[], tuple[frozenset[str] | None, tuple[str, ...]]],
) -> Cleanup:
    """Delete the scratch images killed runs left in `region` that pass every rule of `leftover_problem`;
    report the rest as kept. `users()` gives the ids of images in use (None: unknown) and notes; it is
    called only when some image passes the other rules."""
    listing = client.list_images_dated(region, owner=client.project_id)
    deleted: list[str] = []
    kept: list[Kept] = []
    undeletable: list[Undeletable] = []
    in_use = _UsersOnce(users)
    for image in listing.images:
        if not looks_like_scratch(image) or image.properties.get(PROPERTY) == run_id:
            continue
        problem = _keep_reason(client, region, image, listing.server_time, in_use)
        if problem is not None:
            kept.append(Kept(image.id, image.name, problem))
            continue
        try:
            if _unprotect_and_delete(client, region, image.id):
                deleted.append(image.id)
        except (Unauthorized, CloudTransportError):
            raise
        except CloudError as err:
            undeletable.append(Undeletable(image.id, image.name, _message(err)))
    return Cleanup(
        earlier_deleted=tuple(deleted),
        earlier_kept=tuple(kept),
        undeletable=tuple(undeletable),
        notes=tuple(in_use.notes),
    )


def _keep_reason(
    client: CloudClient, region: str, image: Image, server_time: float | None, in_use: _UsersOnce
) -> str | None:
    """`leftover_problem` with the facts it needs read one at a time, each only for an image that passes
    the rules before it: first the image alone, then its members, then its users."""
    problem = leftover_problem(image, server_time)
    if problem is None:
        problem = _members_problem(client, region, image, server_time)
    if problem is None:
        used = in_use.ids()
        if used is None:
            return "its users could not be read"
        problem = leftover_problem(image, server_time, members=0, used=image.id in used)
    return problem


def _members_problem(client: CloudClient, region: str, image: Image, server_time: float | None) -> str | None:
    try:
        # Only a shared image has members (Glance answers 403 for the others).
        members = len(client.list_members(region, image.id)) if image.visibility == "shared" else 0
    except (Unauthorized, CloudTransportError):
        raise
    except CloudError as err:
        return f"its members could not be read: {_message(err)}"
    return leftover_problem(image, server_time, members=members)


class _UsersOnce:
    """The ids of the images in use, read on first need and at most once (a read lists every server and volume)."""

    def __init__(self, users: Callable[[], tuple[frozenset[str] | None, tuple[str, ...]]]) -> None:
        self._users = users
        self._read = False
        self._ids: frozenset[str] | None = None
        self.notes: list[str] = []

    def ids(self) -> frozenset[str] | None:
        """The ids, or None when they could not be read (with a note why)."""
        if not self._read:
            self._read = True
            try:
                self._ids, notes = self._users()
            except (Unauthorized, CloudTransportError):
                raise
            except CloudError as err:
                self._ids, notes = None, (f"the images' users could not be read: {_message(err)}",)
            self.notes.extend(notes)
        return self._ids
