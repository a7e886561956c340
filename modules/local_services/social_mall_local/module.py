"""What the module registers with the core's registry: templates, chat flows and menu
entries, fulfilment methods, H5 routes and console pages, jobs, event subscribers, demo
data. The composition root's `Services` (reg.services) is the only handle it keeps.

Subscribers:
  order.paid               issue the order's tickets (pick-up, services, cards, bookings)
  order.refunded (full)    its tickets can't be used any more
  order.cancelled          an unpaid delivery order gives its slot place back
  local.tickets_issued     push the codes and QR links to the member
  local.ticket_verified    push "redeemed at <store>" to the member
  local.delivery_moved     push "a rider took it" / "delivered" to the member
  order.paid / cancelled   a booking's hold becomes a booking / is released
  local.booking_reminder   a customer-service message; outside WeChat's 48-hour window the
                           tenant's template message (settings: reminder_template_id)
  local.booking_changed    push a cancellation or a new time
Jobs: local.expire_tickets (validity ends: expire, refund the unused part per the rule),
local.booking_reminders, local.no_shows.
"""

from __future__ import annotations

import logging
from datetime import datetime

from handlers.context import Services
from handlers.push import UNDELIVERABLE, push_to_member
from adapters.wechat_client import WeChatAPIError
from social_mall.plugins import Delivery, Registry
from social_mall_local import HERE, bookings, delivery, demo, flow_booking, flow_checkout, flow_stores, flow_tickets
from social_mall_local import fulfil, places, tickets, verify, web_console, web_h5
from social_mall_local.flow_booking import when
from social_mall_local.repos import LocalRepo

log = logging.getLogger(__name__)
OUTSIDE_48H = 45015


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")

    def link(tenant_code: str, ticket_id: int, member_id: int) -> str:
        return web_h5.ticket_url(svc, tenant_code, ticket_id, member_id)

    reg.add_flow(flow_stores.FLOW)
    reg.add_flow(flow_checkout.FLOW)
    reg.add_flow(flow_tickets.build(link))
    reg.add_flow(flow_booking.FLOW)
    reg.add_fulfilment(fulfil.EXPRESS)
    reg.add_fulfilment(fulfil.PICKUP)
    reg.add_fulfilment(fulfil.DELIVERY)
    reg.add_fulfilment(bookings.BOOKING)
    reg.add_routes(web_h5.routes)
    web_console.register(reg)
    reg.add_demo(demo.seed, showcase=False)  # stores etc.: part of the plain demo shop
    reg.add_demo(demo.seed_service)          # DEMO_SHOWCASE: a bookable service for 「预约」
    reg.add_place_source(places.StorePlaces())   # the member's store, an order's store (social_mall/places.py)

    async def issue(d: Delivery) -> None:
        async with svc.uows() as uow:
            await tickets.issue_tickets(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock())
            await uow.commit()

    async def on_refunded(d: Delivery) -> None:
        if not d.payload.get("full"):
            return
        async with svc.uows() as uow:
            await verify.on_order_closed(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock())
            await uow.commit()

    async def push_issued(d: Delivery) -> None:
        tenant = await svc.tenant_by_id(d.tenant_id)
        ids = [int(i) for i in d.payload.get("ticket_ids", [])]
        async with svc.uows() as uow:
            found = await tickets.tickets_by_ids(uow, d.tenant_id, ids)
        links = {t.id: link(tenant.code, t.id, t.member_id) for t in found}
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/local/push/tickets_issued.txt",
                             {"tickets": found, "links": links})

    async def push_verified(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/local/push/ticket_verified.txt",
                             d.payload)

    async def on_cancelled(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await delivery.release(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock()):
                await uow.commit()

    async def push_delivery(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/local/push/delivery_moved.txt",
                             d.payload)

    async def expire() -> int:
        return await verify.expire_tickets(svc.uows, svc.clock())

    async def booking_paid(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await bookings.on_paid(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock()):
                await uow.commit()

    async def booking_cancelled(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await bookings.on_cancelled(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock()):
                await uow.commit()

    async def push_reminder(d: Delivery) -> None:
        """Within 48 h of the member's last message a customer-service text; outside it
        (WeChat answers 45015) the tenant's template message, if it set one."""
        p = d.payload
        order_id = p.get("order_id")
        # through the official account the member's openid belongs to (the booking's, when it has one there)
        target = await svc.push_target(d.tenant_id, int(p["member_id"]),
                                       order_id=order_id if isinstance(order_id, int) else None)
        if target is None:
            return
        tenant, openid = target
        async with svc.uows() as uow:
            settings = await LocalRepo(uow.session).settings(d.tenant_id)
        at = when(datetime.fromisoformat(str(p["starts_at"])))
        text = svc.templates.get_template("chat/local/push/booking_reminder.txt").render(**p, when=at).strip()
        client = svc.wechat(tenant)
        try:
            await client.send_text(openid, text)
            return
        except WeChatAPIError as exc:
            if exc.errcode != OUTSIDE_48H:
                if exc.errcode in UNDELIVERABLE:
                    return
                raise
        template_id = settings.reminder_template_id if settings is not None else ""
        if not template_id:
            log.info("local.reminder.undeliverable", extra={"tenant": tenant.code, "booking": p["booking_id"]})
            return
        await client.send_template(openid, template_id, {
            "thing1": {"value": str(p["title"])[:20]}, "time2": {"value": at},
            "thing3": {"value": str(p["store_name"])[:20]}})

    async def push_booking(d: Delivery) -> None:
        p = d.payload
        await push_to_member(svc, d.tenant_id, int(p["member_id"]), "chat/local/push/booking_changed.txt",
                             {**p, "when": when(datetime.fromisoformat(str(p["starts_at"])))})

    async def remind() -> int:
        return await bookings.due_reminders(svc.uows, svc.clock())

    async def no_shows() -> int:
        return await bookings.mark_no_shows(svc.uows, svc.clock())

    reg.subscribe("order.paid", "local.issue_tickets", issue)
    reg.subscribe("order.refunded", "local.close_tickets", on_refunded)
    reg.subscribe("local.tickets_issued", "local.push_tickets", push_issued)
    reg.subscribe("local.ticket_verified", "local.push_verified", push_verified)
    reg.subscribe("order.cancelled", "local.release_slot", on_cancelled)
    reg.subscribe("local.delivery_moved", "local.push_delivery", push_delivery)
    reg.subscribe("order.paid", "local.booking_paid", booking_paid)
    reg.subscribe("order.cancelled", "local.booking_released", booking_cancelled)
    reg.subscribe("local.booking_reminder", "local.push_reminder", push_reminder)
    reg.subscribe("local.booking_changed", "local.push_booking", push_booking)
    reg.add_job("local.expire_tickets", svc.settings.sweep_interval_seconds * 5, expire)
    reg.add_job("local.booking_reminders", svc.settings.sweep_interval_seconds, remind)
    reg.add_job("local.no_shows", svc.settings.sweep_interval_seconds * 5, no_shows)
