"""Sorting live images by owner (design.md section 2): this set's home images and copies, other sets'
images, unmanaged ones, and images under a temporary name. Pure: reads a Snapshot, returns data."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from reconciler import markers
from reconciler.cloud.model import Image
from reconciler.lock_claims import is_bookkeeping
from reconciler.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Ownership:
    set: str
    # This set's home images by key, oldest first (more than one is a duplicate or a conflict).
    home: dict[str, list[Image]] = field(default_factory=dict)
    # This set's copies by (key, region), oldest first.
    copies: dict[tuple[str, str], list[Image]] = field(default_factory=dict)
    # Other sets' home images by set, then key.
    other_sets: dict[str, dict[str, list[Image]]] = field(default_factory=dict)
    other_set_count: int = 0
    unmanaged: list[Image] = field(default_factory=list)
    # Images named with a temporary-name token, by token (an interrupted create).
    tokens: dict[str, list[Image]] = field(default_factory=dict)

    def has_any_image(self) -> bool:
        return bool(self.home or self.copies)


def _age(image: Image) -> tuple[str, str]:
    return (image.created_at or "", image.id)


def classify(snapshot: Snapshot, set_name: str) -> Ownership:
    home: dict[str, list[Image]] = defaultdict(list)
    copies: dict[tuple[str, str], list[Image]] = defaultdict(list)
    other: dict[str, dict[str, list[Image]]] = defaultdict(lambda: defaultdict(list))
    other_count = 0
    unmanaged: list[Image] = []
    tokens: dict[str, list[Image]] = defaultdict(list)
    for image in snapshot.all_images():
        if is_bookkeeping(image.properties):
            continue  # lock claims and doctor's scratch images are the tool's own, not images of anyone's
        owner_set = image.properties.get(markers.SET)
        key = image.properties.get(markers.KEY)
        token = markers.token_of(image.name)
        if token is not None:
            tokens[token].append(image)
        if not isinstance(owner_set, str) or not isinstance(key, str):
            unmanaged.append(image)
        elif owner_set != set_name:
            other_count += 1
            if markers.COPY_OF not in image.properties:
                other[owner_set][key].append(image)
        elif markers.COPY_OF in image.properties:
            copies[(key, image.region)].append(image)
        else:
            home[key].append(image)
    return Ownership(
        set=set_name,
        home={k: sorted(v, key=_age) for k, v in home.items()},
        copies={k: sorted(v, key=_age) for k, v in copies.items()},
        other_sets={s: {k: sorted(v, key=_age) for k, v in keys.items()} for s, keys in other.items()},
        other_set_count=other_count,
        unmanaged=unmanaged,
        tokens={t: sorted(v, key=_age) for t, v in tokens.items()},
    )
