"""The desired state after validation: frozen, typed, with the manifest location of every field.

No raw dicts past the validator. Field semantics (docs/manifest.md): a field that is absent on
an image is `None` here and means "left alone" (except `copies`, where absent means none, and `name`,
whose create-time default is the key). `locations` maps a field path (`"name"`, `"source"`,
`"copies.JP1"`, `"share"`, ...) to where it is written, for reasons and messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from reconciler.location import Location

DEFAULT_STATE = ".reconciler/sim-state.json"
DEFAULT_MAX_DELETIONS = 10
DEFAULT_PARALLELISM = 8


def _frozen_mapping() -> Mapping[str, Location]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Where a root's images live: `kind` "nhn" or "simulator"."""

    kind: str
    project: str | None  # a simulator's default (the seed's first project) is resolved when it starts
    regions: tuple[str, ...] | None  # None: every image region in the catalog
    protected_patch: str = "permissive"
    state: Path | None = None  # simulator: absolute path of the state file
    seed: Path | None = None  # simulator: absolute path of the seed, if any
    # nhn: the environment prefix of this root's API user (PARTNER reads PARTNER_USERNAME, ...); None: NHN_CLOUD_*.
    credentials: str | None = None


DEFAULT_REFRESH_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Settings:
    max_deletions: int = DEFAULT_MAX_DELETIONS
    parallelism: int = DEFAULT_PARALLELISM
    # At most this many of apply's actions in one region at once; None: parallelism alone bounds them.
    region_parallelism: int | None = None
    # Concurrent reads while refreshing (members, servers): separate from apply's parallelism.
    refresh_concurrency: int = DEFAULT_REFRESH_CONCURRENCY
    # A root that declares nothing plans no deletion and refuses while its set has live images (a folder
    # that went missing must not become deletes); true lifts both, to retire a whole set deliberately.
    allow_empty_set: bool = False
    # "refuse": a delete of an image a server or volume of the project uses is refused (image_in_use);
    # "allow": it is planned, with a warning.
    delete_in_use: str = "refuse"


@dataclass(frozen=True, slots=True)
class RootConfig:
    """`reconciler.yaml`: the set this root owns and the cloud it targets."""

    path: Path  # the root folder
    set: str
    cloud: CloudConfig
    default_region: str | None
    settings: Settings
    file: str = "reconciler.yaml"
    set_source: str | None = None  # where `set:` is written, e.g. "reconciler.yaml:2"


@dataclass(frozen=True, slots=True)
class Source:
    """Create-time only: image an instance, adopt an existing image, or upload a file or a URL's bytes.

    An upload names its content by a digest (`sha256` or `sha512`, hex as written): read it through `digest`
    or `content`, the one place it is lowercased. The image's `reconciler_source` marker records `content`,
    and apply checks the bytes it sends against `digest`."""

    instance: str | None = None
    image: str | None = None
    running: str = "allow"  # allow | stop | refuse
    takeover: bool = False
    file: str | None = None  # relative to the root, then to each --artifacts directory; never `..`
    url: str | None = None  # https, no userinfo
    sha256: str | None = None
    sha512: str | None = None
    disk_format: str | None = None  # qcow2 | raw | vmdk | vhd | iso, for file and url

    @property
    def uploaded(self) -> bool:
        """Whether the image is made by uploading bytes (a file or a URL), not by imaging or adopting."""
        return self.file is not None or self.url is not None

    @property
    def digest(self) -> tuple[str, str] | None:
        """(algorithm, lowercase hex) an upload's bytes must have; None for other sources."""
        if self.sha256 is not None:
            return "sha256", self.sha256.lower()
        if self.sha512 is not None:
            return "sha512", self.sha512.lower()
        return None

    @property
    def content(self) -> str | None:
        """An upload's `reconciler_source` marker, `sha256:<hex>` or `sha512:<hex>`; None for other sources."""
        digest = self.digest
        return None if digest is None else f"{digest[0]}:{digest[1]}"


CONTENT = re.compile(r"(sha256|sha512):([0-9a-f]+)")


def content_digest(content: str) -> tuple[str, str] | None:
    """(algorithm, hex) of an upload's `reconciler_source` marker (`Source.content`); None for any other."""
    matched = CONTENT.fullmatch(content)
    return (matched.group(1), matched.group(2)) if matched else None


@dataclass(frozen=True, slots=True)
class CopySpec:
    region: str
    name: str | None = None  # None: the home image's name
    protected: bool | None = None  # None: as the home image's declaration
    image: str | None = None  # adopt this existing copy
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class ImageSpec:
    key: str
    file: str
    region: str  # the home region, resolved from defaults.region when absent
    source: Source
    name: str | None = None
    description: str | None = None
    moved_from: str | None = None
    protected: bool | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    download: bool | None = None
    properties: Mapping[str, str] | None = None
    copies: tuple[CopySpec, ...] = ()
    share: tuple[str, ...] | None = None
    locations: Mapping[str, Location] = field(default_factory=_frozen_mapping)
    # A version of a family (`families:`): the family's name and this version; None for an image of
    # `images:`. Its key is "<family>-<version>".
    family: str | None = None
    version: str | None = None

    @property
    def display_name(self) -> str:
        """The name the image has or will get: the declared one, else the key."""
        return self.name if self.name is not None else self.key

    def location(self, field_path: str = "") -> Location | None:
        """Where `field_path` is written, else where the image's key is."""
        return self.locations.get(field_path) or self.locations.get("")


@dataclass(frozen=True, slots=True)
class Family:
    """A `families:` entry: the versions of one image, oldest first. Validation desugars it: each of the
    newest `keep` versions is an ordinary declared image (an ImageSpec with `family` and `version` set,
    key "<name>-<version>", protected exactly when among the newest `protect_newest` unless its override
    says otherwise); the older listed versions are not declared, and their images are retired."""

    name: str
    versions: tuple[str, ...]  # every listed version, oldest first
    keep: int  # resolved: the number of versions when not given
    protect_newest: int
    file: str
    moved_from: str | None = None  # the family this one was called before: its versions are re-keyed
    location: Location | None = None  # where the family's name is written
    # Where each listed version is written, and where a version's `protected: true` override is (its
    # retirement is then refused, naming that line).
    version_locations: Mapping[str, Location] = field(default_factory=_frozen_mapping)
    protected_overrides: Mapping[str, Location] = field(default_factory=_frozen_mapping)

    def key(self, version: str) -> str:
        return f"{self.name}-{version}"

    @property
    def newest(self) -> str:
        return self.versions[-1]

    @property
    def kept(self) -> tuple[str, ...]:
        """The versions that are declared: the newest `keep`, oldest first."""
        return self.versions[max(0, len(self.versions) - self.keep) :]

    @property
    def retired(self) -> tuple[str, ...]:
        """The listed versions older than the kept ones: their images are deleted."""
        return self.versions[: -self.keep] if self.keep < len(self.versions) else ()

    @property
    def protected(self) -> tuple[str, ...]:
        """The versions the family protects: the newest `protect_newest`."""
        return self.versions[max(0, len(self.versions) - self.protect_newest) :] if self.protect_newest else ()


@dataclass(frozen=True, slots=True)
class ShareRule:
    """An `accept:` or `reject:` entry (a consumer root): which images other projects share with this one it
    matches. `owner` always, plus exactly one of: `family` (images carrying that `reconciler_family`,
    optionally narrowed to one `set`), `image` (one image id), or `name` (a glob over the whole name,
    case-sensitive)."""

    wants: str  # "accepted" (an accept: rule) or "rejected" (a reject: rule)
    owner: str
    file: str
    family: str | None = None
    set: str | None = None
    image: str | None = None
    name: str | None = None
    location: Location | None = None  # where the rule is written


@dataclass(frozen=True, slots=True)
class Removal:
    """A `removed:` entry: the set stops managing `key`. `destroy` false releases its live images (every
    reconciler_* marker removed, the images kept as they are); true deletes them, as removing the key does."""

    key: str
    destroy: bool
    file: str
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything a root declares: its config, its images (a family's kept versions among them), its removals
    and its families, each sorted by key or name."""

    root: RootConfig
    images: tuple[ImageSpec, ...]
    files: tuple[str, ...]  # manifest files read, relative to the root, sorted
    removed: tuple[Removal, ...] = ()
    # The families declared (their kept versions are in `images` too), sorted by name.
    families: tuple[Family, ...] = ()
    # The accept: and reject: rules, in the order written (files sorted, then entries).
    rules: tuple[ShareRule, ...] = ()

    def family(self, name: str) -> Family | None:
        return next((family for family in self.families if family.name == name), None)

    def image(self, key: str) -> ImageSpec | None:
        for spec in self.images:
            if spec.key == key:
                return spec
        return None
