"""The JSON rendering: the versioned contract (format_version "1"), one document, stable bytes.

Text stays readable (Korean names are written as they are), but a hidden character (`escape.hidden`: a
bidi override, a zero-width space, a line separator, an invisible letter) is written as a `\\uXXXX` escape,
so a terminal, a pager or an editor showing the document shows that it is there; the document parses to
the same value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.render import escape

# Every character json.dumps may leave raw outside printable ASCII. The newline is the indentation's own:
# json.dumps writes one inside a string as `\n`, so a raw one is never part of a value.
_NOT_PLAIN = re.compile(r"[^\n\x20-\x7e]")


def render_json(document: dict[str, Any]) -> str:
    return _NOT_PLAIN.sub(_escaped, json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def _escaped(match: re.Match[str]) -> str:
    """A hidden character as JSON's `\\uXXXX` (a surrogate pair above U+FFFF); any other as it is."""
    char = match.group()
    if not escape.hidden(char):
        return char
    return "".join(f"\\u{unit:04x}" for unit in _utf16_units(ord(char)))


def _utf16_units(code: int) -> tuple[int, ...]:
    if code < 0x10000:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
