"""Renderings of a plan: pure functions from the plan's JSON document to text."""

# The Markdown rendering's size budget, under GitHub's 65,536-character limit for a comment: the comment
# itself uses at most 95% of it (57,000), the rest is left for what the CI recipe wraps around it. It lives
# here, not in .markdown, so that building the command line (plan --max-chars) imports no renderer (issue 10).
DEFAULT_MAX_CHARS = 60_000
# The smallest budget the Markdown rendering accepts: its 95% holds the target, the verdict, the table, the
# warnings and other changes counted, the closing line and the summary of a plan with no risky change and no
# refusal (those are never cut, so no budget holds every plan). render_markdown raises ValueError below it;
# plan --max-chars below it is a usage error.
MIN_MAX_CHARS = 2_000
