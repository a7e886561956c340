"""What the module registers with the core's registry: templates, the chat flow and its
menu entry, the unit pricer (企业价 through the core's pricing seam), console pages and
the push of an admin's decision.

Subscribers:
  b2b.company_decided     push "approved" / "rejected: <reason>" to the applicant
"""

from __future__ import annotations

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Delivery, Registry
from social_mall_b2b import HERE, flow_account, flow_quick, prices, web_console


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow_account.FLOW)
    reg.add_flow(flow_quick.FLOW)
    reg.add_unit_pricer(prices.PRICER)
    web_console.register(reg)

    async def push_decided(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/decided.txt", d.payload)

    reg.subscribe("b2b.company_decided", "b2b.push_decided", push_decided)
