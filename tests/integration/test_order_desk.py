"""The order desk and the payment desks on real databases (SQLite and PostgreSQL): a lot
gets the answers place_order / apply_transaction give one at a time and writes only what
they would; a crowd on two workers never oversells; every notify's verdict is audited."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from social_mall.errors import (
    AmountMismatchError,
    EmptyCartError,
    InvalidQuantityError,
    MerchantMismatchError,
    NotFoundError,
    OffShelfError,
    OutOfStockError,
    PriceChangedError,
)
from social_mall.orders import desk
from social_mall.orders.service import cancel_order, load_order
from social_mall.payments import desk as paydesk
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import PayOutcome
from storage.models import Order, OutboxEvent, PayNotification, Refund, Sku
from tests.integration.test_orders import buyer, make_sku, stock_of

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)
MCH, APP = "1900000109", "wx0123456789abcdef"


def _req(tenant, who, *items, address=None, **kw):
    return desk.PlaceRequest(tenant.id, who[0], tuple(items), who[1] if address is None else address, NOW,
                             TIMEOUT, **kw)


async def _count(uows, model, *where):
    async with uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_one_lot_answers_each_order_as_place_order_would_and_writes_only_the_placed(uows, demo):
    scarce = await make_sku(uows, demo, stock=2)
    plenty = await make_sku(uows, demo, stock=100)
    gone = await make_sku(uows, demo, stock=100)
    async with uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == gone).values(on_shelf=False))
        await uow.commit()
    a, b, c, d, e = [await buyer(uows, demo, f"o_odesk_{i}") for i in range(5)]
    reqs = [
        _req(demo, a, (scarce, 1), (plenty, 2)),            # 0 placed: two lines
        _req(demo, b, (scarce, 1)),                         # 1 placed: the last of scarce
        _req(demo, c, (plenty, 1), (scarce, 1)),            # 2 refused whole: scarce is out
        _req(demo, d, (plenty, 1), address=a[1]),           # 3 someone else's address
        _req(demo, d, (10**9, 1)),                          # 4 no such SKU
        _req(demo, d, (gone, 1)),                           # 5 off the shelf
        _req(demo, d, (plenty, 0)),                         # 6 a bad quantity
        _req(demo, d),                                      # 7 nothing to order
        _req(demo, e, (plenty, 1), expect_total_fen=1),     # 8 not the total shown
        _req(demo, e, (plenty, 1), (plenty, 1)),            # 9 placed: one line of 2
    ]
    orders_before = await _count(uows, Order)
    async with uows() as uow:
        out = await desk.place_lot(uow, reqs)
        await uow.commit()
    kinds = [type(r).__name__ for r in out]
    assert kinds == ["OrderView", "OrderView", "OutOfStockError", "NotFoundError", "NotFoundError",
                     "OffShelfError", "InvalidQuantityError", "EmptyCartError", "PriceChangedError", "OrderView"]
    assert out[2].left == 0
    placed = [out[0], out[1], out[9]]
    async with uows() as uow:
        for view in placed:   # the view answered is the order written
            assert await load_order(uow, demo.id, view.id) == view
    assert [(ln.sku_id, ln.qty) for ln in out[9].lines] == [(plenty, 2)]
    assert out[0].total_fen == 3 * 1999 + out[0].shipping_fen
    assert await _count(uows, Order) == orders_before + 3
    assert await stock_of(uows, demo, scarce) == 0
    assert await stock_of(uows, demo, plenty) == 96
    assert await _count(uows, OutboxEvent, OutboxEvent.topic == "order.placed",
                        OutboxEvent.payload["order_id"].as_integer().in_([v.id for v in placed])) == 3
    # the same refusals as place_order gives one at a time (against the state after the lot)
    for err, q in [(OutOfStockError, reqs[2]), (NotFoundError, reqs[3]), (NotFoundError, reqs[4]),
                   (OffShelfError, reqs[5]), (InvalidQuantityError, reqs[6]), (EmptyCartError, reqs[7]),
                   (PriceChangedError, reqs[8])]:
        async with uows() as uow:
            try:
                await desk.place_alone(uow, q)
            except err:
                pass
            else:
                raise AssertionError(f"place_order took {q}")
    assert await _count(uows, Order) == orders_before + 3


async def test_a_crowd_on_two_workers_sells_exactly_the_stock_in_lots(uows, demo, other_worker):
    sku = await make_sku(uows, demo, stock=10)
    people = [await buyer(uows, demo, f"o_ocrowd_{i:02d}") for i in range(40)]
    workers = [uows, other_worker]

    async def attempt(i, who):
        async with workers[i % 2]() as uow:
            return await desk.place_plain(uow, _req(demo, who, (sku, 1)))

    results = await asyncio.gather(*(attempt(i, w) for i, w in enumerate(people)), return_exceptions=True)
    odd = [r for r in results if isinstance(r, Exception) and not isinstance(r, OutOfStockError)]
    assert not odd, odd[:3]
    placed = [r for r in results if not isinstance(r, Exception)]
    assert len(placed) == 10 and len({r.order_no for r in placed}) == 10
    assert await stock_of(uows, demo, sku) == 0
    async with workers[0]() as u0, workers[1]() as u1:
        lots = [u.shared[desk.DESK].batches for u in (u0, u1)]
    assert all(0 < n < 20 for n in lots), lots   # 20 orders per worker went in fewer transactions


async def test_a_lot_whose_stock_moved_under_it_is_placed_one_by_one(uows, demo, monkeypatch):
    """The guard in SQL holds even if the lot's read went stale (another writer took the
    stock between the read and the write): the lot is rolled back whole and each order
    is placed alone through place_order."""
    sku = await make_sku(uows, demo, stock=5)
    people = [await buyer(uows, demo, f"o_ostale_{i}") for i in range(4)]
    real, moved = desk._write, []

    async def write_after_a_thief(uow, tenant, plans, skus, left):
        if not moved:   # the first lot only: stock gone between its read and its write
            moved.append(len(plans))
            await uow.session.execute(update(Sku).where(Sku.id == sku).values(stock=0))
        await real(uow, tenant, plans, skus, left)

    monkeypatch.setattr(desk, "_write", write_after_a_thief)
    orders_before = await _count(uows, Order)
    results = await asyncio.gather(*(_place(uows, _req(demo, w, (sku, 1))) for w in people))
    assert len({r.order_no for r in results}) == 4 and moved
    assert await stock_of(uows, demo, sku) == 1          # the thief's write went with the lot's rollback
    assert await _count(uows, Order) == orders_before + 4
    async with uows() as uow:
        assert uow.shared[desk.DESK].retried == 1


async def _place(uows, q):
    async with uows() as uow:
        return await desk.place_plain(uow, q)


def _tx(no, fen, **kw):
    base = dict(event_id=uuid.uuid4().hex, out_trade_no=no, transaction_id="42000" + uuid.uuid4().hex[:24],
                trade_state="SUCCESS", amount_fen=fen, mchid=MCH, appid=APP, payer="o_payer", success_time="")
    return Transaction(**{**base, **kw})


async def test_payments_open_and_apply_in_lots_once_each_and_every_verdict_audited(uows, demo):
    sku = await make_sku(uows, demo, stock=10)
    people = [await buyer(uows, demo, f"o_opay_{i}") for i in range(4)]
    orders = await asyncio.gather(*(_place(uows, _req(demo, w, (sku, 1))) for w in people))
    async with uows() as uow:   # the third is cancelled before its money comes: refunded, never lost
        await cancel_order(uow, demo.id, orders[2].id, reason="buyer", now=NOW)
        await uow.commit()
    opened = await asyncio.gather(*(_open(uows, o) for o in orders + orders[:1]))
    assert [p.out_trade_no for p in opened] == [o.order_no for o in orders + orders[:1]]
    no = [o.order_no for o in orders]
    fen = orders[0].total_fen
    good = _tx(no[0], fen)
    lot = [good, replace(good, event_id="again"), _tx(no[1], fen + 1), _tx(no[1], fen, mchid="other"),
           _tx(no[3], fen, trade_state="CLOSED"), _tx("nosuchorder", fen), _tx(no[1], fen)]
    notes_before = await _count(uows, PayNotification)
    async with uows() as uow:
        out = await paydesk.apply_many(uow, [_apply(demo, t) for t in lot])
        await uow.commit()
    assert [o if isinstance(o, str) else type(o).__name__ for o in out] == [
        PayOutcome.APPLIED, PayOutcome.DUPLICATE, "AmountMismatchError", "MerchantMismatchError",
        PayOutcome.NOT_SUCCESS, "NotFoundError", PayOutcome.APPLIED]
    assert isinstance(out[2], AmountMismatchError) and isinstance(out[3], MerchantMismatchError)
    assert isinstance(out[5], NotFoundError)
    assert await _count(uows, PayNotification) == notes_before + 4   # refused ones write nothing
    async with uows() as uow:
        views = [await load_order(uow, demo.id, o.id) for o in orders]
    assert [v.status for v in views] == ["paid", "paid", "cancelled", "pending_payment"]
    assert views[0].paid_fen == fen
    assert await _count(uows, OutboxEvent, OutboxEvent.topic == "order.paid") == 2
    # through the desk: a repeat is a duplicate; the cancelled order's money goes the single
    # path (the lot fails whole) and is kept for a refund
    again = await asyncio.gather(*(_apply_desk(uows, demo, _tx(n, fen)) for n in (no[0], no[2], no[3])))
    assert again == [PayOutcome.DUPLICATE, PayOutcome.LATE, PayOutcome.APPLIED]
    assert await _count(uows, Refund, Refund.order_id == orders[2].id) == 1
    assert await _count(uows, OutboxEvent, OutboxEvent.topic == "order.paid") == 3
    async with uows() as uow:
        assert uow.shared[paydesk.APPLY_DESK].retried >= 1


def _apply(tenant, tx):
    return paydesk.ApplyRequest(tx, tenant.id, "sandbox", MCH, APP, NOW)


async def _open(uows, order):
    async with uows() as uow:
        return await paydesk.open_now(uow, paydesk.OpenRequest(order, "sandbox"))


async def _apply_desk(uows, tenant, tx):
    async with uows() as uow:
        return await paydesk.apply_now(uow, _apply(tenant, tx))
