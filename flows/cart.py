"""The cart: `购物车` lists it with the total; `改 <序号> <数量>`, `删 <序号>`, `清空购物车`;
`结算` (the checkout flow's keyword) orders it.

Line numbers are positions in the cart as listed (the cart keeps its order), so the
commands work straight from any state, even after the conversation timed out.
Menu CLICK key: CART.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flows.engine import Ctx, Flow, Keyword, MenuEntry, Outcome, Say, Step, StepFn, Turn, reads_only
from social_mall.members.service import clear_cart, remove_from_cart, set_cart_qty, view_cart
from social_mall.orders.rules import shipping_fee
from social_mall.views import CartView

NAME = "cart"


class St(StrEnum):
    IDLE = "idle"
    LIST = "list"


class Do(StrEnum):
    SHOW = "cart.show"
    SET = "cart.set"
    DEL = "cart.del"
    CLEAR = "cart.clear"


def _shown(cart: CartView, note: str = "") -> Say:
    goods = cart.goods_fen
    ship = shipping_fee(goods) if goods else 0
    return Say("chat/cart/cart.txt", {"cart": cart, "note": note, "shipping_fen": ship, "total_fen": goods + ship})


# -- commands ----------------------------------------------------------------------------

@reads_only
@dataclass(frozen=True)
class ShowCart:
    async def run(self, ctx: Ctx) -> Outcome:
        return Outcome((_shown(await view_cart(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)),))


@dataclass(frozen=True)
class ChangeLine:
    """qty None: remove line `index` (1-based); else set its quantity (0 removes it)."""

    index: int
    qty: int | None = None

    async def run(self, ctx: Ctx) -> Outcome:
        cart = await view_cart(ctx.uow, ctx.tenant_id, ctx.member.id, ctx.now)
        if not 1 <= self.index <= len(cart.lines):
            return Outcome((Say("chat/cart/no_line.txt", {"n": self.index, "count": len(cart.lines)}),))
        line = cart.lines[self.index - 1]
        if self.qty is None:
            cart = await remove_from_cart(ctx.uow, ctx.tenant_id, ctx.member.id, line.sku_id, ctx.now)
            return Outcome((_shown(cart, f"已删除：{line.title} {line.spec}"),))
        cart = await set_cart_qty(ctx.uow, ctx.tenant_id, ctx.member.id, line.sku_id, self.qty, ctx.now)
        note = f"已删除：{line.title} {line.spec}" if self.qty == 0 else f"已修改：{line.title} {line.spec} × {self.qty}"
        return Outcome((_shown(cart, note),))


@dataclass(frozen=True)
class ClearCart:
    async def run(self, ctx: Ctx) -> Outcome:
        await clear_cart(ctx.uow, ctx.tenant_id, ctx.member.id)
        return Outcome((_shown(CartView(()), "购物车已清空"),))


# -- steps (pure) ------------------------------------------------------------------------

def _numbers(turn: Turn) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", " ".join(turn.said.args))]


def show(turn: Turn) -> Step:
    return Step(St.LIST, command=ShowCart())


def change(turn: Turn) -> Step:
    numbers = _numbers(turn)
    if len(numbers) != 2:
        return Step(St.LIST, (Say("chat/cart/usage.txt"),))
    return Step(St.LIST, command=ChangeLine(numbers[0], numbers[1]))


def delete(turn: Turn) -> Step:
    numbers = _numbers(turn)
    if len(numbers) != 1:
        return Step(St.LIST, (Say("chat/cart/usage.txt"),))
    return Step(St.LIST, command=ChangeLine(numbers[0]))


def clear(turn: Turn) -> Step:
    return Step(St.LIST, command=ClearCart())


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.IDLE, Do.SHOW): show,
    (St.IDLE, Do.SET): change,
    (St.IDLE, Do.DEL): delete,
    (St.IDLE, Do.CLEAR): clear,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    keywords=(
        Keyword(Do.SHOW, words=("购物车", "查看购物车", "cart")),
        Keyword(Do.CLEAR, words=("清空购物车",)),
        Keyword(Do.SET, pattern=r"(?:修改|改)\s*(\d{1,3}(?:\s+\d{1,6})?)?"),
        Keyword(Do.DEL, pattern=r"(?:删除|删)\s*(\d{1,3})?"),
    ),
    hints={St.IDLE: "chat/hints/home_idle.txt", St.LIST: "chat/hints/cart_list.txt"},
    menu=(MenuEntry(20, "chat/cart/_help.txt", (("购物车", "购物车"),)),),
)
