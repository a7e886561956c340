"""What the bargain module registers with the core: templates, the chat flow and its menu
entry, console pages and H5 routes, the demo campaign, the expiry job, a price hold (automatic price rules never raise a
SKU's price while a live campaign bargains it), and subscribers:

  bargain.helped      push 「好友帮你砍掉了 ¥x … 还差 ¥y」 to the starter
  bargain.expired     push the end of the bargain to the starter
  order.paid          the bargain's order paid: ordered → bought
  order.cancelled     its unpaid order cancelled: the bargain reopens (or ends), stock back
"""

from __future__ import annotations

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Delivery, Registry
from social_mall_bargain import HERE, demo, flow, service, web


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow.FLOW)
    reg.add_price_hold(service.campaign_running)
    web.register(reg)
    reg.add_demo(demo.seed)

    async def push_helped(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/bargain/push/helped.txt", d.payload)

    async def push_expired(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/bargain/push/expired.txt",
                             d.payload)

    async def paid(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await service.order_paid(uow, d.tenant_id, int(d.payload["order_id"])):
                await uow.commit()

    async def cancelled(d: Delivery) -> None:
        async with svc.uows() as uow:
            if await service.order_cancelled(uow, d.tenant_id, int(d.payload["order_id"]), now=svc.clock()):
                await uow.commit()

    async def expire() -> int:
        return await service.expire_due(svc.uows, now=svc.clock())

    reg.subscribe("bargain.helped", "bargain.push_helped", push_helped)
    reg.subscribe("bargain.expired", "bargain.push_expired", push_expired)
    reg.subscribe("order.paid", "bargain.paid", paid)
    reg.subscribe("order.cancelled", "bargain.cancelled", cancelled)
    reg.add_job("bargain.expire", svc.settings.sweep_interval_seconds, expire)
