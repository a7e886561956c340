"""Membership in chat: 「会员」 (level, growth to the next level, points, usable coupons),
「签到」 (daily points, streak bonus), 「领券」 (claimable coupons, a number claims one),
「优惠券」 (my coupons), 「绑定码」 / 「绑定 K7Q2M-9XD3F」 (link this channel to the member that
asked for the code on another one: the two members merge; codes follow social_mall/codes.py:
50 bits, 10 minutes, attempt-limited per member and per code), 「生日」 (show it, or how to set
it) / 「生日 05-01」「生日 1990-05-01」 (set it: once; only an admin changes it afterwards).

State data (领券): tpls (listed template ids). Everything else answers and returns to idle.
Menu CLICK keys: MEMBER, SIGNIN, COUPONS, BIRTHDAY.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import MENU_WORD, Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn
from social_mall.loyalty import merge
from social_mall.loyalty import rules as lrules
from social_mall.loyalty import service as loyalty
from social_mall.members.rules import parse_birthday
from social_mall.members.service import member_birthday, set_birthday

NAME = "members"


class St(StrEnum):
    IDLE = "idle"
    CLAIM = "claim"        # claimable coupons listed: a number claims


class Do(StrEnum):
    SHOW = "members.show"
    SIGNIN = "members.signin"
    CLAIMS = "members.claims"
    MINE = "members.mine"
    BIND_CODE = "members.bind_code"
    BIND = "members.bind"
    BIRTHDAY = "members.birthday"


@dataclass(frozen=True)
class ShowAccount:
    async def run(self, ctx: Ctx) -> Outcome:
        acc = await loyalty.account(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        born = await member_birthday(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say("chat/members/home.txt", {"a": acc, "birthday": born}),))


@dataclass(frozen=True)
class SignIn:
    async def run(self, ctx: Ctx) -> Outcome:
        s = await loyalty.sign_in(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/members/signed_in.txt", {"s": s}),))


@dataclass(frozen=True)
class ListClaimable:
    async def run(self, ctx: Ctx) -> Outcome:
        tpls = await loyalty.claimable(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        if not tpls:
            return Outcome((Say("chat/members/no_claimable.txt"),), to=St.IDLE, redirect=MENU_WORD)
        return Outcome((Say("chat/members/claimable.txt", {"tpls": tpls}),), {"tpls": [t.id for t in tpls]})


@dataclass(frozen=True)
class Claim:
    template_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        c = await loyalty.claim(ctx.uow, ctx.tenant_id, ctx.member.id, self.template_id, now=ctx.now,
                                channel=ctx.channel)
        return Outcome((Say("chat/members/claimed.txt", {"c": c}),))


@dataclass(frozen=True)
class MyCoupons:
    async def run(self, ctx: Ctx) -> Outcome:
        acc = await loyalty.account(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/members/coupons.txt", {"coupons": acc.coupons}),))


@dataclass(frozen=True)
class BindCode:
    async def run(self, ctx: Ctx) -> Outcome:
        code = await merge.issue_bind_code(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/members/bind_code.txt", {"code": code}),))


@dataclass(frozen=True)
class Bind:
    code: str

    async def run(self, ctx: Ctx) -> Outcome:
        await merge.bind_with_code(ctx.uow, ctx.kv, ctx.tenant_id, ctx.member.id, self.code, ctx.now)
        return Outcome((Say("chat/members/bound.txt"),))


@dataclass(frozen=True)
class ShowBirthday:
    async def run(self, ctx: Ctx) -> Outcome:
        born = await member_birthday(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say("chat/members/birthday.txt", {"b": born}),))


@dataclass(frozen=True)
class SetBirthday:
    text: str

    async def run(self, ctx: Ctx) -> Outcome:
        b = parse_birthday(self.text, lrules.local_day(ctx.now))   # InvalidBirthdayError: what to type
        await set_birthday(ctx.uow, ctx.tenant_id, ctx.member.id, b)  # BirthdayLockedError: set already
        return Outcome((Say("chat/members/birthday_set.txt", {"b": b}),))


def show(turn: Turn) -> Step:
    return Step(St.IDLE, command=ShowAccount())


def sign_in(turn: Turn) -> Step:
    return Step(St.IDLE, command=SignIn())


def claims(turn: Turn) -> Step:
    return Step(St.CLAIM, command=ListClaimable())


def claim(turn: Turn) -> Step:
    tpl = turn.pick("tpls")
    if tpl is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("tpls"))}))
    return Step(St.IDLE, command=Claim(tpl))


def mine(turn: Turn) -> Step:
    return Step(St.IDLE, command=MyCoupons())


def bind_code(turn: Turn) -> Step:
    return Step(St.IDLE, command=BindCode())


def bind(turn: Turn) -> Step:
    code = next((a for a in turn.said.args if a), "")
    if not code:
        return Step(St.IDLE, (Say("chat/members/bind_help.txt"),))
    return Step(St.IDLE, command=Bind(code))


def birthday(turn: Turn) -> Step:
    typed = " ".join(a for a in turn.said.args if a).strip()
    return Step(St.IDLE, command=SetBirthday(typed) if typed else ShowBirthday())


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.SHOW): show,
    (St.IDLE, Do.SIGNIN): sign_in,
    (St.IDLE, Do.CLAIMS): claims,
    (St.IDLE, Do.MINE): mine,
    (St.IDLE, Do.BIND_CODE): bind_code,
    (St.IDLE, Do.BIND): bind,
    (St.IDLE, Do.BIRTHDAY): birthday,
    (St.CLAIM, Intent.NUMBER): claim,
    (St.CLAIM, Do.CLAIMS): claims,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.SHOW, words=("会员", "会员中心", "我的会员", "积分", "我的积分", "MEMBER")),
        Keyword(Do.SIGNIN, words=("签到", "每日签到", "SIGNIN")),
        Keyword(Do.CLAIMS, words=("领券", "领优惠券", "领取优惠券", "COUPONS")),
        Keyword(Do.MINE, words=("优惠券", "我的优惠券", "我的券")),
        Keyword(Do.BIND_CODE, words=("绑定码", "获取绑定码")),
        # 「绑定 K7Q2M-9XD3F」: whatever follows is the typed code, checked (and counted) by the core
        Keyword(Do.BIND, pattern=r"绑定\s*(?:码)?\s*:?\s*(\S.*)?"),
        Keyword(Do.BIRTHDAY, words=("我的生日", "设置生日", "BIRTHDAY")),
        # 「生日 …」 or 「生日0501」; 「生日蛋糕」 is not a birthday
        Keyword(Do.BIRTHDAY, pattern=r"(?:设置)?生日(?:\s+(.*)|(\d.*))?"),
    ),
    hints={St.CLAIM: "chat/members/hint_claim.txt"},
    menu=(MenuEntry(50, "chat/members/_help.txt", (("会员中心", "会员"),)),),
)
