"""The one parser for amounts a pay gateway sends (notifies, query answers)."""

import pytest

from social_mall.payments.gateway import MAX_FEN, parse_fen


@pytest.mark.parametrize("raw, fen", [(1, 1), (0, 0), (8780, 8780), ("8780", 8780), (MAX_FEN, MAX_FEN),
                                      (str(MAX_FEN), MAX_FEN)])
def test_sane_amounts_parse(raw, fen):
    assert parse_fen(raw) == fen


@pytest.mark.parametrize("raw", [10**30, MAX_FEN + 1, -1, True, False, 1.0, None, "²", "１２", "-1", "+1", " 1",
                                 "12.5", "", "1" * 20, str(MAX_FEN + 1), [1], {"total": 1}])
def test_anything_else_is_refused(raw):
    assert parse_fen(raw) is None
