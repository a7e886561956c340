"""What the module registers with the core's registry: templates, the chat flow and its
menu entry, the unit pricer (企业价 through the core's pricing seam), console pages and
the push of an admin's decision.

Subscribers:
  b2b.company_decided     push "approved" / "rejected: <reason>" to the applicant
  order.cancelled         a buyer's cancelled order gives its amount back to its monthly budget (once)
  b2b.quote_answered      push the quoted total, its expiry and 「接受报价 N」 to the member
  b2b.approval_requested  push a buyer's over-budget order to the company owner (「同意 N」/「驳回 N」)
  b2b.approval_decided    push the owner's decision (and the order number) to the buyer
  b2b.statement_issued    push a monthly statement (amount, due day) to the company's owner

Payment methods (registry.add_payment_method): 「月结」 (credit.CreditMethod) and 「对公转账」
(transfers.TransferMethod), each with its refund hook (refunds.py: a credit order's refund
lowers the balance at once; a transfer order's is an offline refund an admin confirms).
Account event: submit_invoice_title fills the member's company invoice details (invoice_title.py).
Job: b2b.statements issues last month's statements (each once). Books check (the core's
`books.checks` job): b2b.credit — outstanding == Σ credit orders − Σ repayments − Σ refunds.
"""

from __future__ import annotations

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.plugins import Delivery, Registry
from social_mall_b2b import HERE, credit, transfers, flow_account, flow_credit, flow_quick, flow_quotes, prices, web_console


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow_account.FLOW)
    reg.add_flow(flow_quick.FLOW)
    reg.add_flow(flow_quotes.FLOW)
    reg.add_flow(flow_credit.FLOW)
    reg.add_unit_pricer(prices.PRICER)
    from social_mall_b2b import exclusive

    reg.add_product_visibility(exclusive.VISIBILITY)
    from storage.cache import watch

    from social_mall_b2b.models import Company, CompanyMember, ExclusiveProduct

    watch(Company, CompanyMember, ExclusiveProduct)   # read through the core's read cache on every browse step
    reg.add_payment_method(credit.METHOD_OBJ)
    reg.add_payment_method(transfers.METHOD_OBJ)
    from social_mall_b2b import member_groups

    reg.add_member_groups(member_groups.GROUPS)
    from social_mall_b2b import vat

    reg.add_order_note(vat.order_note)
    web_console.register(reg)
    from social_mall_b2b import web_h5

    reg.add_routes(web_h5.routes)
    from social_mall_b2b import invoice_title

    reg.add_account_event(invoice_title.EVENT, invoice_title.handler(svc))

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

    async def push_statement(d: Delivery) -> None:
        from datetime import datetime

        due = datetime.fromisoformat(str(d.payload["due_at"]))
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/statement.txt",
                             {**d.payload, "due": due})

    async def statements_due() -> int:
        from social_mall_b2b.statements import issue_all

        return await issue_all(svc.uows, svc.clock())

    async def push_approval_requested(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/approval_requested.txt",
                             d.payload)

    async def push_approval_decided(d: Delivery) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), "chat/b2b/push/approval_decided.txt",
                             d.payload)

    reg.subscribe("b2b.approval_requested", "b2b.push_approval_requested", push_approval_requested)
    reg.subscribe("b2b.approval_decided", "b2b.push_approval_decided", push_approval_decided)
    reg.subscribe("b2b.statement_issued", "b2b.push_statement", push_statement)
    reg.add_job("b2b.statements", 3600.0, statements_due)
    reg.add_books_check("b2b.credit", credit.books_check)
    reg.subscribe("b2b.company_decided", "b2b.push_decided", push_decided)
    reg.subscribe("order.cancelled", "b2b.budget_back", budget_back)
    reg.subscribe("b2b.quote_answered", "b2b.push_quote", push_quote)
