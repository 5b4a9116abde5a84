"""Sorting live images by owner: this set's home images and copies, other sets'
images, unmanaged ones, and images under a temporary name. Pure: reads images, returns data; the
snapshot (which decides which keys get a create's reads) and the planner sort with the same call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import DesiredState
from reconciler.lock_claims import is_bookkeeping


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
    # This set's temporary-name images (an interrupted or running create), by region, then oldest first:
    # in none of the lists above, whatever markers they carry (docs/plan-format.md, "Temporary names").
    temporary: list[Image] = field(default_factory=list)
    # Old-form temporary-name images that name no set and match no declared (key, region): nobody's, as
    # far as this set can tell (they are also counted as unmanaged).
    unattributed: list[Image] = field(default_factory=list)
    # Images whose set or key marker no run of the tool could have written (markers.invalid_markers): nobody's,
    # so never planned against (also counted as unmanaged; the planner warns about each, invalid_markers).
    invalid: list[Image] = field(default_factory=list)

    def has_any_image(self) -> bool:
        return bool(self.home or self.copies or self.temporary)


def _age(image: Image) -> tuple[str, str]:
    return (image.created_at or "", image.id)


def is_temporary_of(image: Image, set_name: str, declared_tokens: Collection[str]) -> bool | None:
    """True: a temporary-name image of this set (its token's S is this set's, or, for the old form, its K
    is a declared (key, region)'s or its own markers' key's, and it carries no other set's markers).
    None: an old-form one that cannot be attributed. False: anything else."""
    token = markers.parse_token(image.name)
    if token is None:
        return False
    owner_set, owner_key = image.properties.get(markers.SET), image.properties.get(markers.KEY)
    if owner_set is not None and owner_set != set_name:
        return False
    if token.set_token is not None:
        return token.set_token == markers.set_token(set_name)
    if token.name_token in declared_tokens:
        return True
    if owner_set == set_name and isinstance(owner_key, str):
        return token.name_token == markers.name_token(set_name, owner_key, image.region)
    return None if owner_set is None else False


def declared_tokens(desired: DesiredState) -> set[str]:
    """K of every declared (key, region) (an image is made in its home region): what attributes an
    old-form temporary name to this set."""
    return {markers.name_token(desired.root.set, spec.key, spec.region) for spec in desired.images}


def referenced_ids(desired: DesiredState) -> set[str]:
    """The image ids the manifests name (`source.image`, `copies[].image`)."""
    return {spec.source.image for spec in desired.images if spec.source.image} | {
        copy.image for spec in desired.images for copy in spec.copies if copy.image
    }


def classify_desired(images: Iterable[Image], desired: DesiredState) -> Ownership:
    """classify_images with what the manifests declare and name: the one sorting read_snapshot (which
    decides which keys need the reads a create does) and the planner (which plans the creates) must share."""
    return classify_images(images, desired.root.set, declared_tokens(desired), referenced_ids(desired))


def classify_images(
    images: Iterable[Image],
    set_name: str,
    declared_tokens: Collection[str] = (),
    referenced: Collection[str] = (),
) -> Ownership:
    """Sort `images` by owner. `declared_tokens`: K of every declared (key, region), which attribute old-form
    temporary names; `referenced`: ids the manifests name (`source.image`, `copies[].image`), never temporary
    images."""
    home: dict[str, list[Image]] = defaultdict(list)
    copies: dict[tuple[str, str], list[Image]] = defaultdict(list)
    other: dict[str, dict[str, list[Image]]] = defaultdict(lambda: defaultdict(list))
    other_count = 0
    unmanaged: list[Image] = []
    temporary: list[Image] = []
    unattributed: list[Image] = []
    invalid: list[Image] = []
    for image in images:
        if is_bookkeeping(image.properties):
            continue  # lock claims and doctor's scratch images are the tool's own, not images of anyone's
        if markers.invalid_markers(image.properties):
            # Checked before the temporary name, too: markers the tool never writes make no image the tool's.
            invalid.append(image)
            unmanaged.append(image)
            continue
        owner_set = image.properties.get(markers.SET)
        key = image.properties.get(markers.KEY)
        ours = is_temporary_of(image, set_name, declared_tokens) if image.id not in referenced else False
        if ours:
            temporary.append(image)
            continue
        if ours is None:
            unattributed.append(image)
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
        temporary=sorted(temporary, key=lambda i: (i.region, *_age(i))),
        unattributed=sorted(unattributed, key=lambda i: (i.region, i.name or "", i.id)),
        invalid=sorted(invalid, key=lambda i: (i.region, i.id)),
    )
