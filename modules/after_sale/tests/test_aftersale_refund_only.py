"""Refund only (仅退款) and the timers, on both backends.

Before shipping, a member asks for part of an order: the merchant's approval asks the
core for that part at once; the request for the rest brings the shipping fee with it and
closes the order. Units that won't ship go back to sellable stock when their refund is
asked, the rest when the order closes: each unit once. A request nobody answers is approved by
the timer; a return never sent back closes and frees its units; every sweep is idempotent
and two workers sweeping at once move a request once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from social_mall_after_sale import service
from social_mall_after_sale.models import AfterSale, AfterSaleLog
from storage.models import Refund

from after_kit import (
    REQUEST_NO, START, Clock, SecondWorker, buy_and_pay, console, make_mall, order, post, pushes, say, settle, ship, simulator,
    stock,
)

BUYER = "oUser_aftersale_refund_0001"


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def ask(wx, pick: str, *, kind: str | None = None, reason: str = "1") -> int:
    await say(wx, BUYER, "申请售后")
    await say(wx, BUYER, "1")
    await say(wx, BUYER, pick)
    await say(wx, BUYER, "下一步")
    if kind is not None:
        await say(wx, BUYER, kind)
    await say(wx, BUYER, reason)
    submitted = await say(wx, BUYER, "提交")
    assert "售后申请已提交" in submitted, submitted
    return int(REQUEST_NO.search(submitted).group(1))


async def row(shop, rid: int) -> AfterSale:
    async with shop.svc.uows() as uow:
        return await uow.session.scalar(select(AfterSale).where(AfterSale.id == rid))


async def test_refund_only_before_shipping_in_two_parts_ends_with_the_shipping_fee(shop):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)            # ¥59.80 + ¥8 shipping
    paid = await order(shop, order_no)
    assert (paid.paid_fen, paid.shipping_fen) == (6780, 800)
    shelf = await stock(shop, "芒果干")
    await console(shop)

    first = await ask(wx, "1 x1")
    assert (await post(shop, f"/console/after_sale/{first}/approve")).status == 303
    await settle(shop)
    assert ((await row(shop, first)).status, (await row(shop, first)).refund_fen) == ("refunded", 2990)
    mid = await order(shop, order_no)
    assert (mid.status, mid.refunded_fen) == ("paid", 2990)
    assert await stock(shop, "芒果干") == shelf + 1                          # the unit that won't ship is sellable again
    assert any("售后单" in p and "退款 ¥29.90 处理中" in p for p in pushes(shop, BUYER))

    second = await ask(wx, "1")                                             # the last unit: all that's left
    assert (await post(shop, f"/console/after_sale/{second}/approve")).status == 303
    await settle(shop)
    assert (await row(shop, second)).refund_fen == 2990 + 800                # with the shipping fee
    done = await order(shop, order_no)
    assert (done.status, done.refunded_fen) == ("refunded", 6780)
    assert await stock(shop, "芒果干") == shelf + 2          # the core's restock of an unshipped order: the rest, each unit once
    assert "暂时没有可以申请售后的订单" in await say(wx, BUYER, "申请售后")


async def test_an_unanswered_request_is_approved_by_the_timer_once(shop, clock, backend):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 1)
    rid = await ask(wx, "1")
    assert await service.approve_unanswered(shop.svc.uows, clock()) == 0    # not due yet
    clock.advance(days=3, seconds=1)
    other = SecondWorker(shop, backend)
    try:
        a, b = await asyncio.gather(service.approve_unanswered(shop.svc.uows, clock()),
                                    service.approve_unanswered(other.uows, clock()))
    finally:
        await other.close()
    assert a + b == 1
    assert await service.approve_unanswered(shop.svc.uows, clock()) == 0
    await settle(shop)
    r = await row(shop, rid)
    assert (r.status, r.refund_fen) == ("refunded", 2990 + 800)
    async with shop.svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).where(Refund.order_id == r.order_id))).all()
        assert [x.amount_fen for x in refunds] == [3790]
    assert (await order(shop, order_no)).status == "refunded"
    assert any("超时自动同意" in p for p in pushes(shop, BUYER))


async def test_a_return_not_sent_back_in_time_closes_and_frees_its_units(shop, clock):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)
    await console(shop)
    await ship(shop, order_no)
    rid = await ask(wx, "1", kind="1")
    assert (await post(shop, f"/console/after_sale/{rid}/approve")).status == 303
    clock.advance(days=6)
    assert await service.close_unreturned(shop.svc.uows, clock()) == 0
    clock.advance(days=1, seconds=1)
    assert await service.close_unreturned(shop.svc.uows, clock()) == 1
    assert await service.close_unreturned(shop.svc.uows, clock()) == 0
    await settle(shop)
    assert (await row(shop, rid)).status == "closed"
    assert any(f"售后单 {rid} 已关闭：超时未寄回商品" in p for p in pushes(shop, BUYER))
    # too late for the tracking number; the units can be asked for again
    assert "不能这样操作" in await say(wx, BUYER, f"售后{rid} 退货单号 SF1234567890")
    assert "1. 芒果干 500g ×2" in (await say(wx, BUYER, "申请售后") and await say(wx, BUYER, "1"))
    async with shop.svc.uows() as uow:
        dsts = [e.dst for e in (await uow.session.scalars(select(AfterSaleLog).where(AfterSaleLog.request_id == rid)
                                                          .order_by(AfterSaleLog.id))).all()]
    assert dsts == ["pending", "await_return", "closed"]
    assert (await order(shop, order_no)).refunded_fen == 0


async def test_the_member_withdraws_and_the_timers_read_the_tenant_settings(shop, clock):
    wx = simulator(shop)
    await buy_and_pay(shop, wx, BUYER, "芒果干", 1)
    await console(shop)
    page = await (await shop.client.get("/console/after_sale_settings")).text()
    assert 'name="answer_days" value="3"' in page
    bad = await post(shop, "/console/after_sale_settings", answer_days="0", return_days="7")
    assert bad.status == 400 and "天数须为 1–30 的整数" in await bad.text()
    assert (await post(shop, "/console/after_sale_settings", answer_days="1", return_days="5")).status == 303
    rid = await ask(wx, "1")
    assert "撤销" in await say(wx, BUYER, f"撤销售后 {rid}")
    assert (await row(shop, rid)).status == "withdrawn"
    again = await ask(wx, "1")
    clock.advance(days=1, seconds=1)                                          # the tenant's 1 day
    assert await service.approve_unanswered(shop.svc.uows, clock()) == 1
    assert (await row(shop, again)).status == "refunding"


async def test_no_auto_confirm_while_a_request_is_open(shop, clock):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)
    await console(shop)
    await ship(shop, order_no)
    rid = await ask(wx, "1 x1", kind="1")
    jobs = {j.name: j for j in shop.svc.registry.jobs}
    clock.advance(days=2)
    assert await service.approve_unanswered(shop.svc.uows, clock()) == 0       # the merchant still has time
    clock.advance(days=9)                                                    # past the 10 days after shipping
    assert await jobs["orders.receipt_reminders"].run() == 0
    assert await jobs["orders.auto_complete"].run() == 0
    assert (await order(shop, order_no)).status == "shipped"
    assert (await post(shop, f"/console/after_sale/{rid}/reject", reason="照片看不出问题")).status == 303
    assert await jobs["orders.receipt_reminders"].run() == 1
    assert await jobs["orders.auto_complete"].run() == 1
    assert (await order(shop, order_no)).status == "completed"


async def test_a_refund_the_gateway_refuses_is_asked_again_once_with_a_new_number(shop, backend):
    from social_mall.payments.service import settle_refund

    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)
    await console(shop)
    rid = await ask(wx, "1 x1")
    tenant = await shop.svc.tenant("demo")
    shop.svc.outbox.kick = lambda: None                      # hold the gateway call: the refund stays pending
    assert (await post(shop, f"/console/after_sale/{rid}/approve")).status == 303
    first = (await row(shop, rid)).out_refund_no
    async with shop.svc.uows() as uow:
        assert await settle_refund(uow, first, tenant=tenant.id, status="ABNORMAL", now=shop.svc.clock())
        await uow.commit()
    page = await (await shop.client.get(f"/console/after_sale/{rid}")).text()
    assert 'id="refund-failed"' in page and "重新退款" in page
    other = SecondWorker(shop, backend)
    try:
        from social_mall_after_sale.errors import AfterSaleRefusedError

        async def retry(factory) -> str:
            async with factory() as uow:
                try:
                    await service.retry_refund(uow, tenant.id, rid, actor="admin:x", now=shop.svc.clock())
                except AfterSaleRefusedError:
                    return "refused"
                await uow.commit()
                return "ok"

        assert sorted(await asyncio.gather(retry(shop.svc.uows), retry(other.uows))) == ["ok", "refused"]
    finally:
        await other.close()
    second = (await row(shop, rid)).out_refund_no
    assert second and second != first
    await settle(shop)
    r = await row(shop, rid)
    assert (r.status, r.refund_fen) == ("refunded", 2990)
    async with shop.svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).where(Refund.order_id == r.order_id)
                                             .order_by(Refund.id))).all()
    assert [(x.out_refund_no, x.amount_fen, x.status) for x in refunds] == [
        (first, 2990, "failed"), (second, 2990, "succeeded")]
    assert (await order(shop, order_no)).refunded_fen == 2990
    assert (await post(shop, f"/console/after_sale/{rid}/retry")).status == 409     # nothing failed now
