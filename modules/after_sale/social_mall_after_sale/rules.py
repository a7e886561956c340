"""After-sale rules: the states and their transition table, the kinds, the reasons, what
the units of a line refund. Pure: no I/O.

    pending ─┬─ approve (return, exchange) ─> await_return ── tracking ─> returned ── receive ─> received ─┐
             │                                          (exchange: received ── reship ──> reshipped) │
             ├─ approve (refund only) ─────────────────────────────────────────────────────────────┴─> refunding ──> refunded
             ├─ reject ──> rejected
             └─ withdraw ──> withdrawn          (await_return ── withdraw / timer ──> withdrawn / closed)

Money: a line's units refund their cumulative share of what the line really paid (after
member price, flash price, full reduction, coupon and points: the order's stored pricing
breakdown), `cum(n) = paid × n // qty` with the last unit taking the remainder, so a line
refunded one unit at a time returns exactly what it paid. Shipping comes back only with a
refund-only request that, before shipping, takes the order's last units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum


class St(StrEnum):
    PENDING = "pending"            # 待审核 (the member submitted it)
    AWAIT_RETURN = "await_return"  # 同意, 待寄回
    RETURNED = "returned"          # 已寄回 (the member sent the tracking number)
    RECEIVED = "received"          # 已收货 (the merchant has the goods)
    REFUNDING = "refunding"        # 退款中 (asked the gateway)
    REFUNDED = "refunded"          # 已退款
    REJECTED = "rejected"          # 驳回
    WITHDRAWN = "withdrawn"        # 撤销 (by the member)
    CLOSED = "closed"              # 已关闭 (the goods never came back in time)
    RESHIPPED = "reshipped"        # 已换货 (an exchange: the replacement went out)


class Kind(StrEnum):
    REFUND = "refund"   # 仅退款: unshipped, or shipped and never delivered
    RETURN = "return"   # 退货退款
    EXCHANGE = "exchange"   # 换货: a return, then a new shipment of the same SKU (no money)


TRANSITIONS: Mapping[St, frozenset[St]] = {
    St.PENDING: frozenset({St.AWAIT_RETURN, St.REFUNDING, St.REJECTED, St.WITHDRAWN}),
    St.AWAIT_RETURN: frozenset({St.RETURNED, St.WITHDRAWN, St.CLOSED}),
    St.RETURNED: frozenset({St.RECEIVED}),
    St.RECEIVED: frozenset({St.REFUNDING, St.RESHIPPED}),   # an exchange may still end in a refund
    St.REFUNDING: frozenset({St.REFUNDED}),
    St.REFUNDED: frozenset(),
    St.REJECTED: frozenset(),
    St.WITHDRAWN: frozenset(),
    St.CLOSED: frozenset(),
    St.RESHIPPED: frozenset(),
}

#: States whose units stay claimed (an open request, or money already refunded).
HOLDING = frozenset({St.PENDING, St.AWAIT_RETURN, St.RETURNED, St.RECEIVED, St.REFUNDING, St.REFUNDED})
#: Still being worked on: the order must not auto-complete meanwhile.
OPEN = frozenset({St.PENDING, St.AWAIT_RETURN, St.RETURNED, St.RECEIVED, St.REFUNDING})
#: Ended without money: their units go back to the order line (an exchange's replacement
#: may be asked about again).
RELEASING = frozenset({St.REJECTED, St.WITHDRAWN, St.CLOSED, St.RESHIPPED})

LABELS: Mapping[str, str] = {
    St.PENDING: "待审核", St.AWAIT_RETURN: "待寄回", St.RETURNED: "已寄回", St.RECEIVED: "已收货",
    St.REFUNDING: "退款中", St.REFUNDED: "已退款", St.REJECTED: "已驳回", St.WITHDRAWN: "已撤销",
    St.CLOSED: "已关闭", St.RESHIPPED: "已换货",
    Kind.REFUND: "仅退款", Kind.RETURN: "退货退款", Kind.EXCHANGE: "换货",
}

#: Numbered reasons the member picks from (code → text).
REASONS: tuple[tuple[int, str], ...] = (
    (1, "不想要了 / 拍错了"),
    (2, "商品质量问题"),
    (3, "商品与描述不符"),
    (4, "少件 / 发错货"),
    (5, "商品破损"),
    (6, "未收到货"),
    (7, "其他"),
)
MAX_PHOTOS = 3
DEFAULT_ANSWER_DAYS = 3
DEFAULT_RETURN_DAYS = 7
MAX_DAYS = 30


def can_move(src: str, dst: str) -> bool:
    return src in TRANSITIONS and St(dst) in TRANSITIONS[St(src)]


def reason_text(code: int) -> str | None:
    return dict(REASONS).get(code)


def kinds_for(order_status: str) -> tuple[Kind, ...]:
    """What a member may ask for an order in this state: unshipped → refund only; shipped
    (maybe never delivered) → return, refund only or exchange; completed (received) →
    return or exchange; else nothing."""
    if order_status == "paid":
        return (Kind.REFUND,)
    if order_status == "shipped":
        return (Kind.RETURN, Kind.REFUND, Kind.EXCHANGE)
    if order_status == "completed":
        return (Kind.RETURN, Kind.EXCHANGE)
    return ()


def cum_share(paid_fen: int, qty: int, units: int) -> int:
    """What the first `units` of a line of `qty` units paying `paid_fen` paid, rounded
    down; exactly `paid_fen` for all of them."""
    if qty <= 0 or units <= 0:
        return 0
    if units >= qty:
        return paid_fen
    return paid_fen * units // qty


def units_refund(paid_fen: int, qty: int, refunded_units: int, units: int) -> int:
    """What `units` more of the line refund after `refunded_units` were refunded."""
    return cum_share(paid_fen, qty, refunded_units + units) - cum_share(paid_fen, qty, refunded_units)


def line_pays(line_fens: Sequence[int], discount_fen: int, breakdown_pays: Sequence[int] | None) -> list[int]:
    """What each order line really paid: the pricing breakdown's per-line pay when the
    order was priced by the pipeline; otherwise the order's discount spread over the goods
    in proportion (largest remainder), never below zero."""
    if breakdown_pays is not None and len(breakdown_pays) == len(line_fens):
        return [max(p, 0) for p in breakdown_pays]
    goods = sum(line_fens)
    off = min(max(discount_fen, 0), goods)
    if goods <= 0 or off == 0:
        return list(line_fens)
    parts = [off * f // goods for f in line_fens]
    rems = sorted(range(len(line_fens)), key=lambda i: (-(off * line_fens[i] % goods), i))
    for i in rems[: off - sum(parts)]:
        parts[i] += 1
    return [f - p for f, p in zip(line_fens, parts, strict=True)]


def deadline(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


def check_days(n: int) -> bool:
    return 1 <= n <= MAX_DAYS


def clean_tracking(raw: str) -> str | None:
    """A return's tracking number as a member types it: 6–30 ASCII letters and digits
    (spaces and dashes dropped), upper-cased; None otherwise."""
    s = "".join(ch for ch in raw if ch not in " -")
    if not (6 <= len(s) <= 30 and s.isascii() and s.isalnum()):
        return None
    return s.upper()
