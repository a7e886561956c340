"""A line priced by a module admits only the promotion steps it names (PriceLine.admits):
each step touches only the lines that admit it, and its threshold and cap count only those
lines; a line admitting nothing pays its own price; the total always equals the lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from social_mall.pricing.rules import (
    ALL_STEPS,
    ORDER,
    CouponKind,
    CouponRule,
    FullReduction,
    PointsRule,
    PriceLine,
    PricingContext,
    Step,
    price,
)

RETAIL = PriceLine(sku_id=1, product_id=10, category_id=100, unit_fen=5000, qty=2)                 # 100.00
OWN = PriceLine(sku_id=2, product_id=20, category_id=200, unit_fen=10000, qty=3, admits=frozenset())  # 300.00
CTX = PricingContext(level_name="金卡", level_bp=9000, flash={2: 5000}, full_reductions=(FullReduction(30000, 3000),),
                     coupon=CouponRule(7, "满200减20", CouponKind.AMOUNT, threshold_fen=20000, off_fen=2000),
                     points_rule=PointsRule(100, 5000), points_balance=100_000, points_wanted=100_000)


def test_a_line_admitting_nothing_pays_its_price_and_thresholds_count_the_others_only():
    b = price([RETAIL, OWN], 0, CTX)
    assert b.lines[1].pay_fen == 30000 and sum(b.lines[1].offs) == 0
    # the retail line: 10% level (-1000), no 满300 (9000 < 30000), no coupon (9000 < 20000), points half of 9000
    assert b.off(Step.LEVEL) == 1000 and b.off(Step.FULL) == 0 and b.coupon_id is None
    assert b.off(Step.POINTS) == 4500 and b.total_fen == 30000 + 4500


def test_a_line_admitting_the_coupon_takes_the_coupon_and_nothing_else():
    coupon_only = PriceLine(2, 20, 200, 10000, 3, admits=frozenset({Step.COUPON}))
    b = price([coupon_only], 0, CTX)
    assert b.coupon_id == 7 and b.off(Step.COUPON) == 2000
    assert b.off(Step.LEVEL) == b.off(Step.FLASH) == b.off(Step.FULL) == b.off(Step.POINTS) == 0
    assert b.total_fen == 28000
    # with a retail line beside it, the coupon's threshold counts both (both admit coupons)
    b2 = price([RETAIL, coupon_only], 0, CTX)
    assert b2.coupon_id == 7 and b2.lines[1].offs[ORDER.index(Step.LEVEL)] == 0
    assert b2.lines[1].offs[ORDER.index(Step.POINTS)] == 0 and b2.lines[1].offs[ORDER.index(Step.FLASH)] == 0


def test_admitting_every_step_is_the_retail_pipeline():
    every = PriceLine(2, 20, 200, 10000, 3, admits=ALL_STEPS)
    plain = PriceLine(2, 20, 200, 10000, 3)
    assert price([RETAIL, every], 0, CTX) == price([RETAIL, plain], 0, CTX)


steps = st.frozensets(st.sampled_from(ORDER))
lines = st.lists(st.builds(PriceLine, sku_id=st.integers(1, 4), product_id=st.just(1), category_id=st.just(1),
                           unit_fen=st.integers(1, 50_000), qty=st.integers(1, 20), admits=steps),
                 min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(0, 2000), st.integers(0, 10_000), st.integers(0, 100_000))
def test_no_step_touches_a_line_that_does_not_admit_it(ls, shipping, bp, points):
    ctx = PricingContext(level_bp=bp, flash={1: 1, 2: 300}, full_reductions=(FullReduction(100, 5000),),
                         coupon=CouponRule(1, "c", CouponKind.PERCENT, off_bp=5000),
                         points_rule=PointsRule(100, 10_000), points_balance=points, points_wanted=points)
    b = price(ls, shipping, ctx)
    for ln, priced in zip(ls, b.lines, strict=True):
        for k, step in enumerate(ORDER):
            assert priced.offs[k] >= 0
            if step not in ln.admits:
                assert priced.offs[k] == 0
        assert priced.pay_fen >= 0
    assert b.goods_pay_fen >= 1
    assert b.total_fen == sum(p.pay_fen for p in b.lines) + b.shipping_pay_fen
