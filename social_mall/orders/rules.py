"""Order rules: the transition table, order numbers, totals. Pure: no I/O."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from social_mall.errors import InvalidQuantityError

MAX_QTY_PER_LINE = 99
SHANGHAI = timezone(timedelta(hours=8))


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUND_REQUESTED = "refund_requested"
    REFUNDED = "refunded"


S = OrderStatus

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.COMPLETED, S.REFUND_REQUESTED}),  # completed: handed over in person
    S.SHIPPED: frozenset({S.COMPLETED, S.REFUND_REQUESTED}),
    S.COMPLETED: frozenset({S.REFUND_REQUESTED}),
    S.REFUND_REQUESTED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

#: Moves after which reserved stock goes back to the shelf (each happens at most once
#: per order, because the move itself is a conditional UPDATE).
RESTOCK_ON: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {(S.PENDING_PAYMENT, S.CANCELLED), (S.REFUND_REQUESTED, S.REFUNDED)}
)

#: A refund requested before shipping puts goods back; after shipping they come back by hand.
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_move(src: OrderStatus, dst: OrderStatus) -> bool:
    return dst in TRANSITIONS[src]


def new_order_no(now: datetime) -> str:
    """Time-ordered prefix (Shanghai time) + 12 random digits: unique and unguessable."""
    stamp = now.astimezone(SHANGHAI).strftime("%y%m%d%H%M%S")
    return f"{stamp}{secrets.randbelow(10**12):012d}"


def check_qty(qty: int) -> int:
    if not 1 <= qty <= MAX_QTY_PER_LINE:
        raise InvalidQuantityError(qty, MAX_QTY_PER_LINE)
    return qty


def shipping_fee(goods_fen: int, *, free_over_fen: int = 9900, fee_fen: int = 800) -> int:
    """Flat fee, free from a threshold (the demo shop's rule: 满99包邮)."""
    return 0 if goods_fen >= free_over_fen else fee_fen
