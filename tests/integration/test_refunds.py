"""Refunds: full and partial, exactly once, never more than was paid."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from social_mall.errors import NotRefundableError, RefundTooLargeError
from social_mall.orders.service import find_order, ship_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment, request_refund, settle_refund
from tests.integration.test_orders import NOW, TIMEOUT, buyer, make_sku, stock_of
from social_mall.orders.service import place_order


async def paid_order(uows, tenant, qty=2, stock=10):
    sku_id = await make_sku(uows, tenant, stock=stock)
    member_id, address_id = await buyer(uows, tenant, f"o_refund_{qty}_{stock}")
    async with uows() as uow:
        order = await place_order(uow, tenant.id, member_id, [(sku_id, qty)], address_id=address_id,
                                  now=NOW, timeout=TIMEOUT)
        await open_payment(uow, order, gateway="sandbox")
        tx = Transaction("EV-1", order.order_no, "4200001", "SUCCESS", order.total_fen,
                         tenant.pay_mch_id, tenant.pay_app_id, "o_payer", "")
        await apply_transaction(uow, tx, tenant=tenant.id, gateway="sandbox", mchid=tenant.pay_mch_id,
                                appid=tenant.pay_app_id, now=NOW)
        await uow.commit()
    return order, sku_id


async def refund(uows, tenant, order_id, amount):
    async with uows() as uow:
        view = await request_refund(uow, tenant.id, order_id, amount_fen=amount, reason="质量问题",
                                    actor="admin:1", now=NOW)
        await uow.commit()
    return view


async def succeed(uows, out_refund_no, tenant):
    async with uows() as uow:
        moved = await settle_refund(uow, out_refund_no, tenant=tenant.id, status="SUCCESS", now=NOW)
        await uow.commit()
    return moved


async def test_full_refund_before_shipping_restores_stock_and_closes_the_order(uows, demo):
    order, sku_id = await paid_order(uows, demo, qty=2, stock=10)
    view = await refund(uows, demo, order.id, None)
    assert view.amount_fen == order.total_fen
    async with uows() as uow:
        assert (await find_order(uow, demo.id, order.order_no)).status == "refund_requested"
    assert await succeed(uows, view.out_refund_no, demo)
    assert not await succeed(uows, view.out_refund_no, demo)       # a repeated answer: no effect
    async with uows() as uow:
        after = await find_order(uow, demo.id, order.order_no)
        assert await uow.outbox.count("order.refunded") == 1
    assert (after.status, after.refunded_fen) == ("refunded", order.total_fen)
    assert await stock_of(uows, demo, sku_id) == 10


async def test_partial_refunds_add_up_and_the_last_fen_closes_the_order(uows, demo):
    order, sku_id = await paid_order(uows, demo, qty=3, stock=10)
    first = await refund(uows, demo, order.id, 1000)
    assert await succeed(uows, first.out_refund_no, demo)
    async with uows() as uow:
        mid = await find_order(uow, demo.id, order.order_no)
    assert (mid.status, mid.refunded_fen) == ("paid", 1000)
    with pytest.raises(RefundTooLargeError) as err:
        await refund(uows, demo, order.id, order.total_fen)
    assert err.value.refundable_fen == order.total_fen - 1000
    rest = await refund(uows, demo, order.id, None)
    assert rest.amount_fen == order.total_fen - 1000
    assert await succeed(uows, rest.out_refund_no, demo)
    async with uows() as uow:
        done = await find_order(uow, demo.id, order.order_no)
    assert (done.status, done.refunded_fen) == ("refunded", order.total_fen)


async def test_double_click_on_refund_requests_one_refund(uows, demo):
    order, _ = await paid_order(uows, demo, qty=1, stock=5)

    async def click():
        try:
            return (await refund(uows, demo, order.id, None)).out_refund_no
        except Exception as exc:  # noqa: BLE001 - the loser's error is what we check
            return type(exc).__name__

    results = await asyncio.gather(click(), click())
    assert sum(r.startswith("RF") for r in results) == 1
    async with uows() as uow:
        assert await uow.outbox.count("payment.needs_refund") == 1


async def test_refund_after_shipping_keeps_stock_out(uows, demo):
    order, sku_id = await paid_order(uows, demo, qty=2, stock=10)
    async with uows() as uow:
        await ship_order(uow, demo.id, order.id, tracking_no="SF123", now=NOW)
        await uow.commit()
    view = await refund(uows, demo, order.id, None)
    assert await succeed(uows, view.out_refund_no, demo)
    assert await stock_of(uows, demo, sku_id) == 8


async def test_unpaid_orders_are_not_refundable(uows, demo):
    sku_id = await make_sku(uows, demo, stock=3)
    member_id, address_id = await buyer(uows, demo, "o_unpaid_refund")
    async with uows() as uow:
        order = await place_order(uow, demo.id, member_id, [(sku_id, 1)], address_id=address_id,
                                  now=NOW, timeout=TIMEOUT)
        await uow.commit()
    with pytest.raises(NotRefundableError):
        await refund(uows, demo, order.id, None)


async def test_two_halves_succeeding_at_once_on_two_workers_close_each_order_once(uows, demo, other_worker):
    """Both refunds of an order are answered SUCCESS at the same moment, on two workers
    (separate connections): the one that completes the amount closes the order and puts
    the stock back, whichever commits first."""
    orders = [await paid_order(uows, demo, qty=2, stock=10) for _ in range(4)]
    pairs = []
    for order, _ in orders:
        half = await refund(uows, demo, order.id, 1000)
        rest = await refund(uows, demo, order.id, None)
        pairs.append((half.out_refund_no, rest.out_refund_no))

    async def settle_on(worker, out_refund_no):
        async with worker() as uow:
            assert await settle_refund(uow, out_refund_no, tenant=demo.id, status="SUCCESS", now=NOW)
            await uow.commit()

    for worker in (uows, other_worker):  # both connected before the race starts
        async with worker() as uow:
            await uow.orders.get(demo.id, orders[0][0].id)
    for half, rest in pairs:
        await asyncio.gather(settle_on(uows, half), settle_on(other_worker, rest))
    for order, sku_id in orders:
        async with uows() as uow:
            done = await find_order(uow, demo.id, order.order_no)
        assert (done.status, done.refunded_fen) == ("refunded", order.total_fen)
        assert await stock_of(uows, demo, sku_id) == 10


async def test_wechat_pays_limits_fifty_refunds_an_order_and_a_year_after_payment(uows, demo):
    from social_mall.errors import RefundLimitError
    from social_mall.payments.service import MAX_REFUNDS_PER_ORDER

    order, _ = await paid_order(uows, demo, qty=2, stock=10)
    assert order.total_fen > MAX_REFUNDS_PER_ORDER
    nos = [(await refund(uows, demo, order.id, 1)).out_refund_no for _ in range(MAX_REFUNDS_PER_ORDER)]
    assert len(set(nos)) == MAX_REFUNDS_PER_ORDER                 # a new out_refund_no for each part
    with pytest.raises(RefundLimitError) as err:
        await refund(uows, demo, order.id, 1)
    assert err.value.limit == "count"
    async with uows() as uow:
        after = await find_order(uow, demo.id, order.order_no)
        assert after.refunded_fen == 0 and after.status == "paid"
        assert await uow.outbox.count("payment.needs_refund") == MAX_REFUNDS_PER_ORDER

    late, _ = await paid_order(uows, demo, qty=1, stock=10)
    async with uows() as uow:
        with pytest.raises(RefundLimitError) as err:
            await request_refund(uow, demo.id, late.id, amount_fen=None, reason="过期", actor="admin:1",
                                 now=NOW + timedelta(days=366))
    assert err.value.limit == "age"
    async with uows() as uow:
        assert await request_refund(uow, demo.id, late.id, amount_fen=None, reason="一年内", actor="admin:1",
                                    now=NOW + timedelta(days=364))
