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
Jobs: local.expire_tickets (validity ends: expire, refund the unused part per the rule).
"""

from __future__ import annotations

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Delivery, Registry
from social_mall_local import HERE, delivery, demo, flow_checkout, flow_stores, flow_tickets, fulfil, tickets, verify
from social_mall_local import web_console, web_h5


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")

    def link(tenant_code: str, ticket_id: int, member_id: int) -> str:
        return web_h5.ticket_url(svc, tenant_code, ticket_id, member_id)

    reg.add_flow(flow_stores.FLOW)
    reg.add_flow(flow_checkout.FLOW)
    reg.add_flow(flow_tickets.build(link))
    reg.add_menu("附近门店", "附近门店", "附近门店：发送位置，找离您最近的门店")
    reg.add_menu("我的券码", "我的券码", "我的券码：自提码、服务券和次卡，到店出示核销")
    reg.add_fulfilment(fulfil.EXPRESS)
    reg.add_fulfilment(fulfil.PICKUP)
    reg.add_fulfilment(fulfil.DELIVERY)
    reg.add_routes(web_h5.routes)
    web_console.register(reg)
    reg.add_seed(demo.seed)

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

    reg.subscribe("order.paid", "local.issue_tickets", issue)
    reg.subscribe("order.refunded", "local.close_tickets", on_refunded)
    reg.subscribe("local.tickets_issued", "local.push_tickets", push_issued)
    reg.subscribe("local.ticket_verified", "local.push_verified", push_verified)
    reg.subscribe("order.cancelled", "local.release_slot", on_cancelled)
    reg.subscribe("local.delivery_moved", "local.push_delivery", push_delivery)
    reg.add_job("local.expire_tickets", svc.settings.sweep_interval_seconds * 5, expire)
