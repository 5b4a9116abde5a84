"""Escaping for what a person reads. Any string that is not the tool's own literal (a name, key,
description or value from a manifest or from the cloud, a message a server sent) can carry characters
that are not text: an ESC sequence that recolours or rewrites the terminal, a newline that prints a fake
plan line, a right-to-left override that reorders what follows it. Shown, each becomes a visible escape
(`\\xNN` below U+0100, `\\uNNNN` or `\\UNNNNNNNN` above), so the reader sees that it is there.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape as _html_escape

# Control (Cc), format (Cf: bidi overrides, zero-width characters), line and paragraph separators (Zl, Zp),
# and lone surrogates (Cs, which only a broken decoder produces).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Characters that print as nothing although Python calls them printable: Unicode's default-ignorable code
# points outside Cf (the Hangul fillers, the combining grapheme joiner, Khmer's inherent vowels, the
# Mongolian and the general variation selectors), and the blank Braille pattern. A name made of them looks
# empty, or looks like another name with them inserted.
INVISIBLE_LETTERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def hidden(char: str) -> bool:
    return char in INVISIBLE_LETTERS or unicodedata.category(char) in HIDDEN_CATEGORIES


def text(value: str) -> str:
    """The value with every hidden character shown as an escape; printable text is left as it is."""
    if value.isprintable() and INVISIBLE_LETTERS.isdisjoint(value):
        return value
    return "".join(_visible(c) if hidden(c) else c for c in value)


# -- Markdown (a pull-request comment) --------------------------------------------------------------

# Characters that Markdown or raw HTML give a meaning in running text: emphasis, code, links and images,
# raw HTML (`<!--` hides everything after it), table cells, strikethrough, entities and maths. Line-start
# syntax (`-`, `+`, `1.`) needs nothing: `text` has already turned every line break into an escape, so a
# value never starts a line.
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|~&!$")
# GitHub finds some things in the text of the rendered page, after Markdown's escapes are gone, but never
# inside code: mentions (`@name`), issue references (`#12`), email autolinks (`a@b.c`, `mailto:a@b.c`,
# `xmpp:a@b.c`: all need an `@`), URL autolinks (`http://`, `https://`, `ftp://`: all need `://`) and
# `www.` autolinks. So each of these marks goes in a code span, and a run of them in one span (adjacent
# spans would fuse their fences). Case does not matter: `WWW.` and `HTTP://` are links too.
AUTOLINK_MARKS = re.compile(r"(?:[@#]|://|www\.)+", re.IGNORECASE)


def markdown(value: str) -> str:
    """`value` as literal text in running Markdown: hidden characters shown, special characters escaped,
    the marks GitHub would turn into a link or a mention in code spans."""
    escaped = "".join(f"\\{c}" if c in MARKDOWN_SPECIAL else c for c in text(value))
    return AUTOLINK_MARKS.sub(lambda marks: f"`{marks.group()}`", escaped)


def code(value: str, *, in_table: bool = False) -> str:
    """`value` in a code span (no mention, reference or HTML is recognised inside one). The fence is one
    backtick longer than the longest run in the value, so a backtick cannot close it early. In a table
    cell a `|` would end the cell even inside a code span, so there it is escaped (GitHub shows `|`)."""
    shown = text(value)
    if in_table:
        shown = shown.replace("|", "\\|")
    if not shown:
        return '`""`'
    fence = "`" * (_longest_backtick_run(shown) + 1)
    # A space on each side when the value starts or ends with a backtick (it would join the fence) or with
    # a space (CommonMark strips one space from each side of a span that has both).
    pad = " " if shown[0] in "` " or shown[-1] in "` " else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def _longest_backtick_run(value: str) -> int:
    longest = current = 0
    for char in value:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    return longest


def html(value: str) -> str:
    """`value` inside raw HTML (`<summary>`): hidden characters shown, then HTML-escaped, in `<code>` (where
    GitHub recognises no mention or reference)."""
    return f"<code>{_html_escape(text(value), quote=True)}</code>"


# A Mermaid label is written `["..."]`; Mermaid reads `#NN;` as a character code. Everything but letters,
# digits and a few harmless marks becomes one, so a label can neither end the node nor hold markup.
MERMAID_PLAIN = frozenset(" -_.:/,+=")


def mermaid(value: str) -> str:
    """`value` as the text of a Mermaid node label."""
    return "".join(c if c.isalnum() or c in MERMAID_PLAIN or ord(c) > 0x7F else f"#{ord(c)};" for c in text(value))
