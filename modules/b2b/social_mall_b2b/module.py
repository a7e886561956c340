"""What the module registers with the core's registry: templates, the chat flow and its
menu entry, the unit pricer (企业价 through the core's pricing seam), console pages and
the push of an admin's decision.

Subscribers:
  b2b.company_decided     push "approved" / "rejected: <reason>" to the applicant
  order.cancelled         a buyer's cancelled order gives its amount back to its monthly budget (once)
  b2b.quote_answered      push the quoted total, its expiry and 「接受报价 N」 to the member
"""

from __future__ import annotations

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Delivery, Registry
from social_mall_b2b import HERE, flow_account, flow_quick, flow_quotes, prices, web_console


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow_account.FLOW)
    reg.add_flow(flow_quick.FLOW)
    reg.add_flow(flow_quotes.FLOW)
    reg.add_unit_pricer(prices.PRICER)
    web_console.register(reg)

    async def push_decided(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/decided.txt", d.payload)

    async def push_quote(d: Delivery) -> None:
        from datetime import datetime

        ends = datetime.fromisoformat(str(d.payload["expires_at"]))
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/quote_answered.txt",
                             {**d.payload, "ends": ends})

    async def budget_back(d: Delivery) -> None:
        from social_mall_b2b.budgets import give_back

        async with svc.uows() as uow:
            if await give_back(uow, d.tenant_id, int(d.payload["order_id"])):
                await uow.commit()

    reg.subscribe("b2b.company_decided", "b2b.push_decided", push_decided)
    reg.subscribe("order.cancelled", "b2b.budget_back", budget_back)
    reg.subscribe("b2b.quote_answered", "b2b.push_quote", push_quote)
