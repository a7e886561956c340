"""Sweepers run by the scheduler. Each is idempotent and safe with several workers:
every step is a conditional update, so two workers sweeping at once cancel an order once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from social_mall.errors import IllegalTransitionError
from social_mall.orders.service import complete_order, expire_unpaid
from storage.uow import UowFactory

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


async def complete_shipped_orders(
    uows: UowFactory, now: datetime, *, after: timedelta, batch: int = 200
) -> int:
    """Auto-confirm receipt: shipped orders older than `after` become completed
    (what starts the referral freeze clock and ends the buyer's return window)."""
    async with uows() as uow:
        due = await uow.orders.shipped_before(now - after, batch)
    done = 0
    for tenant, order_id in due:
        async with uows() as uow:
            try:
                await complete_order(uow, tenant, order_id, now=now)
            except IllegalTransitionError:
                continue  # refunded or completed meanwhile
            await uow.commit()
            done += 1
    return done
