"""The built-in `shop` module: chat shopping on the official account, the H5 pay page,
pay notifies, the unpaid-order sweeper, outbox dispatch and the pushes that follow
domain events (paid, shipped, queued slow replies, refunds of late payments)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from handlers import (
    api_app, h5, h5_address, health, metrics, pay_notify, wechat_mp, wechat_simulator,
)
from social_mall.channels.service import order_channel
from handlers import wechat_tags, wechat_unionid
from handlers.context import Services
from handlers.push import push_to_member
from social_mall.catalog.service import related_to_order
from social_mall.search import AFTER_PAY, tracked
from social_mall.jobs import cancel_expired_orders, complete_shipped_orders, remind_receipts
from social_mall.members.service import channel_identities
from social_mall.payments.service import settle_refund
from social_mall.payments.wxpay_v3 import PayNotifyError
from social_mall.plugins import Delivery, Module, Registry

log = logging.getLogger(__name__)


class RefundSpacedError(Exception):
    """Another refund of the order went to the gateway moments ago: try this one later."""


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_routes(health.routes)
    reg.add_routes(metrics.routes)
    reg.add_routes(h5.routes)
    reg.add_routes(api_app.routes)  # the member JSON API of the mini-program / app (both prefixes)
    reg.add_routes(api_app.document)
    reg.add_routes(h5_address.routes)
    reg.add_routes(pay_notify.routes)
    reg.add_routes(wechat_mp.routes)
    reg.add_activity_sink(wechat_unionid.sink_for(svc))  # follower → unionid → one member across accounts
    reg.add_routes(wechat_simulator.routes)  # WeChat's message API while the demo has no account

    async def sweep_orders() -> int:
        return await cancel_expired_orders(svc.uows, svc.clock())

    async def dispatch_outbox() -> int:
        return await svc.outbox.run_once()

    async def complete_shipped() -> int:
        return await complete_shipped_orders(
            svc.uows, svc.clock(), after=timedelta(days=svc.settings.auto_complete_days), holds=reg.completion_holds)

    async def remind_shipped() -> int:
        return await remind_receipts(
            svc.uows, svc.clock(), after=timedelta(days=svc.settings.auto_complete_days), holds=reg.completion_holds)

    reg.add_job("orders.cancel_expired", svc.settings.sweep_interval_seconds, sweep_orders)
    reg.add_job("orders.auto_complete", svc.settings.sweep_interval_seconds * 10, complete_shipped)
    reg.add_job("orders.receipt_reminders", svc.settings.sweep_interval_seconds * 10, remind_shipped)
    reg.add_job("outbox.dispatch", svc.settings.outbox_interval_seconds, dispatch_outbox)

    async def push_text(d: Delivery, template: str, extra: dict[str, object] | None = None) -> None:
        tenant = await svc.tenant_by_id(d.tenant_id)
        pay_url = svc.pay_url(tenant.code, str(d.payload.get("order_no", "")))
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), template,
                             {**d.payload, "pay_url": pay_url, **(extra or {})})

    async def push_paid(d: Delivery) -> None:
        extra: dict[str, object] = {}
        if svc.registry.related is not None:   # a module's 「你可能还喜欢」 (social_mall/search.py)
            async with svc.uows() as uow:
                related = await related_to_order(uow, d.tenant_id, str(d.payload.get("order_no", "")),
                                                  svc.registry.related)
                await uow.commit()
            code = (await svc.tenant_by_id(d.tenant_id)).code
            extra = {"related": related,
                     "related_url": {p.id: tracked(svc.product_url(code, p.id), AFTER_PAY) for p in related}}
        await push_text(d, "chat/push/order_paid.txt", extra)

    async def push_shipped(d: Delivery) -> None:
        await push_text(d, "chat/push/order_shipped.txt")

    async def push_queued(d: Delivery) -> None:
        await wechat_mp.deliver_queued(svc, d)

    async def process_refund(d: Delivery) -> None:
        """Call the gateway for a refund request (late payments, admin and module refunds).

        Its answer is recorded whatever it is: PROCESSING (the refund notify finishes it),
        SUCCESS, or a refusal for good (4xx, a malformed request, or no payment method left):
        the refund fails and the order is settled, instead of the refusal being retried for
        ever with the refund counted as in flight. Trouble worth retrying (network, 5xx,
        rate limits) raises, and the outbox tries again."""
        tenant = await svc.tenant_by_id(d.tenant_id)
        p = d.payload
        out_refund_no = str(p["out_refund_no"])
        if isinstance(p.get("order_id"), int):  # the money goes back through the merchant that took it
            async with svc.uows() as uow:
                tenant = await svc.for_order(tenant, *await order_channel(uow, tenant.id, int(p["order_id"])))
        gateway = svc.gateway(tenant)
        gap = svc.settings.refund_spacing_seconds
        if gateway is not None and gap > 0:
            # WeChat Pay wants one order's refund requests a minute apart: the first takes the
            # order's slot for `gap` seconds (in the shared store: every worker sees it); another
            # refund of the order waits (the outbox retries it later); a retry of the same one may go.
            slot = f"refund_gap:{tenant.id}:{p['out_trade_no']}"
            if not await svc.kv.set_nx(slot, out_refund_no, gap) and await svc.kv.get(slot) != out_refund_no:
                raise RefundSpacedError(out_refund_no)
        if gateway is None:
            status, reason = "REFUSED", "no_pay_method"
        else:
            try:
                result = await gateway.refund(
                    out_trade_no=str(p["out_trade_no"]), out_refund_no=out_refund_no,
                    refund_fen=int(p["refund_fen"]), total_fen=int(p["total_fen"]), reason="退款",
                )
                status, reason = result.status, ""
            except PayNotifyError as exc:  # PayFormatError / PayRefusedError: refused for good
                status, reason = "REFUSED", str(getattr(exc, "gateway_code", "") or exc.code)
        if reason:
            log.warning("pay.refund.refused", extra={"tenant": tenant.code, "out_refund_no": out_refund_no,
                                                     "reason": reason})
        async with svc.uows() as uow:
            await settle_refund(uow, out_refund_no, tenant=d.tenant_id, status=status, reason=reason,
                                now=svc.clock())
            await uow.commit()

    reg.subscribe("order.paid", "shop.push_paid", push_paid)
    reg.subscribe("order.shipped", "shop.push_shipped", push_shipped)

    async def push_receipt_due(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/push/order_receipt_due.txt",
                             {**d.payload, "confirm_at": datetime.fromisoformat(str(d.payload["confirm_at"]))})

    reg.subscribe("order.receipt_due", "shop.push_receipt_due", push_receipt_due)
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
    wechat_tags.subscribe(reg, svc)   # member tags synced to the official accounts' user tags


MODULE = Module("shop", setup, "Chat shopping on the official account, H5 pay page, pay notifies")
