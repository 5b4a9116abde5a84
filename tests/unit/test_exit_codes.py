"""A run of several roots exits with one code: 130/143 > 1 > 3 > 2 > 0, whatever the order of the roots."""

from __future__ import annotations

import itertools

import pytest

from reconciler import exit_codes
from reconciler.exit_codes import CHANGES, ERROR, OK, REFUSED, SIGINT, SIGTERM, combined

OUTCOMES = (OK, CHANGES, REFUSED, ERROR, SIGINT, SIGTERM)


def expected(codes: tuple[int, ...]) -> int:
    """The precedence written out as the issue says it, independently of PRECEDENCE's tuple."""
    if SIGINT in codes:
        return SIGINT
    if SIGTERM in codes:
        return SIGTERM
    for code in (ERROR, REFUSED, CHANGES):
        if code in codes:
            return code
    return OK


@pytest.mark.parametrize("size", [1, 2, 3])
def test_every_combination_of_root_outcomes(size):
    for codes in itertools.product(OUTCOMES, repeat=size):
        assert combined(codes) == expected(codes), codes


def test_no_root_is_success():
    assert combined([]) == OK


def test_an_unknown_code_counts_as_an_error():
    assert combined([OK, 7]) == ERROR
    assert combined([REFUSED, 7]) == ERROR


def test_precedence_names_every_code():
    assert set(exit_codes.PRECEDENCE) == set(OUTCOMES)
