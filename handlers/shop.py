"""The built-in `shop` module: chat shopping on the official account, the H5 pay page,
pay notifies, the unpaid-order sweeper, outbox dispatch and the pushes that follow
domain events (paid, shipped, queued slow replies, refunds of late payments)."""

from __future__ import annotations

import logging
from datetime import timedelta

from handlers import h5, h5_address, health, pay_notify, wechat_mp
from handlers.context import Services
from handlers.push import push_to_member
from social_mall.jobs import cancel_expired_orders, complete_shipped_orders
from social_mall.members.service import channel_identities
from social_mall.payments.service import settle_refund
from social_mall.plugins import Delivery, Module, Registry

log = logging.getLogger(__name__)


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_routes(health.routes)
    reg.add_routes(h5.routes)
    reg.add_routes(h5_address.routes)
    reg.add_routes(pay_notify.routes)
    reg.add_routes(wechat_mp.routes)

    async def sweep_orders() -> int:
        return await cancel_expired_orders(svc.uows, svc.clock())

    async def dispatch_outbox() -> int:
        return await svc.outbox.run_once()

    async def complete_shipped() -> int:
        return await complete_shipped_orders(
            svc.uows, svc.clock(), after=timedelta(days=svc.settings.auto_complete_days))

    reg.add_job("orders.cancel_expired", svc.settings.sweep_interval_seconds, sweep_orders)
    reg.add_job("orders.auto_complete", svc.settings.sweep_interval_seconds * 10, complete_shipped)
    reg.add_job("outbox.dispatch", svc.settings.outbox_interval_seconds, dispatch_outbox)

    async def push_text(d: Delivery, template: str) -> None:
        tenant = await svc.tenant_by_id(d.tenant_id)
        pay_url = svc.pay_url(tenant.code, str(d.payload.get("order_no", "")))
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), template,
                             {**d.payload, "pay_url": pay_url})

    async def push_paid(d: Delivery) -> None:
        await push_text(d, "chat/push/order_paid.txt")

    async def push_shipped(d: Delivery) -> None:
        await push_text(d, "chat/push/order_shipped.txt")

    async def push_queued(d: Delivery) -> None:
        await wechat_mp.deliver_queued(svc, d)

    async def process_refund(d: Delivery) -> None:
        """Call the gateway for a refund request (late payments, admin and module refunds)."""
        tenant = await svc.tenant_by_id(d.tenant_id)
        p = d.payload
        result = await svc.gateway(tenant).refund(
            out_trade_no=str(p["out_trade_no"]), out_refund_no=str(p["out_refund_no"]),
            refund_fen=int(p["refund_fen"]), total_fen=int(p["total_fen"]), reason="退款",
        )
        async with svc.uows() as uow:
            await settle_refund(uow, str(p["out_refund_no"]), tenant=d.tenant_id, status=result.status,
                                now=svc.clock())
            await uow.commit()

    reg.subscribe("order.paid", "shop.push_paid", push_paid)
    reg.subscribe("order.shipped", "shop.push_shipped", push_shipped)
    reg.subscribe("message.push", "shop.push_queued", push_queued)
    async def push_refunded(d: Delivery) -> None:
        await push_text(d, "chat/push/order_refunded.txt")

    async def forget_merged(d: Delivery) -> None:
        """Identities moved to the kept member: conversations must not remember the other."""
        async with svc.uows() as uow:
            ids = await channel_identities(uow, d.tenant_id, int(d.payload["kept_member_id"]))
        for channel, user_id in ids:
            await svc.runner.forget(d.tenant_id, channel, user_id)

    reg.subscribe("member.merged", "shop.forget_merged", forget_merged)
    reg.subscribe("payment.needs_refund", "shop.refund", process_refund)
    reg.subscribe("order.refunded", "shop.push_refunded", push_refunded)


MODULE = Module("shop", setup, "Chat shopping on the official account, H5 pay page, pay notifies")
