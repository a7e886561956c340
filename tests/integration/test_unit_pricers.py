"""The unit-price seam (social_mall/pricing/unit.py): a registered pricer's price is what
place_order charges the members it prices, its refusal writes nothing, a member it doesn't
price (a consumer) pays the SKU's own price, and a unit of work without pricers is the
shop as it was."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from social_mall.errors import InvalidQuantityError, MallError
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.pricing.rules import PriceLine, PricingContext, price
from social_mall.pricing.service import PricingInput
from social_mall.pricing.unit import UnitPrice, Wanted, unit_prices
from storage.db import session_factory
from storage.models import Order, Sku
from storage.uow import uow_factory

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


class TooFewError(MallError):
    code = "too_few"


@dataclass
class HalfPrice:
    """Half the retail price for one member; fewer than 3 refused."""

    member: int
    key: str = "half"
    asked: list[int] = field(default_factory=list)
    placed_orders: list[str] = field(default_factory=list)

    async def prices(self, uow, tenant, member, lines, now):
        self.asked.append(member)
        if member != self.member:
            return {}
        return {ln.sku_id: UnitPrice(ln.retail_fen // 2, "企业价") for ln in lines}

    async def placed(self, uow, tenant, order, now):
        self.placed_orders.append(order.order_no)

    async def max_qty(self, uow, tenant, member):
        return 500 if member == self.member else 0

    async def check(self, uow, tenant, member, lines, now):
        if member == self.member and any(ln.qty < 3 for ln in lines):
            raise TooFewError()


async def _member(uows, tenant, openid):
    async with uows() as uow:
        m, _ = await resolve_member(uow, tenant, "mp", openid)
        a = await add_address(uow, tenant, m.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        await uow.commit()
    return m.id, a.id


async def test_a_pricers_price_is_charged_to_its_member_only_and_its_refusal_writes_nothing(engine, demo):
    plain = uow_factory(session_factory(engine), {})
    async with plain() as uow:
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == demo.id, Sku.stock >= 10).order_by(Sku.id))
        sku_id, retail = sku.id, sku.price_fen
    biz, biz_addr = await _member(plain, demo.id, "o_biz_pricer")
    shopper, shop_addr = await _member(plain, demo.id, "o_consumer_pricer")
    pricer = HalfPrice(biz)
    priced = uow_factory(session_factory(engine), {}, pricers=[pricer])

    async with priced() as uow:
        with pytest.raises(TooFewError):
            await place_order(uow, demo.id, biz, [(sku_id, 2)], address_id=biz_addr, now=NOW, timeout=TIMEOUT)
        await uow.rollback()
    async with priced() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Order).where(Order.member_id == biz)) == 0
        assert await uow.catalog.stock(demo.id, sku_id) == sku.stock

    async with priced() as uow:
        mine = await place_order(uow, demo.id, biz, [(sku_id, 4)], address_id=biz_addr, now=NOW, timeout=TIMEOUT,
                                 pricing=PricingInput(), expect_total_fen=None)
        theirs = await place_order(uow, demo.id, shopper, [(sku_id, 1)], address_id=shop_addr, now=NOW,
                                   timeout=TIMEOUT)
        await uow.commit()
    assert mine.lines[0].price_fen == retail // 2 and mine.goods_fen == retail // 2 * 4
    assert theirs.lines[0].price_fen == retail
    assert shopper in pricer.asked
    assert pricer.placed_orders == [mine.order_no, theirs.order_no]      # told of every order, in its transaction

    async with priced() as uow:   # the pricer's member may order more than the retail cap of 99; others not
        big = await place_order(uow, demo.id, biz, [(sku_id, 150)], address_id=biz_addr, now=NOW, timeout=TIMEOUT)
        assert big.lines[0].qty == 150
        with pytest.raises(InvalidQuantityError):
            await place_order(uow, demo.id, shopper, [(sku_id, 150)], address_id=shop_addr, now=NOW, timeout=TIMEOUT)
        with pytest.raises(InvalidQuantityError):
            await place_order(uow, demo.id, biz, [(sku_id, 501)], address_id=biz_addr, now=NOW, timeout=TIMEOUT)
        await uow.rollback()

    async with plain() as uow:   # no pricers: the SKU's own price, nothing asked
        again = await place_order(uow, demo.id, biz, [(sku_id, 1)], address_id=biz_addr, now=NOW, timeout=TIMEOUT)
        assert await unit_prices(uow, demo.id, biz, [Wanted(sku_id, 0, retail, 1)], NOW) == {}
        await uow.rollback()
    assert again.lines[0].price_fen == retail


def test_a_fixed_line_takes_no_retail_promotion_and_counts_towards_no_threshold():
    from social_mall.pricing.rules import CouponKind, CouponRule, FullReduction, PointsRule

    lines = [PriceLine(1, 1, 1, 5000, 2, fixed=True), PriceLine(2, 2, 1, 3000, 1)]
    ctx = PricingContext(level_name="金卡", level_bp=9000, flash={1: 100, 2: 2500},
                         full_reductions=(FullReduction(5000, 1000),),
                         coupon=CouponRule(9, "满20减5", CouponKind.AMOUNT, threshold_fen=2000, off_fen=500),
                         points_rule=PointsRule(100, 5000), points_balance=10**6, points_wanted=10**6)
    b = price(lines, 0, ctx)
    assert b.lines[0].pay_fen == 10000 and sum(b.lines[0].offs) == 0
    # the free line: 90% of 3000 = 2700, flash 2500, no 满减 (2500 < 5000 without the fixed line),
    # coupon 500 → 2000, points at most half → 1000
    assert b.lines[1].pay_fen == 1000
    assert b.off(b.adjustments[0].step) >= 0 and b.total_fen == 11000
    only_fixed = price([PriceLine(1, 1, 1, 5000, 2, fixed=True)], 800, ctx)
    assert only_fixed.total_fen == 10800 and not only_fixed.adjustments
