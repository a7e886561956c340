"""Referral (分销) in chat: 「我的推广」 (link, QR image, bound members, frozen/available
balance, recent commissions), 「申请分销」, 「推广码」 (the QR image again), 「推广商品」 (products as numbered share
cards: a number answers with a link card to the product's landing page under the
distributor's code) and 「提现 <金额>」 (a withdrawal request in yuan, e.g. 提现 50).

State data (推广商品): products (listed ids), page, pages. Everything else answers and
returns to idle. Bad input (not a
distributor, below the minimum, over the balance, the daily limit) comes back as
MallErrors rendered by templates/chat/errors/referral_*.txt.

Menu CLICK keys: REFERRAL, REFERRAL_APPLY.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import (
    MENU_WORD, Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, pager,
)
from social_mall.catalog.service import list_products, product_detail
from social_mall.catalog.visibility import hidden_products
from flows.types import Links
from social_mall.sharing import share_path
from social_mall.referral import rules, service
from social_mall.referral.errors import BadAmountError, NotDistributorError

NAME = "referral"


class St(StrEnum):
    IDLE = "idle"
    SHARE = "share"         # products listed as share cards


class Do(StrEnum):
    HOME = "referral.home"
    APPLY = "referral.apply"
    QR = "referral.qr"
    WITHDRAW = "referral.withdraw"
    SHARE = "referral.share"

PER_PAGE = 5


def referral_url(links: Links, tenant_code: str, code: str, account: int = 0, *, product: int = 0) -> str:
    """The distributor's share link (the landing page binds and shows how to follow the
    official account `account`, the one the distributor talks to), of a product if given."""
    return links.image_url(share_path(f"/r/{tenant_code}/{code}", account, p=product))


def qr_image_url(links: Links, tenant_code: str, code: str, account: int = 0) -> str:
    return links.image_url(share_path(f"/referral/qr/{tenant_code}/{code}.png", account))


# -- commands ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ShowHome:
    async def run(self, ctx: Ctx) -> Outcome:
        s = await service.summary(ctx.uow, ctx.tenant_id, ctx.member.id, now=ctx.now)
        service.request_qr(ctx.uow, s.distributor, explicit=False, account=ctx.account)
        d = s.distributor
        return Outcome((Say("chat/referral/home.txt", {
            "d": d, "bound": s.bound_members, "recent": s.recent, "settings": s.settings,
            "link": referral_url(ctx.links, ctx.tenant_code, d.code, ctx.account),
            "qr": qr_image_url(ctx.links, ctx.tenant_code, d.code, ctx.account),
        }),))


@dataclass(frozen=True)
class Apply:
    async def run(self, ctx: Ctx) -> Outcome:
        d = await service.apply(ctx.uow, ctx.tenant_id, ctx.member.id, now=ctx.now)
        if d.status == rules.DistributorStatus.APPROVED:
            service.request_qr(ctx.uow, d, account=ctx.account)
            return Outcome((Say("chat/referral/approved.txt", {
                "d": d, "link": referral_url(ctx.links, ctx.tenant_code, d.code, ctx.account)}),))
        return Outcome((Say("chat/referral/applied.txt", {"d": d}),))


@dataclass(frozen=True)
class SendQr:
    async def run(self, ctx: Ctx) -> Outcome:
        d = await service.find_distributor(ctx.uow, ctx.tenant_id, ctx.member.id)
        if d is None or d.status != rules.DistributorStatus.APPROVED:
            raise NotDistributorError(d.status if d else "")
        service.request_qr(ctx.uow, d, account=ctx.account)
        return Outcome((Say("chat/referral/qr_coming.txt", {
            "link": referral_url(ctx.links, ctx.tenant_code, d.code, ctx.account)}),))


@dataclass(frozen=True)
class Withdraw:
    amount_fen: int

    async def run(self, ctx: Ctx) -> Outcome:
        w = await service.request_withdrawal(ctx.uow, ctx.tenant_id, ctx.member.id, self.amount_fen, now=ctx.now)
        d = await service.find_distributor(ctx.uow, ctx.tenant_id, ctx.member.id)
        assert d is not None
        return Outcome((Say("chat/referral/withdraw_requested.txt", {"w": w, "d": d}),))


@dataclass(frozen=True)
class WithdrawHelp:
    async def run(self, ctx: Ctx) -> Outcome:
        s = await service.summary(ctx.uow, ctx.tenant_id, ctx.member.id, now=ctx.now)
        return Outcome((Say("chat/referral/withdraw_help.txt", {"d": s.distributor, "settings": s.settings}),))


@dataclass(frozen=True)
class Refuse:
    """Raise a MallError inside the unit of work (so the runner renders it uniformly)."""

    error: BadAmountError

    async def run(self, ctx: Ctx) -> Outcome:
        raise self.error


@dataclass(frozen=True)
class ListShare:
    page: int

    async def run(self, ctx: Ctx) -> Outcome:
        # shared with anyone: never a product kept from some members (a visitor's view)
        found = await list_products(ctx.uow, ctx.tenant_id, page=self.page, per_page=PER_PAGE,
                                    hidden=await hidden_products(ctx.uow, ctx.tenant_id, None))
        rates = await service.share_rates(ctx.uow, ctx.tenant_id, ctx.member.id, [p.id for p in found.items])
        if not found.items:
            return Outcome((Say("chat/referral/share_none.txt"),), to=St.IDLE, redirect=MENU_WORD)
        earn = {p.id: rules.commission(p.min_price_fen, rates[p.id]) for p in found.items}
        data: dict[str, Value] = {"products": [p.id for p in found.items], "page": found.page,
                                  "pages": found.pages}
        return Outcome((Say("chat/referral/share_list.txt", {"page": found, "earn": earn}),), data)


@dataclass(frozen=True)
class ShareCard:
    product_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        d = await service.find_distributor(ctx.uow, ctx.tenant_id, ctx.member.id)
        if d is None or d.status != rules.DistributorStatus.APPROVED:
            raise NotDistributorError(d.status if d else "")
        p = await product_detail(ctx.uow, ctx.tenant_id, self.product_id,
                                 hidden=await hidden_products(ctx.uow, ctx.tenant_id, None))
        price = min((s.price_fen for s in p.skus), default=0)
        rate = (await service.share_rates(ctx.uow, ctx.tenant_id, ctx.member.id, [p.id]))[p.id]
        url = referral_url(ctx.links, ctx.tenant_code, d.code, ctx.account, product=p.id)
        return Outcome((
            Say("chat/referral/share_card.txt", {"p": p, "price": price}, card=True, url=url,
                image=ctx.links.image_url(p.image) if p.image else ""),
            Say("chat/referral/share_tip.txt", {"earn": rules.commission(price, rate)}),
        ))


# -- steps (pure) ------------------------------------------------------------------------

def home(turn: Turn) -> Step:
    return Step(St.IDLE, command=ShowHome())


def apply(turn: Turn) -> Step:
    return Step(St.IDLE, command=Apply())


def qr(turn: Turn) -> Step:
    return Step(St.IDLE, command=SendQr())


def withdraw(turn: Turn) -> Step:
    said = "".join(turn.said.args).strip()
    if not said:
        return Step(St.IDLE, command=WithdrawHelp())
    amount = rules.parse_yuan(said)
    if amount is None or amount <= 0:
        return Step(St.IDLE, command=Refuse(BadAmountError(said[:20])))
    return Step(St.IDLE, command=Withdraw(amount))


def share(turn: Turn) -> Step:
    return Step(St.SHARE, data={"page": 1}, command=ListShare(1), hint=True)


def _share_page(turn: Turn, page: int) -> Step:
    return Step(St.SHARE, data={"page": page}, command=ListShare(page), hint=True)


share_next, share_prev = pager(_share_page)


def share_pick(turn: Turn) -> Step:
    pid = turn.pick("products")
    if pid is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("products"))}))
    return Step(St.SHARE, data=turn.data, command=ShareCard(pid))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.SHARE): share,
    (St.SHARE, Intent.NUMBER): share_pick,
    (St.SHARE, Intent.NEXT): share_next,
    (St.SHARE, Intent.PREV): share_prev,
    (St.IDLE, Do.HOME): home,
    (St.IDLE, Do.APPLY): apply,
    (St.IDLE, Do.QR): qr,
    (St.IDLE, Do.WITHDRAW): withdraw,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.HOME, words=("我的推广", "推广中心", "分销中心", "REFERRAL")),
        Keyword(Do.APPLY, words=("申请分销", "成为分销员", "REFERRAL_APPLY")),
        Keyword(Do.QR, words=("推广码", "我的推广码", "推广二维码")),
        Keyword(Do.SHARE, words=("推广商品", "分享商品")),
        Keyword(Do.WITHDRAW, words=("提现",)),
        Keyword(Do.WITHDRAW, pattern=r"提现\s*(\S.*)"),
    ),
    hints={St.IDLE: "chat/hints/home_idle.txt", St.SHARE: "chat/referral/hint_share.txt"},
    menu=(MenuEntry(60, "chat/referral/_help.txt", (("推广赚钱", "我的推广"),)),),
)
