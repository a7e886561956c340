"""After-sale in chat (售后).

「申请售后」 (or 「申请售后 <订单号>」, or 「申请售后」 on an order's detail in 「我的订单」, which
goes straight to its lines) → the member's orders that take a request → a number
→ the order's lines → 「1」 (all units of line 1) or 「1 x2」 (two units), as many lines as
wanted → 「下一步」 → (a shipped order: 1 退货退款 / 2 仅退款) → the numbered reason →
photos as image messages (up to 3) → 「提交」. Then:
「退货单号 SF123456789」 (or 「售后12 退货单号 …」 when several returns wait) sends the
return's tracking number, 「我的售后」 lists the requests, 「撤销售后 12」 withdraws one.
Every step of the request afterwards is pushed (module.py).

State data: orders (listed ids), order, skus (listed sku ids), picks (flat sku, qty),
kinds ("return,refund"), kind, reason, photos (media ids, space-separated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import (
    Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, pairs, reads_only,
)
from social_mall.errors import NotFoundError
from social_mall_after_sale import rules
from social_mall_after_sale import service as svc
from social_mall_after_sale.errors import AfterSaleRefusedError

NAME = "after_sale"
T = "chat/after_sale/"


class St(StrEnum):
    IDLE = "idle"
    ORDERS = "orders"
    LINES = "lines"
    KIND = "kind"
    REASON = "reason"
    PHOTOS = "photos"


class Do(StrEnum):
    START = "aftersale.start"
    START_NO = "aftersale.start_no"
    NEXT = "aftersale.next"
    SUBMIT = "aftersale.submit"
    MINE = "aftersale.mine"
    TRACKING = "aftersale.tracking"
    TRACKING_FOR = "aftersale.tracking_for"
    WITHDRAW = "aftersale.withdraw"


def _flat(picks: list[tuple[int, int]]) -> list[int]:
    return [x for p in picks for x in p]


# -- commands ------------------------------------------------------------------------------------

@reads_only
@dataclass(frozen=True)
class ListOrders:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await svc.eligible_orders(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not found:
            return Outcome((Say(T + "no_orders.txt"),), to=St.IDLE)
        return Outcome((Say(T + "orders.txt", {"orders": found}),), {"orders": [o.id for o in found]})


async def _lines_outcome(ctx: Ctx, order_id: int, picks: list[tuple[int, int]], note: Say | None = None) -> Outcome:
    order = await svc.member_order(ctx.uow, ctx.tenant_id, ctx.member.id, order_id)
    if not rules.kinds_for(order.status):
        raise AfterSaleRefusedError("order_state", status=order.status)
    lines = await svc.eligible_lines(ctx.uow, ctx.tenant_id, order)
    picked = dict(picks)
    est = await svc.estimate(ctx.uow, ctx.tenant_id, order, picks) if picks else 0
    replies = ((note,) if note else ()) + (Say(T + "lines.txt", {"order": order, "lines": lines, "picked": picked,
                                                                 "estimate": est}),)
    return Outcome(replies, {"order": order.id, "skus": [ln.sku_id for ln in lines], "picks": _flat(picks)},
                   to=St.LINES)


@reads_only
@dataclass(frozen=True)
class ShowLines:
    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        return await _lines_outcome(ctx, self.order_id, [])


@reads_only
@dataclass(frozen=True)
class ByOrderNo:
    order_no: str

    async def run(self, ctx: Ctx) -> Outcome:
        from social_mall.orders.service import find_order

        order = await find_order(ctx.uow, ctx.tenant_id, self.order_no, member_id=ctx.member.id)
        return await _lines_outcome(ctx, order.id, [])


@reads_only
@dataclass(frozen=True)
class Pick:
    """Add (or change) a line's units: all that are left (qty None) or `qty`."""

    order_id: int
    sku_id: int
    qty: int | None
    picks: tuple[tuple[int, int], ...]

    async def run(self, ctx: Ctx) -> Outcome:
        order = await svc.member_order(ctx.uow, ctx.tenant_id, ctx.member.id, self.order_id)
        line = next((e for e in await svc.eligible_lines(ctx.uow, ctx.tenant_id, order) if e.sku_id == self.sku_id),
                    None)
        if line is None:
            raise NotFoundError("order line", self.sku_id)
        qty = line.available if self.qty is None else self.qty
        if qty <= 0 or qty > line.available:
            return await _lines_outcome(ctx, self.order_id, list(self.picks),
                                        Say(T + "bad_qty.txt", {"line": line, "qty": qty}))
        picks = [p for p in self.picks if p[0] != self.sku_id] + [(self.sku_id, qty)]
        return await _lines_outcome(ctx, self.order_id, picks)


@reads_only
@dataclass(frozen=True)
class AskKind:
    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        order = await svc.member_order(ctx.uow, ctx.tenant_id, ctx.member.id, self.order_id)
        kinds = rules.kinds_for(order.status)
        if not kinds:
            raise AfterSaleRefusedError("order_state", status=order.status)
        if len(kinds) == 1:
            return Outcome((Say(T + "reasons.txt", {"kind": kinds[0], "reasons": rules.REASONS,
                                                    "labels": rules.LABELS}),),
                           {"kind": kinds[0].value}, to=St.REASON)
        return Outcome((Say(T + "kinds.txt", {"kinds": kinds, "labels": rules.LABELS}),),
                       {"kinds": ",".join(kinds)}, to=St.KIND)


@dataclass(frozen=True)
class Submit:
    order_id: int
    picks: tuple[tuple[int, int], ...]
    kind: str
    reason: int
    photos: tuple[str, ...]

    async def run(self, ctx: Ctx) -> Outcome:
        view = await svc.open_request(ctx.uow, ctx.tenant_id, ctx.member.id, self.order_id, self.picks,
                                      kind=self.kind, reason_code=self.reason,
                                      photos=[(m, "") for m in self.photos], now=ctx.now,
                                      account=ctx.account)   # the photos' media ids are this account's
        order = await svc.member_order(ctx.uow, ctx.tenant_id, ctx.member.id, self.order_id)
        est = await svc.estimate(ctx.uow, ctx.tenant_id, order, self.picks)
        settings = await svc.settings_of(ctx.uow, ctx.tenant_id)
        return Outcome((Say(T + "submitted.txt", {"r": view, "estimate": est, "settings": settings,
                                                  "photos": len(self.photos)}),), {}, to=St.IDLE)


@reads_only
@dataclass(frozen=True)
class Mine:
    async def run(self, ctx: Ctx) -> Outcome:
        found = await svc.member_requests(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((Say(T + "mine.txt", {"requests": found}),), to=St.IDLE)


@dataclass(frozen=True)
class SendBack:
    request_id: int | None
    tracking: str

    async def run(self, ctx: Ctx) -> Outcome:
        view = await svc.send_back(ctx.uow, ctx.tenant_id, ctx.member.id, self.request_id, self.tracking, now=ctx.now)
        return Outcome((Say(T + "sent_back.txt", {"r": view}),), to=St.IDLE)


@dataclass(frozen=True)
class Withdraw:
    request_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        view = await svc.withdraw(ctx.uow, ctx.tenant_id, ctx.member.id, self.request_id, now=ctx.now)
        return Outcome((Say(T + "withdrawn.txt", {"r": view}),), to=St.IDLE)


# -- steps (pure) ----------------------------------------------------------------------------------

def start(turn: Turn) -> Step:
    """From an order's detail (the orders flow's "order", carried by the keyword): that
    order's lines at once; elsewhere the orders to pick from."""
    order = turn.num("order")
    if order is not None:
        return Step(St.LINES, data={"order": order}, command=ShowLines(order))
    return Step(St.ORDERS, command=ListOrders())


def start_no(turn: Turn) -> Step:
    return Step(St.LINES, command=ByOrderNo(turn.said.args[0]))


def pick_order(turn: Turn) -> Step:
    order = turn.pick("orders")
    if order is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("orders"))}))
    return Step(St.LINES, data={"order": order}, command=ShowLines(order))


def pick_line(turn: Turn) -> Step:
    order = turn.num("order")
    sku = turn.pick("skus")
    if order is None or sku is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("skus"))}))
    qty = turn.said.qty if turn.said.intent == Intent.TIMES else None
    return Step(St.LINES, data=turn.data, command=Pick(order, sku, qty, tuple(pairs(turn.data, "picks"))))


def next_step(turn: Turn) -> Step:
    order = turn.num("order")
    if order is None:
        return turn.stay()
    if not pairs(turn.data, "picks"):
        return turn.stay(Say(T + "pick_first.txt"))
    return Step(St.KIND, data=turn.data, command=AskKind(order))


def pick_kind(turn: Turn) -> Step:
    kinds = [k for k in turn.text("kinds").split(",") if k]
    n = turn.said.n
    if n is None or not 1 <= n <= len(kinds):
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(kinds)}))
    kind = rules.Kind(kinds[n - 1])
    return Step(St.REASON, (Say(T + "reasons.txt", {"kind": kind, "reasons": rules.REASONS, "labels": rules.LABELS}),),
                {**turn.data, "kind": kind.value})


def pick_reason(turn: Turn) -> Step:
    n = turn.said.n
    if n is None or rules.reason_text(n) is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": n, "count": len(rules.REASONS)}))
    return Step(St.PHOTOS, (Say(T + "ask_photos.txt", {"max": rules.MAX_PHOTOS, "reason": rules.reason_text(n)}),),
                {**turn.data, "reason": n})


def add_photo(turn: Turn) -> Step:
    photos = turn.text("photos").split()
    if len(photos) >= rules.MAX_PHOTOS:
        return turn.stay(Say(T + "photos_full.txt", {"max": rules.MAX_PHOTOS}), hint=False)
    photos.append(turn.said.args[0])
    return Step(St.PHOTOS, (Say(T + "photo_added.txt", {"n": len(photos), "max": rules.MAX_PHOTOS}),),
                {**turn.data, "photos": " ".join(photos)})


def submit(turn: Turn) -> Step:
    order, reason, kind = turn.num("order"), turn.num("reason"), turn.text("kind")
    picks = tuple(pairs(turn.data, "picks"))
    if order is None or reason is None or not kind or not picks:
        return turn.stay()
    return Step(St.PHOTOS, data=turn.data,
                command=Submit(order, picks, kind, reason, tuple(turn.text("photos").split())))


def mine(turn: Turn) -> Step:
    return Step(St.IDLE, command=Mine())


def tracking(turn: Turn) -> Step:
    return Step(St.IDLE, command=SendBack(None, turn.said.args[0]))


def tracking_for(turn: Turn) -> Step:
    rid = turn.said.args[0]
    if not (rid.isascii() and rid.isdigit() and 0 < len(rid) <= 18):
        return turn.stay()
    return Step(St.IDLE, command=SendBack(int(rid), turn.said.args[1]))


def withdraw(turn: Turn) -> Step:
    rid = turn.said.args[0]
    if not (rid.isascii() and rid.isdigit() and 0 < len(rid) <= 18):
        return turn.stay()
    return Step(St.IDLE, command=Withdraw(int(rid)))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.START): start,
    (St.IDLE, Do.START_NO): start_no,
    (St.IDLE, Do.MINE): mine,
    (St.IDLE, Do.TRACKING): tracking,
    (St.IDLE, Do.TRACKING_FOR): tracking_for,
    (St.IDLE, Do.WITHDRAW): withdraw,
    (St.ORDERS, Intent.NUMBER): pick_order,
    (St.LINES, Intent.NUMBER): pick_line,
    (St.LINES, Intent.TIMES): pick_line,
    (St.LINES, Do.NEXT): next_step,
    (St.KIND, Intent.NUMBER): pick_kind,
    (St.REASON, Intent.NUMBER): pick_reason,
    (St.PHOTOS, Intent.IMAGE): add_photo,
    (St.PHOTOS, Do.SUBMIT): submit,
    (St.PHOTOS, Intent.YES): submit,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.START, words=("申请售后", "售后", "退货", "退款", "退换货"), carry=("order",)),
        Keyword(Do.MINE, words=("我的售后",)),
        Keyword(Do.START_NO, pattern=r"申请售后\s*([0-9]{6,32})"),
        Keyword(Do.TRACKING, pattern=r"退货单号\s*([A-Za-z0-9 \-]{6,40})"),
        Keyword(Do.TRACKING_FOR, pattern=r"售后\s*([0-9]{1,18})\s*退货单号\s*([A-Za-z0-9 \-]{6,40})"),
        Keyword(Do.WITHDRAW, pattern=r"撤销售后\s*([0-9]{1,18})"),
    ),
    words={"下一步": Do.NEXT, "好了": Do.NEXT, "提交": Do.SUBMIT, "提交申请": Do.SUBMIT},
    hints={
        St.ORDERS: T + "hints/orders.txt",
        St.LINES: T + "hints/lines.txt",
        St.KIND: T + "hints/kind.txt",
        St.REASON: T + "hints/reason.txt",
        St.PHOTOS: T + "hints/photos.txt",
    },
    menu=(MenuEntry(35, T + "_help.txt", (("申请售后", "申请售后"),)),),
)
