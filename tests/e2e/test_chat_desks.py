"""The real paths through the batching desks (#23): the chat checkout's 确认 places a plain
order through the order desk (social_mall/orders/desk.py: `route` is the rule) and the
WeChat Pay notify applies through the payments desk, with the rows, events and replies of
the single path: the same order as place_order writes for the same basket, the same
breakdown, one order.paid for three notifies. A step whose own transaction fails after the
desk committed cancels the desk's order (stock back)."""

from __future__ import annotations

import re

import flows.checkout
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.desk import DESK
from social_mall.payments.desk import APPLY_DESK
from storage.loyalty_models import OrderDiscount
from storage.models import Order, OrderLine, PayNotification
from storage.uow import UnitOfWork
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.e2e.test_pay_wechat import _open_jsapi, wxpay  # noqa: F401 - the fixture
from tests.fakes.pay_kit import load

BUYER = "oUser_desk_buyer_0000000001"
BASKET = ("分类", "1", "1", "1 x2")


def _chat(mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)


async def _done(mall, name: str) -> int:
    async with mall.svc.uows() as uow:
        desk = uow.shared.get(name)
    return 0 if desk is None else desk.done + desk.retried


def _pg(mall) -> bool:
    return mall.svc.settings.database_url.startswith("postgresql")


async def _buy(wx, *typed: str) -> str:
    for text in (*BASKET, *typed):
        assert (await wx.text(BUYER, text)).status == 200
    return (await wx.text(BUYER, "确认")).text


async def _rows(mall, order_no: str):
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        lines = list((await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id))).all())
        disc = await uow.session.scalar(select(OrderDiscount).where(OrderDiscount.order_id == o.id))
        stock = await uow.catalog.stock(o.tenant_id, lines[0].sku_id)
    return o, lines, disc, stock


def _same(o: Order) -> tuple:
    return (o.status, o.member_id, o.channel, o.goods_fen, o.shipping_fen, o.discount_fen, o.total_fen,
            o.ship_name, o.ship_phone, o.ship_address, o.source, o.fulfilment, o.channel_account_id,
            o.pay_account_id, o.expires_at - o.created_at)


async def test_a_saved_address_order_goes_through_the_desk_and_matches_place_order(mall):
    wx = _chat(mall)
    await wx.event(BUYER, "subscribe")
    before = await _done(mall, DESK)
    # the first order types its address: saved in the step's own transaction, place_order writes it
    first = await _buy(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    assert await _done(mall, DESK) == before
    stock1 = (await _rows(mall, re.search(r"订单号：(\d+)", first).group(1)))[3]
    # the second ships to the saved default: the desk writes it, the reply is the same
    second = await _buy(wx)
    assert await _done(mall, DESK) == before + (1 if _pg(mall) else 0)   # SQLite: place_order
    n1, n2 = (re.search(r"订单号：(\d+)", t).group(1) for t in (first, second))
    assert re.sub(r"\d{6,}|t=\w+", "N", first) == re.sub(r"\d{6,}|t=\w+", "N", second)
    o1, l1, d1, _ = await _rows(mall, n1)
    o2, l2, d2, stock2 = await _rows(mall, n2)
    assert _same(o1) == _same(o2) and o2.status == "pending_payment"
    assert [(ln.sku_id, ln.title, ln.spec, ln.price_fen, ln.qty, ln.line_fen) for ln in l1] == \
           [(ln.sku_id, ln.title, ln.spec, ln.price_fen, ln.qty, ln.line_fen) for ln in l2]
    assert stock2 == stock1 - 2
    assert (d1 is None) == (d2 is None)   # the pipeline's row, as place_order stores it
    if d1 is not None:
        assert (d2.breakdown, d2.discount_fen, d2.line_refunds) == (d1.breakdown, d1.discount_fen, d1.line_refunds)
    async with mall.svc.uows() as uow:
        placed = await uow.outbox.count("order.placed")
    assert placed >= 2


async def test_a_desk_order_whose_step_fails_is_cancelled_and_its_stock_returned(mall, monkeypatch):
    wx = _chat(mall)
    await wx.event(BUYER, "subscribe")
    first = await _buy(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    o1, lines, _, stock = await _rows(mall, re.search(r"订单号：(\d+)", first).group(1))
    before = await _done(mall, DESK)

    async def broken(*args, **kwargs):
        raise RuntimeError("the step fails after the desk committed")
    monkeypatch.setattr(flows.checkout, "use_address", broken)
    for text in BASKET:
        assert (await wx.text(BUYER, text)).status == 200
    reply = (await wx.text(BUYER, "确认")).text
    assert "订单号" not in reply
    pg = _pg(mall)
    assert await _done(mall, DESK) == before + (1 if pg else 0)   # PostgreSQL: the desk did write it…
    async with mall.svc.uows() as uow:
        rows = list((await uow.session.scalars(
            select(Order).where(Order.member_id == o1.member_id).order_by(Order.id))).all())
        now_stock = await uow.catalog.stock(rows[0].tenant_id, lines[0].sku_id)
    if pg:   # …and it was undone
        assert [(o.status, o.cancel_reason) for o in rows] == [("pending_payment", ""), ("cancelled", "checkout_undone")]
    else:    # SQLite: place_order wrote it in the step's transaction, rolled back with it
        assert [o.status for o in rows] == ["pending_payment"]
    assert now_stock == stock
    monkeypatch.undo()
    # the buyer's next 确认 places it
    assert "订单号" in await _buy(wx)


async def test_pay_notify_goes_through_the_payments_desk_once(mall, wxpay):  # noqa: F811
    tenant, order = await _open_jsapi(mall, wxpay)
    before = await _done(mall, APPLY_DESK)
    headers, body = wxpay.notify_for(order.order_no)
    for _ in range(3):   # a repeated notify answers SUCCESS (204) and changes nothing
        assert (await mall.client.post("/pay/notify/demo", data=body, headers=headers)).status == 204
    assert await _done(mall, APPLY_DESK) == before + 3
    await mall.settle()
    paid = await load(mall, tenant, order.order_no)
    assert (paid.status, paid.paid_fen) == ("paid", order.total_fen)
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1
        verdicts = list((await uow.session.scalars(
            select(PayNotification.verdict).where(PayNotification.out_trade_no == order.order_no)
            .order_by(PayNotification.id))).all())
    assert verdicts == ["applied", "duplicate", "duplicate"]


async def test_a_worker_dying_after_the_desk_committed_places_one_order_for_the_redelivered_message(
        mall, monkeypatch):
    """The crash gap: the desk committed the order, the step died before its own commit
    (no undo runs in a dead worker, the message's claim is never confirmed). WeChat sends
    the same signed message again: the step runs again and answers with that order."""
    wx = _chat(mall)
    await wx.event(BUYER, "subscribe")
    first = await _buy(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")   # the address is saved now
    o1, *_ = await _rows(mall, re.search(r"订单号：(\d+)", first).group(1))
    member = o1.member_id
    mall.svc.runner.claim_lease = 0.2   # WeChat's retry comes after the dead worker's lease ran out
    for text in BASKET:
        assert (await wx.text(BUYER, text)).status == 200
    async with mall.svc.uows() as uow:
        before = (await uow.session.scalars(select(Order.id).where(Order.member_id == member))).all()

    async def dies(*args, **kwargs):
        raise RuntimeError("the worker dies after the desk committed, before the step's commit")
    monkeypatch.setattr(flows.checkout, "use_address", dies)
    monkeypatch.setattr(UnitOfWork, "after_rollback", lambda self, fn: None)   # a dead worker undoes nothing
    query, body = wx.signed_request(wx.text_xml(BUYER, "确认"), user=BUYER)
    died = await wx.post(query, body)
    assert "订单号" not in died.text
    monkeypatch.undo()
    again = await wx.post(query, body)   # the same message, redelivered
    async with mall.svc.uows() as uow:
        placed = list((await uow.session.scalars(
            select(Order).where(Order.member_id == member, Order.id.not_in(before)))).all())
    assert len(placed) == 1 and placed[0].status == "pending_payment"
    assert f"订单号：{placed[0].order_no}" in again.text

