"""Renderings of a plan: pure functions from the plan's JSON document to text."""

# The Markdown rendering's size budget, under GitHub's 65,536-character limit for a comment. It lives here,
# not in .markdown, so that building the command line (plan --max-chars) imports no renderer (issue 10).
DEFAULT_MAX_CHARS = 60_000
# The smallest budget the Markdown rendering accepts: room for the target, the verdict, the table, the first
# item of each must-keep list and the summary (render_markdown raises ValueError below it; plan --max-chars
# below it is a usage error).
MIN_MAX_CHARS = 2_000
