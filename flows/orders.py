"""My orders: a numbered list (5 a page), one order's detail, `取消订单` for an unpaid one
(stock goes back; a paid, shipped or refunded one says so and what to do instead: the
shop refunds, the chat takes no refund requests), `付款` for its pay link again,
`确认收货` for a shipped one (it completes, as the auto-confirm would later).

State data: orders (listed order ids), page, pages, order (the one shown).
Menu CLICK key: ORDERS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import (
    MENU_WORD, Command, Ctx, Flow, Intent, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, Value, pager,
    reads_only,
)
from social_mall.errors import IllegalTransitionError, NotFoundError
from social_mall.orders.notes import order_notes
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import cancel_order, complete_order, list_orders, load_order
from social_mall.views import OrderView

NAME = "orders"
PER_PAGE = 5


class St(StrEnum):
    IDLE = "idle"
    LIST = "list"
    DETAIL = "detail"


class Do(StrEnum):
    LIST = "orders.list"
    CANCEL = "orders.cancel"
    PAY = "orders.pay"
    RECEIVED = "orders.received"


async def _own(ctx: Ctx, order_id: int) -> OrderView:
    """The member's own order (someone else's reads as not found)."""
    order = await load_order(ctx.uow, ctx.tenant_id, order_id)
    if order.member_id != ctx.member.id:
        raise NotFoundError("order", order_id)
    return order


def _payable(ctx: Ctx, order: OrderView) -> bool:
    return order.status == OrderStatus.PENDING_PAYMENT and order.expires_at > ctx.now


async def _pay_ctx(ctx: Ctx, order: OrderView) -> dict[str, object]:
    payable = _payable(ctx, order)
    return {
        "order": order, "payable": payable, "notes": await order_notes(ctx.uow, ctx.tenant_id, order),
        "overdue": order.status == OrderStatus.PENDING_PAYMENT and not payable,
        "pay_url": await ctx.links.pay_link(ctx.tenant_code, order.order_no) if payable else "",
    }


# -- commands ----------------------------------------------------------------------------

@reads_only
@dataclass(frozen=True)
class ListOrders:
    page: int

    async def run(self, ctx: Ctx) -> Outcome:
        found = await list_orders(ctx.uow, ctx.tenant_id, ctx.member.id, page=self.page, per_page=PER_PAGE)
        if not found.items:
            return Outcome((Say("chat/orders/none.txt"),), to=St.IDLE, redirect=MENU_WORD)
        data: dict[str, Value] = {"orders": [o.id for o in found.items], "page": found.page, "pages": found.pages}
        return Outcome((Say("chat/orders/list.txt", {"page": found}),), data)


@reads_only
@dataclass(frozen=True)
class ShowOrder:
    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        order = await _own(ctx, self.order_id)
        return Outcome((Say("chat/orders/detail.txt", await _pay_ctx(ctx, order)),))


@dataclass(frozen=True)
class CancelOrder:
    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        try:
            order = await cancel_order(
                ctx.uow, ctx.tenant_id, self.order_id, reason="member", now=ctx.now, member_id=ctx.member.id
            )
        except IllegalTransitionError as exc:   # paid (or further on): nothing changed; say what instead
            return Outcome((Say("chat/orders/not_cancellable.txt", {"order_no": exc.order_no, "status": exc.src}),))
        return Outcome((Say("chat/orders/cancelled.txt", {"order": order}),))


@dataclass(frozen=True)
class ConfirmReceipt:
    """The member got a shipped order: shipped → completed (what the auto-confirm would do
    later). A repeat is a no-op; an order in another state says where it stands."""

    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        order = await _own(ctx, self.order_id)
        if order.status not in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
            return Outcome((Say("chat/orders/not_receivable.txt", {"order": order}),))
        done = await complete_order(ctx.uow, ctx.tenant_id, self.order_id, now=ctx.now)
        return Outcome((Say("chat/orders/received.txt", {"order": done}),))


@reads_only
@dataclass(frozen=True)
class PayAgain:
    order_id: int

    async def run(self, ctx: Ctx) -> Outcome:
        order = await _own(ctx, self.order_id)
        return Outcome((Say("chat/orders/pay.txt", await _pay_ctx(ctx, order)),))


# -- steps (pure) ------------------------------------------------------------------------

def show_list(turn: Turn) -> Step:
    return Step(St.LIST, data={"page": 1}, command=ListOrders(1))


def _page(turn: Turn, page: int) -> Step:
    return Step(St.LIST, data={"page": page}, command=ListOrders(page))


next_page, prev_page = pager(_page)


def back(turn: Turn) -> Step:
    return _page(turn, turn.num("page") or 1)


def pick(turn: Turn) -> Step:
    order = turn.pick("orders")
    if order is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("orders"))}))
    return Step(St.DETAIL, data={**turn.data, "order": order}, command=ShowOrder(order))


def _on_shown(turn: Turn, make: Callable[[int], Command]) -> Step:
    order = turn.num("order")
    if order is None:
        return turn.stay(Say("chat/orders/pick_first.txt"))
    return Step(St.DETAIL, data=turn.data, command=make(order))


def cancel(turn: Turn) -> Step:
    return _on_shown(turn, CancelOrder)


def pay(turn: Turn) -> Step:
    return _on_shown(turn, PayAgain)


def received(turn: Turn) -> Step:
    return _on_shown(turn, ConfirmReceipt)


def pick_first(turn: Turn) -> Step:
    return turn.stay(Say("chat/orders/pick_first.txt"))


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.LIST): show_list,
    (St.IDLE, Do.CANCEL): pick_first,
    (St.LIST, Intent.NUMBER): pick,
    (St.LIST, Intent.NEXT): next_page,
    (St.LIST, Intent.PREV): prev_page,
    (St.LIST, Do.CANCEL): pick_first,
    (St.LIST, Do.PAY): pick_first,
    (St.DETAIL, Intent.NUMBER): pick,
    (St.DETAIL, Intent.BACK): back,
    (St.DETAIL, Do.CANCEL): cancel,
    (St.DETAIL, Do.PAY): pay,
    (St.DETAIL, Do.RECEIVED): received,
    (St.IDLE, Do.RECEIVED): pick_first,
    (St.LIST, Do.RECEIVED): pick_first,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.LIST, words=("我的订单", "订单", "orders")),
        Keyword(Do.CANCEL, words=("取消订单",)),
        Keyword(Do.RECEIVED, words=("确认收货",)),
    ),
    words={"付款": Do.PAY, "支付": Do.PAY, "去付款": Do.PAY, "去支付": Do.PAY},
    hints={
        St.IDLE: "chat/hints/home_idle.txt",
        St.LIST: "chat/hints/orders_list.txt",
        St.DETAIL: "chat/hints/orders_detail.txt",
    },
    menu=(MenuEntry(30, "chat/orders/_help.txt", (("我的订单", "我的订单"),)),),
)
