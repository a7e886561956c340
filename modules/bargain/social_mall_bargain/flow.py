"""Chat: 砍价.

「砍价」 lists live campaigns → a number starts a bargain on it (or shows the member's live
one) → a share card (the H5 page with the QR code; scene bk_<code>) and 「帮砍 <code>」 to
forward. A friend scanning the card's QR code (following through it or scanning while
following) or sending 「帮砍 <code>」 helps once. 「我的砍价」 shows the member's bargains;
「砍价购买」 buys the latest live one (「砍价购买 <code>」 that one of the member's) at its price
now (the floor when reached): one order,
a repeat answers with the same pay link; without a saved address one is asked first
(「张三 13800138000 上海市…」 in one message).

State data: campaigns (listed ids), bargain (the one being bought while the address is asked for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import MENU_WORD, Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn
from flows.engine import reads_only
from flows.types import Links
from social_mall.errors import NotFoundError
from social_mall.members.address_parse import parse_address
from social_mall.members.service import add_address, list_addresses, use_address
from social_mall.sharing import share_path
from social_mall_bargain import rules, service
from social_mall_bargain.errors import AlreadyBargainingError

NAME = "bargain"


class St(StrEnum):
    IDLE = "idle"
    LIST = "list"          # campaigns listed: a number starts one
    ADDRESS = "address"    # 姓名 手机号 地址 for the bargain's order


class Do(StrEnum):
    LIST = "bargain.list"
    MINE = "bargain.mine"
    HELP = "bargain.help"
    SCENE = "bargain.scene"
    BUY = "bargain.buy"


def share_url(links: Links, tenant_code: str, code: str, account: int = 0) -> str:
    """The bargain's share page; its QR follows the official account `account` (the sharer's)."""
    return links.page_url(share_path(f"/bk/{tenant_code}/{code}", account))


def qr_url(links: Links, tenant_code: str, code: str, account: int = 0) -> str:
    return links.image_url(share_path(f"/bargain/qr/{tenant_code}/{code}.png", account))


def share_card(ctx: Ctx, b: service.BargainView) -> Say:
    return Say("chat/bargain/card.txt", {"b": b}, card=True,
               url=share_url(ctx.links, ctx.tenant_code, b.code, ctx.account),
               image=qr_url(ctx.links, ctx.tenant_code, b.code, ctx.account))


@reads_only
@dataclass(frozen=True)
class ListCampaigns:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await service.live_campaigns(ctx.uow, ctx.tenant_id, ctx.now)
        if not found:
            return Outcome((Say("chat/bargain/none.txt"),), to=St.IDLE, redirect=MENU_WORD)
        return Outcome((Say("chat/bargain/list.txt", {"campaigns": found}),), {"campaigns": [c.id for c in found]})


@dataclass(frozen=True)
class Start:
    campaign_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        try:
            b = await service.start_bargain(ctx.uow, ctx.tenant_id, ctx.member.id, self.campaign_id, now=ctx.now)
            again = False
        except AlreadyBargainingError as exc:
            await ctx.uow.rollback()
            b = await service.bargain_by_code(ctx.uow, ctx.tenant_id, exc.bargain_code)
            again = True
        return Outcome((share_card(ctx, b), Say("chat/bargain/started.txt", {"b": b, "again": again,
                                                                          "now": ctx.now})), to=St.IDLE)


@dataclass(frozen=True)
class Help:
    code: str

    async def run(self, ctx: Ctx) -> Outcome:
        r = await service.help_bargain(ctx.uow, ctx.tenant_id, ctx.member.id, self.code, now=ctx.now)
        return Outcome((Say("chat/bargain/helped.txt", {"r": r, "b": r.bargain}),), to=St.IDLE)


@reads_only
@dataclass(frozen=True)
class Mine:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await service.member_bargains(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say("chat/bargain/mine.txt", {"bargains": found, "now": ctx.now}),), to=St.IDLE)


async def _place(ctx: Ctx, bargain_id: int, address_id: int) -> Outcome:
    order, fresh = await service.buy(ctx.uow, ctx.tenant_id, ctx.member.id, bargain_id, address_id=address_id,
                                     now=ctx.now, timeout=ctx.order_timeout, channel=ctx.channel)
    if fresh:
        await use_address(ctx.uow, ctx.tenant_id, ctx.member.id, address_id)
    minutes = max(1, int((order.expires_at - ctx.now).total_seconds() // 60))
    return Outcome((Say("chat/checkout/placed.txt", {
        "order": order, "minutes": minutes, "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no)}),),
        to=St.IDLE)


async def _latest(ctx: Ctx) -> service.BargainView | None:
    for b in await service.member_bargains(ctx.uow, ctx.tenant_id, ctx.member.id):
        if b.status in (*rules.LIVE, rules.Status.ORDERED) and b.expires_at > ctx.now:
            return b
    return None


async def _mine(ctx: Ctx, code: str) -> service.BargainView | None:
    try:
        b = await service.bargain_by_code(ctx.uow, ctx.tenant_id, code)
    except NotFoundError:
        return None
    return b if b.member_id == ctx.member.id else None


@dataclass(frozen=True)
class Buy:
    code: str = ""    # one of the member's bargains by its code; "" the latest live one

    async def run(self, ctx: Ctx) -> Outcome:
        b = await _latest(ctx) if not self.code else await _mine(ctx, self.code)
        if b is None:
            return Outcome((Say("chat/bargain/nothing_to_buy.txt"),), to=St.IDLE)
        if b.status != rules.Status.ORDERED:
            addrs = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
            if not addrs:
                return Outcome((Say("chat/bargain/ask_address.txt", {"b": b}),), {"bargain": b.id}, to=St.ADDRESS)
            return await _place(ctx, b.id, addrs[0].id)
        return await _place(ctx, b.id, 0)


@dataclass(frozen=True)
class BuyTo:
    bargain_id: int
    name: str
    phone: str
    detail: str

    async def run(self, ctx: Ctx) -> Outcome:
        address = await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, self.name, self.phone, self.detail)
        return await _place(ctx, self.bargain_id, address.id)


def start(turn: Turn) -> Step:
    return Step(St.LIST, command=ListCampaigns(), hint=True)


def pick(turn: Turn) -> Step:
    cid = turn.pick("campaigns")
    if cid is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("campaigns"))}))
    return Step(St.IDLE, command=Start(cid))


def help_(turn: Turn) -> Step:
    raw = turn.said.args[0] if turn.said.args else ""
    code = rules.parse_code(raw)
    if code is None:
        return Step(St.IDLE, (Say("chat/bargain/help_usage.txt"),))
    return Step(St.IDLE, command=Help(code))


def scene(turn: Turn) -> Step:
    code = rules.code_of_scene(turn.said.args[0] if turn.said.args else "")
    if code is None:
        return start(turn)
    return Step(St.IDLE, command=Help(code))


def mine(turn: Turn) -> Step:
    return Step(St.IDLE, command=Mine())


def buy(turn: Turn) -> Step:
    raw = turn.said.args[0] if turn.said.args else ""
    code = rules.parse_code(raw) if raw.strip() else ""
    if code is None:
        return Step(St.IDLE, (Say("chat/bargain/nothing_to_buy.txt"),))
    return Step(St.IDLE, command=Buy(code))


def got_address(turn: Turn) -> Step:
    bid = turn.num("bargain")
    parsed = parse_address(turn.said.text)
    if bid is None:
        return start(turn)
    if parsed.missing:
        return turn.stay(Say("chat/bargain/ask_address.txt", {"b": None, "missing": parsed.missing}))
    return Step(St.IDLE, command=BuyTo(bid, parsed.name, parsed.phone, parsed.detail))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.LIST): start,
    (St.LIST, Intent.NUMBER): pick,
    (St.IDLE, Do.HELP): help_,
    (St.IDLE, Do.SCENE): scene,
    (St.IDLE, Do.MINE): mine,
    (St.IDLE, Do.BUY): buy,
    (St.ADDRESS, Intent.TEXT): got_address,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(
        Keyword(Do.LIST, words=("砍价", "砍价活动", "BARGAIN")),
        Keyword(Do.MINE, words=("我的砍价",)),
        Keyword(Do.BUY, words=("砍价购买", "砍价下单")),
        Keyword(Do.BUY, pattern=r"砍价(?:购买|下单)\s*([0-9A-Za-z\- ]{1,20})"),
        Keyword(Do.HELP, pattern=r"帮砍\s*([0-9A-Za-z\- ]{0,20})"),
        Keyword(Do.SCENE, scene=rules.SCENE_PREFIX),
    ),
    hints={St.LIST: "chat/bargain/hint_list.txt", St.ADDRESS: "chat/bargain/hint_address.txt"},
    free_text=frozenset({St.ADDRESS}),
    menu=(MenuEntry(45, "chat/bargain/_help.txt", (("砍价活动", "砍价"),)),),
)
