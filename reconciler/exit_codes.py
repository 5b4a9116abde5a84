"""The exit codes, and the one rule that combines them when a run covers several roots.

0 success, 1 error (a usage error too), 2 changes present (plan --detailed-exitcode), 3 the plan has
refusals, 130 and 143 cancelled by SIGINT and SIGTERM. Light on purpose: the command line imports it to
build `--help`.
"""

from __future__ import annotations

from collections.abc import Iterable

OK = 0
ERROR = 1
CHANGES = 2
REFUSED = 3
SIGINT = 130
SIGTERM = 143

# What a run of several roots exits with: the first of these that any root gave. A cancellation is what the
# CI runner must see (it cancelled the job); an error outranks a refusal because a root that could not even
# be planned says nothing about its images; a refusal outranks "changes" because the plan cannot be applied.
PRECEDENCE = (SIGINT, SIGTERM, ERROR, REFUSED, CHANGES, OK)


def combined(codes: Iterable[int]) -> int:
    """The exit code of a run whose roots exited with `codes` (0 for none); a code outside PRECEDENCE
    counts as an error."""
    given = {code if code in PRECEDENCE else ERROR for code in codes}
    return next((code for code in PRECEDENCE if code in given), OK)
