"""Orders for admins: filtered, paginated lists, the detail with payments and refunds,
shipping (the buyer is told through the order.shipped subscriber), refunds (through the
core's request_refund: outbox → gateway → settle), and a streamed CSV export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from social_mall.console import rules
from social_mall.console.auth import AdminView
from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.orders.notes import order_notes
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import load_order, order_view, ship_order
from social_mall.payments.service import REFUNDABLE, RefundView, request_refund
from social_mall.views import OrderView, Page
from storage.console_repos import ConsoleRepo
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class OrderFilter:
    status: str = ""
    query: str = ""
    member_id: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive day
    refund_failed: bool = False  # a refund the gateway refused, money not yet returned

    def sql(self) -> dict[str, Any]:
        return {
            "status": self.status, "query": self.query, "member_id": self.member_id,
            "refund_failed": self.refund_failed,
            "since": rules.day_start(self.since) if self.since else None,
            "until": rules.day_start(self.until + timedelta(days=1)) if self.until else None,
        }


def order_filter(args: Any) -> OrderFilter:
    """From query-string-like mapping (strings)."""
    status = str(args.get("status", "") or "")
    if status and status not in {s.value for s in OrderStatus}:
        raise InvalidInputError("status", "unknown_status")
    member = str(args.get("member_id", "") or "")
    refund = str(args.get("refund", "") or "")
    if refund not in ("", "failed"):
        raise InvalidInputError("refund", "unknown_refund_filter")
    return OrderFilter(
        status=status,
        query=rules.text(str(args.get("q", "") or ""), "q", max_len=64),
        member_id=rules.parse_int(member, "member_id", lo=1, hi=2**62) if member else None,
        since=rules.parse_date(str(args.get("since", "") or ""), "since"),
        until=rules.parse_date(str(args.get("until", "") or ""), "until"),
        refund_failed=refund == "failed",
    )


@dataclass(frozen=True)
class RefundLine:
    out_refund_no: str
    amount_fen: int
    reason: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class OrderDetail:
    order: OrderView
    refunds: tuple[RefundLine, ...]
    payment_status: str
    transaction_id: str
    refundable_fen: int
    can_ship: bool
    can_refund: bool
    notes: tuple[str, ...] = ()      # lines from modules (social_mall/orders/notes.py)


async def list_orders(uow: UnitOfWork, tenant: int, f: OrderFilter, *, page: int, per_page: int) -> Page[OrderView]:
    rows, total = await ConsoleRepo(uow.session).orders(
        tenant, offset=(page - 1) * per_page, limit=per_page, **f.sql())
    views = [order_view(o, await uow.orders.lines(tenant, o.id)) for o in rows]
    return Page(tuple(views), total, page, per_page)


async def order_detail(uow: UnitOfWork, tenant: int, order_id: int) -> OrderDetail:
    order = await load_order(uow, tenant, order_id)  # NotFoundError for another tenant's id
    refunds = await uow.payments.refunds_for(tenant, order_id)
    payment = await uow.payments.for_order(tenant, order_id)
    in_flight = sum(r.amount_fen for r in refunds if r.status in ("pending", "processing"))
    refundable = max(0, order.paid_fen - order.refunded_fen - in_flight)
    return OrderDetail(
        order=order,
        refunds=tuple(RefundLine(r.out_refund_no, r.amount_fen, r.reason, r.status, r.created_at) for r in refunds),
        payment_status=payment.status if payment else "",
        transaction_id=payment.transaction_id if payment else "",
        refundable_fen=refundable,
        can_ship=order.status == OrderStatus.PAID,
        can_refund=order.status in REFUNDABLE and refundable > 0,
        notes=await order_notes(uow, tenant, order),
    )


async def ship(uow: UnitOfWork, tenant: int, actor: AdminView, order_id: int, tracking: object,
               now: datetime) -> OrderView:
    no = rules.tracking_no(tracking)
    before = await load_order(uow, tenant, order_id)
    view = await ship_order(uow, tenant, order_id, tracking_no=no, now=now)
    uow.audit(tenant, actor.actor, "order.ship", f"order:{view.order_no}",
              before={"status": before.status}, after={"status": view.status, "tracking_no": no})
    return view


def refund_amount(text: str) -> int | None:
    """"" → everything refundable; "12.50" → 1250 fen."""
    s = text.strip()
    return None if not s else rules.parse_price(s, "amount")


async def refund(uow: UnitOfWork, tenant: int, actor: AdminView, order_id: int, *, amount_fen: int | None,
                 reason: object, now: datetime) -> RefundView:
    why = rules.text(reason, "reason", max_len=80, min_len=2)
    if amount_fen is not None:
        rules.check_price_fen(amount_fen, "amount_fen")
    return await request_refund(uow, tenant, order_id, amount_fen=amount_fen, reason=why, actor=actor.actor,
                                now=now)  # audited there (before/after)


CSV_HEADER = ("order_no", "status", "created_at", "paid_at", "member_id", "goods", "shipping", "total", "paid",
              "refunded", "ship_name", "ship_address", "tracking_no", "items")


async def export_rows(uow: UnitOfWork, tenant: int, f: OrderFilter, *, batch: int = 500,
                      include_contact: bool = True) -> AsyncIterator[list[str]]:
    """Rows for the orders CSV, read in keyset batches so memory stays flat."""
    repo = ConsoleRepo(uow.session)
    yield list(CSV_HEADER)
    after = 0
    while True:
        rows = await repo.orders_after(tenant, after, batch, **f.sql())
        if not rows:
            return
        out: list[list[str]] = []
        for o in rows:
            lines = await uow.orders.lines(tenant, o.id)
            out.append([rules.csv_cell(v) for v in (
                o.order_no, o.status, o.created_at.astimezone(rules.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                o.paid_at.astimezone(rules.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if o.paid_at else "",
                o.member_id, rules.yuan_plain(o.goods_fen), rules.yuan_plain(o.shipping_fen),
                rules.yuan_plain(o.total_fen), rules.yuan_plain(o.paid_fen), rules.yuan_plain(o.refunded_fen),
                o.ship_name if include_contact else "", o.ship_address if include_contact else "", o.tracking_no,
                "; ".join(f"{ln.title} {ln.spec} x{ln.qty}".replace("  ", " ") for ln in lines),
            )])
        after = rows[-1].id
        await uow.rollback()  # end the read transaction before the rows go out over the network
        for row in out:
            yield row
