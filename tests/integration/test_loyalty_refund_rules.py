"""What a refund gives back is the tenant's rule (会员积分设置): points paid with in
proportion (the default), only on a full refund, or never; the coupon on a full refund
(the default) or never. A cancel of an unpaid order gives both back whatever the rule."""

from __future__ import annotations

import pytest

from social_mall.loyalty import rules
from social_mall.loyalty import service as loyalty
from social_mall.pricing.rules import CouponKind
from social_mall.pricing.service import PricingInput
from social_mall.orders.service import place_order
from tests.integration.test_loyalty_service import NOW, TIMEOUT, _paid, buyer, sku, template


@pytest.mark.parametrize(("points_rule", "coupon_rule"), [("share", "full"), ("full", "never"), ("never", "full")])
async def test_a_refund_in_two_parts_gives_back_what_the_tenants_rule_says(uows, demo, points_rule, coupon_rule):
    async with uows() as uow:
        await loyalty.configure(uow, demo.id, rules.LoyaltyConfig(refund_points=points_rule, refund_coupon=coupon_rule))
        await uow.commit()
    m, addr = await buyer(uows, demo, f"o_rule_{points_rule}")
    tea, _, _ = await sku(uows, "西湖龙井", "250g")
    tid = await template(uows, demo, name="立减10元", kind=CouponKind.AMOUNT, off_fen=1000)
    async with uows() as uow:
        await loyalty.adjust_points(uow, demo.id, m, 300, ref="gift", actor="admin:1", note="", now=NOW)
        c = await loyalty.claim(uow, demo.id, m, tid, now=NOW)
        order = await place_order(uow, demo.id, m, [(tea, 2)], address_id=addr, now=NOW, timeout=TIMEOUT,
                                  pricing=PricingInput(c.id, 300))
        await uow.commit()
    paid = order.total_fen
    await _paid(uows, demo, order.id, paid)
    async with uows() as uow:
        assert await loyalty.on_order_paid(uow, demo.id, order.id, m, paid, NOW)
        await uow.commit()
    first = paid // 3
    async with uows() as uow:
        out1 = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=first, paid_fen=paid,
                                               full=False, ref="r1", now=NOW)
        await uow.commit()
    async with uows() as uow:
        out2 = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=paid - first, paid_fen=paid,
                                               full=True, ref="r2", now=NOW)
        await uow.commit()
    expected_first = {"share": 300 * first // paid, "full": 0, "never": 0}[points_rule]
    assert out1.points_returned == expected_first
    assert out1.points_returned + out2.points_returned == (0 if points_rule == "never" else 300)
    assert not out1.coupon_returned and out2.coupon_returned == (coupon_rule == "full")
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == (0 if points_rule == "never" else 300)
        assert await loyalty.ledger_consistent(uow, demo.id, m)
        status = (await loyalty.repo(uow).coupon(demo.id, c.id))[0].status
    assert status == ("available" if coupon_rule == "full" else "used")


def test_points_back_is_cumulative_and_never_past_what_was_used():
    for used, paid in ((300, 5980), (1, 3), (0, 100), (999, 1)):
        for rule in rules.REFUND_POINTS_RULES:
            seen = [rules.points_back(rule, used, r, paid) for r in range(0, paid + 1, max(paid // 7, 1))]
            assert seen == sorted(seen) and all(0 <= x <= used for x in seen)
            assert rules.points_back(rule, used, paid, paid) == (0 if rule == "never" else used)
