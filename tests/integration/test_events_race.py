"""order.paid and order.refunded handled at the same time by two workers (two engines, their
own connections), both backends: whichever commits first, a delivery that lost a
conditional update raises and is retried (as the outbox does), and the result is exact."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from social_mall.loyalty import service as loyalty
from social_mall.referral import service as referral
from social_mall.referral.rules import ProgramSettings
from tests.fakes.referral_world import NOW, bind, distributor, member, paid_order, reconciled, refunded, sku

ROUNDS = 4


async def delivered(uows, work: Callable[[object], Awaitable[object]]) -> None:
    """One outbox delivery: a transaction, retried while it raises (the worker's backoff)."""
    for attempt in range(10):
        async with uows() as uow:
            try:
                await work(uow)
                await uow.commit()
                return
            except Exception:   # noqa: BLE001 - the outbox retries any failure
                await uow.rollback()
                if attempt == 9:
                    raise
        await asyncio.sleep(0.01 * (attempt + 1))


async def test_paid_and_refunded_deliveries_racing_on_two_workers_book_exactly(uows, other_worker, demo):
    async with uows() as uow:
        await referral.save_program(uow, demo.id, ProgramSettings(), actor="test", now=NOW)
        await uow.commit()
    d = await distributor(uows, demo)
    s = await sku(uows, demo, price_fen=10_000)
    for n in range(ROUNDS):
        buyer = await member(uows, demo)
        await bind(uows, demo, buyer, d.code)
        order = await paid_order(uows, demo, buyer, [(s, 1)])
        await refunded(uows, demo, order.id, 3000)             # two refunds settled before any delivery
        await refunded(uows, demo, order.id, 2000)
        paid = order.total_fen
        first, second = (uows, other_worker) if n % 2 == 0 else (other_worker, uows)
        await asyncio.gather(
            delivered(first, lambda uow: referral.record_commissions(uow, demo.id, order.id, now=NOW)),
            delivered(second, lambda uow: referral.reverse_for_refund(uow, demo.id, order.id, now=NOW)),
            delivered(first, lambda uow: referral.reverse_for_refund(uow, demo.id, order.id, now=NOW)),
            delivered(second, lambda uow: loyalty.on_order_refunded(
                uow, demo.id, order.id, buyer, refund_fen=3000, paid_fen=paid, full=False, ref="r1", now=NOW)),
            delivered(first, lambda uow: loyalty.on_order_paid(uow, demo.id, order.id, buyer, paid, NOW)),
            delivered(second, lambda uow: loyalty.on_order_refunded(
                uow, demo.id, order.id, buyer, refund_fen=2000, paid_fen=paid, full=False, ref="r2", now=NOW)),
        )
        async with uows() as uow:
            (c,) = await referral.commissions_for_order(uow, demo.id, order.id)
            assert (c.amount_fen, c.reversed_fen) == (1000, 1000 - 1000 * (paid - 5000) // paid)
            earned = paid // 100
            assert await loyalty.points_balance(uow, demo.id, buyer) == earned - earned * 5000 // paid
            assert await loyalty.ledger_consistent(uow, demo.id, buyer)
    rec = await reconciled(uows, demo, d.id)
    assert rec.ok and rec.stored_frozen_fen == ROUNDS * (1000 * (10_000 - 5000) // 10_000)
