"""Read a root and validate everything in it, collecting every problem, then build the frozen model.

Problems are reported in file order, each as `file:line:column: message`: those of reconciler.yaml alone
when it has any (until it says which files are the seed and the state, no file can be told to be a
manifest), else those of the manifests by path. Only a root without problems becomes a `DesiredState`:
no raw dicts pass this point.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import jsonschema
import yaml

from reconciler import markers, schema_messages, schemas
from reconciler.cloud.environment import RESERVED_PREFIXES
from reconciler.desired import (
    DEFAULT_STATE,
    CloudConfig,
    CopySpec,
    DesiredState,
    Family,
    ImageSpec,
    Removal,
    RootConfig,
    Settings,
    ShareRule,
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


def load_desired_state(folder: Path, *, allow_http_loopback: bool = False) -> DesiredState:
    """Validate the root at `folder` and return its model; InvalidRootError lists every problem.
    `allow_http_loopback` (--allow-http-loopback) admits a plain-http `source.url` to a loopback address."""
    with gc_paused():  # everything built here stays alive until the model is made (reconciler/gc_pause.py)
        return _load_desired_state(folder, allow_http_loopback=allow_http_loopback)


def _load_desired_state(folder: Path, *, allow_http_loopback: bool = False) -> DesiredState:
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
        doc = load_located_file(path, display, refuse_hidden=True)
        manifest = _check_manifest(doc, config, allow_http_loopback=allow_http_loopback)
        problems.extend(manifest.problems)
        manifests.append(manifest)

    images, families, declared = _cross_file(manifests, problems, config)
    removed = _removals(manifests, declared, problems)
    rules = _share_rules(manifests, config, problems)
    if problems:
        order = {name: i for i, name in enumerate(sorted([*files, *(display for display, _ in not_read)]))}
        problems.sort(key=lambda p: (order.get(p.location.file, len(order)), p.location.line, p.location.column))
        raise InvalidRootError(problems)
    return DesiredState(
        root=config,
        images=tuple(sorted(images, key=lambda s: s.key)),
        files=tuple(files),
        removed=tuple(sorted(removed, key=lambda r: r.key)),
        families=tuple(sorted(families, key=lambda f: f.name)),
        rules=tuple(rules),
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
    if not problems and not schemas.surely_valid(schema, doc.data):  # jsonschema words the errors (schemas.py)
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
    if not is_key and _is_description(path):
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


def _is_description(path: DocPath) -> bool:
    """An image's description: under images:, a family's image: or a version's own entry."""
    if not path or path[-1] != "description":
        return False
    return (path[0] == "images" and len(path) == 3) or (
        path[0] == "families" and len(path) in (4, 5) and path[2] == ("image" if len(path) == 4 else "versions")
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

# `{version}` and `{family}` in a family's name and description, and in its source's file or url (a build
# writes build/web-{version}.qcow2); any other `{...}` is a mistake. A digest is never substituted: it is
# one version's own.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("version", "family")
SUBSTITUTED_FIELDS = ("name", "description")
SUBSTITUTED_SOURCE_FIELDS = ("file", "url")


@dataclass
class _Manifest:
    doc: LocatedDocument
    problems: list[Problem]
    entries: list[_Entry]  # its images, and the kept versions of its families
    families: dict[str, dict[str, Any]]  # as written, by name
    removed: list[Any]


@dataclass(frozen=True)
class _Entry:
    """One declared image as written: an `images:` entry, or a kept version of a family (the family's `image:`
    with the version's own entry applied over it, placeholders replaced). `path` says where each field is
    written, so that messages and the model's locations point at the line that gives it."""

    key: str
    raw: dict[str, Any]
    doc: LocatedDocument
    key_path: DocPath  # where the image is named: images.<key>, or the version's entry
    base: DocPath  # the mapping its fields are written in: images.<key>, or the family's image:
    own_fields: frozenset[str] = frozenset()  # the fields a version's entry gives (written under key_path)
    family: str | None = None
    version: str | None = None

    def path(self, field_path: DocPath) -> DocPath:
        """Where `field_path` (relative to the image; () for the image itself) is written."""
        if field_path and field_path[0] in self.own_fields:
            return self.key_path + field_path
        return self.base + field_path

    @property
    def location(self) -> Location:
        """Where the image is named: its key, or its version's entry."""
        if self.family is None:
            return self.doc.key_location_of(self.key_path)
        return self.doc.location_of(self.key_path)


def _check_manifest(doc: LocatedDocument, config: RootConfig, *, allow_http_loopback: bool = False) -> _Manifest:
    expected = "a manifest holds version: 1 and images:, families:, removed:, accept:, reject: or several"
    problems = _document_problems(doc, "manifest", expected)
    data = doc.data if isinstance(doc.data, dict) else {}
    entries = [
        _Entry(key, image, doc, ("images", key), ("images", key))
        for key, image in _mapping(data.get("images")).items()
        if isinstance(image, dict)
    ]
    families = {name: family for name, family in _mapping(data.get("families")).items() if isinstance(family, dict)}
    for name, family in families.items():
        problems.extend(_family_problems(doc, name, family))
        entries.extend(_version_entries(doc, name, family))
    for entry in entries:
        problems.extend(_image_problems(entry, config, allow_http_loopback=allow_http_loopback))
    removed = data.get("removed")
    removed = removed if isinstance(removed, list) else []
    # A problem of a family's image: is found once per kept version: reported once.
    return _Manifest(doc, list(dict.fromkeys(problems)), entries, families, removed)


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _image_problems(entry: _Entry, config: RootConfig, *, allow_http_loopback: bool = False) -> list[Problem]:
    image = entry.raw
    found: list[Problem] = []

    def report(path: DocPath, message: str, *, at_key: bool = False) -> None:
        where = entry.path(path)
        location = entry.doc.key_location_of(where) if at_key else entry.doc.location_of(where)
        found.append(Problem(location, f"{format_path(where)}: {message}"))

    _property_problems(image, report)
    _name_problems(image, report)
    _upload_problems(image, report, allow_http_loopback=allow_http_loopback)
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
    image under (a create from an instance, an upload, a copy it makes) leaves room for the token: at most
    markers.CREATED_NAME_MAX characters (an adopted image keeps up to 255)."""
    source = image.get("source")
    created = isinstance(source, dict) and "image" not in source  # imaged or uploaded: not adopted
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


# -- uploads --------------------------------------------------------------------------------------

# The longest source.url taken (what common servers and proxies accept); a file: path is at most FILE_MAX
# (the schema's maxLength: a path is no secret, so its message may quote it).
URL_MAX = 2048
LOOPBACK_NAMES = frozenset({"localhost"})
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def _upload_problems(image: dict[str, Any], report: _Report, *, allow_http_loopback: bool) -> None:
    """An upload's source: a url the tool may fetch (https, no credentials), a file path that stays under
    the folders it is looked up in. Digests and disk_format are the schema's."""
    source = image.get("source")
    if not isinstance(source, dict):
        return
    url, path = source.get("url"), source.get("file")
    if isinstance(url, str):
        message = _url_problem(url, allow_http_loopback=allow_http_loopback)
        if message:
            report(("source", "url"), message)
    if isinstance(path, str):
        message = _file_problem(path)
        if message:
            report(("source", "file"), message)


def _url_problem(url: str, *, allow_http_loopback: bool) -> str | None:
    """Why `url` cannot be an upload's address, or None. A message never quotes the url: it may hold a
    password."""
    if len(url) > URL_MAX:
        return f"too long: {len(url)} characters, at most {URL_MAX} allowed"
    if any(c.isspace() for c in url):
        return "contains a space: write it percent-encoded (%20)"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # a bracketed host that is no IPv6 address, a host changed by NFKC normalisation
        return "is not a URL that can be read (check the host, and the brackets around an IPv6 address)"
    if "@" in parts.netloc:
        return (
            "holds credentials (user:password@ before the host): a manifest never carries them; the operator "
            "passes a header with --url-header-env, sent only to this URL's host"
        )
    if "#" in url:  # an empty fragment too: urlsplit forgets a trailing '#'
        return "has a #fragment, which is never sent to the server: take it out"
    return (
        _url_other_scheme_problem(parts)
        or _url_host_problem(parts)
        or _url_scheme_problem(parts, allow_http_loopback=allow_http_loopback)
    )


def _url_other_scheme_problem(parts: urllib.parse.SplitResult) -> str | None:
    """A scheme neither https nor http (file:, ftp:, javascript:): the tool fetches https only."""
    scheme = parts.scheme.lower()
    if not scheme or scheme in ("https", "http"):
        return None
    local = " (a file of the root or an --artifacts dir is source file:)" if scheme == "file" else ""
    return f"{schema_messages.quoted(scheme)} addresses are refused: give an https address{local}"


def _url_host_problem(parts: urllib.parse.SplitResult) -> str | None:
    """A url without a host, or with a port that is no port."""
    if not parts.scheme or not parts.hostname:
        return "has no host: give a whole address, https://host/path"
    try:
        port = parts.port  # urllib raises on a port out of range or not a number
    except ValueError:
        port = 0
    if port == 0:
        return "has an invalid port: a port is a number from 1 to 65535"
    return None


def _url_scheme_problem(parts: urllib.parse.SplitResult, *, allow_http_loopback: bool) -> str | None:
    """https, or plain http (the only other scheme left) to a loopback address when the operator passes
    --allow-http-loopback (tests)."""
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None
    loopback = "a loopback address (127.0.0.0/8, ::1 or localhost)"
    if not allow_http_loopback:
        return (
            f"plain http is refused: give an https address (only for {loopback}, the operator's "
            "--allow-http-loopback admits http, for tests)"
        )
    if not _is_loopback(parts.hostname or ""):
        return f"plain http is admitted by --allow-http-loopback only to {loopback}: give an https address"
    return None


def _is_loopback(host: str) -> bool:
    """A loopback address written as such: 127.0.0.0/8, ::1, or the name localhost (never a name that only
    resolves to one)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _file_problem(path: str) -> str | None:
    """Why `path` cannot name an upload's file, or None: it is looked up under the root and each --artifacts
    folder, so it is relative, written with '/', and never climbs out or names a folder."""
    relative = "give a path relative to the root, like build/web.qcow2 (looked up there, then in each --artifacts dir)"
    if path.startswith("/"):
        return f"an absolute path: {relative}"
    if _DRIVE_LETTER.match(path):
        return f"starts with a drive letter: {relative}"
    if "\\" in path:
        return "contains a backslash: separate folders with '/'"
    components = path.split("/")
    if ".." in components:
        return f"climbs out with '..': {relative}"
    if "" in components:
        return "has an empty component ('//', or a '/' at the end): name a file, folders separated by one '/'"
    if all(component == "." for component in components):
        return f"names the root itself, not a file: {relative}"
    return None


# -- families -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    """A version as listed: its index in `versions`, the version, and its own entry when it has one."""

    index: int
    version: str
    entry: dict[str, Any] | None = None


def _listed_versions(family: dict[str, Any]) -> list[_Listed]:
    """The versions a family lists, oldest first; malformed items are left to the schema's messages."""
    versions = family.get("versions")
    listed: list[_Listed] = []
    for i, item in enumerate(versions if isinstance(versions, list) else []):
        if isinstance(item, str):
            listed.append(_Listed(i, item))
        elif isinstance(item, dict) and isinstance(item.get("version"), str):
            listed.append(_Listed(i, item["version"], item))
    return listed


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _keep(family: dict[str, Any], listed: list[_Listed]) -> int:
    """`keep`, or every listed version when it is absent (or invalid: the schema reported it)."""
    keep = family.get("keep")
    return keep if _is_count(keep) and keep >= 1 else max(len(listed), 1)


def _kept(family: dict[str, Any], listed: list[_Listed]) -> list[_Listed]:
    """The kept versions: the newest `keep` of those listed (all of them when fewer are listed)."""
    return listed[max(0, len(listed) - _keep(family, listed)) :]


def _version_entries(doc: LocatedDocument, name: str, family: dict[str, Any]) -> list[_Entry]:
    """The family's kept versions (the newest `keep`) as images: the template's fields, each field the
    version's entry names replaced whole, {version} and {family} replaced in name and description."""
    template = _mapping(family.get("image"))
    listed = _listed_versions(family)
    entries = []
    for item in _kept(family, listed):
        own = {field: value for field, value in (item.entry or {}).items() if field != "version"}
        raw = {**template, **own}
        for field in SUBSTITUTED_FIELDS:
            if isinstance(raw.get(field), str):
                raw[field] = _substitute(raw[field], family=name, version=item.version)
        if isinstance(raw.get("source"), dict):
            raw["source"] = _substituted_source(raw["source"], family=name, version=item.version)
        if isinstance(raw.get("copies"), list):
            raw["copies"] = [
                {**c, "name": _substitute(c["name"], family=name, version=item.version)}
                if isinstance(c, dict) and isinstance(c.get("name"), str)
                else c
                for c in raw["copies"]
            ]
        entries.append(
            _Entry(
                key=f"{name}-{item.version}",
                raw=raw,
                doc=doc,
                key_path=("families", name, "versions", item.index),
                base=("families", name, "image"),
                own_fields=frozenset(own),
                family=name,
                version=item.version,
            )
        )
    return entries


def _substituted_source(source: dict[str, Any], *, family: str, version: str) -> dict[str, Any]:
    """A source with {version} and {family} replaced in its file or url (a copy: the template is every
    version's)."""
    return {
        field: _substitute(value, family=family, version=version)
        if field in SUBSTITUTED_SOURCE_FIELDS and isinstance(value, str)
        else value
        for field, value in source.items()
    }


def _substitute(text: str, *, family: str, version: str) -> str:
    values = {"family": family, "version": version}
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def _family_problems(doc: LocatedDocument, name: str, family: dict[str, Any]) -> list[Problem]:
    """What is wrong with one family on its own: its versions, its numbers, its placeholders, protection
    asked of a copy, a kept version without a source. (Problems across families and files: _cross_file.)"""
    base: DocPath = ("families", name)
    found: list[Problem] = []

    def report(path: DocPath, message: str, *, at_key: bool = False) -> None:
        location = doc.key_location_of(base + path) if at_key else doc.location_of(base + path)
        found.append(Problem(location, f"{format_path(base + path)}: {message}"))

    listed = _listed_versions(family)
    _version_problems(name, listed, report)
    _number_problems(family, len(listed), report)
    _placeholder_problems(family, report)
    _copy_protection_problems(family, report)
    template = _mapping(family.get("image"))
    if "source" not in template:
        for item in _kept(family, listed):
            if "source" not in (item.entry or {}):
                report(
                    ("versions", item.index),
                    f"version {item.version} has no source: give source: in the family's image: (instance:, for "
                    "the newest version) or in this version's entry (image:, to adopt one)",
                )
    return found


def _version_problems(name: str, listed: list[_Listed], report: _Report) -> None:
    """Each version is listed once and gives a valid key, `<family>-<version>`."""
    seen: dict[str, int] = {}
    for item in listed:
        path: DocPath = ("versions", item.index)
        if item.version in seen:
            report(path, f"version {item.version} is listed twice (first as versions[{seen[item.version]}])")
            continue
        seen[item.version] = item.index
        key = f"{name}-{item.version}"
        if markers.KEY_PATTERN.fullmatch(name) and not markers.KEY_PATTERN.fullmatch(key):
            report(path, _version_key_message(item.version, key))


def _version_key_message(version: str, key: str) -> str:
    limit = schema_messages.PATTERN_MAX_LENGTHS[f"^{markers.KEY_PATTERN.pattern}$"]
    if len(key) > limit and re.fullmatch(r"[A-Za-z0-9._-]*", version):
        return (
            f"version {schema_messages.quoted(version)} gives a key of {len(key)} characters, "
            f"at most {limit} allowed (the family's name, '-' and the version)"
        )
    return (
        f"version {schema_messages.quoted(version)} gives the key {schema_messages.quoted(key)}, which is not a key: "
        "a version holds only letters, digits, '.', '_' or '-'"
    )


def _number_problems(family: dict[str, Any], count: int, report: _Report) -> None:
    """protect_newest < keep when keep is given (a version is unprotected one apply before it is retired),
    else at most the number of versions. (The schema checks keep >= 1 and protect_newest >= 0.)"""
    keep, protect = family.get("keep"), family.get("protect_newest")
    for field, value in (("keep", keep), ("protect_newest", protect)):
        if isinstance(value, float):  # JSON Schema's "integer" takes 2.0
            report(
                (field,),
                f"{value!r} is not a whole number: write {int(value)}"
                if value.is_integer()
                else f"{value!r} is not a whole number",
            )
    if not _is_count(protect):
        return
    if _is_count(keep) and keep >= 1 and protect >= keep:
        never = " (keep: 1 never protects its only version)" if keep == 1 else ""
        report(
            ("protect_newest",),
            f"{protect} is not less than keep ({keep}): a version is unprotected one apply before it is retired, "
            f"so at most {keep - 1} of the {keep} kept versions can be protected{never}",
        )
    elif "keep" not in family and protect > count:
        listed = f"{count} listed version{'s' if count != 1 else ''}"
        report(("protect_newest",), f"{protect} is more than the {listed} (keep is not given: every version is kept)")


def _placeholder_problems(family: dict[str, Any], report: _Report) -> None:
    """Only {version} and {family} are replaced, in name and description, of the template and of a version's
    entry: any other {...} is a typo that would end up in the cloud as written."""
    written: list[tuple[DocPath, Any]] = []
    template = _mapping(family.get("image"))
    written.extend((("image", field), template.get(field)) for field in SUBSTITUTED_FIELDS)
    written.extend(_copy_names(("image",), template))
    written.extend(_source_texts(("image",), template))
    for item in _listed_versions(family):
        if item.entry is not None:
            written.extend((("versions", item.index, field), item.entry.get(field)) for field in SUBSTITUTED_FIELDS)
            written.extend(_copy_names(("versions", item.index), item.entry))
            written.extend(_source_texts(("versions", item.index), item.entry))
    for path, text in written:
        if not isinstance(text, str):
            continue
        for match in PLACEHOLDER.finditer(text):
            if match.group(1) not in PLACEHOLDERS:
                report(
                    path,
                    f"unknown placeholder {schema_messages.quoted(match.group(0))}: only {{version}} and {{family}} "
                    "are replaced",
                )


def _source_texts(base: DocPath, fields: dict[str, Any]) -> list[tuple[DocPath, Any]]:
    """The source's file and url: placeholders are replaced there too."""
    source = _mapping(fields.get("source"))
    return [(base + ("source", field), source.get(field)) for field in SUBSTITUTED_SOURCE_FIELDS]


def _copy_names(base: DocPath, fields: dict[str, Any]) -> list[tuple[DocPath, Any]]:
    """The `name` of each copy written as a mapping: placeholders are replaced there too."""
    copies = fields.get("copies")
    if not isinstance(copies, list):
        return []
    return [(base + ("copies", i, "name"), c.get("name")) for i, c in enumerate(copies) if isinstance(c, dict)]


def _copy_protection_problems(family: dict[str, Any], report: _Report) -> None:
    """A copy of a family's version is never `protected: true`: the family owns protection (protect_newest, or
    a version's own `protected: true`, which covers its copies). `protected: false` keeps a region unprotected."""
    copies: list[tuple[DocPath, Any]] = [(("image", "copies"), _mapping(family.get("image")).get("copies"))]
    copies.extend(
        (("versions", item.index, "copies"), item.entry.get("copies"))
        for item in _listed_versions(family)
        if item.entry is not None
    )
    for path, items in copies:
        for i, copy in enumerate(items if isinstance(items, list) else []):
            if isinstance(copy, dict) and copy.get("protected") is True:
                report(
                    path + (i, "protected"),
                    "a family's copy is never protected: true: the family owns protection (protect_newest, or a "
                    "version's own protected: true, which covers its copies)",
                )


# -- across files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """A key as some place declares it: an `images:` key, or a listed version of a family (retired ones
    too: their images are the family's)."""

    key: str
    field: str  # images.<key>, or families.<name>.versions[<i>]
    location: Location
    family: str | None = None
    version: str | None = None

    @property
    def by(self) -> str:
        return f"version {self.version} of family {self.family}" if self.family else "under images:"


@dataclass(frozen=True)
class _Move:
    """A `moved_from`: `old` is re-keyed to `new`; `field` and `location` are where it is written (a
    family's moved_from re-keys each kept version)."""

    old: str
    new: str
    field: str
    location: Location


@dataclass(frozen=True)
class _Declared:
    """Every name the manifests declare: keys, families (each at its first declaration) and moves."""

    keys: dict[str, _Claim]
    families: dict[str, tuple[_Manifest, dict[str, Any]]]
    moves: list[_Move]

    def family_location(self, name: str) -> Location:
        manifest, _ = self.families[name]
        return manifest.doc.key_location_of(("families", name))


def _cross_file(
    manifests: list[_Manifest], problems: list[Problem], config: RootConfig
) -> tuple[list[ImageSpec], list[Family], _Declared]:
    families = _first_families(manifests, problems)
    declared = _Declared(_first_keys(manifests, families, problems), families, _moves(manifests, families))
    problems.extend(_family_name_problems(declared))
    problems.extend(_move_problems(declared))
    problems.extend(_adoption_problems(manifests))
    if problems:
        return [], [], declared
    built = {name: _family(manifest.doc, name, raw) for name, (manifest, raw) in families.items()}
    specs = [
        _image_spec(entry, config.default_region, built.get(entry.family) if entry.family else None)
        for manifest in manifests
        for entry in manifest.entries
    ]
    return specs, list(built.values()), declared


def _first_families(manifests: list[_Manifest], problems: list[Problem]) -> dict[str, tuple[_Manifest, dict[str, Any]]]:
    """Each family at its first declaration; a family declared again is reported there."""
    first: dict[str, tuple[_Manifest, dict[str, Any]]] = {}
    for manifest in manifests:
        for name, raw in manifest.families.items():
            where = manifest.doc.key_location_of(("families", name))
            if name in first:
                at = first[name][0].doc.key_location_of(("families", name))
                problems.append(Problem(where, f"families.{name}: family {name} is already declared at {at}"))
            else:
                first[name] = (manifest, raw)
    return first


def _claims(manifest: _Manifest, families: dict[str, tuple[_Manifest, dict[str, Any]]]) -> list[_Claim]:
    """The keys one file declares, in the order they are written: its images, and every version of each
    family whose first declaration it is (a version listed twice is reported as such, once)."""
    doc = manifest.doc
    claims = [
        _Claim(entry.key, format_path(entry.key_path), entry.location)
        for entry in manifest.entries
        if entry.family is None
    ]
    for name, raw in manifest.families.items():
        if families.get(name, (None,))[0] is not manifest:
            continue
        seen: set[str] = set()
        for item in _listed_versions(raw):
            if item.version not in seen:
                seen.add(item.version)
                path = ("families", name, "versions", item.index)
                where = _version_location(doc, path, item)
                claims.append(_Claim(f"{name}-{item.version}", format_path(path), where, name, item.version))
    return sorted(claims, key=lambda c: (c.location.line, c.location.column))


def _version_location(doc: LocatedDocument, path: DocPath, item: _Listed) -> Location:
    """Where a version is written: the string, or its entry's `version:`."""
    return doc.location_of(path + ("version",) if item.entry is not None else path)


def _first_keys(
    manifests: list[_Manifest], families: dict[str, tuple[_Manifest, dict[str, Any]]], problems: list[Problem]
) -> dict[str, _Claim]:
    """Each key at its first declaration; a key declared again (by images: or a family's version) is
    reported there, naming the first."""
    first: dict[str, _Claim] = {}
    for manifest in manifests:
        for claim in _claims(manifest, families):
            earlier = first.get(claim.key)
            if earlier is None:
                first[claim.key] = claim
            elif claim.family is None and earlier.family is None:
                message = f"key {claim.key} is already declared at {earlier.location}"
                problems.append(Problem(claim.location, f"{claim.field}: {message}"))
            else:
                message = (
                    f"key {claim.key} is already declared at {earlier.location} ({earlier.by}); keys are unique "
                    "across images: and the versions of every family"
                )
                problems.append(Problem(claim.location, f"{claim.field}: {message}"))
    return first


def _moves(manifests: list[_Manifest], families: dict[str, tuple[_Manifest, dict[str, Any]]]) -> list[_Move]:
    """Every re-keying, in file order: an image's moved_from, and a family's for each of its kept versions."""
    moves: list[_Move] = []
    for manifest in manifests:
        doc = manifest.doc
        for entry in manifest.entries:
            if entry.family is None and isinstance(entry.raw.get("moved_from"), str):
                path = entry.path(("moved_from",))
                moves.append(_Move(entry.raw["moved_from"], entry.key, format_path(path), doc.location_of(path)))
            elif entry.family is not None and families.get(entry.family, (None,))[0] is manifest:
                old = manifest.families[entry.family].get("moved_from")
                if isinstance(old, str) and old not in families:  # moving from a declared family: reported alone
                    path = ("families", entry.family, "moved_from")
                    moves.append(_Move(f"{old}-{entry.version}", entry.key, format_path(path), doc.location_of(path)))
    return moves


def _family_name_problems(declared: _Declared) -> list[Problem]:
    """A family's name is never a key (theirs are `<family>-<version>`; `--target` takes both)."""
    found = []
    for name in declared.families:
        claim = declared.keys.get(name)
        if claim is not None:
            found.append(
                Problem(
                    declared.family_location(name),
                    f"families.{name}: {name} is also a key, declared at {claim.location} ({claim.by}); a family's "
                    f"name is not a key (its versions' keys are {name}-<version>): rename one of them",
                )
            )
    return found


def _move_problems(declared: _Declared) -> list[Problem]:
    """A key moves to one new key, and only once it is gone; a family moves from a family that is gone."""
    found: list[Problem] = []
    for name, (manifest, raw) in declared.families.items():
        old = raw.get("moved_from")
        if isinstance(old, str) and old in declared.families:
            path = ("families", name, "moved_from")
            found.append(
                Problem(
                    manifest.doc.location_of(path),
                    f"{format_path(path)}: {old} is still declared (at {declared.family_location(old)}); moved_from "
                    "names the family this one was called before, which must be gone",
                )
            )
    first: dict[str, _Move] = {}
    for move in declared.moves:
        if move.old in first:
            message = f"{move.old} already moves to another key (at {first[move.old].location})"
            found.append(Problem(move.location, f"{move.field}: {message}"))
        else:
            first[move.old] = move
        claim = declared.keys.get(move.old)
        if claim is not None:
            found.append(Problem(move.location, f"{move.field}: {_still_declared(move, claim)}"))
    return found


def _still_declared(move: _Move, claim: _Claim) -> str:
    if move.field.startswith("images."):
        return (
            f"{move.old} is still declared (at {claim.location}); moved_from names the key this image had before, "
            "which must be gone"
        )
    return (
        f"re-keys {move.old} to {move.new}, but {move.old} is still declared (at {claim.location}, {claim.by}); "
        "moved_from names the family this one was called before, whose keys must be gone"
    )


def _removals(manifests: list[_Manifest], declared: _Declared, problems: list[Problem]) -> list[Removal]:
    """The `removed:` entries of every file. A removed key must be gone: declared (under images: or as a
    family's version) it would be both managed and released; a family's name is no key; listed twice, the
    second entry could say the opposite; named by a moved_from, its images are re-keyed, not released or
    deleted. Each is reported at the entry."""
    moved = {}
    for move in declared.moves:
        moved.setdefault(move.old, move)
    found: list[Removal] = []
    first: dict[str, Location] = {}
    for manifest in manifests:
        for i, entry in enumerate(manifest.removed):
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)):
                continue  # the schema reported it
            key, path = entry["key"], ("removed", i, "key")
            where = manifest.doc.location_of(path)
            field = format_path(path)
            problem = _removal_problem(key, declared, moved, first)
            if problem:
                problems.append(Problem(where, f"{field}: {problem}"))
            else:
                first[key] = where
                destroy = entry.get("destroy")
                if isinstance(destroy, bool):
                    found.append(Removal(key, destroy, manifest.doc.file, manifest.doc.location_of(("removed", i))))
    return found


def _removal_problem(key: str, declared: _Declared, moved: dict[str, _Move], first: dict[str, Location]) -> str | None:
    claim = declared.keys.get(key)
    if claim is not None and claim.family is None:
        return (
            f"{key} is also declared under images: (at {claim.location}); a key is either managed or removed: "
            "delete one of the two"
        )
    if claim is not None:
        return (
            f"{key} is {claim.by} (at {claim.location}), which manages it (and deletes it once it is retired): a "
            "key is either managed or removed: delete one of the two"
        )
    if key in declared.families:
        return (
            f"{key} is a family, declared at {declared.family_location(key)}; removed: takes image keys: to stop "
            "managing the family, take it out of families: and list its versions' keys here"
        )
    if key in moved:
        move = moved[key]
        return (
            f"{key} is re-keyed to {move.new} by moved_from (at {move.location}): its images become {move.new}'s, "
            "so it cannot also be removed"
        )
    if key in first:
        return f"{key} is already removed at {first[key]}: list it once"
    return None


# -- accept: and reject: ---------------------------------------------------------------------------

# Each list of rules and the member status its rules want.
RULE_LISTS = {"accept": "accepted", "reject": "rejected"}


@dataclass(frozen=True)
class _WrittenRule:
    """A well-formed rule as written: the model's rule, its field (accept[<i>]), where it and its owner are."""

    rule: ShareRule
    field: str
    location: Location
    owner_location: Location

    @property
    def identity(self) -> tuple[str | None, ...]:
        """What makes two rules the same rule: owner and the kind's fields (an image id in any case)."""
        rule = self.rule
        return (rule.owner, rule.family, rule.set, rule.image.lower() if rule.image else None, rule.name)


@functools.cache
def _rule_validator() -> jsonschema.Draft202012Validator:
    """The schema of one rule: a rule it refuses was reported by the manifest's schema, and is left out here."""
    defs = load_schema("manifest")["$defs"]
    return jsonschema.Draft202012Validator({**defs["share_rule"], "$defs": defs})


def _share_rules(manifests: list[_Manifest], config: RootConfig, problems: list[Problem]) -> list[ShareRule]:
    """The accept: and reject: rules of every file, in the order written (files sorted, then entries). A rule
    written again (in the same list or the other) is reported at the second, naming the first: in the same
    list it adds nothing, and in both lists it can never mean anything (reject wins). Rules that differ but
    match the same image are no problem here: that depends on the live images (the plan warns)."""
    found: list[ShareRule] = []
    first: dict[tuple[str | None, ...], _WrittenRule] = {}
    for manifest in manifests:
        for written in _written_rules(manifest.doc):
            problem = _own_project_problem(written, config) or _repeated_rule_problem(written, first)
            if problem:
                problems.append(problem)
                continue
            first[written.identity] = written
            found.append(written.rule)
    return found


def _written_rules(doc: LocatedDocument) -> list[_WrittenRule]:
    """One file's well-formed rules, in the order they are written (accept: and reject: interleave by line)."""
    data = _mapping(doc.data)
    written: list[_WrittenRule] = []
    for list_name, wants in RULE_LISTS.items():
        entries = data.get(list_name)
        for i, raw in enumerate(entries if isinstance(entries, list) else []):
            if not _rule_validator().is_valid(raw):
                continue  # the schema reported it
            path: DocPath = (list_name, i)
            location = doc.location_of(path)
            rule = ShareRule(
                wants=wants,
                owner=raw["owner"],
                file=doc.file,
                family=raw.get("family"),
                set=raw.get("set"),
                image=raw.get("image"),
                name=raw.get("name"),
                location=location,
            )
            written.append(_WrittenRule(rule, format_path(path), location, doc.location_of(path + ("owner",))))
    return sorted(written, key=lambda w: (w.location.line, w.location.column))


def _own_project_problem(written: _WrittenRule, config: RootConfig) -> Problem | None:
    """A project never shares with itself: a rule naming this root's own project would match nothing."""
    owner = written.rule.owner
    if not config.cloud.project or owner != config.cloud.project:
        return None
    return Problem(
        written.owner_location,
        f"{written.field}.owner: {owner} is this root's own project (cloud.project); a rule matches images other "
        "projects share with it: name the project that owns them",
    )


def _repeated_rule_problem(written: _WrittenRule, first: dict[tuple[str | None, ...], _WrittenRule]) -> Problem | None:
    earlier = first.get(written.identity)
    if earlier is None:
        return None
    same = f"{written.field}: the same rule as {earlier.field} (at {earlier.location})"
    if earlier.rule.wants == written.rule.wants:
        return Problem(written.location, f"{same}: write it once")
    return Problem(
        written.location,
        f"{same}: a rule in both accept: and reject: can never mean anything (reject wins, so the accept: rule "
        "never applies): delete one of them",
    )


def _adoption_problems(manifests: list[_Manifest]) -> list[Problem]:
    """An image id adopted twice (by two keys, or a key and a copy): apply would mark the image for each in
    turn, and the next plan refuses it as taken. One image belongs to one key: reported at the second."""
    found: list[Problem] = []
    first: dict[str, tuple[str, Location]] = {}  # lowercased id -> (the field adopting it, where)
    for manifest in manifests:
        for path, image_id in _adopted_ids(manifest.entries):
            where = manifest.doc.location_of(path)
            field = format_path(path)
            if image_id.lower() not in first:
                first[image_id.lower()] = (field, where)
                continue
            other, other_where = first[image_id.lower()]
            if other_where == where:
                continue  # a family's image: seen again for its next version (the schema refuses an id there)
            found.append(
                Problem(
                    where,
                    f"{field}: image {image_id} is already adopted by {other} (at {other_where}); an image belongs to "
                    "one key: declare it once",
                )
            )
    return found


def _adopted_ids(entries: list[_Entry]) -> list[tuple[DocPath, str]]:
    """Each image id the declarations adopt (`source.image`, `copies[i].image`), with its path."""
    adopted: list[tuple[DocPath, str]] = []
    for entry in entries:
        source = entry.raw.get("source")
        if isinstance(source, dict) and isinstance(source.get("image"), str):
            adopted.append((entry.path(("source", "image")), source["image"]))
        copies = entry.raw.get("copies")
        for i, copy in enumerate(copies if isinstance(copies, list) else []):
            if isinstance(copy, dict) and isinstance(copy.get("image"), str):
                adopted.append((entry.path(("copies", i, "image")), copy["image"]))
    return adopted


# -- the model ------------------------------------------------------------------------------------


def _family(doc: LocatedDocument, name: str, raw: dict[str, Any]) -> Family:
    listed = _listed_versions(raw)
    base: DocPath = ("families", name, "versions")
    return Family(
        name=name,
        versions=tuple(item.version for item in listed),
        keep=_keep(raw, listed),
        protect_newest=raw.get("protect_newest", 0),
        file=doc.file,
        moved_from=raw.get("moved_from"),
        location=doc.key_location_of(("families", name)),
        version_locations=MappingProxyType(
            {item.version: _version_location(doc, base + (item.index,), item) for item in listed}
        ),
        protected_overrides=MappingProxyType(
            {
                item.version: doc.location_of(base + (item.index, "protected"))
                for item in listed
                if item.entry is not None and item.entry.get("protected") is True
            }
        ),
    )


def _image_spec(entry: _Entry, default_region: str | None, family: Family | None) -> ImageSpec:
    doc, raw = entry.doc, entry.raw
    locations: dict[str, Location] = {"": entry.location}
    for name in raw:
        locations[name] = doc.location_of(entry.path((name,)))
    source_raw = raw["source"]
    for name in source_raw:
        locations[f"source.{name}"] = doc.location_of(entry.path(("source", name)))
    copies = []
    for i, item in enumerate(raw.get("copies") or []):
        copy = item if isinstance(item, dict) else {"region": item}
        location = doc.location_of(entry.path(("copies", i)))
        locations[f"copies.{copy['region']}"] = location
        copies.append(
            CopySpec(
                region=copy["region"],
                name=copy.get("name"),
                protected=copy.get("protected"),
                image=copy.get("image"),
                location=location,
            )
        )
    properties: Mapping[str, str] | None = None
    if "properties" in raw:
        properties = MappingProxyType(dict(raw["properties"]))
    protected, moved_from = raw.get("protected"), raw.get("moved_from")
    if family is not None and entry.version is not None:
        protected = entry.version in family.protected or entry.version in family.protected_overrides
        locations["protected"] = _protection_location(entry, family)
        if family.moved_from:
            moved_from = f"{family.moved_from}-{entry.version}"
            locations["moved_from"] = doc.location_of(entry.key_path[:2] + ("moved_from",))
    return ImageSpec(
        key=entry.key,
        file=doc.file,
        region=raw.get("region") or default_region or "",
        source=Source(
            instance=source_raw.get("instance"),
            image=source_raw.get("image"),
            running=source_raw.get("running", "allow"),
            takeover=source_raw.get("takeover", False),
            file=source_raw.get("file"),
            url=source_raw.get("url"),
            sha256=source_raw.get("sha256"),
            sha512=source_raw.get("sha512"),
            disk_format=source_raw.get("disk_format"),
        ),
        name=raw.get("name"),
        description=raw.get("description"),
        moved_from=moved_from,
        protected=protected,
        min_disk=raw.get("min_disk"),
        min_ram=raw.get("min_ram"),
        download=raw.get("download"),
        properties=properties,
        copies=tuple(copies),
        share=tuple(raw["share"]) if "share" in raw else None,
        locations=MappingProxyType(locations),
        family=entry.family,
        version=entry.version,
    )


def _protection_location(entry: _Entry, family: Family) -> Location:
    """What decides a version's protection: its own `protected: true`, else the family's protect_newest (the
    version's entry when that is not written)."""
    override = family.protected_overrides.get(entry.version or "")
    if override is not None:
        return override
    protect_path = entry.key_path[:2] + ("protect_newest",)
    if protect_path in entry.doc.locations:
        return entry.doc.location_of(protect_path)
    return entry.location
