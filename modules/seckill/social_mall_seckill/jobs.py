"""The module's sweepers (idempotent; several workers may run them at once).

* `start_sessions`: a session that has started is claimed once (one conditional UPDATE),
  its start announced (`seckill.started`) and each subscribed member queued for a push
  (`seckill.remind`, one outbox row each, delivered in lots).
* `expire_unpaid`: a seckill order still unpaid at its own payment deadline (minutes, not
  the shop's 30) is cancelled and its stock given back to the session, unless its payment
  already arrived: the payment row is looked at first and, at a real gateway, asked about
  (paid there → applied like a notify and kept; the buyer still paying → asked again on
  the next sweep, until the core's own deadline two minutes later).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from social_mall.errors import MallError
from social_mall.orders.service import cancel_order, load_order
from social_mall.channels.service import order_channel
from social_mall.payments.service import apply_transaction
from social_mall_seckill import service
from social_mall_seckill.events import SeckillRemind, SeckillStarted
from social_mall_seckill.rules import pool

if TYPE_CHECKING:
    from handlers.context import Services

log = logging.getLogger(__name__)


async def start_sessions(svc: Services) -> int:
    now = svc.clock()
    async with svc.uows() as uow:
        started = await service.start_due(uow, now)
        for tenant, sid in started:
            uow.emit(SeckillStarted(tenant_id=tenant, session_id=sid))
            for member in await service.reminded(uow, tenant, sid):
                uow.emit(SeckillRemind(tenant_id=tenant, session_id=sid, member_id=member))
        await uow.commit()
    if started:
        svc.outbox.kick()
    return len(started)


async def _payment_pending(svc: Services, tenant: int, order_id: int) -> bool:
    """True when the order's payment may already have been made: paid at the gateway (then
    applied here now) or still being paid there. False: nothing arrived, release it."""
    async with svc.uows() as uow:
        payment = await uow.payments.for_order(tenant, order_id)
        if payment is None or payment.status != "created":
            return False
        out_trade_no = payment.out_trade_no
        where = await order_channel(uow, tenant, order_id)
    # ask the merchant that takes the order's money (its entrance's), not the tenant's default
    view = await svc.for_order(await svc.tenant_by_id(tenant), *where)
    gw: Any = svc.gateway(view)
    if gw is None or not hasattr(gw, "query"):
        return False
    try:
        status = await gw.query(out_trade_no)
    except MallError:
        return True   # can't tell now: ask again on the next sweep (the core's deadline is the backstop)
    if status.trade_state == "USERPAYING":
        return True
    if status.trade_state != "SUCCESS" or status.transaction is None \
            or status.transaction.out_trade_no != out_trade_no:
        return False
    async with svc.uows() as uow:
        await apply_transaction(uow, status.transaction, tenant=tenant, gateway=gw.name, mchid=gw.mchid,
                                appid=gw.appid, now=svc.clock())
        await uow.commit()
    svc.outbox.kick()
    log.info("seckill.paid_before_release", extra={"tenant": tenant, "order_id": order_id})
    return True


async def expire_unpaid(svc: Services) -> int:
    now = svc.clock()
    async with svc.uows() as uow:
        due = await service.unpaid_due(uow, now)
    released = 0
    for tenant, order_id in due:
        if await _payment_pending(svc, tenant, order_id):
            continue
        async with svc.uows() as uow:
            order = await load_order(uow, tenant, order_id)
            if order.status == "pending_payment":
                await cancel_order(uow, tenant, order_id, reason="seckill_timeout", now=now)
                order = await load_order(uow, tenant, order_id)
            taken = await service.release(uow, tenant, order_id) if order.status == "cancelled" else \
                await service.mark_paid(uow, tenant, order_id)
            await uow.commit()
        if taken is not None and order.status == "cancelled":
            await svc.admission.release(tenant, pool(taken.item_id), taken.token)
            released += 1
        elif taken is not None:   # paid meanwhile: held for good
            await svc.admission.confirm(tenant, pool(taken.item_id), taken.token, taken.member_id, taken.qty,
                                        hold_until=None)
    if due:
        svc.outbox.kick()
    return released


async def sweep_admission(svc: Services) -> int:
    """Give back reservations whose order never came (a worker died after admission) in the
    pools of live sessions; the attempts do it too, a few at a time."""
    now = svc.clock()
    async with svc.uows() as uow:
        live = await service.live_items(uow, now)
    n = 0
    for tenant, item_id in live:
        n += await svc.admission.sweep(tenant, pool(item_id), now)
    return n


async def reconcile_live(svc: Services) -> int:
    """Compare memory with the database for every item of a running session; a pool that
    disagrees (a confirm lost while Redis was away…) is rebuilt from the database (safe at
    any time: a reservation admitted meanwhile is taken again by its confirm). Returns how
    many pools were rebuilt."""
    from social_mall_seckill.buying import loader

    now = svc.clock()
    async with svc.uows() as uow:
        live = await service.live_items(uow, now)
    fixed = 0
    for tenant, item_id in live:
        async with svc.uows() as uow:
            truth = await service.truth(uow, tenant, item_id)
        drift = await svc.admission.reconcile(tenant, pool(item_id), truth)
        if drift.stock is None and not drift.members and not drift.missing:
            continue
        log.warning("seckill.drift", extra={"tenant": tenant, "item": item_id, "stock": drift.stock,
                                             "members": len(drift.members), "missing": len(drift.missing)})
        await svc.admission.rebuild(tenant, pool(item_id), loader(svc, tenant, item_id), force=True)
        fixed += 1
    return fixed
