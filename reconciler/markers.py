"""Ownership markers: the string properties that tie a live image to a set and key (design.md section 2),
and the temporary-name token of an image being created (section 3.3)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

SET = "reconciler_set"
KEY = "reconciler_key"
SOURCE = "reconciler_source"  # "instance:<id>" or "image:<id>", as declared when made or adopted
PROPS = "reconciler_props"  # comma-separated managed property names
COPY_OF = "reconciler_copy_of"  # on copies: the home image's id
DOWNLOAD_WAS = "reconciler_download_was"  # while the download flag is enabled for copies: the value to restore
ALL = (SET, KEY, SOURCE, PROPS, COPY_OF, DOWNLOAD_WAS)

# Server metadata naming the set that stopped an instance, so a later plan restarts one a crash left stopped.
STOPPED_BY = "reconciler_stopped_by"
DOWNLOAD_FLAG = "nhncloud_allow_download"


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


def name_token(set_name: str, key: str, region: str) -> str:
    """8 hex characters identifying (set, key, region): the suffix of a temporary name."""
    digest = hashlib.sha256("\0".join((set_name, key, region)).encode("utf-8")).hexdigest()
    return digest[:8]


def temporary_name(name: str, set_name: str, key: str, region: str) -> str:
    """`<name>~rc-<token>`: the name an image is created under, until its markers and final name are set."""
    return f"{name}{TOKEN_SEPARATOR}{name_token(set_name, key, region)}"


def token_of(image_name: str | None) -> str | None:
    """The temporary-name token in an image's name, if it has one."""
    if not image_name or TOKEN_SEPARATOR not in image_name:
        return None
    token = image_name.rsplit(TOKEN_SEPARATOR, 1)[1]
    return token if len(token) == 8 and all(c in "0123456789abcdef" for c in token) else None


def managed_props(properties: Mapping[str, Any]) -> tuple[str, ...]:
    """The property names the tool manages on an image, from its `reconciler_props` marker."""
    raw = properties.get(PROPS)
    if not isinstance(raw, str) or not raw:
        return ()
    return tuple(sorted(p for p in raw.split(",") if p))
