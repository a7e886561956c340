"""Chat: the business account (企业采购).

「企业采购」 / 「申请企业账户」: with an approved account, what it gets (企业价 on product cards
and at checkout); under review, that it is; otherwise the application, one question at a
time: company name → 统一社会信用代码 (a wrong code is refused on the spot, with what is
wrong, and asked again) → contact 「张三 13800138000」 → invoice details (「同上」: the
company name as title and the code as tax number; or 「抬头；税号；开户行及账号；地址」) →
the summary, 「提交」 files it. 「取消」 leaves at any step; nothing is written before 「提交」.

「邀请采购员」 (the owner of an approved account): a one-time code for a buyer, who sends
「加入企业 code」 and from then on buys for the company (social_mall_b2b/members.py).

State data: name, uscc, cname, cphone, ititle, itax, ibank, iaddr (what was typed so far).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, text
from social_mall.members.rules import PHONE
from social_mall_b2b import accounts, members
from social_mall_b2b.errors import InvalidApplicationError
from social_mall_b2b.rules import check_uscc

NAME = "b2b_account"
PHONE_IN = re.compile(r"1[3-9]\d{9}")
SAME = frozenset({"同上", "跳过", "无", "默认"})
FIELDS = ("name", "uscc", "cname", "cphone", "ititle", "itax", "ibank", "iaddr")


class St(StrEnum):
    IDLE = "idle"
    NAME = "name"
    CODE = "code"
    CONTACT = "contact"
    INVOICE = "invoice"
    CONFIRM = "confirm"


class Do(StrEnum):
    START = "b2b.start"
    SUBMIT = "b2b.submit"
    INVITE = "b2b.invite"
    JOIN = "b2b.join"


def _carry(data: Mapping[str, object]) -> dict[str, str | int | list[int]]:
    return {k: v for k, v in data.items() if k in FIELDS and isinstance(v, str)}


@dataclass(frozen=True)
class Start:
    """The member's account, its review, or the first question of an application."""

    async def run(self, ctx: Ctx) -> Outcome:
        joined = await accounts.buyer_of(ctx.uow, ctx.tenant_id, ctx.member.id)
        if joined is not None:
            return Outcome((Say("chat/b2b/status.txt", {"c": joined, "buyer": True}),), to=St.IDLE)
        mine = await accounts.member_company(ctx.uow, ctx.tenant_id, ctx.member.id)
        if mine is not None and mine.status != accounts.REJECTED:
            return Outcome((Say("chat/b2b/status.txt", {"c": mine}),), to=St.IDLE)
        from social_mall_b2b.web_h5 import apply_url

        form = apply_url(ctx.links, ctx.tenant_code, ctx.member.id, ctx.now)
        return Outcome((Say("chat/b2b/ask_name.txt", {"rejected": mine, "form_url": form}),), to=St.NAME)


@dataclass(frozen=True)
class Submit:
    data: Mapping[str, str]

    async def run(self, ctx: Ctx) -> Outcome:
        d = self.data
        c = await accounts.apply(ctx.uow, ctx.tenant_id, ctx.member.id, accounts.Application(
            d.get("name", ""), d.get("uscc", ""), d.get("cname", ""), d.get("cphone", ""), d.get("ititle", ""),
            d.get("itax", ""), d.get("ibank", ""), d.get("iaddr", "")), ctx.now)
        return Outcome((Say("chat/b2b/submitted.txt", {"c": c}),), to=St.IDLE)


@dataclass(frozen=True)
class Invite:
    async def run(self, ctx: Ctx) -> Outcome:
        made = await members.create_invite(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        return Outcome((Say("chat/b2b/invite.txt", {"i": made}),), to=St.IDLE)


@dataclass(frozen=True)
class Join:
    raw: str

    async def run(self, ctx: Ctx) -> Outcome:
        c = await members.join(ctx.uow, ctx.kv, ctx.tenant_id, ctx.member.id, self.raw, ctx.now)
        return Outcome((Say("chat/b2b/joined.txt", {"c": c}),), to=St.IDLE)


def invite(turn: Turn) -> Step:
    return Step(St.IDLE, command=Invite())


def join(turn: Turn) -> Step:
    return Step(St.IDLE, command=Join(turn.said.args[0] if turn.said.args else ""))


def start(turn: Turn) -> Step:
    return Step(St.IDLE, command=Start())


def got_name(turn: Turn) -> Step:
    try:
        name = accounts.clean_field("name", turn.said.text)
    except InvalidApplicationError:
        return turn.stay(Say("chat/b2b/bad_name.txt"))
    return Step(St.CODE, (Say("chat/b2b/ask_code.txt", {"name": name}),), {**_carry(turn.data), "name": name})


def got_code(turn: Turn) -> Step:
    code, problem = check_uscc(turn.said.text)
    if problem is not None:
        return turn.stay(Say("chat/errors/b2b_invalid_uscc.txt", {"uscc": code[:24], "problem": problem.value}))
    return Step(St.CONTACT, (Say("chat/b2b/ask_contact.txt"),), {**_carry(turn.data), "uscc": code})


def got_contact(turn: Turn) -> Step:
    said = turn.said.text
    m = PHONE_IN.search(said.replace("-", "").replace(" ", "")) if said else None
    name = PHONE_IN.sub("", said.replace("-", "")).strip(" ,，:：") if m else ""
    name = " ".join(name.split())
    if m is None or not PHONE.match(m.group(0)) or not 1 <= len(name) <= 20:
        return turn.stay(Say("chat/b2b/bad_contact.txt"))
    data = {**_carry(turn.data), "cname": name, "cphone": m.group(0)}
    return Step(St.INVOICE, (Say("chat/b2b/ask_invoice.txt", {"name": turn.text("name"), "uscc": turn.text("uscc")}),),
                data)


def got_invoice(turn: Turn) -> Step:
    said = turn.said.text.strip()
    data = _carry(turn.data)
    if said in SAME:
        parts = [text(data, "name"), text(data, "uscc"), "", ""]
    else:
        parts = [p.strip() for p in re.split(r"[;；\n]", said)]
        if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
            return turn.stay(Say("chat/b2b/bad_invoice.txt"))
        parts += [""] * (4 - len(parts))
    try:
        for field, value in zip(("invoice_title", "invoice_tax_no", "invoice_bank", "invoice_address"), parts,
                                strict=True):
            accounts.clean_field(field, value)
    except InvalidApplicationError:
        return turn.stay(Say("chat/b2b/bad_invoice.txt"))
    data.update(zip(("ititle", "itax", "ibank", "iaddr"), parts, strict=True))
    return Step(St.CONFIRM, (Say("chat/b2b/confirm.txt", {"d": data}),), data)


def submit(turn: Turn) -> Step:
    data = {k: v for k, v in _carry(turn.data).items() if isinstance(v, str)}
    return Step(St.IDLE, command=Submit(data))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.START): start,
    (St.IDLE, Do.INVITE): invite,
    (St.IDLE, Do.JOIN): join,
    (St.NAME, Intent.TEXT): got_name,
    (St.NAME, Intent.NUMBER): got_name,
    (St.CODE, Intent.TEXT): got_code,
    (St.CODE, Intent.NUMBER): got_code,
    (St.CONTACT, Intent.TEXT): got_contact,
    (St.INVOICE, Intent.TEXT): got_invoice,
    (St.CONFIRM, Intent.YES): submit,
    (St.CONFIRM, Do.SUBMIT): submit,
}

FLOW = Flow(
    name=NAME, start=St.IDLE, table=TABLE,
    keywords=(Keyword(Do.START, words=("企业采购", "申请企业账户", "企业账户", "B2B")),
              Keyword(Do.INVITE, words=("邀请采购员",)), Keyword(Do.JOIN, pattern=r"加入企业\s*(\S.{0,39})")),
    words={"提交": Do.SUBMIT},
    hints={St.NAME: "chat/b2b/hints/name.txt", St.CODE: "chat/b2b/hints/code.txt",
           St.CONTACT: "chat/b2b/hints/contact.txt", St.INVOICE: "chat/b2b/hints/invoice.txt",
           St.CONFIRM: "chat/b2b/hints/confirm.txt"},
    free_text=frozenset({St.NAME, St.CODE, St.CONTACT, St.INVOICE}),
    menu=(MenuEntry(70, "chat/b2b/_help.txt", (("企业采购", "企业采购"),)),),
)
