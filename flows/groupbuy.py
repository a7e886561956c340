"""Group buying (拼团) on the official account.

「拼团」 lists live campaigns → a number shows one (group price per SKU, open teams with
seats and time left) → 「开团」 opens a team, a team's number joins it → a SKU number
(when there are several) → confirmation (a number changes the quantity) → 「确认» places
the order at the group price and answers with the pay link. A member without a saved
address types 「姓名 手机号 地址」 once. A QR scene `gb_<team>` (following or scanning a
share card's code) lands on that team's join step; 「参团」 joins.
「我的团」 lists the teams the member leads; a number picks one, then 「关团」 ends it
(simulated completion or failure + refunds, per the campaign) or 「延长 2」 extends it.

State data: campaigns (listed ids), campaign, teams (listed ids), team (0 = open a new
one), skus (listed ids), sku, qty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import (
    MENU_WORD, Ctx, Data, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, num,
    reads_only,
)
from flows.types import Links
from social_mall.sharing import share_path
from social_mall.groupbuy import desk, rules, service
from social_mall.groupbuy.errors import AlreadyInTeamError, NoAddressError, QtyLimitError, TeamClosedError
from social_mall.members.service import add_address, list_addresses
from social_mall.parsing import parse_id

NAME = "groupbuy"


class St(StrEnum):
    IDLE = "idle"
    LIST = "list"           # campaigns listed
    DETAIL = "detail"       # one campaign: 开团 or a team's number
    TEAM = "team"           # landed on a team (share card / QR): 参团
    SKU = "sku"             # pick a spec
    CONFIRM = "confirm"     # 确认 / a number = quantity
    ADDRESS = "address"     # 姓名 手机号 地址
    MINE = "mine"           # teams I lead
    LEAD = "lead"           # one of them: 关团 / 延长 N


class Do(StrEnum):
    LIST = "groupbuy.list"
    OPEN = "groupbuy.open"
    JOIN = "groupbuy.join"
    LAND = "groupbuy.land"
    MINE = "groupbuy.mine"
    CLOSE = "groupbuy.close"
    EXTEND = "groupbuy.extend"


ADDRESS_RX = re.compile(r"(\S{1,20})\s+([0-9+\-]{7,20})\s+(.{5,100})")


def share_url(links: Links, tenant_code: str, team_id: int, account: int = 0) -> str:
    """The team's share page; its QR follows the official account `account` (the sharer's)."""
    return links.image_url(share_path(f"/gb/{tenant_code}/team/{team_id}", account))


def qr_url(links: Links, tenant_code: str, team_id: int, account: int = 0) -> str:
    return links.image_url(share_path(f"/groupbuy/qr/{tenant_code}/{team_id}.png", account))


# -- commands ----------------------------------------------------------------------------

@reads_only
@dataclass(frozen=True)
class ListCampaigns:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await service.live_campaigns(ctx.uow, ctx.tenant_id, ctx.now)
        if not found:
            return Outcome((Say("chat/groupbuy/none.txt"),), to=St.IDLE, redirect=MENU_WORD)
        return Outcome((Say("chat/groupbuy/list.txt", {"campaigns": found}),), {"campaigns": [c.id for c in found]})


@reads_only
@dataclass(frozen=True)
class ShowCampaign:
    campaign_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        d = await service.campaign_detail(ctx.uow, ctx.tenant_id, self.campaign_id, ctx.now)
        c = d.campaign
        return Outcome((
            Say("chat/groupbuy/card.txt", {"c": c}, card=True,
                url=ctx.links.product_url(ctx.tenant_code, c.product_id),
                image=ctx.links.image_url(c.image) if c.image else ""),
            Say("chat/groupbuy/detail.txt", {"c": c, "teams": d.teams, "now": ctx.now}),
        ), {"campaign": c.id, "teams": [t.id for t in d.teams]})


@reads_only
@dataclass(frozen=True)
class ShowTeam:
    """Landing on a team (scene gb_<id> or 参团 <id>)."""

    team_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        t = await service.load_team(ctx.uow, ctx.tenant_id, self.team_id)
        if t.status != rules.TeamStatus.FORMING or t.expires_at <= ctx.now:
            raise TeamClosedError(t.id, t.status)
        c = await service.load_campaign(ctx.uow, ctx.tenant_id, t.campaign_id)
        return Outcome((Say("chat/groupbuy/team.txt", {"t": t, "c": c, "now": ctx.now}),),
                       {"campaign": c.id, "team": t.id})


@dataclass(frozen=True)
class PickSku:
    """Open (team 0) or join: one spec goes straight to the confirmation."""

    campaign_id: int
    team_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        c = await service.load_campaign(ctx.uow, ctx.tenant_id, self.campaign_id)
        if self.team_id:
            t = await service.load_team(ctx.uow, ctx.tenant_id, self.team_id)
            if t.status != rules.TeamStatus.FORMING or t.expires_at <= ctx.now:
                raise TeamClosedError(t.id, t.status)
        if len(c.prices) == 1:
            return await Preview(self.campaign_id, self.team_id, c.prices[0].sku_id, 1).run(ctx)
        return Outcome((Say("chat/groupbuy/skus.txt", {"c": c, "open": not self.team_id}),),
                       {"skus": [p.sku_id for p in c.prices]}, to=St.SKU)


@dataclass(frozen=True)
class Preview:
    campaign_id: int
    team_id: int
    sku_id: int
    qty: int

    async def run(self, ctx: Ctx) -> Outcome:
        c = await service.load_campaign(ctx.uow, ctx.tenant_id, self.campaign_id)
        p = c.price(self.sku_id)
        if p is None:
            return Outcome((Say("chat/groupbuy/bad_sku.txt"),), to=St.SKU)
        if not 1 <= self.qty <= c.max_qty:
            raise QtyLimitError(self.qty, c.max_qty)
        unit = rules.unit_price(p.group_price_fen, leader=not self.team_id, leader_discount_fen=c.leader_discount_fen)
        return Outcome((Say("chat/groupbuy/confirm.txt", {
            "c": c, "p": p, "qty": self.qty, "unit": unit, "open": not self.team_id,
        }),), {"campaign": c.id, "team": self.team_id, "sku": p.sku_id, "qty": self.qty}, to=St.CONFIRM)


@dataclass(frozen=True)
class Place:
    campaign_id: int
    team_id: int
    sku_id: int
    qty: int
    new_address: tuple[str, str, str] | None = None

    async def run(self, ctx: Ctx) -> Outcome:
        try:
            r = await self._join(ctx)
        except AlreadyInTeamError:
            # a double send or a retried message: the seat is taken, show its pay link again
            await ctx.uow.rollback()
            r = await service.unpaid_join(ctx.uow, ctx.tenant_id, ctx.member.id, self.team_id) \
                if self.team_id else None
            if r is None:
                raise
            return await self._placed(ctx, r, again=True)
        if r is None:
            return Outcome((Say("chat/groupbuy/ask_address.txt"),), to=St.ADDRESS)
        return await self._placed(ctx, r)

    async def _placed(self, ctx: Ctx, r: service.JoinResult, *, again: bool = False) -> Outcome:
        minutes = max(1, int((r.order.expires_at - ctx.now).total_seconds() // 60))
        return Outcome((Say("chat/groupbuy/placed.txt", {
            "r": r, "open": not self.team_id, "minutes": minutes, "now": ctx.now, "again": again,
            "pay_url": await ctx.links.pay_link(ctx.tenant_code, r.order.order_no),
        }),), to=St.IDLE)

    async def _join(self, ctx: Ctx) -> service.JoinResult | None:
        """The seat and its order; None when an address must be asked for first."""
        kw = dict(now=ctx.now, timeout=ctx.order_timeout, channel=ctx.channel)
        if self.team_id and self.new_address is None:
            # The hot path (a crowd joining one team): the core's join desk batches it with
            # other joins and commits it on its own; the member's saved address is used.
            try:
                return await desk.take_seat(ctx.uow, desk.JoinRequest(
                    ctx.tenant_id, ctx.member.id, self.team_id, self.sku_id, self.qty, None,
                    ctx.now, ctx.order_timeout, ctx.channel))
            except NoAddressError:
                return None
        if self.new_address is not None:
            address_id = (await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, *self.new_address)).id
        else:
            saved = await list_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)
            if not saved:
                return None
            address_id = saved[0].id
        if self.team_id:
            return await service.join_team(ctx.uow, ctx.tenant_id, ctx.member.id, self.team_id, self.sku_id,
                                           self.qty, address_id=address_id, **kw)  # type: ignore[arg-type]
        return await service.open_team(ctx.uow, ctx.tenant_id, ctx.member.id, self.campaign_id, self.sku_id,
                                       self.qty, address_id=address_id, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ListMine:
    async def run(self, ctx: Ctx) -> Outcome:
        teams = await service.leader_teams(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not teams:
            return Outcome((Say("chat/groupbuy/mine_none.txt"),), to=St.IDLE, redirect=MENU_WORD)
        return Outcome((Say("chat/groupbuy/mine.txt", {"teams": teams, "now": ctx.now}),),
                       {"teams": [t.id for t in teams]})


@dataclass(frozen=True)
class ShowLed:
    team_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        t = await service.load_team(ctx.uow, ctx.tenant_id, self.team_id)
        c = await service.load_campaign(ctx.uow, ctx.tenant_id, t.campaign_id)
        return Outcome((Say("chat/groupbuy/led.txt", {
            "t": t, "c": c, "now": ctx.now, "share": share_url(ctx.links, ctx.tenant_code, t.id, ctx.account),
        }),), {"team": t.id})


@dataclass(frozen=True)
class Close:
    team_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        outcome = await service.close_team(ctx.uow, ctx.tenant_id, ctx.member.id, self.team_id, now=ctx.now)
        return Outcome((Say("chat/groupbuy/closed.txt", {"outcome": outcome, "team_id": self.team_id}),), to=St.IDLE)


@dataclass(frozen=True)
class Extend:
    team_id: int
    hours: int

    async def run(self, ctx: Ctx) -> Outcome:
        t = await service.extend_team(ctx.uow, ctx.tenant_id, ctx.member.id, self.team_id, self.hours, now=ctx.now)
        return Outcome((Say("chat/groupbuy/extended.txt", {"t": t, "now": ctx.now}),))


# -- steps (pure) ------------------------------------------------------------------------

def _pick(turn: Turn, key: str) -> int | None:
    return turn.pick(key)


def _bad(turn: Turn, key: str) -> Step:
    return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids(key))}))


def start(turn: Turn) -> Step:
    return Step(St.LIST, command=ListCampaigns(), hint=True)


def pick_campaign(turn: Turn) -> Step:
    cid = _pick(turn, "campaigns")
    if cid is None:
        return _bad(turn, "campaigns")
    return Step(St.DETAIL, command=ShowCampaign(cid), hint=True)


def open_new(turn: Turn) -> Step:
    cid = turn.num("campaign")
    if cid is None:
        return start(turn)
    return Step(St.CONFIRM, data={"campaign": cid, "team": 0}, command=PickSku(cid, 0), hint=True)


def pick_team(turn: Turn) -> Step:
    tid, cid = _pick(turn, "teams"), turn.num("campaign")
    if tid is None or cid is None:
        return _bad(turn, "teams")
    return Step(St.CONFIRM, data={"campaign": cid, "team": tid}, command=PickSku(cid, tid), hint=True)


def land(turn: Turn) -> Step:
    """A QR scene gb_<team> or 「参团 <team>」."""
    raw = turn.said.args[0] if turn.said.args else ""
    tid = rules.team_of_scene(raw) if raw.startswith(rules.SCENE_PREFIX) else parse_id(raw)
    if tid is None:
        return start(turn)
    return Step(St.TEAM, command=ShowTeam(tid), hint=True)


def join_landed(turn: Turn) -> Step:
    tid, cid = turn.num("team"), turn.num("campaign")
    if not tid or cid is None:
        return start(turn)
    return Step(St.CONFIRM, data={"campaign": cid, "team": tid}, command=PickSku(cid, tid), hint=True)


def pick_sku(turn: Turn) -> Step:
    sid, cid = _pick(turn, "skus"), turn.num("campaign")
    if sid is None or cid is None:
        return _bad(turn, "skus")
    return Step(St.CONFIRM, data=turn.data, command=Preview(cid, turn.num("team") or 0, sid, 1), hint=True)


def _order(data: Data) -> tuple[int, int, int, int] | None:
    cid, tid, sid, qty = num(data, "campaign"), num(data, "team"), num(data, "sku"), num(data, "qty")
    if cid is None or tid is None or sid is None or qty is None:
        return None
    return cid, tid, sid, qty


def set_qty(turn: Turn) -> Step:
    o = _order(turn.data)
    if o is None or turn.said.n is None:
        return start(turn)
    return Step(St.CONFIRM, data=turn.data, command=Preview(o[0], o[1], o[2], turn.said.n), hint=True)


def confirm(turn: Turn) -> Step:
    o = _order(turn.data)
    if o is None:
        return start(turn)
    return Step(St.IDLE, data=turn.data, command=Place(*o))


def open_instead(turn: Turn) -> Step:
    """In the confirmation of a join (e.g. after 已满员): open a new team instead."""
    cid = turn.num("campaign")
    if cid is None:
        return start(turn)
    return Step(St.CONFIRM, data={"campaign": cid, "team": 0}, command=PickSku(cid, 0), hint=True)


def address(turn: Turn) -> Step:
    o = _order(turn.data)
    m = ADDRESS_RX.fullmatch(turn.said.text.strip())
    if o is None:
        return start(turn)
    if m is None:
        return turn.stay(Say("chat/groupbuy/ask_address.txt", {"again": True}), hint=False)
    return Step(St.IDLE, data=turn.data, command=Place(*o, new_address=(m.group(1), m.group(2), m.group(3))))


def mine(turn: Turn) -> Step:
    return Step(St.MINE, command=ListMine(), hint=True)


def pick_led(turn: Turn) -> Step:
    tid = _pick(turn, "teams")
    if tid is None:
        return _bad(turn, "teams")
    return Step(St.LEAD, command=ShowLed(tid), hint=True)


def close(turn: Turn) -> Step:
    tid = turn.num("team")
    if tid is None:
        return mine(turn)
    return Step(St.IDLE, command=Close(tid))


def extend(turn: Turn) -> Step:
    tid = turn.num("team")
    hours = parse_id(turn.said.args[0]) if turn.said.args else None
    if tid is None or hours is None:
        return turn.stay(Say("chat/groupbuy/extend_help.txt"))
    return Step(St.LEAD, data=turn.data, command=Extend(tid, hours), hint=True)


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.LIST): start,
    (St.LIST, Intent.NUMBER): pick_campaign,
    (St.DETAIL, Do.OPEN): open_new,
    (St.DETAIL, Intent.NUMBER): pick_team,
    (St.IDLE, Do.LAND): land,
    (St.IDLE, Do.JOIN): land,
    (St.TEAM, Do.JOIN): join_landed,
    (St.TEAM, Intent.YES): join_landed,
    (St.TEAM, Do.OPEN): open_new,
    (St.SKU, Intent.NUMBER): pick_sku,
    (St.SKU, Do.OPEN): open_instead,
    (St.CONFIRM, Intent.NUMBER): set_qty,
    (St.CONFIRM, Intent.YES): confirm,
    (St.CONFIRM, Do.OPEN): open_instead,
    (St.ADDRESS, Intent.TEXT): address,
    (St.ADDRESS, Intent.NUMBER): address,
    (St.ADDRESS, Do.OPEN): open_instead,
    (St.IDLE, Do.MINE): mine,
    (St.MINE, Intent.NUMBER): pick_led,
    (St.LEAD, Do.CLOSE): close,
    (St.LEAD, Do.EXTEND): extend,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.LIST, words=("拼团", "团购", "GROUPBUY")),
        Keyword(Do.MINE, words=("我的团", "我开的团", "GROUPBUY_MINE")),
        Keyword(Do.LAND, scene=rules.SCENE_PREFIX),
        Keyword(Do.JOIN, pattern=r"参团\s*(\d{1,12})"),
        Keyword(Do.EXTEND, pattern=r"延长\s*(\d{1,3})\s*(?:小时)?"),
    ),
    words={"开团": Do.OPEN, "参团": Do.JOIN, "加入": Do.JOIN, "关团": Do.CLOSE, "结束拼团": Do.CLOSE},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.LIST: "chat/groupbuy/hint_list.txt",
        St.DETAIL: "chat/groupbuy/hint_detail.txt",
        St.TEAM: "chat/groupbuy/hint_team.txt",
        St.SKU: "chat/groupbuy/hint_sku.txt",
        St.CONFIRM: "chat/groupbuy/hint_confirm.txt",
        St.ADDRESS: "chat/groupbuy/hint_address.txt",
        St.MINE: "chat/groupbuy/hint_mine.txt",
        St.LEAD: "chat/groupbuy/hint_lead.txt",
    },
    free_text=frozenset({St.ADDRESS}),
    menu=(MenuEntry(40, "chat/groupbuy/_help.txt", (("拼团活动", "拼团"),)),),
)
