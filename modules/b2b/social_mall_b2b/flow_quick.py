"""Chat: quick order (快速下单), for members of an approved business account.

「快速下单 A1023 x 24, B77 12」 (one message; full-width digits, ×/x/*, spaces, commas and
semicolons all fine): a table of the lines with each one's 企业价 for that quantity and
the total, or each line's problem (unknown code, off sale, below the minimum, not a whole
case, short stock: with the nearest valid quantity) and nothing to confirm. With no
problem 「确认下单」 goes to checkout's summary with those lines (address, then the pay
link). Pasting again replaces the list. 「快速下单」 alone explains the format.

「再来一单」: the latest order's lines again, at today's prices, into checkout's summary.

State data: lines (flat sku id, qty pairs of a quote without problems).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows import checkout
from flows.engine import Ctx, Flow, Intent, Keyword, Outcome, Say, Step, StepFn, Turn
from social_mall.orders.service import list_orders
from social_mall_b2b.accounts import approved_company
from social_mall_b2b.quick import quick_quote
from social_mall_b2b.rules import QUICK_MAX_LINES, parse_quick_order

NAME = "b2b_quick"


class St(StrEnum):
    IDLE = "idle"
    REVIEW = "review"


class Do(StrEnum):
    QUICK = "b2b.quick"
    AGAIN = "b2b.again"


@dataclass(frozen=True)
class Quote:
    raw: str

    async def run(self, ctx: Ctx) -> Outcome:
        if await approved_company(ctx.uow, ctx.tenant_id, ctx.member.id) is None:
            return Outcome((Say("chat/b2b/quick_not_business.txt"),), to=St.IDLE)
        items, bad = parse_quick_order(self.raw)
        if not items and not bad:
            return Outcome((Say("chat/b2b/quick_usage.txt"),), to=St.IDLE)
        if len(items) + len(bad) > QUICK_MAX_LINES:
            return Outcome((Say("chat/b2b/quick_too_many.txt", {"most": QUICK_MAX_LINES}),), to=St.IDLE)
        q = await quick_quote(ctx.uow, ctx.tenant_id, ctx.member.id, items, bad, ctx.now)
        say = Say("chat/b2b/quick_quote.txt", {"q": q})
        if not q.ok:
            return Outcome((say,), to=St.IDLE)
        flat = [n for ln in q.lines if ln.sku_id is not None for n in (ln.sku_id, ln.qty)]
        return Outcome((say,), {"lines": flat}, to=St.REVIEW)


@dataclass(frozen=True)
class Again:
    """「再来一单」: the member's latest order again, priced today (its 企业价 and tiers now),
    straight to checkout's summary; what is off sale or short is said there."""

    async def run(self, ctx: Ctx) -> Outcome:
        if await approved_company(ctx.uow, ctx.tenant_id, ctx.member.id) is None:
            return Outcome((Say("chat/b2b/quick_not_business.txt"),), to=St.IDLE)
        last = (await list_orders(ctx.uow, ctx.tenant_id, ctx.member.id, page=1, per_page=1)).items
        if not last:
            return Outcome((Say("chat/b2b/again_none.txt"),), to=St.IDLE)
        flat = [n for ln in last[0].lines for n in (ln.sku_id, ln.qty)]
        shown = await checkout.StartCheckout({"src": "list", "lines": flat}).run(ctx)
        said = (Say("chat/b2b/again.txt", {"order": last[0]}), *shown.replies)
        return Outcome(said, shown.data, to=shown.to, flow=shown.flow or checkout.NAME)


def again(turn: Turn) -> Step:
    return Step(St.IDLE, command=Again())


def quote(turn: Turn) -> Step:
    raw = turn.said.args[0] if turn.said.args else ""
    return Step(St.REVIEW, command=Quote(raw))


def order(turn: Turn) -> Step:
    lines = turn.ids("lines")
    if not lines:
        return Step(St.IDLE, (Say("chat/b2b/quick_usage.txt"),))
    return checkout.begin({"src": "list", "lines": lines})


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.QUICK): quote,
    (St.REVIEW, Do.QUICK): quote,
    (St.REVIEW, Intent.YES): order,
    (St.IDLE, Do.AGAIN): again,
    (St.REVIEW, Do.AGAIN): again,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.QUICK, pattern=r"快速下单\s*(.{0,4000})"), Keyword(Do.QUICK, words=("快速下单",)),
              Keyword(Do.AGAIN, words=("再来一单", "再买一单"))),
    hints={St.REVIEW: "chat/b2b/hints/quick_review.txt"},
)
