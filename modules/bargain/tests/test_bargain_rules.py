"""The cut sequence (pure): N integer cuts of at least the minimum that sum to exactly
start − floor, the same for the same seed; and who may help."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from social_mall_bargain import rules

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)


@given(total=st.integers(1, 10**7), helps=st.integers(1, 100), min_cut=st.integers(1, 500),
       seed=st.integers(0, 2**62))
def test_cuts_sum_to_the_total_each_at_least_the_minimum(total, helps, min_cut, seed):
    if total < helps * min_cut:
        with pytest.raises(ValueError):
            rules.cut_sequence(total, helps, seed, min_cut)
        return
    cuts = rules.cut_sequence(total, helps, seed, min_cut)
    assert len(cuts) == helps and sum(cuts) == total
    assert all(isinstance(c, int) and c >= min_cut for c in cuts)
    assert rules.cut_sequence(total, helps, seed, min_cut) == cuts          # seeded: re-derivable
    assert rules.load_cuts(rules.dump_cuts(cuts)) == cuts


def test_cuts_vary_with_the_seed_and_average_the_total_over_n():
    seqs = [rules.cut_sequence(10_000, 5, seed) for seed in range(400)]
    assert len({tuple(s) for s in seqs}) > 390
    first = sum(s[0] for s in seqs) / len(seqs)
    assert 1_700 < first < 2_300          # E[cut] = total / N = 2000


def test_exact_minimums_leave_no_randomness():
    assert rules.cut_sequence(5, 5, 123) == [1, 1, 1, 1, 1]


def test_codes_and_scenes():
    code = rules.new_code()
    assert rules.parse_code(code) == code and rules.parse_code(code.lower()) == code
    assert rules.code_of_scene(rules.scene_for(code)) == code
    assert rules.parse_code("K7Q2M9X0") is None and rules.parse_code("²²²²²²²²") is None
    assert rules.code_of_scene("gb_12") is None


def test_who_may_help():
    assert rules.helper_refusal(1, 1, T0, 0, T0) is rules.Refusal.SELF
    assert rules.helper_refusal(2, 1, None, 0, T0) is rules.Refusal.NOT_FOLLOWER
    assert rules.helper_refusal(2, 1, T0 - timedelta(hours=23), 24, T0) is rules.Refusal.TOO_NEW
    assert rules.helper_refusal(2, 1, T0 - timedelta(hours=24), 24, T0) is None


def test_terms_checks():
    ok = rules.Terms(100, 5, 1, 24, 10, 3, 24, T0, T0 + timedelta(days=1))
    assert rules.check_terms(ok, 1000) == []
    assert "floor" in rules.check_terms(ok, 100)
    too_fine = rules.Terms(990, 20, 1, 24, 10, 3, 24, T0, T0 + timedelta(days=1))
    assert "min_cut" in rules.check_terms(too_fine, 1000)
    backwards = rules.Terms(100, 5, 1, 24, 10, 3, 24, T0, T0)
    assert "window" in rules.check_terms(backwards, 1000)
