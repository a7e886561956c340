"""Chat: 秒杀.

「秒杀」 lists the live session (its items: seckill price, retail price, left or 已抢光, and
the time to its end) and the next ones (the time to their start), items numbered. A number
opens the item: in a live session, how many (「回复数量，每人限购 N 件」); before the start,
the countdown and 「提醒我」. A quantity buys it (buying.buy: admission in front; 「已抢光」
at once when none is left) to the member's default address and answers with the pay link
and the session's payment window; without a saved address, the whole address in one
message first (「张三 13800138000 上海市…」). 「提醒我」 subscribes the member to the start
of the session shown (or the next one).

State data: items (listed item ids), session (the next session, for 提醒我), item, qty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flows.engine import Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn
from social_mall.errors import NotFoundError
from social_mall.members.address_parse import parse_address
from social_mall.members.service import add_address, use_address
from social_mall_seckill import service
from social_mall_seckill.errors import NoAddressError
from social_mall_seckill.rules import Phase, countdown

NAME = "seckill"
SHOW_ITEMS = 9


class St(StrEnum):
    IDLE = "idle"
    LIST = "list"
    QTY = "qty"
    ADDRESS = "address"


class Do(StrEnum):
    BOARD = "seckill.board"
    REMIND = "seckill.remind"


class _Holder:
    """The worker's seckill desk (buying.Desk), set by module.setup: a buy runs its own
    unit of work and the admission step."""

    desk: Any = None


HOLDER = _Holder()


@dataclass(frozen=True)
class Board:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await service.board(ctx.uow, ctx.tenant_id, ctx.now)
        listed: list[int] = []
        shown = []
        for s in found:
            live = s.phase(ctx.now) == Phase.LIVE
            rows = []
            for it in s.items:
                if len(listed) >= SHOW_ITEMS:
                    break
                listed.append(it.id)
                rows.append((len(listed), it))
            shown.append({"s": s, "live": live, "rows": rows,
                          "left": countdown((s.ends_at if live else s.starts_at) - ctx.now)})
        upcoming = next((s.id for s in found if s.phase(ctx.now) == Phase.UPCOMING), 0)
        say = Say("chat/seckill/board.txt", {"sessions": shown, "remind": bool(upcoming)})
        if not listed:
            return Outcome((say,), to=St.IDLE)
        return Outcome((say,), {"items": listed, "session": upcoming}, to=St.LIST)


@dataclass(frozen=True)
class Open:
    item_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        s, it = await service.item(ctx.uow, ctx.tenant_id, self.item_id)
        p = s.phase(ctx.now)
        if p == Phase.LIVE and s.enabled:
            if it.left <= 0:
                return Outcome((Say("chat/errors/seckill_sold_out.txt", {"title": it.title}),), to=St.IDLE)
            return Outcome((Say("chat/seckill/ask_qty.txt", {"it": it, "s": s,
                                                              "left": countdown(s.ends_at - ctx.now)}),),
                           {"item": it.id}, to=St.QTY)
        if p == Phase.UPCOMING:
            return Outcome((Say("chat/seckill/not_yet.txt", {"it": it, "s": s,
                                                              "left": countdown(s.starts_at - ctx.now)}),),
                           {"session": s.id}, to=St.LIST)
        return Outcome((Say("chat/errors/seckill_ended.txt", {"title": it.title}),), to=St.IDLE)


async def _buy(ctx: Ctx, item_id: int, qty: int, address_id: int | None) -> Outcome:
    order = await HOLDER.desk.buy(ctx.tenant_id, ctx.member.id, item_id, qty, address_id=address_id,
                                  channel=ctx.channel, now=ctx.now)
    s, _ = await HOLDER.desk.item_meta(ctx.tenant_id, item_id)   # cached: no second connection held
    say = Say("chat/seckill/placed.txt", {"order": order, "minutes": s.pay_minutes,
                                          "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no)})
    return Outcome((say,), {"order": order.id, "orders": [order.id], "page": 1, "pages": 1}, to=St.IDLE)


@dataclass(frozen=True)
class Buy:
    """An attempt: admission first (no database work for those refused), the member's
    default address looked up once admitted; none saved: ask for one, then buy."""

    item_id: int
    qty: int

    async def run(self, ctx: Ctx) -> Outcome:
        try:
            return await _buy(ctx, self.item_id, self.qty, None)
        except NoAddressError:
            return Outcome((Say("chat/seckill/ask_address.txt", {"missing": ()}),),
                           {"item": self.item_id, "qty": self.qty}, to=St.ADDRESS)


@dataclass(frozen=True)
class BuyTo:
    item_id: int
    qty: int
    name: str
    phone: str
    detail: str

    async def run(self, ctx: Ctx) -> Outcome:
        address = await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, self.name, self.phone, self.detail)
        await ctx.uow.commit()   # the address stays saved whatever the attempt's answer
        outcome = await _buy(ctx, self.item_id, self.qty, address.id)
        await use_address(ctx.uow, ctx.tenant_id, ctx.member.id, address.id)
        return outcome


@dataclass(frozen=True)
class Remind:
    session_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        sid = self.session_id
        if not sid:
            upcoming = [s for s in await service.board(ctx.uow, ctx.tenant_id, ctx.now)
                        if s.phase(ctx.now) == Phase.UPCOMING]
            if not upcoming:
                return Outcome((Say("chat/seckill/no_next.txt"),), to=St.IDLE)
            sid = upcoming[0].id
        try:
            s = await service.session(ctx.uow, ctx.tenant_id, sid)
        except NotFoundError:
            return Outcome((Say("chat/seckill/no_next.txt"),), to=St.IDLE)
        if s.phase(ctx.now) != Phase.UPCOMING:
            return Outcome((Say("chat/seckill/already_live.txt", {"s": s}),), to=St.IDLE)
        new = await service.remind(ctx.uow, ctx.tenant_id, s.id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/seckill/reminded.txt", {"s": s, "new": new,
                                                          "left": countdown(s.starts_at - ctx.now)}),), to=St.IDLE)


# -- steps (pure) ------------------------------------------------------------------------

def board(turn: Turn) -> Step:
    return Step(St.LIST, command=Board())


def remind(turn: Turn) -> Step:
    return Step(St.IDLE, command=Remind(turn.num("session") or 0))


def pick(turn: Turn) -> Step:
    item_id = turn.pick("items")
    if item_id is None:
        return turn.stay(Say("chat/seckill/bad_number.txt"))
    return Step(St.LIST, data=dict(turn.data), command=Open(item_id))


def quantity(turn: Turn) -> Step:
    item_id, n = turn.num("item"), turn.said.n
    if item_id is None:
        return Step(St.IDLE, (Say("chat/seckill/bad_number.txt"),))
    if n is None or not 1 <= n <= 99:
        return turn.stay(Say("chat/seckill/bad_qty.txt"))
    return Step(St.QTY, data=dict(turn.data), command=Buy(item_id, n))


def got_address(turn: Turn) -> Step:
    item_id, qty = turn.num("item"), turn.num("qty")
    if item_id is None or qty is None:
        return Step(St.IDLE, (Say("chat/seckill/bad_number.txt"),))
    parsed = parse_address(turn.said.text)
    if parsed.missing:
        return turn.stay(Say("chat/seckill/ask_address.txt", {"missing": parsed.missing}))
    return Step(St.IDLE, command=BuyTo(item_id, qty, parsed.name, parsed.phone, parsed.detail))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.BOARD): board,
    (St.IDLE, Do.REMIND): remind,
    (St.LIST, Intent.NUMBER): pick,
    (St.QTY, Intent.NUMBER): quantity,
    (St.ADDRESS, Intent.TEXT): got_address,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.BOARD, words=("秒杀", "限时秒杀", "抢购")),
              Keyword(Do.REMIND, words=("提醒我", "开抢提醒"), carry=("session",))),
    hints={St.LIST: "chat/seckill/hints/list.txt", St.QTY: "chat/seckill/hints/qty.txt",
           St.ADDRESS: "chat/seckill/hints/address.txt"},
    free_text=frozenset({St.ADDRESS}),
    menu=(MenuEntry(80, "chat/seckill/_help.txt", (("限时秒杀", "秒杀"),)),),
)
