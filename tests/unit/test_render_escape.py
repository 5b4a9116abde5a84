"""The escaping functions every renderer uses for what the tool did not write itself (issue 17)."""

from __future__ import annotations

import pytest

from reconciler.render import escape


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("web-base", "web-base"),
        ("웹 이미지 🚀", "웹 이미지 🚀"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("a\n  - delete x", "a\\x0a  - delete x"),
        ("a\tb\r", "a\\x09b\\x0d"),
        ("\u202eevil", "\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\u2028sep", "line\\u2028sep"),
        ("\x85", "\\x85"),
    ],
)
def test_text_shows_hidden_characters_as_escapes(value, shown):
    assert escape.text(value) == shown


@pytest.mark.parametrize("char", ["\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"])
def test_invisible_letters_are_hidden_and_shown_as_escapes(char):
    # Letters (Lo) and a symbol (So) that print as nothing: a name made of them looks empty.
    assert char in escape.INVISIBLE_LETTERS
    assert escape.hidden(char)
    assert escape.text(f"web{char}base") == f"web\\u{ord(char):04x}base"


def test_hangul_text_stays_readable():
    assert not any(escape.hidden(c) for c in "한글 이미지 ㅎ")


def test_markdown_escapes_what_would_become_markup():
    assert escape.markdown("<!-- @everyone #1 *x* _y_ [l](u) a|b `c` ~s~ &amp; $x$ !") == (
        "\\<\\!-- `@`everyone `#`1 \\*x\\* \\_y\\_ \\[l\\](u) a\\|b \\`c\\` \\~s\\~ \\&amp; \\$x\\$ \\!"
    )


def test_markdown_puts_mention_and_reference_marks_in_code_where_github_never_links_them():
    # GitHub links mentions and references after Markdown's own escapes are gone: only code stops it.
    assert escape.markdown("ops@example.com #12") == "ops`@`example.com `#`12"
    assert escape.markdown("@#@x") == "`@#@`x"  # one span: adjacent spans would fuse their fences
    assert escape.markdown("`@") == "\\``@`"  # an escaped backtick does not join the span's fence


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("![img](http://evil.example/p.png)", "\\!\\[img\\](http`://`evil.example/p.png)"),
        ("HTTPS://evil.example", "HTTPS`://`evil.example"),
        ("ftp://x.y", "ftp`://`x.y"),
        ("see www.evil.example", "see `www.`evil.example"),
        ("WwW.evil.example", "`WwW.`evil.example"),
        ("www.www.x", "`www.www.`x"),
        ("mailto:ops@example.com", "mailto:ops`@`example.com"),
        ("xmpp:ops@example.com", "xmpp:ops`@`example.com"),
        ("@://www.x", "`@://www.`x"),  # one span: adjacent spans would fuse their fences
        ("a://", "a`://`"),
        ("wwwx.y http:/x", "wwwx.y http:/x"),  # no link without `://` or `www.`
    ],
)
def test_markdown_puts_autolink_marks_in_code_where_github_never_links_them(value, escaped):
    # GitHub's autolink extension runs after Markdown's backslash escapes are gone: only code stops it.
    assert escape.markdown(value) == escaped


def test_markdown_shows_hidden_characters_first_so_no_line_break_reaches_markdown():
    assert escape.markdown("a\n<!--") == "a\\\\x0a\\<\\!--"
    assert "\n" not in escape.markdown("x\n\n- delete y\r\n")


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("web-base", "`web-base`"),
        ("a`b", "``a`b``"),
        ("a``b`", "``` a``b` ```"),
        ("`x", "`` `x ``"),
        (" padded ", "`  padded  `"),
        ("<!-- @everyone", "`<!-- @everyone`"),
        ("a\nb", "`a\\x0ab`"),
        ("", '`""`'),
    ],
)
def test_code_span_fence_outlasts_every_backtick_run(value, span):
    assert escape.code(value) == span


def test_code_span_in_a_table_escapes_the_pipe():
    assert escape.code("a|b") == "`a|b`"
    assert escape.code("a|b", in_table=True) == "`a\\|b`"


def test_html_escapes_and_wraps_in_code():
    assert escape.html('<b>x</b> & "@y"\n') == "<code>&lt;b&gt;x&lt;/b&gt; &amp; &quot;@y&quot;\\x0a</code>"


def test_mermaid_labels_cannot_close_the_node_or_the_fence():
    label = escape.mermaid('x"] --> y["z\n```\n<b>#1</b>')
    assert label == "x#34;#93; --#62; y#91;#34;z#92;x0a#96;#96;#96;#92;x0a#60;b#62;#35;1#60;/b#62;"
    assert not set(label) & set('"[]`<>\n')


@pytest.mark.parametrize("char", ["\ufe0f", "\u034f", "\u17b4", "\u180b", "\U000e0100", "\u3164", "\u2800"])
def test_characters_that_print_as_nothing_are_hidden(char):
    # Default-ignorable code points outside Cf: "web" and "web" + one of them look the same.
    assert escape.hidden(char) and escape.text(f"web{char}") != "web" and "\\" in escape.text(f"web{char}")


def test_visible_text_is_not_hidden():
    assert escape.text("웹 이미지 ❤ 日本 é") == "웹 이미지 ❤ 日本 é"
