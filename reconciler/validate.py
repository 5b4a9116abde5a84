"""Read a root and validate everything in it, collecting every problem, then build the frozen model.

Problems are reported in file order, each as `file:line:column: message`: those of reconciler.yaml alone
when it has any (until it says which files are the seed and the state, no file can be told to be a
manifest), else those of the manifests by path. Only a root without problems becomes a `DesiredState`:
no raw dicts pass this point.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import jsonschema
import yaml

from reconciler import markers, schema_messages
from reconciler.cloud.environment import RESERVED_PREFIXES
from reconciler.desired import (
    DEFAULT_STATE,
    CloudConfig,
    CopySpec,
    DesiredState,
    ImageSpec,
    Removal,
    RootConfig,
    Settings,
    Source,
)
from reconciler.errors import UsageError
from reconciler.gc_pause import gc_paused
from reconciler.render import escape
from reconciler.root import ROOT_FILE, find_root, inside, walk_root
from reconciler.schemas import load_schema
from reconciler.yaml_source import (
    DocPath,
    LocatedDocument,
    Location,
    Problem,
    format_path,
    load_located_file,
)


class InvalidRootError(UsageError):
    """The root has problems; `problems` lists them in file order."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} found; nothing was read from or changed in the cloud",
            hint=hint,
            details=[str(p) for p in problems],
        )


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def load_desired_state(folder: Path) -> DesiredState:
    """Validate the root at `folder` and return its model; InvalidRootError lists every problem."""
    with gc_paused():  # everything built here stays alive until the model is made (reconciler/gc_pause.py)
        return _load_desired_state(folder)


def _load_desired_state(folder: Path) -> DesiredState:
    root = find_root(folder)
    config, config_problems = _load_root_config(root)
    if config is None:
        # Which files cloud: names (seed, state) is unknown or wrong: the seed would be read as a broken
        # manifest, bogus problems that hide the real one. The config's problems alone, then.
        raise InvalidRootError(
            sorted(config_problems, key=lambda p: (p.location.line, p.location.column)),
            hint=f"the manifests are checked once {ROOT_FILE} is valid",
        )
    manifests: list[_Manifest] = []
    files: list[str] = []
    problems: list[Problem] = []
    paths, refused = walk_root(root, [p for p in (config.cloud.state, config.cloud.seed) if p is not None])
    # Links that leave the root, broken links and unreadable folders: what they hold is not read, and
    # never silently missing from the set either (a missing manifest would become planned deletions).
    not_read = [(r.path.relative_to(root).as_posix(), r.message) for r in refused]
    problems.extend(Problem(Location(display, 1, 1), message) for display, message in not_read)
    for path in paths:
        display = path.relative_to(root).as_posix()
        files.append(display)
        manifest = _check_manifest(load_located_file(path, display, refuse_hidden=True), config)
        problems.extend(manifest.problems)
        manifests.append(manifest)

    images = _cross_file(manifests, problems, config)
    removed = _removals(manifests, problems)
    if problems:
        order = {name: i for i, name in enumerate(sorted([*files, *(display for display, _ in not_read)]))}
        problems.sort(key=lambda p: (order.get(p.location.file, len(order)), p.location.line, p.location.column))
        raise InvalidRootError(problems)
    return DesiredState(
        root=config,
        images=tuple(sorted(images, key=lambda s: s.key)),
        files=tuple(files),
        removed=tuple(sorted(removed, key=lambda r: r.key)),
    )


def _load_root_config(root: Path) -> tuple[RootConfig | None, list[Problem]]:
    """`reconciler.yaml` as a config, or None and every problem it has."""
    doc = load_located_file(root / ROOT_FILE, ROOT_FILE, refuse_hidden=True)
    problems = _document_problems(doc, "root", "a root config holds version: 1, set: and cloud:")
    if problems:
        return None, problems
    config, problems = _root_config(root, doc)
    return (None if problems else config), problems


def _document_problems(doc: LocatedDocument, schema: str, expected: str) -> list[Problem]:
    """A document's own problems: YAML, then empty, then the schema (each only if the one before found
    none: a broken document has no shape to check), and hidden characters in any case."""
    problems = list(doc.problems)
    if not problems:
        problems.extend(_empty_problem(doc, expected))
    if not problems:
        problems.extend(schema_messages.problems(_validator(schema), doc))
    problems.extend(_text_problems(doc))
    return problems


def _empty_problem(doc: LocatedDocument, expected: str) -> list[Problem]:
    if doc.data is None:
        return [Problem(Location(doc.file, 1, 1), f"empty file: {expected}")]
    if not isinstance(doc.data, dict):
        return [Problem(doc.location_of(()), f"expected a mapping at the top: {expected}")]
    return []


# -- hidden characters ----------------------------------------------------------------------------

# What a reviewer reads must be what the cloud gets: a character that does not show (a control character,
# an ESC sequence, a bidi override, a zero-width space) is refused in every string, key or value.
HIDDEN_KINDS = {
    "Cc": "control",
    "Cf": "invisible format",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "lone surrogate",
}
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
HIDDEN_SHOWN = 3  # hidden characters named in one message


def _text_problems(doc: LocatedDocument) -> list[Problem]:
    """A problem for every string (mapping key or value, at any depth) holding a hidden character."""
    found: list[Problem] = []
    seen: set[int] = set()  # an alias is one object: checked once, reported where it is written

    def check(text: str, path: DocPath, *, is_key: bool = False) -> None:
        message = _hidden_message(text, path, is_key=is_key)
        if message:
            location = doc.key_location_of(path) if is_key else doc.location_of(path)
            found.append(Problem(location, f"{format_path(path) or 'document'}: {message}"))

    def walk(value: Any, path: DocPath) -> None:
        if isinstance(value, str):
            check(value, path)
        if not isinstance(value, (dict, list)) or id(value) in seen:
            return
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                check(key, path + (key,), is_key=True)
            walk(item, path + (key,))

    if doc.data is not None:
        walk(doc.data, ())
    return found


def _hidden_message(value: str, path: DocPath, *, is_key: bool = False) -> str | None:
    """Why `value` is refused, or None when every character shows."""
    if value.isascii() and value.isprintable():
        return None
    # In order of appearance. Not only what isprintable() refuses: escape.hidden also knows letters that show
    # as nothing (the Hangul fillers, the Braille blank).
    hidden = list(dict.fromkeys(c for c in value if escape.hidden(c)))
    if not hidden:
        return None
    what = "the key" if is_key else "the value"
    if not is_key and len(path) == 3 and path[0] == "images" and path[2] == "description":
        if LINE_BREAKS.intersection(hidden):
            return (
                "a description is one line, and this one has a line break (a `|` or `>` block scalar keeps them): "
                "write it on one line, as a plain scalar or a folded `>-` scalar without blank lines"
            )
    if hidden == ["\t"]:
        return (
            f"{what} contains a tab (\\x09): tabs are refused like every control character, since a tab shows as "
            "a different width wherever it is read; use spaces"
        )
    named = ", ".join(f"{escape.text(c)} ({_hidden_kind(c)})" for c in hidden[:HIDDEN_SHOWN])
    more = f" and {len(hidden) - HIDDEN_SHOWN} more" if len(hidden) > HIDDEN_SHOWN else ""
    return (
        f"{what} contains {named}{more}: control and format characters (Unicode Cc and Cf, tab and line breaks "
        "included) and letters that show as nothing are refused in every string, since they can hide or rewrite "
        "what a reviewer reads"
    )


def _hidden_kind(char: str) -> str:
    # A hidden character of no hidden category is one of escape's letters that show as nothing.
    return HIDDEN_KINDS.get(unicodedata.category(char), "shows as nothing")


# -- reconciler.yaml ------------------------------------------------------------------------------


def _root_config(root: Path, doc: LocatedDocument) -> tuple[RootConfig | None, list[Problem]]:
    data = doc.data
    cloud = data["cloud"]
    problems: list[Problem] = []

    def inside_root(key: str, default: str | None) -> Path | None:
        value = cloud.get(key, default)
        if value is None:
            return None
        try:
            path = (root / value).resolve()
        except (ValueError, OSError):
            problems.append(Problem(doc.location_of(("cloud", key)), f"cloud.{key}: {value!r} is not a usable path"))
            return None
        wrong = _wrong_kind_of_file(key, path)
        if wrong:
            wanted = "a .json state file" if key == "state" else "the seed's YAML file (regions:, projects:, images:)"
            problems.append(
                Problem(doc.location_of(("cloud", key)), f"cloud.{key}: {value!r} is {wrong}; give {wanted}")
            )
            return None
        if Path(value).is_absolute() or not inside(root, path):
            # A pull request must not be able to make the tool read or write elsewhere.
            problems.append(
                Problem(
                    doc.location_of(("cloud", key)), f"cloud.{key}: {value!r} leaves the root; give a path inside it"
                )
            )
        return path

    simulator = cloud["kind"] == "simulator"
    state = inside_root("state", DEFAULT_STATE) if simulator else None
    seed = inside_root("seed", None) if simulator else None
    # Missing even when the state exists (the seed is then not needed): a name that points at nothing is
    # a typo, and the file meant would be read as a broken manifest.
    if seed is not None and not problems and not seed.is_file():
        problems.append(Problem(doc.location_of(("cloud", "seed")), f"cloud.seed: {cloud['seed']} does not exist"))
    project = cloud.get("project")
    if simulator and project is None and not problems:
        project = _first_simulated_project(state, seed)
    target = CloudConfig(
        kind=cloud["kind"],
        project=project,
        regions=tuple(cloud["regions"]) if "regions" in cloud else None,
        protected_patch=cloud.get("protected_patch", "permissive"),
        state=state,
        seed=seed,
        credentials=cloud.get("credentials"),
    )
    problems.extend(_credentials_problems(doc, target.credentials))
    settings = data.get("settings") or {}
    set_location = doc.location_of(("set",))
    config = RootConfig(
        path=root,
        set_source=f"{set_location.file}:{set_location.line}",
        set=data["set"],
        cloud=target,
        default_region=(data.get("defaults") or {}).get("region"),
        settings=Settings(**settings),
    )
    return config, problems


def _credentials_problems(doc: LocatedDocument, prefix: str | None) -> list[Problem]:
    """A `cloud.credentials` prefix that names the default variables is refused: NHN_CLOUD or OS would read
    the default user under another name and hide that the root meant a user of its own. (The schema checks
    the prefix's form, and refuses it for kind: simulator, whose users are its seed's.)"""
    if prefix not in RESERVED_PREFIXES:
        return []
    return [
        Problem(
            doc.location_of(("cloud", "credentials")),
            f"cloud.credentials: {prefix} is reserved (the default {prefix}_* variables are read without it); "
            "name a prefix of this root's own, like PARTNER for PARTNER_USERNAME and PARTNER_API_PASSWORD, "
            "or leave cloud.credentials out to use NHN_CLOUD_*",
        )
    ]


def _wrong_kind_of_file(key: str, path: Path) -> str | None:
    """What `path` is when it cannot be the file `cloud.<key>` names, or None when it can be."""
    if path.is_dir():
        return "a folder"
    if path.name == ROOT_FILE:
        return f"a root config, not a {key} file"
    if key == "state" and path.suffix in (".yaml", ".yml"):
        return "a YAML file (it would be read as a manifest)"
    return None


def _first_simulated_project(state: Path | None, seed: Path | None) -> str | None:
    """A simulator target's default project: the first of its state, else of its seed.
    Unreadable files leave it unknown here; starting the simulator reports them."""
    try:
        if state is not None and state.is_file():
            doc = json.loads(state.read_text(encoding="utf-8"))
            return doc.get("default_project") or next(iter(doc["projects"]), None)
        if seed is not None and seed.is_file():
            projects = yaml.safe_load(seed.read_text(encoding="utf-8"))["projects"]
            return str(projects[0]["id"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None
    return None


# -- manifests ------------------------------------------------------------------------------------


@dataclass
class _Manifest:
    doc: LocatedDocument
    problems: list[Problem]
    images: dict[str, dict[str, Any]]
    removed: list[Any]


def _check_manifest(doc: LocatedDocument, config: RootConfig) -> _Manifest:
    problems = _document_problems(doc, "manifest", "a manifest holds version: 1 and images:, removed: or both")
    images = doc.data.get("images") if isinstance(doc.data, dict) else None
    images = images if isinstance(images, dict) else {}
    for key, image in images.items():
        if isinstance(image, dict):
            problems.extend(_image_problems(doc, key, image, config))
    removed = doc.data.get("removed") if isinstance(doc.data, dict) else None
    return _Manifest(doc, problems, images, removed if isinstance(removed, list) else [])


def _image_problems(doc: LocatedDocument, key: Any, image: dict[str, Any], config: RootConfig) -> list[Problem]:
    base: DocPath = ("images", key)
    found: list[Problem] = []

    def report(path: DocPath, message: str, *, at_key: bool = False) -> None:
        location = doc.key_location_of(base + path) if at_key else doc.location_of(base + path)
        found.append(Problem(location, f"{format_path(base + path)}: {message}"))

    _property_problems(image, report)
    _name_problems(image, report)
    if "region" not in image and config.default_region is None:
        report((), "no region: set region: here or defaults.region in reconciler.yaml", at_key=True)
    _copy_region_problems(image, image.get("region", config.default_region), report)
    share = image.get("share")
    if isinstance(share, list) and config.cloud.project:
        for i, project in enumerate(share):
            if project == config.cloud.project:
                report(("share", i), "that is the set's own project; share with other projects")
    return found


class _Report(Protocol):
    """Reports a problem at `path` under the image (at the key itself with `at_key`)."""

    def __call__(self, path: DocPath, message: str, *, at_key: bool = False) -> None: ...


def _property_problems(image: dict[str, Any], report: _Report) -> None:
    """No custom property takes a reserved name (markers.reserved_property: the tool's markers, a field's
    own property, NHN's, an image attribute)."""
    properties = image.get("properties")
    if isinstance(properties, dict):
        for name in properties:
            reason = markers.reserved_property(str(name))
            if reason:
                report(("properties", name), reason, at_key=True)


def _copy_region_problems(image: dict[str, Any], home: Any, report: _Report) -> None:
    """Copies go to regions other than the home region, one copy per region."""
    copies = image.get("copies")
    if not isinstance(copies, list):
        return
    seen: dict[str, int] = {}
    for i, copy in enumerate(copies):
        region = copy.get("region") if isinstance(copy, dict) else copy
        if not isinstance(region, str):
            continue
        if region == home:
            report(("copies", i), f"{region} is the home region; copies go to other regions")
        elif region in seen:
            report(("copies", i), f"{region} is listed twice (first as copies[{seen[region]}])")
        else:
            seen[region] = i


def _name_problems(image: dict[str, Any], report: Callable[[DocPath, str], None]) -> None:
    """Declared names never carry `~rc-`, which marks the tool's temporary names; a name the tool creates an
    image under (a create from an instance, a copy it makes) leaves room for the token: at most
    markers.CREATED_NAME_MAX characters (an adopted image keeps up to 255)."""
    source = image.get("source")
    created = isinstance(source, dict) and "image" not in source
    named: list[tuple[DocPath, Any, bool]] = [(("name",), image.get("name"), created)]
    copies = image.get("copies")
    if isinstance(copies, list):
        for i, copy in enumerate(copies):
            if isinstance(copy, dict):
                named.append((("copies", i, "name"), copy.get("name"), "image" not in copy))
    for path, name, made_here in named:
        if not isinstance(name, str):
            continue
        if markers.TOKEN_SEPARATOR in name:
            report(
                path,
                f"contains {markers.TOKEN_SEPARATOR}, which marks the tool's temporary names; choose another name",
            )
        elif made_here and len(name) > markers.CREATED_NAME_MAX:
            report(
                path,
                f"{len(name)} characters; the name of an image the tool makes is at most {markers.CREATED_NAME_MAX} "
                "(it is created under the name plus a 20-character temporary token)",
            )


# -- across files ---------------------------------------------------------------------------------


def _cross_file(manifests: list[_Manifest], problems: list[Problem], config: RootConfig) -> list[ImageSpec]:
    first: dict[str, Location] = {}
    for manifest in manifests:
        for key in manifest.images:
            where = manifest.doc.key_location_of(("images", key))
            if key in first:
                problems.append(Problem(where, f"images.{key}: key {key} is already declared at {first[key]}"))
            else:
                first[key] = where
    moved: dict[str, Location] = {}
    for manifest in manifests:
        for key, image in manifest.images.items():
            moved_from = image.get("moved_from") if isinstance(image, dict) else None
            if isinstance(moved_from, str):
                where = manifest.doc.location_of(("images", key, "moved_from"))
                if moved_from in moved:
                    message = f"{moved_from} already moves to another key (at {moved[moved_from]})"
                    problems.append(Problem(where, f"images.{key}.moved_from: {message}"))
                else:
                    moved[moved_from] = where
            if isinstance(moved_from, str) and moved_from in first:
                problems.append(
                    Problem(
                        manifest.doc.location_of(("images", key, "moved_from")),
                        f"images.{key}.moved_from: {moved_from} is still declared (at {first[moved_from]}); "
                        "moved_from names the key this image had before, which must be gone",
                    )
                )
    problems.extend(_adoption_problems(manifests))
    if problems:
        return []
    return [
        _image_spec(manifest.doc, key, image, config.default_region)
        for manifest in manifests
        for key, image in manifest.images.items()
    ]


def _removals(manifests: list[_Manifest], problems: list[Problem]) -> list[Removal]:
    """The `removed:` entries of every file. A removed key must be gone: declared under images: it would be
    both managed and released; listed twice, the second entry could say the opposite; named by a
    moved_from, its images are re-keyed, not released or deleted. Each is reported at the entry."""
    declared: dict[str, Location] = {}
    moved: dict[str, tuple[str, Location]] = {}
    for manifest in manifests:
        for key, image in manifest.images.items():
            declared.setdefault(key, manifest.doc.key_location_of(("images", key)))
            moved_from = image.get("moved_from") if isinstance(image, dict) else None
            if isinstance(moved_from, str):
                moved.setdefault(moved_from, (key, manifest.doc.location_of(("images", key, "moved_from"))))
    found: list[Removal] = []
    first: dict[str, Location] = {}
    for manifest in manifests:
        for i, entry in enumerate(manifest.removed):
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)):
                continue  # the schema reported it
            key, path = entry["key"], ("removed", i, "key")
            where = manifest.doc.location_of(path)
            field = format_path(path)
            if key in declared:
                problems.append(
                    Problem(
                        where,
                        f"{field}: {key} is also declared under images: (at {declared[key]}); a key is either managed "
                        "or removed: delete one of the two",
                    )
                )
            elif key in moved:
                new_key, at = moved[key]
                problems.append(
                    Problem(
                        where,
                        f"{field}: {key} is re-keyed to {new_key} by moved_from (at {at}): its images become "
                        f"{new_key}'s, so it cannot also be removed",
                    )
                )
            elif key in first:
                problems.append(Problem(where, f"{field}: {key} is already removed at {first[key]}: list it once"))
            else:
                first[key] = where
                destroy = entry.get("destroy")
                if isinstance(destroy, bool):
                    found.append(Removal(key, destroy, manifest.doc.file, manifest.doc.location_of(("removed", i))))
    return found


def _adoption_problems(manifests: list[_Manifest]) -> list[Problem]:
    """An image id adopted twice (by two keys, or a key and a copy): apply would mark the image for each in
    turn, and the next plan refuses it as taken. One image belongs to one key: reported at the second."""
    found: list[Problem] = []
    first: dict[str, tuple[str, Location]] = {}  # lowercased id -> (the field adopting it, where)
    for manifest in manifests:
        for path, image_id in _adopted_ids(manifest.images):
            where = manifest.doc.location_of(path)
            field = format_path(path)
            if image_id.lower() not in first:
                first[image_id.lower()] = (field, where)
                continue
            other, other_where = first[image_id.lower()]
            found.append(
                Problem(
                    where,
                    f"{field}: image {image_id} is already adopted by {other} (at {other_where}); an image belongs to "
                    "one key: declare it once",
                )
            )
    return found


def _adopted_ids(images: dict[str, Any]) -> list[tuple[DocPath, str]]:
    """Each image id the declarations adopt (`source.image`, `copies[i].image`), with its path."""
    adopted: list[tuple[DocPath, str]] = []
    for key, image in images.items():
        if not isinstance(image, dict):
            continue
        source = image.get("source")
        if isinstance(source, dict) and isinstance(source.get("image"), str):
            adopted.append((("images", key, "source", "image"), source["image"]))
        copies = image.get("copies")
        for i, copy in enumerate(copies if isinstance(copies, list) else []):
            if isinstance(copy, dict) and isinstance(copy.get("image"), str):
                adopted.append((("images", key, "copies", i, "image"), copy["image"]))
    return adopted


def _image_spec(doc: LocatedDocument, key: str, raw: dict[str, Any], default_region: str | None) -> ImageSpec:
    base: DocPath = ("images", key)
    locations: dict[str, Location] = {"": doc.key_location_of(base)}
    for name in raw:
        locations[name] = doc.location_of(base + (name,))
    source_raw = raw["source"]
    for name in source_raw:
        locations[f"source.{name}"] = doc.location_of(base + ("source", name))
    copies = []
    for i, item in enumerate(raw.get("copies") or []):
        entry = item if isinstance(item, dict) else {"region": item}
        location = doc.location_of(base + ("copies", i))
        locations[f"copies.{entry['region']}"] = location
        copies.append(
            CopySpec(
                region=entry["region"],
                name=entry.get("name"),
                protected=entry.get("protected"),
                image=entry.get("image"),
                location=location,
            )
        )
    properties: Mapping[str, str] | None = None
    if "properties" in raw:
        properties = MappingProxyType(dict(raw["properties"]))
    return ImageSpec(
        key=key,
        file=doc.file,
        region=raw.get("region") or default_region or "",
        source=Source(
            instance=source_raw.get("instance"),
            image=source_raw.get("image"),
            running=source_raw.get("running", "allow"),
            takeover=source_raw.get("takeover", False),
        ),
        name=raw.get("name"),
        description=raw.get("description"),
        moved_from=raw.get("moved_from"),
        protected=raw.get("protected"),
        min_disk=raw.get("min_disk"),
        min_ram=raw.get("min_ram"),
        download=raw.get("download"),
        properties=properties,
        copies=tuple(copies),
        share=tuple(raw["share"]) if "share" in raw else None,
        locations=MappingProxyType(locations),
    )
