"""Order rules: the transition table, order numbers, totals. Pure: no I/O."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from social_mall.errors import InvalidQuantityError, OrderTooLargeError

MAX_QTY_PER_LINE = 99
#: The most one order may cost unless the tenant sets another cap (tenants.max_order_fen).
DEFAULT_MAX_ORDER_FEN = 100_000_000   # ¥1,000,000
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
    # a refund request that can no longer complete (the gateway refused or closed a part of
    # it) gives the order back its state before the request: the only way back in the table
    S.REFUND_REQUESTED: frozenset({S.REFUNDED, S.PAID, S.SHIPPED, S.COMPLETED}),
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


def after_refund(status: OrderStatus, *, paid_fen: int, refunded_fen: int, in_flight_fen: int, shipped: bool,
                 completed: bool) -> OrderStatus:
    """Where an order stands once one of its refunds is settled (succeeded or failed), from
    the money alone: all of it refunded → refunded; the refunds still in flight would refund
    the rest → refund_requested; else back to where it was before the request (paid,
    shipped or completed). Only an order in refund_requested moves."""
    if status != S.REFUND_REQUESTED:
        return status
    if refunded_fen >= paid_fen:
        return S.REFUNDED
    if refunded_fen + in_flight_fen >= paid_fen:
        return S.REFUND_REQUESTED
    return S.COMPLETED if completed else S.SHIPPED if shipped else S.PAID


def new_order_no(now: datetime) -> str:
    """Time-ordered prefix (Shanghai time) + 12 random digits: unique and unguessable."""
    stamp = now.astimezone(SHANGHAI).strftime("%y%m%d%H%M%S")
    return f"{stamp}{secrets.randbelow(10**12):012d}"


def check_qty(qty: int, most: int = MAX_QTY_PER_LINE) -> int:
    if not 1 <= qty <= most:
        raise InvalidQuantityError(qty, most)
    return qty


def check_total(total_fen: int, max_fen: int) -> int:
    """An order's total within the tenant's cap (OrderTooLargeError otherwise)."""
    if total_fen > max_fen:
        raise OrderTooLargeError(total_fen, max_fen)
    return total_fen


def shipping_fee(goods_fen: int, *, free_over_fen: int = 9900, fee_fen: int = 800) -> int:
    """Flat fee, free from a threshold (the demo shop's rule: 满99包邮)."""
    return 0 if goods_fen >= free_over_fen else fee_fen
