"""The promotions pipeline and refund splits: fixed examples, then Hypothesis properties
(never a negative or fractional amount; every split sums exactly)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from social_mall.loyalty import rules as lr
from social_mall.pricing.rules import (
    MIN_PAY_FEN,
    CouponKind,
    CouponRule,
    FullReduction,
    PointsRule,
    PriceLine,
    PricingContext,
    Scope,
    Step,
    best_coupon,
    price,
    split,
    split_refund,
)

A = PriceLine(sku_id=1, product_id=10, category_id=100, unit_fen=3990, qty=2)   # ¥79.80
B = PriceLine(sku_id=2, product_id=20, category_id=200, unit_fen=16800, qty=1)  # ¥168.00


def test_no_promotions_changes_nothing():
    b = price([A, B], 0, PricingContext())
    assert (b.total_fen, b.discount_fen, b.adjustments) == (24780, 0, ())


def test_steps_apply_in_the_documented_order():
    ctx = PricingContext(
        level_name="金卡会员", level_bp=9500, flash={2: 15000},
        full_reductions=(FullReduction(20000, 2000), FullReduction(10000, 500)),
        coupon=CouponRule(7, "满100减10", CouponKind.AMOUNT, threshold_fen=10000, off_fen=1000),
        points_rule=PointsRule(100, 5000), points_balance=500, points_wanted=300,
    )
    b = price([A, B], 800, ctx)
    # level: 7980→7581, 16800→15960; flash 150 < 159.60 → 15000; subtotal 22581 ≥ 200 → -20
    assert [a.step for a in b.adjustments] == [Step.LEVEL, Step.FLASH, Step.FULL, Step.COUPON, Step.POINTS]
    assert b.off(Step.LEVEL) == 399 + 840
    assert b.off(Step.FLASH) == 960
    assert b.off(Step.FULL) == 2000
    assert b.off(Step.COUPON) == 1000
    assert (b.points_used, b.points_fen) == (300, 300)
    assert b.total_fen == 24780 - 399 - 840 - 960 - 2000 - 1000 - 300 + 800
    assert b.coupon_id == 7


def test_coupon_scope_threshold_and_percent_cap():
    only_b = CouponRule(1, "茶叶85折", CouponKind.PERCENT, off_bp=1500, cap_fen=2000, scope=Scope.CATEGORIES,
                        scope_ids=frozenset({200}))
    b = price([A, B], 0, PricingContext(coupon=only_b))
    assert b.off(Step.COUPON) == 2000                       # 15% of 168 = 25.20, capped at 20
    assert b.lines[0].pay_fen == A.base_fen                  # the other category pays full
    too_high = CouponRule(2, "满500减50", CouponKind.AMOUNT, threshold_fen=50000, off_fen=5000)
    assert price([A, B], 0, PricingContext(coupon=too_high)).coupon_id is None
    ship = CouponRule(3, "包邮券", CouponKind.SHIPPING)
    b = price([A], 800, PricingContext(coupon=ship))
    assert (b.shipping_off_fen, b.total_fen) == (800, 7980)


def test_best_coupon_is_the_one_saving_most():
    c1 = CouponRule(1, "满50减5", CouponKind.AMOUNT, threshold_fen=5000, off_fen=500)
    c2 = CouponRule(2, "9折", CouponKind.PERCENT, off_bp=1000)
    c3 = CouponRule(3, "满1000减200", CouponKind.AMOUNT, threshold_fen=100000, off_fen=20000)
    assert best_coupon([A], 0, PricingContext(), [c1, c2, c3]) == c2   # 7.98 > 5
    assert best_coupon([A], 0, PricingContext(), [c3]) is None


def test_points_are_capped_and_converted_exactly():
    ctx = PricingContext(points_rule=PointsRule(30, 10000), points_balance=10_000, points_wanted=100)
    b = price([A], 0, ctx)
    assert (b.points_used, b.points_fen) == (99, 330)       # 3 points = 10 fen: 33 units
    b = price([A], 0, PricingContext(points_rule=PointsRule(100, 5000), points_balance=10_000, points_wanted=10_000))
    assert b.points_fen == 3990                              # at most half the goods


def test_split_refund_over_several_partial_refunds_returns_each_line_exactly():
    pays = [1001, 2, 3333, 0, 800]
    left = list(pays)
    for refund in (17, 1000, 3, 4116):
        parts = split_refund(left, refund)
        assert sum(parts) == refund and all(0 <= p <= x for p, x in zip(parts, left))
        left = [x - p for x, p in zip(left, parts)]
    assert left == [0] * len(pays)


lines_st = st.lists(
    st.builds(PriceLine, sku_id=st.integers(1, 5), product_id=st.integers(1, 5), category_id=st.integers(1, 3),
              unit_fen=st.integers(1, 100_000), qty=st.integers(1, 99)),
    min_size=1, max_size=6,
).map(lambda ls: [PriceLine(i + 1, ln.product_id, ln.category_id, ln.unit_fen, ln.qty) for i, ln in enumerate(ls)])

coupon_st = st.one_of(
    st.none(),
    st.builds(CouponRule, id=st.just(1), name=st.just("券"), kind=st.sampled_from(list(CouponKind)),
              threshold_fen=st.integers(0, 200_000), off_fen=st.integers(0, 500_000), off_bp=st.integers(0, 10_000),
              cap_fen=st.integers(0, 50_000), scope=st.sampled_from(list(Scope)),
              scope_ids=st.frozensets(st.integers(1, 5), max_size=3)),
)

ctx_st = st.builds(
    PricingContext,
    level_bp=st.integers(0, 10_000),
    flash=st.dictionaries(st.integers(1, 6), st.integers(1, 100_000), max_size=3),
    full_reductions=st.lists(st.builds(FullReduction, st.integers(0, 500_000), st.integers(0, 500_000)),
                             max_size=3).map(tuple),
    coupon=coupon_st,
    points_rule=st.builds(PointsRule, st.integers(1, 1000), st.integers(0, 10_000)),
    points_balance=st.integers(0, 1_000_000),
    points_wanted=st.integers(0, 1_000_000),
)


@settings(max_examples=400, deadline=None)
@given(lines=lines_st, shipping=st.integers(0, 2000), ctx=ctx_st)
def test_pipeline_never_produces_a_negative_or_fractional_amount(lines, shipping, ctx):
    b = price(lines, shipping, ctx)
    amounts = [b.total_fen, b.discount_fen, b.goods_pay_fen, b.points_fen, b.points_used, b.shipping_off_fen]
    amounts += [ln.pay_fen for ln in b.lines] + [o for ln in b.lines for o in ln.offs]
    amounts += [a.fen for a in b.adjustments]
    assert all(type(x) is int and x >= 0 for x in amounts)
    assert b.goods_pay_fen >= MIN_PAY_FEN
    assert b.total_fen == sum(ln.base_fen for ln in lines) + shipping - b.discount_fen
    assert b.points_used <= min(ctx.points_balance, ctx.points_wanted)
    assert sum(a.fen for a in b.adjustments) == b.discount_fen


@settings(max_examples=400, deadline=None)
@given(lines=lines_st, shipping=st.integers(0, 2000), ctx=ctx_st, data=st.data())
def test_refund_splits_always_sum_to_the_paid_amount(lines, shipping, ctx, data):
    b = price(lines, shipping, ctx)
    pays = [ln.pay_fen for ln in b.lines] + [b.shipping_pay_fen]
    paid = sum(pays)
    assert paid == b.total_fen
    left, refunded = list(pays), 0
    while refunded < paid:
        amount = data.draw(st.integers(1, paid - refunded))
        parts = split_refund(left, amount)
        assert sum(parts) == amount and all(0 <= p <= x for p, x in zip(parts, left))
        left = [x - p for x, p in zip(left, parts)]
        refunded += amount
    assert left == [0] * len(pays)


@given(amount=st.integers(0, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_split_is_exact_and_bounded(amount, weights):
    amount = min(amount, sum(weights))
    parts = split(amount, weights)
    assert sum(parts) == amount and all(0 <= p <= w for p, w in zip(parts, weights))


# -- loyalty rules ----------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_levels_by_growth():
    levels = (lr.Level("普通", 0), lr.Level("银卡", 100, 9800), lr.Level("金卡", 500, 9500))
    assert lr.level_for(99, levels).name == "普通"
    assert lr.level_for(100, levels).name == "银卡"
    assert lr.next_level(100, levels).name == "金卡"
    assert lr.next_level(600, levels) is None


def test_points_expire_first_in_first_out_and_only_once():
    e = [lr.Entry(1, 100, "earn", T0 + timedelta(days=10)), lr.Entry(2, 50, "earn", T0 + timedelta(days=40)),
         lr.Entry(3, -30, "spend", None)]
    assert lr.due_to_expire(e, T0 + timedelta(days=11)) == [(1, 70)]
    e.append(lr.Entry(4, -70, "expire", None, lot_id=1))
    assert lr.due_to_expire(e, T0 + timedelta(days=11)) == []
    e.append(lr.Entry(5, -20, "spend", None))
    assert lr.lots_left(e) == {1: 0, 2: 30}
    assert lr.due_to_expire(e, T0 + timedelta(days=41)) == [(2, 30)]


def test_sign_in_streaks():
    cfg = lr.LoyaltyConfig(signin_points=5, streak_days=7, streak_bonus=20)
    d = T0.date()
    assert lr.next_streak(None, 0, d) == 1
    assert lr.next_streak(d, 6, d + timedelta(days=1)) == 7
    assert lr.next_streak(d, 6, d + timedelta(days=2)) == 1
    assert lr.signin_points(7, cfg) == 25 and lr.signin_points(3, cfg) == 5


def test_coupon_moves_and_refund_shares():
    S = lr.CouponStatus
    assert lr.can_move(S.AVAILABLE, S.LOCKED) and lr.can_move(S.LOCKED, S.AVAILABLE)
    assert not lr.can_move(S.AVAILABLE, S.USED) and not lr.can_move(S.USED, S.LOCKED)
    assert lr.share(300, 5000, 10000) == 150 and lr.share(300, 10000, 10000) == 300
    assert lr.share(7, 1, 3) == 2
