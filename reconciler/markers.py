"""Ownership markers: the string properties that tie a live image to a set and key,
and the temporary-name token of an image being created (section 3.3; its v2 form is in
docs/plan-format.md, "Temporary names")."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "reconciler_"  # every marker's name starts with it; a release removes them all
SET = "reconciler_set"
KEY = "reconciler_key"
SOURCE = "reconciler_source"  # "instance:<id>" or "image:<id>", as declared when made or adopted
PROPS = "reconciler_props"  # comma-separated managed property names
COPY_OF = "reconciler_copy_of"  # on copies: the home image's id
DOWNLOAD_WAS = "reconciler_download_was"  # while the download flag is enabled for copies: the value to restore
# On every image of a family (home and copies): the family's name and the image's version. A delete of an
# image whose FAMILY names a family the root still declares is a retirement (docs/manifest.md, "Families").
FAMILY = "reconciler_family"
VERSION = "reconciler_version"
# "true" on the image of a family's newest version in each region, once everything that version needs there
# is done: consumers select on it (not on created_at: a replaced copy of an older version can be newer).
NEWEST = "reconciler_newest"
# The markers a create or a copy sets on the image it makes (NEWEST comes later, by an update).
ALL = (SET, KEY, SOURCE, PROPS, COPY_OF, DOWNLOAD_WAS, FAMILY, VERSION)

# The apply lock's claims (reconciler/lock_claims.py) and doctor's scratch images: bookkeeping images the tool
# keeps for itself, never images of anyone's.
LOCK_CLAIM = "reconciler_lock_claim"  # the set the claim is for
LOCK_HOLDER = "reconciler_lock_holder"  # host:pid:token of the apply that made it
LOCK_STATE = "reconciler_lock_state"  # probing | held
LOCK_LEASE = "reconciler_lock_lease_s"  # seconds, as a string
LOCK_RENEWAL = "reconciler_lock_renewal"  # a counter each renewal changes, so the server moves updated_at
LOCK_LEGACY = "reconciler_lock"  # v1's fixed-id lock image (the set)
LOCK_LEGACY_EXPIRES = "reconciler_lock_expires"  # v1: ISO time the lease ends
DOCTOR = "reconciler_doctor"  # `reconciler doctor`'s scratch images carry their run id in it

# What a set name and a key may be (schemas/root.schema.json and manifest.schema.json): the tool writes no
# other marker value. A `reconciler_set` or `reconciler_key` outside them was set by hand (anyone in the
# project may set properties), and a key such as `a:b` would make action ids (`kind:key:region`) ambiguous.
SET_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A share member the tool would add: a project id (manifest.schema.json's project_id). A member outside it
# was added by hand, is never shared or unshared, and is never written into a manifest.
PROJECT_ID = re.compile(r"[0-9a-f]{32}")


def invalid_markers(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The set and key markers on an image that no run of the tool could have written (a value outside the
    set-name or key pattern, or not a string), by property name; empty when each is absent or valid."""
    found = {}
    for name, pattern in ((SET, SET_PATTERN), (KEY, KEY_PATTERN)):
        value = properties.get(name)
        if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
            found[name] = value
    return found


# Server metadata naming the set that stopped an instance, so a later plan restarts one a crash left stopped.
STOPPED_BY = "reconciler_stopped_by"
DOWNLOAD_FLAG = "nhncloud_allow_download"
# What DOWNLOAD_WAS records (the flag before copies enabled it), and the flag value each record restores.
DOWNLOAD_RESTORE: dict[str, str | None] = {"true": "true", "false": "false", "absent": None}


def download_record(flag: object) -> str:
    """The DOWNLOAD_WAS record of the download flag `flag` before copies enable it: absent as "absent"; a value
    other than "true" or "false" (only "true" allows downloads) as "false", so a restore never writes odd text."""
    if flag is None:
        return "absent"
    return flag if flag in ("true", "false") else "false"


def stopped_by(set_name: str, run_token: str | None) -> str:
    """The STOPPED_BY value an apply writes: `<set>:<run token>`, so that after losing its lock a run
    restarts only a server that still carries its own mark."""
    return f"{set_name}:{run_token}" if run_token else set_name


def stopped_by_set(value: object) -> str | None:
    """The set named by a STOPPED_BY value: `<set>:<token>`, or a bare `<set>` as v1 wrote it."""
    if not isinstance(value, str) or not value:
        return None
    return value.split(":", 1)[0]


TOKEN_SEPARATOR = "~rc-"
# The tool's temporary names are `<name>~rc-<S><K>` (new) or `<name>~rc-<K>` (written before v2), each
# part 8 lowercase hex; a token is only ever at the very end of a name.
_TOKEN = re.compile(r"~rc-((?:[0-9a-f]{8})?)([0-9a-f]{8})\Z")
_LEFTOVER_KEY = re.compile(r"~rc-([0-9a-f]{8})([0-9a-f]{8})")
# A name the tool creates leaves room for the longest token (Glance names are at most 255 characters).
CREATED_NAME_MAX = 255 - len(TOKEN_SEPARATOR) - 16


@dataclass(frozen=True, slots=True)
class Token:
    """The temporary-name token at the end of an image's name. `set_token` (S) is None for the old form,
    which names no set; `name_token` (K) identifies (set, key, region)."""

    set_token: str | None
    name_token: str


def set_token(set_name: str) -> str:
    """8 hex characters identifying a set (S): the first part of a temporary-name token."""
    return hashlib.sha256(set_name.encode("utf-8")).hexdigest()[:8]


def name_token(set_name: str, key: str, region: str) -> str:
    """8 hex characters identifying (set, key, region) (K): the last part of a temporary-name token, and the
    whole of a token written before v2.

    A leftover's key `~rc-<S><K>` with this set's S (no declared key starts with `~`) stands for the images
    under that token: its K. So comparing an image's `token_of` with the `name_token` of an action's key
    (apply's execution-time guard, rule 2) lets a leftover's delete touch only an image of that token."""
    leftover = _LEFTOVER_KEY.fullmatch(key)
    if leftover is not None and leftover.group(1) == set_token(set_name):
        return leftover.group(2)
    digest = hashlib.sha256("\0".join((set_name, key, region)).encode("utf-8")).hexdigest()
    return digest[:8]


def temporary_name(name: str, set_name: str, key: str, region: str) -> str:
    """`<name>~rc-<S><K>`: the name an image is created under, until its markers and final name are set."""
    return f"{name}{TOKEN_SEPARATOR}{set_token(set_name)}{name_token(set_name, key, region)}"


def parse_token(image_name: str | None) -> Token | None:
    """The token at the end of an image's name: `~rc-` and 16 hex (new form) or 8 hex (old form), lowercase
    as the tool writes them; None for any other name."""
    if not image_name:
        return None
    found = _TOKEN.search(image_name)
    if found is None:
        return None
    return Token(found.group(1) or None, found.group(2))


def token_of(image_name: str | None) -> str | None:
    """K of the temporary-name token in an image's name (either form), if it has one: it equals
    `name_token(set, key, region)` for the (set, key, region) the image is being created for."""
    token = parse_token(image_name)
    return token.name_token if token is not None else None


def leftover_key(set_name: str, token: str) -> str:
    """The key of the delete action of a leftover of this set with K `token`: `~rc-<S><K>`."""
    return f"{TOKEN_SEPARATOR}{set_token(set_name)}{token}"


def is_leftover_of(set_name: str, key: str, region: str, image_name: str | None, image_region: str) -> bool:
    """May a leftover's delete of key `~rc-<S><K>` in `region` touch an image of this name? Only when the
    name ends with this set's token of that K (or the old form of it) in the same region (for apply's
    execution-time guard)."""
    token = parse_token(image_name)
    if token is None or image_region != region or token.set_token not in (None, set_token(set_name)):
        return False
    return key == leftover_key(set_name, token.name_token)


# -- property names a manifest may not manage ---------------------------------------------------------
# One rule for validation (a manifest may not declare them) and for `managed_props` (a `reconciler_props`
# marker naming them, written by hand since the tool never does, makes the plan remove none of them): so
# a marker can never make a plan remove the tool's own markers or the image service's attributes.
RESERVED_PREFIXES = {
    PREFIX: "the tool's own markers",
    "os_hash_": "set by the image service",
    "os_glance": "reserved by Glance",
}
GLANCE_ATTRIBUTES = frozenset(
    {"id", "name", "status", "visibility", "protected", "owner", "min_disk", "min_ram", "size", "virtual_size",
     "checksum", "container_format", "disk_format", "tags", "created_at", "updated_at", "self", "file", "schema",
     "os_hidden", "locations", "location", "direct_url", "stores", "deleted", "deleted_at"}
)  # fmt: skip
# Properties the manifest manages through a field of its own, by the field.
FIELD_FOR_PROPERTY = {"description": "description", DOWNLOAD_FLAG: "download"}
# Properties a manifest may set but the tool never removes: NHN requires os_type on every image it creates
# (a copy of an image without one is refused, os_type_missing), so dropping it from `properties:` leaves it.
NEVER_REMOVED = frozenset({"os_type"})


def reserved_property(name: str) -> str | None:
    """Why a manifest may not declare property `name`, or None when it may."""
    if name in FIELD_FOR_PROPERTY:
        return f"reserved property; use the image's {FIELD_FOR_PROPERTY[name]}: field"
    for prefix, why in RESERVED_PREFIXES.items():
        if name.startswith(prefix):
            return f"reserved property ({prefix}* are {why})"
    if name.startswith("nhncloud_"):
        return "reserved property (nhncloud_* are NHN Cloud's own; the download flag is the download: field)"
    if name in GLANCE_ATTRIBUTES:
        return f"reserved property ({name} is an image attribute, not a custom property)"
    return None


def managed_props(properties: Mapping[str, Any]) -> tuple[str, ...]:
    """The property names the tool manages on an image, from its `reconciler_props` marker: those it removes
    once the manifest no longer declares them. Anyone in the project may edit the marker, so a name no
    manifest may declare (reserved_property) or one the tool never removes (NEVER_REMOVED) is not one."""
    raw = properties.get(PROPS)
    if not isinstance(raw, str) or not raw:
        return ()
    names = {p for p in raw.split(",") if p}
    return tuple(sorted(p for p in names if p not in NEVER_REMOVED and reserved_property(p) is None))
