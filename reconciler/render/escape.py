"""Escaping for what a person reads. Any string that is not the tool's own literal (a name, key,
description or value from a manifest or from the cloud, a message a server sent) can carry characters
that are not text: an ESC sequence that recolours or rewrites the terminal, a newline that prints a fake
plan line, a right-to-left override that reorders what follows it. Shown, each becomes a visible escape
(`\\xNN` below U+0100, `\\uNNNN` or `\\UNNNNNNNN` above), so the reader sees that it is there.
"""

from __future__ import annotations

import unicodedata

# Control (Cc), format (Cf: bidi overrides, zero-width characters), line and paragraph separators (Zl, Zp),
# and lone surrogates (Cs, which only a broken decoder produces).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def text(value: str) -> str:
    """The value with every hidden character shown as an escape; printable text is left as it is."""
    if value.isprintable():
        return value
    return "".join(_visible(c) if hidden(c) else c for c in value)
