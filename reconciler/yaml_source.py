"""Load YAML safely, keeping the line and column of every value and catching duplicate keys.

PyYAML's safe loader silently keeps the last of two equal mapping keys and forgets where each value came
from. Every user-facing file (manifests, the root config, simulator seeds) needs both: duplicates are
errors, and every error names `file:line:column`. This module composes the node tree with PyYAML's safe
loader and builds the Python value itself, recording a location for each path.

Two parsers read the text, to the same result: libyaml's (C, PyYAML's `CSafeLoader`, present when PyYAML
was built with it) and PyYAML's own (pure Python, always present). The C one is 5-10x faster, but the two
disagree on a few corners of the YAML grammar (tabs as separators, block scalar headers, `!` tags, marks of
empty values, byte order marks inside the text). So the C one reads a text only when it holds none of those
corners and reads it without error; anything else, errors included, is read by the pure one, so values,
locations and messages never depend on which parser PyYAML was built with.
"""

from __future__ import annotations

import inspect
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.gc_pause import gc_paused
from reconciler.location import Location
from reconciler.render import escape

MAX_DEPTH = 64  # no manifest needs more; PyYAML itself recurses per level
MAX_NODES = 200_000  # bounds alias expansion ("billion laughs"): a 1 MiB file cannot build more

# A path into a loaded document: mapping keys and sequence indexes, e.g. ("servers", 0, "flavor").
DocPath = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document, where it is."""

    location: Location
    message: str

    def __str__(self) -> str:
        # Messages quote what the file says (keys, values, file names): shown, never obeyed by a terminal.
        return escape.text(f"{self.location}: {self.message}")


@dataclass(slots=True)
class LocatedDocument:
    """A loaded document, where each value came from, and the problems found while loading it."""

    file: str
    data: Any
    locations: dict[DocPath, Location] = field(default_factory=dict)
    # Where each mapping key itself is written (for "unknown key" messages), by the value's path.
    key_locations: dict[DocPath, Location] = field(default_factory=dict)
    # Each scalar as written in the file (`yes`, `1.0`), to suggest the quoted form of a non-string.
    scalar_text: dict[DocPath, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def location_of(self, path: DocPath) -> Location:
        """The location of the value at `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.locations and path:
            path = path[:-1]
        return self.locations.get(path, Location(self.file, 1, 1))

    def key_location_of(self, path: DocPath) -> Location:
        """Where the key of the value at `path` is written (falls back to `location_of`)."""
        return self.key_locations.get(tuple(path)) or self.location_of(path)


def _location(file: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


def load_located(text: str, file: str, *, max_values: int = MAX_NODES, refuse_hidden: bool = False) -> LocatedDocument:
    """Parse `text` (one YAML document) as safe YAML. Syntax errors become a problem, never an exception.
    With `refuse_hidden`, a text holding a hidden character (see `hidden_text_problems`) is not parsed: its
    problems are those characters."""
    doc = LocatedDocument(file=file, data=None)
    if refuse_hidden:
        doc.problems.extend(hidden_text_problems(text, file))
        if doc.problems:
            return doc
    loader = None
    try:
        with gc_paused():
            # The reader checks characters as soon as the loader is made: that too can fail.
            loader, node = _compose(text, max_values)
            if node is not None:
                doc.data = _Builder(loader, doc, max_nodes=max_values).build(node, ())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = err.problem or err.context or "invalid YAML"
        doc.problems.append(Problem(_location(file, mark), f"YAML syntax error: {what}"))
        doc.data = None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        message = f"YAML syntax error: character U+{err.character:04X} is not allowed in YAML"
        doc.problems.append(Problem(Location(file, line, column), message))
        doc.data = None
    except _TooComplex as err:
        doc.problems.append(Problem(_location(file, err.mark), f"YAML too complex: {err}"))
        doc.data = None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level, bounded by _EventBounds at MAX_DEPTH; kept in
        # case a constructor recurses on its own.
        doc.problems.append(Problem(Location(file, 1, 1), "YAML too complex: nested too deeply to read"))
        doc.data = None
    except yaml.YAMLError as err:
        doc.problems.append(Problem(Location(file, 1, 1), f"YAML error: {err}"))
        doc.data = None
    finally:
        if loader is not None:
            loader.dispose()
    return doc


DEFAULT_MAX_BYTES = 1024 * 1024
BYTE_ORDER_MARK = "\ufeff"


def load_located_file(
    path: Path,
    display_name: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_values: int = MAX_NODES,
    refuse_hidden: bool = False,
) -> LocatedDocument:
    """Read and parse a YAML file. A file that is too large, binary, not UTF-8 or unreadable is reported
    as a problem at its first line, never raised."""
    name = display_name or str(path)
    doc = LocatedDocument(file=name, data=None)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            doc.problems.append(
                Problem(Location(name, 1, 1), f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
            )
            return doc
        raw = path.read_bytes()
    except OSError as err:
        doc.problems.append(Problem(Location(name, 1, 1), f"cannot read the file: {err.strerror}"))
        return doc
    if b"\0" in raw[:8192]:
        doc.problems.append(Problem(Location(name, 1, 1), "binary file (it contains NUL bytes), not YAML text"))
        return doc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        doc.problems.append(Problem(Location(name, line, 1), f"not UTF-8 text (invalid byte at offset {err.start})"))
        return doc
    # One byte order mark at the very start is how some editors (Windows ones) begin every UTF-8 file, and YAML
    # allows it there: it is no part of the text. Anywhere else, a second one included, it stays a hidden
    # character (hidden_text_problems), and the columns of line 1 stay an editor's.
    text = text.removeprefix(BYTE_ORDER_MARK)
    return load_located(text, name, max_values=max_values, refuse_hidden=refuse_hidden)


# -- hidden characters in the raw text ------------------------------------------------------------

# PyYAML ends a line at CR, NEL (U+0085), U+2028 and U+2029 as well as at LF; an editor, a diff and a code
# review end it at LF only. Text after such a break inside a comment is real YAML that the reviewer sees as
# part of the comment, and a bidi override (Cf) reorders what the diff shows (Trojan Source). So the raw
# text, comments and layout included, may hold no control character but tab and the line end (LF, or CRLF),
# no format character and no line or paragraph separator. Checked before parsing: a line here is what an
# editor calls one, and so is every location reported.
RAW_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
YAML_ONLY_LINE_BREAKS = frozenset("\r\x85\u2028\u2029")
# Candidates only (anything but tab, LF, printable ASCII, Hangul syllables and CJK ideographs, all letters);
# each is then judged by its category.
_NOT_PLAIN = re.compile(r"[^\t\n\x20-\x7e\uac00-\ud7a3\u4e00-\u9fff]")
RAW_KIND_MESSAGES = {
    "line break": (
        "a line break only YAML sees ({chars}): YAML starts a new line there, so what follows it (even in a "
        "comment) is read as YAML while an editor or a diff shows one line; remove it (a line ends with LF or CRLF)"
    ),
    "control": "a control character ({chars}): it does not show, or rewrites what a terminal shows; remove it",
    "format": (
        "an invisible format character ({chars}): a bidi override or a zero-width character reorders or hides what "
        "a reviewer reads; remove it"
    ),
}


def hidden_text_problems(text: str, file: str) -> list[Problem]:
    """One problem per kind of hidden character and line of `text`, at its first occurrence in the line."""
    if not _NOT_PLAIN.search(text):
        return []
    found: list[Problem] = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        ends_with_lf = number < len(lines)
        kinds: dict[str, tuple[int, list[str]]] = {}  # kind -> (first column, its characters in order)
        for match in _NOT_PLAIN.finditer(line):
            char, column = match.group(), match.start() + 1
            if char == "\r" and column == len(line) and ends_with_lf:
                continue  # CRLF: the line's end, as an editor reads it
            kind = _raw_kind(char)
            if kind is None:
                continue
            chars = kinds.setdefault(kind, (column, []))[1]
            if char not in chars:
                chars.append(char)
        for kind, (column, chars) in kinds.items():
            shown = ", ".join(escape.text(c) for c in chars)
            found.append(Problem(Location(file, number, column), RAW_KIND_MESSAGES[kind].format(chars=shown)))
    return found


def _raw_kind(char: str) -> str | None:
    """Which kind of hidden character `char` is, or None when it shows. (Zl and Zp hold only U+2028 and
    U+2029, both line breaks to YAML.)"""
    if char in YAML_ONLY_LINE_BREAKS:
        return "line break"
    category = unicodedata.category(char)
    if category not in RAW_HIDDEN_CATEGORIES:
        return None
    return "control" if category == "Cc" else "format"


# -- which parser reads a text ------------------------------------------------------------------------

# Characters and layouts on which libyaml and PyYAML's own parser disagree (found by differential fuzzing,
# tests/unit/test_yaml_parsers.py): tabs (libyaml takes some as separators), CR, NEL and the line and
# paragraph separators (line breaks), a byte order mark (libyaml skips it inside the text), a block scalar
# header followed by a comment without a space (`|#`, libyaml reads it as the comment). Only the pure
# parser reads a text holding any of them; false alarms (such a character inside a quoted string) cost
# time, not correctness.
_PURE_ONLY_TEXT = re.compile(r"[\t\r\x85\u2028\u2029\ufeff]|[|>][-+0-9]*#")


def _libyaml_loader() -> type | None:
    """PyYAML's C loader when PyYAML was built with libyaml, else None."""
    return getattr(yaml, "CSafeLoader", None) if getattr(yaml, "__with_libyaml__", False) else None


def _compose(text: str, max_values: int) -> tuple[Any, yaml.Node | None]:
    """The loader that composed `text`, and the node tree: libyaml's when it reads `text` as the pure parser
    does, within the bounds and without error, else PyYAML's own, whose events are bounded as they come
    (and whose errors are raised)."""
    c_loader = _libyaml_loader()
    if c_loader is not None and _libyaml_reads_as_pure(text, c_loader, max_values):
        loader = c_loader(text)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError:
            loader.dispose()  # e.g. an undefined alias: read again below, for the pure parser's message
    loader = _BoundedSafeLoader(text, _EventBounds(max_values))
    return loader, loader.get_single_node()


def _libyaml_reads_as_pure(text: str, c_loader: type, max_values: int) -> bool:
    """Whether libyaml's events for `text` hold none of the corners where it disagrees with the pure
    parser, stay within MAX_DEPTH and `max_values`, and end without error. libyaml's composer recurses
    in C, so depth is checked on its events (parsed iteratively) before it composes anything."""
    if _PURE_ONLY_TEXT.search(text):
        return False
    bounds = _EventBounds(max_values)
    loader = None
    try:
        loader = c_loader(text)
        while loader.check_event():
            event = loader.get_event()
            if _pure_only_event(event):
                return False
            bounds.see(event)
    except (yaml.YAMLError, _TooComplex, ValueError):
        # The pure parser reports it, so the message and location are the same whichever parser exists
        # (ValueError: text that is not encodable as UTF-8, which libyaml needs).
        return False
    finally:
        if loader is not None:
            loader.dispose()
    return True


def _pure_only_event(event: yaml.Event) -> bool:
    """An event the two parsers report differently: an explicit tag (libyaml resolves a bare `!` to a
    string, PyYAML to null), an empty plain scalar (they mark it at different places), a document's
    directives."""
    if isinstance(event, yaml.DocumentStartEvent):
        return event.version is not None or bool(event.tags)
    if isinstance(event, yaml.NodeEvent) and getattr(event, "tag", None) is not None:
        return True
    return isinstance(event, yaml.ScalarEvent) and event.value == "" and event.implicit[0]


class _BoundedSafeLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader whose composer receives each event only once `bounds` has seen it."""

    def __init__(self, stream: str, bounds: _EventBounds) -> None:
        super().__init__(stream)
        self.bounds = bounds

    def get_event(self) -> yaml.Event:
        event = super().get_event()
        self.bounds.see(event)
        return event


@dataclass(slots=True)
class _Open:
    """A collection being read, in _EventBounds."""

    mapping: bool
    anchor: str | None
    mark: yaml.Mark
    counted: bool  # whether its values count: a value itself, not a key or what `<<` merges, nor inside one
    role: str  # "key", "merge" or "value" in its parent
    size: int = 1  # the values under it so far, itself included, aliases expanded
    key_next: bool = True  # (a mapping) the next node is a key
    merge_next: bool = False  # (a mapping) the next node is what `<<` merges


@dataclass(slots=True)
class _EventBounds:
    """Depth and value count checked on the parser's events, before the composer (which recurses per level)
    sees them. Values count as _Builder counts them, in the same order, with the same message and location:
    every value node (keys are not values), an alias as the values under its anchor. What `<<` merges is
    left to _Builder (it resolves merges), so the count here never exceeds its own on a document without
    duplicate keys."""

    max_values: int
    values: int = 0
    open: list[_Open] = field(default_factory=list)  # outermost first
    anchors: dict[str, tuple[int, yaml.Mark]] = field(default_factory=dict)  # anchor -> (its size, its mark)

    def see(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.CollectionEndEvent):
            self._close(self.open.pop())
            return
        if not isinstance(event, yaml.NodeEvent):
            return
        role = self._role(event)
        counted = role == "value" and (not self.open or self.open[-1].counted)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) > MAX_DEPTH:
                raise _TooComplex(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            mapping = isinstance(event, yaml.MappingStartEvent)
            self.open.append(_Open(mapping, event.anchor, event.start_mark, counted, role))
            self._count(1, counted, event.start_mark)
            return
        if isinstance(event, yaml.AliasEvent):
            size, mark = self.anchors.get(event.anchor, (1, event.start_mark))
        else:
            size, mark = 1, event.start_mark
            if event.anchor is not None:
                self.anchors[event.anchor] = (1, mark)
        self._count(size, counted, mark)
        self._add_to_parent(size, role)

    def _role(self, event: yaml.NodeEvent) -> str:
        """What the node starting at `event` is to its parent, and the parent's next node after it."""
        parent = self.open[-1] if self.open else None
        if parent is None or not parent.mapping:
            return "value"
        if parent.key_next:
            parent.key_next = False
            parent.merge_next = _is_merge_key(event)
            return "key"
        parent.key_next = True
        return "merge" if parent.merge_next else "value"

    def _close(self, done: _Open) -> None:
        if done.anchor is not None:
            self.anchors[done.anchor] = (done.size, done.mark)
        self._add_to_parent(done.size, done.role)

    def _add_to_parent(self, size: int, role: str) -> None:
        if role == "value" and self.open:
            self.open[-1].size += size

    def _count(self, values: int, counted: bool, mark: yaml.Mark) -> None:
        if not counted:
            return
        self.values += values
        if self.values > self.max_values:
            raise _TooComplex(f"more than {self.max_values:,} values once aliases are expanded", mark)


def _is_merge_key(event: yaml.NodeEvent) -> bool:
    """A `<<` key: plain (so resolved to the merge tag) or tagged !!merge."""
    if not isinstance(event, yaml.ScalarEvent):
        return False
    return event.tag == MERGE_TAG or (event.tag is None and event.implicit[0] and event.value == "<<")


MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
_CONSTRUCT_STR = yaml.constructor.SafeConstructor.construct_yaml_str
PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
PLAIN_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null"))


class _TooComplex(Exception):
    """The document nests too deeply, refers to itself, or expands beyond MAX_NODES."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.mark = mark


@dataclass(slots=True)
class _Builder:
    loader: Any  # a safe loader: PyYAML's own or libyaml's, with the same constructors
    doc: LocatedDocument
    # An alias is the same node object: built once and shared, so expansion costs nothing more.
    built: dict[int, Any] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # values under each built node, aliases expanded
    building: set[int] = field(default_factory=set)
    merged: dict[int, list[tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict)  # by mapping node
    nodes: int = 0
    max_nodes: int = MAX_NODES
    # The loader's constructors of plain scalars, called directly: what `construct_object` would call,
    # without its bookkeeping (it caches and guards against recursion, which a scalar never needs).
    scalars: dict[str, Callable[[Any, yaml.ScalarNode], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tag in PLAIN_SCALAR_TAGS:
            construct = self.loader.yaml_constructors.get(tag)
            if construct is not None and not inspect.isgeneratorfunction(construct):
                self.scalars[tag] = construct

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == STR_TAG and self.scalars.get(STR_TAG) is _CONSTRUCT_STR:
            return node.value  # what construct_yaml_str returns, without its two calls (most scalars are strings)
        construct = self.scalars.get(node.tag)
        try:
            if construct is None:
                return self.loader.construct_object(node, deep=True)  # other tags, or refused
            return construct(self.loader, node)
        except (ArithmeticError, LookupError, ValueError, TypeError, AttributeError) as err:
            # An explicit tag on text it cannot read (`!!int "x"`, `!!bool maybe`): PyYAML's constructors
            # raise plain Python errors for these.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
            message = f"cannot read {node.value!r} as {tag}"
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark) from err

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        doc = self.doc
        mark = node.start_mark
        doc.locations[path] = Location(doc.file, mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            doc.scalar_text[path] = node.value
            self._count(1, node)
            return self._scalar(node)
        if id(node) in self.built:
            # Shared, but whoever reads the document (the schema validator) walks every expansion.
            self._count(self.sizes[id(node)], node)
            return self.built[id(node)]
        if id(node) in self.building:
            raise _TooComplex("an alias refers to a node that contains it (a recursive structure)", node.start_mark)
        if len(path) > MAX_DEPTH:
            raise _TooComplex(f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
        before = self.nodes
        self._count(1, node)
        if node.tag not in PLAIN_COLLECTION_TAGS:
            # Scalars with unknown tags are refused by the safe constructor; collections we build
            # ourselves, so refuse their tags here (e.g. !!python/object/apply), never ignore them.
            raise yaml.constructor.ConstructorError(None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark)
        self.building.add(id(node))
        try:
            value = self._mapping(node, path) if isinstance(node, yaml.MappingNode) else self._sequence(node, path)
        finally:
            self.building.discard(id(node))
        self.built[id(node)] = value
        self.sizes[id(node)] = self.nodes - before
        return value

    def _count(self, values: int, node: yaml.Node) -> None:
        self.nodes += values
        if self.nodes > self.max_nodes:
            raise _TooComplex(f"more than {self.max_nodes:,} values once aliases are expanded", node.start_mark)

    def _sequence(self, node: yaml.SequenceNode, path: DocPath) -> list[Any]:
        return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[Any, Any]:
        """The mapping's own keys in file order (a key written twice is a problem at its second
        occurrence), then what `<<` merges in for keys it does not write itself: merge keys resolved as the
        safe loader would, except that a key overriding a merged one is never taken for a duplicate."""
        doc = self.doc
        result: dict[Any, Any] = {}
        first: dict[Any, Location] = {}  # where each of the mapping's own keys is written
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key, where = self._key(key_node)
            if where is None:
                continue
            if key in first:
                message = f"duplicate key {key!r} (first defined at line {first[key].line})"
                doc.problems.append(Problem(where, message))
                continue
            first[key] = where
            doc.key_locations[path + (key,)] = where
            result[key] = self.build(value_node, path + (key,))
        if len(first) == len(node.value):
            return result  # no `<<` among its keys (nor a refused or repeated one): nothing merged in
        for key_node, value_node in self._merged_pairs(node, frozenset({id(node)})):
            key, where = self._key(key_node)
            if where is None or key in result:
                continue  # the mapping's own value, or an earlier merge's, wins
            doc.key_locations[path + (key,)] = where
            result[key] = self.build(value_node, path + (key,))
        return result

    def _key(self, key_node: yaml.Node) -> tuple[Any, Location | None]:
        """A mapping key's value and where it is written; no location (and a problem) when it is not a
        plain scalar."""
        where = _location(self.doc.file, key_node.start_mark)
        key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key_node, yaml.ScalarNode) or (
            not isinstance(key, (str, int, float, bool)) and key is not None
        ):
            self.doc.problems.append(Problem(where, "mapping keys must be plain scalars"))
            return None, None
        return key, where

    def _merged_pairs(self, node: yaml.MappingNode, visiting: frozenset[int]) -> list[tuple[yaml.Node, yaml.Node]]:
        """The (key, value) pairs `node` merges in with `<<`, the one that wins first: the sources in the
        order written, each source's own pairs before what it merges in itself. Computed once per node, so
        merges of merges cannot expand exponentially."""
        if id(node) in self.merged:
            return self.merged[id(node)]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                continue
            for source in _merge_sources(node, value_node):
                if id(source) in visiting:
                    raise _TooComplex("a merge (<<) includes the mapping that contains it", source.start_mark)
                pairs += [(k, v) for k, v in source.value if k.tag != MERGE_TAG]
                pairs += self._merged_pairs(source, visiting | {id(source)})
                # Checked as the list grows, not once it is built: a few kilobytes of aliases can ask for
                # gigabytes.
                if len(pairs) > self.max_nodes:
                    raise _TooComplex(f"more than {self.max_nodes:,} values once merges are expanded", node.start_mark)
        self.merged[id(node)] = pairs
        return pairs


def _merge_sources(node: yaml.MappingNode, value_node: yaml.Node) -> list[yaml.MappingNode]:
    """What one `<<` merges: a mapping, or a sequence of mappings."""
    sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"expected a mapping or a list of mappings for merging, but found {source.id}",
                source.start_mark,
            )
    return sources


def format_path(path: DocPath) -> str:
    """`("servers", 0, "flavor")` -> `servers[0].flavor`, for messages."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
