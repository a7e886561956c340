"""Chat: quotes (询价), for members of an approved business account.

「询价 A1023 x 500, B77 100」 files a request (lines as in quick order); the console's
answer is pushed (prices, total, expiry). 「我的询价」 lists them. 「接受报价 N」 places the
order at the quoted prices (once, before the expiry) to the member's default address and
answers with the pay link; without a saved address it asks for one first (「张三
13800138000 上海市…」 in one message). 「询价」 alone explains the format.

State data: quote (the quote being accepted while the address is asked for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Intent, Keyword, Outcome, Say, Step, StepFn, Turn
from social_mall.members.address_parse import parse_address
from social_mall.members.service import add_address, list_addresses, use_address
from social_mall.parsing import parse_id
from social_mall_b2b import quotes
from social_mall_b2b.rules import parse_quick_order

NAME = "b2b_quotes"


class St(StrEnum):
    IDLE = "idle"
    ADDRESS = "address"


class Do(StrEnum):
    ASK = "b2b.quote_ask"
    USAGE = "b2b.quote_usage"
    MINE = "b2b.quotes"
    ACCEPT = "b2b.quote_accept"


@dataclass(frozen=True)
class Ask:
    raw: str

    async def run(self, ctx: Ctx) -> Outcome:
        items, bad = parse_quick_order(self.raw)
        q = await quotes.request_quote(ctx.uow, ctx.tenant_id, ctx.member.id, items, bad, ctx.now)
        return Outcome((Say("chat/b2b/quote_requested.txt", {"q": q}),))


@dataclass(frozen=True)
class Mine:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await quotes.member_quotes(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say("chat/b2b/quotes.txt", {"quotes": found, "now": ctx.now}),))


async def _place(ctx: Ctx, quote_id: int, address_id: int) -> Outcome:
    order = await quotes.accept_quote(ctx.uow, ctx.tenant_id, ctx.member.id, quote_id, address_id=address_id,
                                      now=ctx.now, timeout=ctx.order_timeout, channel=ctx.channel)
    await use_address(ctx.uow, ctx.tenant_id, ctx.member.id, address_id)
    say = Say("chat/checkout/placed.txt", {"order": order, "minutes": int(ctx.order_timeout.total_seconds() // 60),
                                           "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no)})
    return Outcome((say,), to=St.IDLE)


@dataclass(frozen=True)
class Accept:
    quote_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        q = await quotes.get_quote(ctx.uow, ctx.tenant_id, self.quote_id, ctx.member.id)
        if not q.live(ctx.now):
            status = "expired" if q.status == quotes.ANSWERED else q.status
            return Outcome((Say("chat/errors/b2b_quote_unavailable.txt", {"quote_id": q.id, "status": status}),),
                           to=St.IDLE)
        addrs = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not addrs:
            return Outcome((Say("chat/b2b/quote_address.txt", {"q": q}),), {"quote": q.id}, to=St.ADDRESS)
        return await _place(ctx, q.id, addrs[0].id)


@dataclass(frozen=True)
class AcceptTo:
    quote_id: int
    name: str
    phone: str
    detail: str

    async def run(self, ctx: Ctx) -> Outcome:
        address = await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, self.name, self.phone, self.detail)
        return await _place(ctx, self.quote_id, address.id)


def ask(turn: Turn) -> Step:
    raw = turn.said.args[0] if turn.said.args else ""
    if not raw.strip():
        return Step(St.IDLE, (Say("chat/b2b/quote_usage.txt"),))
    return Step(St.IDLE, command=Ask(raw))


def usage(turn: Turn) -> Step:
    return Step(St.IDLE, (Say("chat/b2b/quote_usage.txt"),))


def mine(turn: Turn) -> Step:
    return Step(St.IDLE, command=Mine())


def accept(turn: Turn) -> Step:
    n = parse_id(turn.said.args[0]) if turn.said.args else None
    if n is None:
        return Step(St.IDLE, (Say("chat/b2b/quote_usage.txt"),))
    return Step(St.IDLE, command=Accept(n))


def got_address(turn: Turn) -> Step:
    quote = turn.num("quote")
    parsed = parse_address(turn.said.text)
    if quote is None:
        return Step(St.IDLE, (Say("chat/b2b/quote_usage.txt"),))
    if parsed.missing:
        return turn.stay(Say("chat/b2b/quote_address.txt", {"q": None, "missing": parsed.missing}))
    return Step(St.IDLE, command=AcceptTo(quote, parsed.name, parsed.phone, parsed.detail))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.ASK): ask,
    (St.IDLE, Do.USAGE): usage,
    (St.IDLE, Do.MINE): mine,
    (St.IDLE, Do.ACCEPT): accept,
    (St.ADDRESS, Intent.TEXT): got_address,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.USAGE, words=("询价",)), Keyword(Do.MINE, words=("我的询价", "报价")),
              Keyword(Do.ACCEPT, pattern=r"接受报价\s*(\S{1,20})"), Keyword(Do.ASK, pattern=r"询价\s*(.{1,4000})")),
    hints={St.ADDRESS: "chat/b2b/hints/quote_address.txt"},
    free_text=frozenset({St.ADDRESS}),
)
