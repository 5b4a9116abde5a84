"""What GitHub makes of a Markdown comment: rendered by cmark-gfm (GitHub's own renderer, with its table,
autolink and tag-filter extensions), then the text GitHub would still scan for mentions, issue references
and bare links, i.e. everything outside `<code>` and `<pre>`."""

from __future__ import annotations

import html
import re

import cmarkgfm
from cmarkgfm.cmark import Options

# The elements the plan renderer writes, and those cmark-gfm makes of its Markdown.
RENDERER_TAGS = frozenset(
    {"h3", "h4", "p", "strong", "em", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "ul", "li",
     "details", "summary", "b", "code", "pre"}
)  # fmt: skip
# What GitHub links in text: a mention, an issue reference, a URL or a www. address.
LINKED_BY_GITHUB = re.compile(r"@\w|#\d|://|www\.", re.IGNORECASE)


def render(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def tags(rendered: str) -> set[str]:
    return {name.lower() for name in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)", rendered)}


def text_outside_code(rendered: str) -> str:
    outside = re.sub(r"<pre\b.*?</pre>|<code\b.*?</code>", " ", rendered, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]*>", " ", outside))
