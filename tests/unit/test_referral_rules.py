"""Pure referral rules: rounding never pays more than the rate, refunds reverse pro rata
without drift, binding policies, amounts, and the transition tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from social_mall.referral import rules
from social_mall.referral.rules import (
    BindingMode,
    BindVerdict,
    CurrentBinding,
    LineBase,
    Rates,
    WithdrawalStatus,
    decide_binding,
)

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
fen = st.integers(min_value=0, max_value=10**9)
rate = st.integers(min_value=0, max_value=rules.BP)


@given(fen, rate)
def test_a_commission_never_pays_more_than_its_rate_and_loses_under_a_fen(base, bp):
    c = rules.commission(base, bp)
    assert c * rules.BP <= base * bp < (c + 1) * rules.BP


@given(st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=8), fen)
def test_discounts_spread_over_lines_never_add_up_to_more_than_was_paid(lines, discount):
    paid = rules.paid_per_line(lines, discount)
    assert all(0 <= p <= f for p, f in zip(paid, lines))
    assert sum(paid) <= max(sum(lines) - discount, 0)


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 10**6)), min_size=1, max_size=6),
       rate, rate, st.dictionaries(st.integers(1, 5), st.tuples(rate, rate), max_size=3))
def test_order_commission_is_per_line_with_product_rates_first(lines, l1, l2, product):
    l2 = min(l2, rules.BP - l1)
    bases = [LineBase(p, f) for p, f in lines]
    prates = {p: Rates(a, min(b, rules.BP - a)) for p, (a, b) in product.items()}
    total, base = rules.order_commission(bases, 1, Rates(l1, l2), prates)
    assert base == sum(f for _, f in lines)
    assert total == sum(rules.commission(f, prates.get(p, Rates(l1, l2)).level1_bp) for p, f in lines)


@given(st.integers(1, 10**6), st.integers(1, 10**7), st.lists(st.integers(1, 10**6), max_size=6), st.booleans())
def test_partial_refunds_reverse_cumulatively_and_a_full_refund_takes_everything(amount, paid, refunds, end_full):
    reversed_, refunded = 0, 0
    for r in refunds:
        if refunded + r > paid:
            break
        refunded += r
        due = rules.reversal_due(amount, reversed_, paid, refunded, full=refunded == paid)
        assert due >= 0
        reversed_ += due
        kept = amount - reversed_
        assert kept * paid <= amount * (paid - refunded)          # never keeps more than its share
    if end_full:
        reversed_ += rules.reversal_due(amount, reversed_, paid, paid, full=True)
        assert reversed_ == amount


def test_binding_policies():
    live = CurrentBinding(7, None)
    assert decide_binding(member_id=1, referrer_member_id=1, referrer_chain=[], current=None,
                          mode=BindingMode.FIRST_TOUCH, now=NOW) == BindVerdict.SELF
    assert decide_binding(member_id=1, referrer_member_id=2, referrer_chain=[3, 1], current=None,
                          mode=BindingMode.FIRST_TOUCH, now=NOW) == BindVerdict.CYCLE
    assert decide_binding(member_id=1, referrer_member_id=2, referrer_chain=[], current=live,
                          mode=BindingMode.FIRST_TOUCH, now=NOW) == BindVerdict.KEEP
    assert decide_binding(member_id=1, referrer_member_id=2, referrer_chain=[], current=live,
                          mode=BindingMode.LAST_TOUCH, now=NOW) == BindVerdict.REBIND
    assert decide_binding(member_id=1, referrer_member_id=7, referrer_chain=[], current=live,
                          mode=BindingMode.LAST_TOUCH, now=NOW) == BindVerdict.SAME
    expired = CurrentBinding(7, NOW - timedelta(seconds=1))
    assert decide_binding(member_id=1, referrer_member_id=2, referrer_chain=[], current=expired,
                          mode=BindingMode.FIRST_TOUCH, now=NOW) == BindVerdict.BIND
    assert rules.binding_expiry(NOW, 0) is None
    assert rules.binding_expiry(NOW, 30) == NOW + timedelta(days=30)


def test_scenes_and_amounts():
    assert rules.scene_code("ref_ab12cd34") == "ab12cd34"
    assert rules.scene_code("gb_123") is None and rules.scene_code("ref_!!") is None
    assert rules.scene_for("ab12cd34") == "ref_ab12cd34"
    assert [rules.parse_yuan(t) for t in ("50", "50.5", "¥12.05", "3元", "0.01")] == [5000, 5050, 1205, 300, 1]
    assert [rules.parse_yuan(t) for t in ("abc", "1.234", "-5", "")] == [None, None, None, None]


def test_transition_tables_are_closed_and_returns_are_legal_moves():
    W = WithdrawalStatus
    for table in (rules.DISTRIBUTOR_TRANSITIONS, rules.COMMISSION_TRANSITIONS, rules.WITHDRAWAL_TRANSITIONS):
        for src, dsts in table.items():
            assert dsts <= set(table), src
    assert all(rules.can_move(rules.WITHDRAWAL_TRANSITIONS, s, d) for s, d in rules.RETURNS_FUNDS)
    assert not rules.can_move(rules.WITHDRAWAL_TRANSITIONS, W.PAID, W.FAILED)
    assert not rules.can_move(rules.WITHDRAWAL_TRANSITIONS, W.REQUESTED, W.PAID)
    assert rules.payout_outcome("SUCCESS") == W.PAID and rules.payout_outcome("FAIL") == W.FAILED
    assert rules.payout_outcome("PROCESSING") is None


@given(st.lists(st.tuples(st.sampled_from(list(rules.EntryKind)), st.sampled_from(list(rules.Bucket)),
                          st.integers(-10**6, 10**6))))
def test_reconcile_equals_the_balance(entries):
    es = [rules.Entry(k, b, a) for k, b, a in entries]
    assert rules.reconcile(es) == rules.balance_of(es).total_fen


def test_settings_refuse_rates_over_100_percent():
    with pytest.raises(ValueError):
        rules.ProgramSettings(level1_bp=8000, level2_bp=3000)
    with pytest.raises(ValueError):
        rules.ProgramSettings(min_withdraw_fen=0)


def test_a_merge_picks_one_binding_by_the_tenants_mode_and_never_a_refused_one():
    P, T = rules.BindingPick, rules.Touch
    early, late = T(7, NOW - timedelta(days=3), None), T(8, NOW - timedelta(days=1), None)
    assert rules.pick_binding(late, early, BindingMode.FIRST_TOUCH, NOW) == P.MERGED
    assert rules.pick_binding(early, late, BindingMode.FIRST_TOUCH, NOW) == P.KEPT
    assert rules.pick_binding(late, early, BindingMode.LAST_TOUCH, NOW) == P.KEPT
    assert rules.pick_binding(early, late, BindingMode.LAST_TOUCH, NOW) == P.MERGED
    assert rules.pick_binding(early, early, BindingMode.LAST_TOUCH, NOW) == P.KEPT        # a tie: the kept one's
    expired = T(7, NOW - timedelta(days=40), NOW - timedelta(days=10))
    assert rules.pick_binding(expired, late, BindingMode.FIRST_TOUCH, NOW) == P.MERGED
    refused = T(7, NOW - timedelta(days=3), None, allowed=False)                         # self or cycle
    assert rules.pick_binding(refused, late, BindingMode.FIRST_TOUCH, NOW) == P.MERGED
    assert rules.pick_binding(late, refused, BindingMode.FIRST_TOUCH, NOW) == P.KEPT
    assert rules.pick_binding(refused, None, BindingMode.FIRST_TOUCH, NOW) == P.NONE
    assert rules.pick_binding(None, None, BindingMode.LAST_TOUCH, NOW) == P.NONE


def test_a_merge_keeps_the_kept_distributor_record_unless_it_is_a_bare_application():
    D, M = rules.DistributorStatus, rules.RecordMerge
    merge = rules.distributor_merge
    assert merge(D.APPROVED, None, kept_has_history=True) == M.NONE
    assert merge(None, D.PENDING, kept_has_history=False) == M.MOVE
    assert merge(None, D.DISABLED, kept_has_history=False) == M.MOVE
    assert merge(D.APPROVED, D.APPROVED, kept_has_history=True) == M.ABSORB
    assert merge(D.DISABLED, D.APPROVED, kept_has_history=True) == M.ABSORB     # a merchant's ban stands
    assert merge(D.PENDING, D.APPROVED, kept_has_history=False) == M.REPLACE
    assert merge(D.REJECTED, D.DISABLED, kept_has_history=False) == M.REPLACE
    assert merge(D.PENDING, D.APPROVED, kept_has_history=True) == M.ABSORB      # money on it: it stays
    assert merge(D.PENDING, D.PENDING, kept_has_history=False) == M.ABSORB
    assert rules.can_move(rules.DISTRIBUTOR_TRANSITIONS, D.APPROVED, D.MERGED)
    assert not rules.DISTRIBUTOR_TRANSITIONS[D.MERGED]
