"""Renderings of a plan: pure functions from the plan's JSON document to text."""

# The Markdown rendering's size budget, under GitHub's 65,536-character limit for a comment. It lives here,
# not in .markdown, so that building the command line (plan --max-chars) imports no renderer (issue 10).
DEFAULT_MAX_CHARS = 60_000
