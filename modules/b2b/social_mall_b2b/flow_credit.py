"""Chat: paying on the company's credit terms (月结).

「月结」 pays the member's latest unpaid order on its company's account; 「月结 订单号」 a
given one. Refused with the reason (no terms, over the limit with what is owed, an
overdue statement) and nothing written; a second 「月结」 of a paid order changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Keyword, Outcome, Say, Step, StepFn, Turn
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import find_order, list_orders
from social_mall_b2b import credit
from social_mall_b2b.errors import CreditRefusedError

NAME = "b2b_credit"


class St(StrEnum):
    IDLE = "idle"


class Do(StrEnum):
    PAY = "b2b.credit_pay"


@dataclass(frozen=True)
class Pay:
    order_no: str

    async def run(self, ctx: Ctx) -> Outcome:
        if self.order_no:
            order = await find_order(ctx.uow, ctx.tenant_id, self.order_no, member_id=ctx.member.id)
        else:
            page = await list_orders(ctx.uow, ctx.tenant_id, ctx.member.id, per_page=20)
            unpaid = [o for o in page.items if o.status == OrderStatus.PENDING_PAYMENT]
            if not unpaid:
                raise CreditRefusedError("order")
            order = unpaid[0]
        paid = await credit.pay_on_credit(ctx.uow, ctx.tenant_id, ctx.member.id, order.id, ctx.now)
        company = await credit.approved_company(ctx.uow, ctx.tenant_id, ctx.member.id)
        terms = await credit.account(ctx.uow, ctx.tenant_id, company.id) if company else None
        return Outcome((Say("chat/b2b/credit_paid.txt", {"order": paid, "terms": terms}),))


def pay(turn: Turn) -> Step:
    raw = turn.said.args[0].strip() if turn.said.args and turn.said.args[0] else ""
    return Step(St.IDLE, command=Pay(raw))


TABLE: Mapping[tuple[str, str], StepFn] = {(St.IDLE, Do.PAY): pay}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.PAY, pattern=r"月结\s*(\d{0,32})"),),
)
