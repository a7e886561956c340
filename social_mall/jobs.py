"""Sweepers run by the scheduler. Each is idempotent and safe with several workers:
every step is a conditional update, so two workers sweeping at once cancel an order once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from social_mall.errors import IllegalTransitionError
from social_mall.events import OrderReceiptDue
from social_mall.orders.service import complete_order, expire_unpaid
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)


async def cancel_expired_orders(uows: UowFactory, now: datetime, *, batch: int = 200) -> int:
    async with uows() as uow:
        due = await uow.orders.expired_unpaid(now, batch)
    cancelled = 0
    for tenant, order_id in due:
        async with uows() as uow:
            if await expire_unpaid(uow, tenant, order_id, now=now):
                await uow.commit()
                cancelled += 1
    if cancelled:
        log.info("orders.expired", extra={"count": cancelled})
    return cancelled


#: Asks whether an order must not be confirmed received now (a module's open after-sale
#: request, say): (unit of work, tenant, order id) → True to hold it. Registered with
#: `Registry.add_completion_hold`.
CompletionHold = Callable[[UnitOfWork, int, int], Awaitable[bool]]


async def _held(uow: UnitOfWork, holds: Sequence[CompletionHold], tenant: int, order_id: int) -> bool:
    for hold in holds:
        if await hold(uow, tenant, order_id):
            return True
    return False


async def _periods(uows: UowFactory, after: timedelta) -> list[tuple[int, timedelta]]:
    """Per tenant: how long after shipping an order is confirmed (its own period, or `after`)."""
    async with uows() as uow:
        days = await uow.tenants.auto_complete_days()
    return [(t, timedelta(days=d) if d is not None else after) for t, d in sorted(days.items())]


async def complete_shipped_orders(
    uows: UowFactory, now: datetime, *, after: timedelta, holds: Sequence[CompletionHold] = (), batch: int = 200
) -> int:
    """Auto-confirm receipt: shipped orders older than the tenant's period (`after` when it
    set none) become completed (what starts the referral freeze clock and ends the buyer's
    return window), unless a hold says not now (an open after-sale request): such an order
    is looked at again on the next run."""
    done = 0
    for tenant_id, period in await _periods(uows, after):
        async with uows() as uow:
            due = await uow.orders.shipped_before(now - period, batch, tenant=tenant_id)
        for tenant, order_id in due:
            async with uows() as uow:
                if await _held(uow, holds, tenant, order_id):
                    continue
                try:
                    await complete_order(uow, tenant, order_id, now=now)
                except IllegalTransitionError:
                    continue  # refunded or completed meanwhile
                await uow.commit()
                done += 1
    return done


async def remind_receipts(
    uows: UowFactory, now: datetime, *, after: timedelta, holds: Sequence[CompletionHold] = (), batch: int = 200
) -> int:
    """The day before an order is confirmed automatically, tell the member (once per order:
    `order.receipt_due`, after a conditional mark). Held orders are not told (they won't be
    confirmed tomorrow)."""
    told = 0
    for tenant_id, period in await _periods(uows, after):
        async with uows() as uow:
            due = await uow.orders.shipped_before(now + timedelta(days=1) - period, batch, tenant=tenant_id,
                                                  unreminded=True)
        for tenant, order_id in due:
            async with uows() as uow:
                if await _held(uow, holds, tenant, order_id):
                    continue
                order = await uow.orders.get(tenant, order_id)
                if order is None or order.shipped_at is None or \
                        not await uow.orders.mark_receipt_reminded(tenant, order_id, now):
                    continue
                uow.emit(OrderReceiptDue(tenant_id=tenant, order_id=order_id, order_no=order.order_no,
                                         member_id=order.member_id,
                                         confirm_at=(order.shipped_at + period).isoformat()))
                await uow.commit()
                told += 1
    return told

