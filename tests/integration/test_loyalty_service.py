"""Loyalty and pricing services on a real database (SQLite and PostgreSQL): coupon claims
under contention, checkout with level + flash + 满减 + coupon + points, cancel and refunds
giving back per the rules, sign-in streaks, points expiry, member merge."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from social_mall.loyalty import merge
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.errors import CouponLimitError, CouponSoldOutError, CouponUnavailableError
from social_mall.loyalty.rules import Level, LoyaltyConfig
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import cancel_order, find_order, place_order
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind, Scope, Step
from social_mall.pricing.service import AUTO, NONE, PricingInput
from storage.loyalty_models import Coupon, OrderDiscount
from storage.models import OutboxEvent, Product, Sku

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)  # in the future: rows written at wall-clock time stay "before" it
TIMEOUT = timedelta(minutes=30)


async def buyer(uows, tenant, name: str) -> tuple[int, int]:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", name)
        address = await add_address(uow, tenant.id, member.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        await uow.commit()
    return member.id, address.id


async def sku(uows, title: str, spec: str) -> tuple[int, int, int]:
    async with uows() as uow:
        row = (await uow.session.execute(
            select(Sku.id, Sku.price_fen, Product.category_id).join(Product, Product.id == Sku.product_id)
            .where(Product.title == title, Sku.spec == spec))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def template(uows, tenant, **kw) -> int:
    async with uows() as uow:
        tid = await loyalty.create_template(uow, tenant.id, **kw)
        await uow.commit()
    return tid


async def test_hundred_concurrent_claims_with_ten_left_give_exactly_ten(uows, demo):
    tid = await template(uows, demo, name="满50减5", kind=CouponKind.AMOUNT, threshold_fen=5000, off_fen=500,
                         total_qty=15, per_member=1)
    early = [await buyer(uows, demo, f"o_early_{i}") for i in range(5)]
    for m, _ in early:  # 5 of 15 gone: 10 left
        async with uows() as uow:
            await loyalty.claim(uow, demo.id, m, tid, now=NOW)
            await uow.commit()
    members = [(await buyer(uows, demo, f"o_claim_{i:03d}"))[0] for i in range(100)]
    gate = asyncio.Semaphore(12)   # 100 claims in flight, at most 12 connections (a shared test server)

    async def attempt(member_id: int) -> str:
        async with gate, uows() as uow:
            try:
                await loyalty.claim(uow, demo.id, member_id, tid, now=NOW)
            except CouponSoldOutError:
                await uow.rollback()
                return "sold_out"
            await uow.commit()
            return "ok"

    results = await asyncio.gather(*(attempt(m) for m in members))
    assert results.count("ok") == 10 and results.count("sold_out") == 90
    async with uows() as uow:
        t = await loyalty.repo(uow).template(demo.id, tid)
        issued = (await uow.session.execute(select(Coupon).where(Coupon.template_id == tid))).scalars().all()
    assert (t.claimed_qty, len(issued)) == (15, 15)


async def test_one_member_tapping_twice_at_once_gets_one_coupon(uows, demo):
    tid = await template(uows, demo, name="新人券", kind=CouponKind.AMOUNT, off_fen=300, total_qty=100)
    m, _ = await buyer(uows, demo, "o_twice")

    async def attempt() -> str:
        async with uows() as uow:
            try:
                await loyalty.claim(uow, demo.id, m, tid, now=NOW)
            except CouponLimitError:
                await uow.rollback()
                return "limit"
            await uow.commit()
            return "ok"

    assert sorted(await asyncio.gather(*(attempt() for _ in range(5)))) == ["limit"] * 4 + ["ok"]
    async with uows() as uow:
        assert (await loyalty.repo(uow).template(demo.id, tid)).claimed_qty == 1


async def test_checkout_applies_every_promotion_in_order_and_locks_what_it_uses(uows, demo):
    m, addr = await buyer(uows, demo, "o_promo")
    tea, tea_price, tea_cat = await sku(uows, "西湖龙井", "250g")
    orange, orange_price, _ = await sku(uows, "赣南脐橙", "5斤装")
    async with uows() as uow:
        await loyalty.set_levels(uow, demo.id, [Level("普通会员", 0), Level("金卡会员", 100, 9500)])
        await loyalty.add_flash_price(uow, demo.id, orange, 3500, starts_at=NOW - timedelta(hours=1),
                                      ends_at=NOW + timedelta(hours=1))
        await loyalty.add_full_reduction(uow, demo.id, 30000, 3000)
        await loyalty.adjust_points(uow, demo.id, m, 1000, ref="gift", actor="admin:1", note="赠送", now=NOW)
        await uow.commit()
    small = await template(uows, demo, name="满100减10", kind=CouponKind.AMOUNT, threshold_fen=10000, off_fen=1000)
    big = await template(uows, demo, name="茶叶9折", kind=CouponKind.PERCENT, off_bp=1000, cap_fen=5000,
                         scope=Scope.CATEGORIES, scope_ids=[tea_cat])
    async with uows() as uow:
        await loyalty.claim(uow, demo.id, m, small, now=NOW)
        best = await loyalty.claim(uow, demo.id, m, big, now=NOW)
        acc = await loyalty.repo(uow).ensure_account(demo.id, m, "普通会员")
        await loyalty.repo(uow).add_growth(demo.id, m, 150)   # 金卡: 95折
        await uow.commit()

    async with uows() as uow:
        order = await place_order(uow, demo.id, m, [(tea, 1), (orange, 2)], address_id=addr, now=NOW,
                                  timeout=TIMEOUT, pricing=PricingInput(AUTO, 500))
        b = await pricing.breakdown(uow, demo.id, order.id)
        await uow.commit()
    goods = tea_price + 2 * orange_price
    assert [a.step for a in b.adjustments] == [Step.LEVEL, Step.FLASH, Step.FULL, Step.COUPON, Step.POINTS]
    assert b.coupon_id == best.id                 # 10% of the tea beats 满100减10
    assert b.points_used == 500 and b.points_fen == 500
    assert (order.goods_fen, order.discount_fen, order.total_fen) == (goods, b.discount_fen, b.total_fen)
    assert order.total_fen == goods + order.shipping_fen - order.discount_fen
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 500
        assert await loyalty.ledger_consistent(uow, demo.id, m)
        coupon, _ = await loyalty.repo(uow).coupon(demo.id, best.id)
        assert (coupon.status, coupon.order_id) == ("locked", order.id)

    # the same coupon can't go on a second order while it is locked
    async with uows() as uow:
        with pytest.raises(CouponUnavailableError):
            await place_order(uow, demo.id, m, [(tea, 1)], address_id=addr, now=NOW, timeout=TIMEOUT,
                              pricing=PricingInput(best.id, 0))

    # cancel: coupon and points come back
    async with uows() as uow:
        await cancel_order(uow, demo.id, order.id, reason="buyer", now=NOW)
        await uow.commit()
    async with uows() as uow:
        await loyalty.on_order_cancelled(uow, demo.id, order.id, NOW)
        await loyalty.on_order_cancelled(uow, demo.id, order.id, NOW)   # a retried delivery
        await uow.commit()
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 1000
        assert await loyalty.ledger_consistent(uow, demo.id, m)
        coupon, _ = await loyalty.repo(uow).coupon(demo.id, best.id)
        assert (coupon.status, coupon.order_id) == ("available", None)


async def test_without_pricing_nothing_changes_and_group_prices_are_the_start(uows, demo):
    m, addr = await buyer(uows, demo, "o_group")
    tea, tea_price, _ = await sku(uows, "西湖龙井", "250g")
    await template(uows, demo, name="立减5元", kind=CouponKind.AMOUNT, off_fen=500)
    async with uows() as uow:
        plain = await place_order(uow, demo.id, m, [(tea, 1)], address_id=addr, now=NOW, timeout=TIMEOUT)
        assert plain.discount_fen == 0 and plain.total_fen == plain.goods_fen + plain.shipping_fen
        assert await pricing.breakdown(uow, demo.id, plain.id) is None
        tid = (await loyalty.claimable(uow, demo.id, m, NOW))[0].id
        await loyalty.claim(uow, demo.id, m, tid, now=NOW)
        group = await place_order(uow, demo.id, m, [(tea, 1)], address_id=addr, now=NOW, timeout=TIMEOUT,
                                  unit_prices={tea: 9900}, pricing=PricingInput(AUTO, 0))
        await uow.commit()
    assert group.goods_fen == 9900 and group.discount_fen == 500 and group.total_fen == 9900 - 500


async def _paid(uows, tenant, order_id: int, amount: int) -> None:
    """Mark an order paid the way the gateway does (payments.apply_transaction)."""
    from social_mall.orders.rules import OrderStatus

    async with uows() as uow:
        assert await uow.orders.move(tenant.id, order_id, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID,
                                     paid_at=NOW, paid_fen=amount)
        await uow.commit()


async def test_refunds_return_points_proportionally_and_the_coupon_only_when_full(uows, demo):
    m, addr = await buyer(uows, demo, "o_refund")
    tea, _, _ = await sku(uows, "西湖龙井", "250g")
    tid = await template(uows, demo, name="立减10元", kind=CouponKind.AMOUNT, off_fen=1000)
    async with uows() as uow:
        await loyalty.adjust_points(uow, demo.id, m, 300, ref="gift2", actor="admin:1", note="", now=NOW)
        c = await loyalty.claim(uow, demo.id, m, tid, now=NOW)
        order = await place_order(uow, demo.id, m, [(tea, 2)], address_id=addr, now=NOW, timeout=TIMEOUT,
                                  pricing=PricingInput(c.id, 300))
        await uow.commit()
    await _paid(uows, demo, order.id, order.total_fen)
    async with uows() as uow:
        assert await loyalty.on_order_paid(uow, demo.id, order.id, m, order.total_fen, NOW)
        assert not await loyalty.on_order_paid(uow, demo.id, order.id, m, order.total_fen, NOW)
        await uow.commit()
    earned = order.total_fen // 100
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == earned
        assert (await loyalty.repo(uow).coupon(demo.id, c.id))[0].status == "used"

    paid = order.total_fen
    first = paid // 3
    async with uows() as uow:
        out = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=first, paid_fen=paid,
                                              full=False, ref="r1", now=NOW)
        again = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=first, paid_fen=paid,
                                                full=False, ref="r1", now=NOW)
        await uow.commit()
    assert again is None
    assert out.points_returned == 300 * first // paid and not out.coupon_returned
    assert sum(out.line_refunds) == first
    async with uows() as uow:
        out2 = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=paid - first, paid_fen=paid,
                                               full=True, ref="r2", now=NOW)
        await uow.commit()
    assert out.points_returned + out2.points_returned == 300 and out2.coupon_returned
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 300       # spent back, earned taken back
        assert await loyalty.ledger_consistent(uow, demo.id, m)
        d = (await uow.session.execute(select(OrderDiscount).where(OrderDiscount.order_id == order.id))).scalar_one()
        b = await pricing.breakdown(uow, demo.id, order.id)
        assert d.line_refunds == [ln.pay_fen for ln in b.lines] + [b.shipping_pay_fen]
        assert (await loyalty.repo(uow).coupon(demo.id, c.id))[0].status == "available"


@pytest.mark.parametrize("full", [False, True])
async def test_a_refund_handled_before_the_payment_leaves_what_in_order_would(uows, demo, full):
    """order.refunded delivered before order.paid (each outbox delivery retries on its own):
    points, growth and the coupon end as if the events had come in order, once."""
    m, addr = await buyer(uows, demo, f"o_refund_first_{full}")
    tea, _, _ = await sku(uows, "西湖龙井", "250g")
    tid = await template(uows, demo, name="立减10元", kind=CouponKind.AMOUNT, off_fen=1000)
    async with uows() as uow:
        await loyalty.adjust_points(uow, demo.id, m, 300, ref=f"gift_rf_{full}", actor="admin:1", note="", now=NOW)
        c = await loyalty.claim(uow, demo.id, m, tid, now=NOW)
        order = await place_order(uow, demo.id, m, [(tea, 2)], address_id=addr, now=NOW, timeout=TIMEOUT,
                                  pricing=PricingInput(c.id, 300))
        await uow.commit()
    await _paid(uows, demo, order.id, order.total_fen)
    paid = order.total_fen
    refund = paid if full else paid // 3
    async with uows() as uow:
        growth_before = (await loyalty.account(uow, demo.id, m, NOW)).growth
        out = await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=refund, paid_fen=paid,
                                              full=full, ref="r1", now=NOW)
        await uow.commit()
    assert out.points_returned == 300 * refund // paid
    async with uows() as uow:
        assert await loyalty.on_order_paid(uow, demo.id, order.id, m, paid, NOW)
        await uow.commit()
    async with uows() as uow:                   # a repeat delivery of the payment: nothing more
        assert not await loyalty.on_order_paid(uow, demo.id, order.id, m, paid, NOW)
        await uow.commit()
    earned = paid // 100
    kept = 0 if full else earned - earned * refund // paid
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 300 * refund // paid + kept
        assert await loyalty.ledger_consistent(uow, demo.id, m)
        assert (await loyalty.account(uow, demo.id, m, NOW)).growth == growth_before + kept
        assert (await loyalty.repo(uow).coupon(demo.id, c.id))[0].status == ("available" if full else "used")
    if not full:                                # the rest, in order now: everything comes back
        async with uows() as uow:
            await loyalty.on_order_refunded(uow, demo.id, order.id, m, refund_fen=paid - refund, paid_fen=paid,
                                            full=True, ref="r2", now=NOW)
            await uow.commit()
        async with uows() as uow:
            assert await loyalty.points_balance(uow, demo.id, m) == 300
            assert await loyalty.ledger_consistent(uow, demo.id, m)
            assert (await loyalty.account(uow, demo.id, m, NOW)).growth == growth_before
            assert (await loyalty.repo(uow).coupon(demo.id, c.id))[0].status == "available"


async def test_sign_in_once_a_day_with_a_streak_bonus(uows, demo):
    m, _ = await buyer(uows, demo, "o_signin")
    async with uows() as uow:
        await loyalty.configure(uow, demo.id, LoyaltyConfig(signin_points=5, streak_days=3, streak_bonus=10))
        await uow.commit()
    got = []
    for day in (0, 0, 1, 2, 4):
        async with uows() as uow:
            s = await loyalty.sign_in(uow, demo.id, m, NOW + timedelta(days=day))
            await uow.commit()
        got.append((s.already, s.points, s.streak))
    assert got == [(False, 5, 1), (True, 0, 1), (False, 5, 2), (False, 15, 3), (False, 5, 1)]
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 30


async def test_points_expire_once_and_the_balance_stays_the_ledger_sum(uows, demo):
    m, _ = await buyer(uows, demo, "o_expire")
    async with uows() as uow:
        await loyalty.configure(uow, demo.id, LoyaltyConfig(points_valid_days=30))
        await loyalty.adjust_points(uow, demo.id, m, 100, ref="a", actor="t", note="", now=NOW)
        await loyalty.adjust_points(uow, demo.id, m, 50, ref="b", actor="t", note="", now=NOW + timedelta(days=20))
        await loyalty.spend_points(uow, demo.id, m, 30, "s", NOW + timedelta(days=21))
        await uow.commit()
    later = NOW + timedelta(days=31)
    assert await asyncio.gather(loyalty.expire_points(uows, later), loyalty.expire_points(uows, later)) in (
        [70, 0], [0, 70])
    async with uows() as uow:
        assert await loyalty.points_balance(uow, demo.id, m) == 50
        assert await loyalty.ledger_consistent(uow, demo.id, m)
    assert await loyalty.expire_points(uows, NOW + timedelta(days=51)) == 50


async def test_merge_keeps_orders_points_coupons_and_tells_other_modules(engine, demo, kv):
    from storage.db import session_factory
    from storage.uow import uow_factory

    uows = uow_factory(session_factory(engine), {"member.merged": ["referral.merge"]})
    a, addr = await buyer(uows, demo, "o_merge_a")
    async with uows() as uow:
        b, _ = await resolve_member(uow, demo.id, "h5", "h5_merge_b")
        await uow.commit()
    b = b.id
    tea, _, _ = await sku(uows, "西湖龙井", "250g")
    tid = await template(uows, demo, name="立减1元", kind=CouponKind.AMOUNT, off_fen=100)
    async with uows() as uow:
        await loyalty.adjust_points(uow, demo.id, a, 40, ref="ma", actor="t", note="", now=NOW)
        await loyalty.adjust_points(uow, demo.id, b, 60, ref="mb", actor="t", note="", now=NOW)
        await loyalty.claim(uow, demo.id, a, tid, now=NOW)
        await loyalty.claim(uow, demo.id, b, tid, now=NOW)
        baddr = await add_address(uow, demo.id, b, "王五", "13700137000", "上海市浦东新区1号")
        order = await place_order(uow, demo.id, b, [(tea, 1)], address_id=baddr.id, now=NOW, timeout=TIMEOUT)
        await uow.commit()
    async with uows() as uow:
        code = await merge.issue_bind_code(uow, demo.id, a, NOW)
        await uow.commit()
    async with uows() as uow:
        result = await merge.bind_with_code(uow, kv, demo.id, b, code, NOW + timedelta(minutes=1))
        await uow.commit()
    assert (result.kept, result.merged) == (a, b)
    async with uows() as uow:
        again, _ = await resolve_member(uow, demo.id, "h5", "h5_merge_b")
        assert again.id == a
        assert (await find_order(uow, demo.id, order.order_no, member_id=a)).id == order.id
        assert await loyalty.points_balance(uow, demo.id, a) == 100
        assert await loyalty.ledger_consistent(uow, demo.id, a)
        assert len(await loyalty.repo(uow).coupons(demo.id, a)) == 2
        events = (await uow.session.execute(select(OutboxEvent).where(OutboxEvent.topic == "member.merged"))
                  ).scalars().all()
    assert [(e.subscriber, e.payload["kept_member_id"], e.payload["merged_member_id"]) for e in events] == [
        ("referral.merge", a, b)]
    async with uows() as uow:   # a code works once
        from social_mall.codes import CodeError

        with pytest.raises(CodeError):
            await merge.bind_with_code(uow, kv, demo.id, b, code, NOW + timedelta(minutes=2))


async def test_quote_proposes_the_best_coupon_and_none_when_refused(uows, demo):
    m, _ = await buyer(uows, demo, "o_quote")
    tea, tea_price, _ = await sku(uows, "西湖龙井", "250g")
    await template(uows, demo, name="立减5元", kind=CouponKind.AMOUNT, off_fen=500)
    await template(uows, demo, name="9折", kind=CouponKind.PERCENT, off_bp=1000)
    async with uows() as uow:
        for t in await loyalty.claimable(uow, demo.id, m, NOW):
            await loyalty.claim(uow, demo.id, m, t.id, now=NOW)
        lines = await pricing.price_lines(uow, demo.id, [(tea, tea_price, 1)])
        auto = await pricing.quote(uow, demo.id, m, lines, 0, PricingInput(AUTO, 0), now=NOW)
        none = await pricing.quote(uow, demo.id, m, lines, 0, PricingInput(NONE, 0), now=NOW)
    assert auto.breakdown.off(Step.COUPON) == max(500, tea_price // 10)
    assert none.breakdown.discount_fen == 0 and none.best_coupon_id == auto.best_coupon_id


async def test_event_and_admin_coupons(uows, demo):
    m, _ = await buyer(uows, demo, "o_events")
    welcome = await template(uows, demo, name="新人券", kind=CouponKind.SHIPPING, claimable=False,
                             issue_on="member.joined", total_qty=2)
    async with uows() as uow:
        assert await loyalty.claimable(uow, demo.id, m, NOW) == []          # not listed in 领券
        got = await loyalty.issue_on_event(uow, demo.id, m, "member.joined", NOW)
        again = await loyalty.issue_on_event(uow, demo.id, m, "member.joined", NOW)
        await uow.commit()
    assert [c.name for c in got] == ["新人券"] and again == []
    async with uows() as uow:
        extra = await loyalty.issue_coupon(uow, demo.id, m, welcome, actor="admin:1", now=NOW)
        await uow.commit()
    assert extra is not None
    async with uows() as uow:
        assert len(await loyalty.repo(uow).coupons(demo.id, m)) == 2
        issued = (await uow.session.execute(select(OutboxEvent).where(OutboxEvent.topic == "loyalty.coupon_issued"))
                  ).scalars().all()
    assert len(issued) == 2
