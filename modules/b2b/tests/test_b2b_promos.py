"""Which retail promotions still apply to 企业价 lines is the tenant's rule (default none):
a business buyer holding a coupon gets it only once the tenant allows coupons (through the
core's per-line pricing seam); a consumer's coupon is the same either way; the order's
total is its breakdown's total; the rule's change is audited and a repeat changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from social_mall.loyalty import service as loyalty
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind, Step
from social_mall.pricing.service import AUTO, PricingInput
from social_mall_b2b import credit, prices, promos, transfers
from storage.db import session_factory
from storage.models import AuditEntry, Sku
from storage.uow import uow_factory

from test_b2b_credit import NOW, TIMEOUT, company_with_buyers


@pytest.fixture
def uows_b2b(engine):
    return uow_factory(session_factory(engine), {}, pricers=[prices.PRICER],
                       payment_methods=[credit.METHOD_OBJ, transfers.METHOD_OBJ])


async def with_coupon(uows, tenant: int, member: int, template: int) -> int:
    async with uows() as uow:
        for _ in range(2):      # one for each order the member places
            await loyalty.issue_coupon(uow, tenant, member, template, actor="admin:a", now=NOW)
        address = await add_address(uow, tenant, member, "李四", "13912345678", "北京市朝阳区建国路88号")
        await uow.commit()
        return address.id


async def order_with_coupon(uows, tenant: int, member: int, sku: int, qty: int, address: int):
    async with uows() as uow:
        order = await place_order(uow, tenant, member, [(sku, qty)], address_id=address, now=NOW, timeout=TIMEOUT,
                                  pricing=PricingInput(coupon_id=AUTO))
        b = await pricing.breakdown(uow, tenant, order.id)
        await uow.commit()
        return order, b


async def test_a_business_buyer_gets_a_coupon_only_when_the_tenant_allows_it(uows_b2b, demo):
    uows = uows_b2b
    _, (_, buyer), sku, _ = await company_with_buyers(uows, demo.id, None)      # 企业价 100.00 a unit
    async with uows() as uow:
        consumer, _ = await resolve_member(uow, demo.id, "mp", "o_promo_consumer")
        retail = await uow.session.scalar(select(Sku.price_fen).where(Sku.id == sku))
        template = await loyalty.create_template(uow, demo.id, name="满100减10", kind=CouponKind.AMOUNT,
                                                 threshold_fen=10000, off_fen=1000, per_member=5, total_qty=100)
        await uow.commit()
    b_addr = await with_coupon(uows, demo.id, buyer, template)
    c_addr = await with_coupon(uows, demo.id, consumer.id, template)
    qty = max(2, -(-10000 // retail))           # the consumer's goods reach the coupon's threshold too

    # default: no retail promotion on 企业价 lines, the coupon stays unused
    off, b = await order_with_coupon(uows, demo.id, buyer, sku, 2, b_addr)
    assert b.coupon_id is None and b.discount_fen == 0 and b.goods_fen == 20000
    assert off.total_fen == b.total_fen == 20000 + off.shipping_fen
    c_off, cb = await order_with_coupon(uows, demo.id, consumer.id, sku, qty, c_addr)
    assert cb.goods_fen == retail * qty and cb.off(Step.COUPON) == 1000 and c_off.total_fen == cb.total_fen

    async with uows() as uow:
        assert await promos.set_allowed(uow, demo.id, promos.Allowed(coupon=True), "admin:a")
        await uow.commit()
    async with uows() as uow:
        assert not await promos.set_allowed(uow, demo.id, promos.Allowed(coupon=True), "admin:a")   # no change
        audits = (await uow.session.execute(select(AuditEntry.before, AuditEntry.after).where(
            AuditEntry.action == "b2b.promo_rules"))).all()
    assert len(audits) == 1 and audits[0][0]["coupon"] is False and audits[0][1]["coupon"] is True

    on, b2 = await order_with_coupon(uows, demo.id, buyer, sku, 2, b_addr)
    assert b2.goods_fen == 20000 and b2.off(Step.COUPON) == 1000 and b2.coupon_id is not None
    assert b2.off(Step.LEVEL) == b2.off(Step.POINTS) == b2.off(Step.FLASH) == 0
    assert on.total_fen == b2.total_fen == 20000 - 1000 + on.shipping_fen
    c_on, cb2 = await order_with_coupon(uows, demo.id, consumer.id, sku, qty, c_addr)
    assert (cb2.goods_fen, cb2.off(Step.COUPON), c_on.total_fen) == (cb.goods_fen, 1000, c_off.total_fen)
    async with uows() as uow:
        used = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "b2b.promo_rules"))
    assert used == 1
