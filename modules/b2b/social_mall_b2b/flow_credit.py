"""Chat: paying on the company's credit terms (月结), and the owner's approvals (待审批).

「月结」 pays the member's latest unpaid order on its company's account; 「月结 订单号」 a
given one. Refused with the reason (no terms, over the limit with what is owed, an
overdue statement) and nothing written; a second 「月结」 of a paid order changes nothing.

「对公转账」 (or 「对公转账 订单号」) answers with the shop's account and the order's
reference, and keeps the order open for the shop's transfer window (transfers.py).

「待审批」 lists the owner's pending requests (buyers' orders over their monthly budget);
「同意 N」 places request N's order for the buyer (pushed to the buyer with the order
number), 「驳回 N」 rejects it (pushed); each decided once (approvals.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Keyword, Outcome, Say, Step, StepFn, Turn
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import find_order, list_orders
from social_mall.parsing import parse_id
from social_mall.views import OrderView
from social_mall_b2b import approvals, credit, transfers, vat
from social_mall_b2b.accounts import approved_company
from social_mall_b2b.errors import CreditRefusedError

NAME = "b2b_credit"


class St(StrEnum):
    IDLE = "idle"


class Do(StrEnum):
    PAY = "b2b.credit_pay"
    TRANSFER = "b2b.transfer"
    PENDING = "b2b.approvals"
    APPROVE = "b2b.approve"
    REJECT = "b2b.reject"


@dataclass(frozen=True)
class Pay:
    order_no: str

    async def run(self, ctx: Ctx) -> Outcome:
        order = await _unpaid(ctx, self.order_no)
        paid = await credit.pay_on_credit(ctx.uow, ctx.tenant_id, ctx.member.id, order.id, ctx.now)
        company = await approved_company(ctx.uow, ctx.tenant_id, ctx.member.id)
        terms = await credit.account(ctx.uow, ctx.tenant_id, company.id) if company else None
        taxes = await vat.of_order(ctx.uow, ctx.tenant_id, paid)
        return Outcome((Say("chat/b2b/credit_paid.txt", {"order": paid, "terms": terms, "vat": taxes}),))


async def _unpaid(ctx: Ctx, order_no: str) -> OrderView:
    if order_no:
        return await find_order(ctx.uow, ctx.tenant_id, order_no, member_id=ctx.member.id)
    page = await list_orders(ctx.uow, ctx.tenant_id, ctx.member.id, per_page=20)
    unpaid = [o for o in page.items if o.status == OrderStatus.PENDING_PAYMENT]
    if not unpaid:
        raise CreditRefusedError("order")
    return unpaid[0]


@dataclass(frozen=True)
class ByTransfer:
    order_no: str

    async def run(self, ctx: Ctx) -> Outcome:
        order = await _unpaid(ctx, self.order_no)
        t, terms, until = await transfers.choose(ctx.uow, ctx.tenant_id, ctx.member.id, order, ctx.now)
        taxes = await vat.of_order(ctx.uow, ctx.tenant_id, order)
        return Outcome((Say("chat/b2b/transfer.txt", {"order": order, "t": t, "terms": terms, "until": until,
                                                      "vat": taxes}),))


def by_transfer(turn: Turn) -> Step:
    raw = turn.said.args[0].strip() if turn.said.args and turn.said.args[0] else ""
    return Step(St.IDLE, command=ByTransfer(raw))


@dataclass(frozen=True)
class Pending:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await approvals.pending(ctx.uow, ctx.tenant_id, ctx.member.id)
        until = {r.id: approvals.expires_at(r.created_at) for r in found}
        return Outcome((Say("chat/b2b/approvals.txt", {"requests": found, "until": until}),))


@dataclass(frozen=True)
class Decide:
    approval_id: int
    approve: bool

    async def run(self, ctx: Ctx) -> Outcome:
        req, order = await approvals.decide(ctx.uow, ctx.tenant_id, ctx.member.id, self.approval_id,
                                            approve=self.approve, now=ctx.now, timeout=ctx.order_timeout,
                                            channel=ctx.channel)
        return Outcome((Say("chat/b2b/approval_decided.txt", {"req": req, "order": order}),))


def pending(turn: Turn) -> Step:
    return Step(St.IDLE, command=Pending())


def _decide(turn: Turn, approve: bool) -> Step:
    n = parse_id(turn.said.args[0]) if turn.said.args else None
    if n is None:
        return Step(St.IDLE, command=Pending())
    return Step(St.IDLE, command=Decide(n, approve))


def approve(turn: Turn) -> Step:
    return _decide(turn, True)


def reject(turn: Turn) -> Step:
    return _decide(turn, False)


def pay(turn: Turn) -> Step:
    raw = turn.said.args[0].strip() if turn.said.args and turn.said.args[0] else ""
    return Step(St.IDLE, command=Pay(raw))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.PAY): pay, (St.IDLE, Do.TRANSFER): by_transfer, (St.IDLE, Do.PENDING): pending, (St.IDLE, Do.APPROVE): approve,
    (St.IDLE, Do.REJECT): reject,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.PAY, pattern=r"月结\s*(\d{0,32})"), Keyword(Do.PENDING, words=("待审批",)),
              Keyword(Do.TRANSFER, pattern=r"对公转账\s*(\d{0,32})"),
              Keyword(Do.APPROVE, pattern=r"同意\s*#?(\d{1,12})"), Keyword(Do.REJECT, pattern=r"驳回\s*#?(\d{1,12})")),
)
