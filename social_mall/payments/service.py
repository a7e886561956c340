"""Payments: open a payment for an order, apply a verified notify exactly once.

Every notify we receive is written to pay_notifications with its verdict, whether it was
applied, a duplicate or refused: the audit trail of money coming in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from social_mall.errors import (
    AmountMismatchError,
    MerchantMismatchError,
    NotFoundError,
    NotRefundableError,
    RefundTooLargeError,
)
from social_mall.events import OrderPaid, OrderRefunded, PaymentNeedsRefund
from social_mall.orders.rules import OrderStatus
from social_mall.payments.gateway import Transaction
from social_mall.views import OrderView
from storage.models import Payment, PayNotification, Refund
from storage.uow import UnitOfWork


class PayOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    NOT_SUCCESS = "not_success"
    LATE = "late"  # paid after the order was closed: refunded, never lost


@dataclass(frozen=True)
class PaymentView:
    out_trade_no: str
    amount_fen: int
    status: str
    gateway: str


async def open_payment(uow: UnitOfWork, order: OrderView, *, gateway: str) -> PaymentView:
    """The payment for an order (one per order; out_trade_no is the order number)."""
    existing = await uow.payments.for_order(order.tenant_id, order.id)
    if existing is None:
        existing = await uow.payments.add(
            Payment(
                tenant_id=order.tenant_id, order_id=order.id, out_trade_no=order.order_no,
                gateway=gateway, amount_fen=order.total_fen,
            )
        )
    return PaymentView(existing.out_trade_no, existing.amount_fen, existing.status, existing.gateway)


async def apply_transaction(
    uow: UnitOfWork, tx: Transaction, *, gateway: str, mchid: str, appid: str, now: datetime
) -> PayOutcome:
    """Apply a verified pay notify. Raises (and changes nothing) on any mismatch."""
    payment = await uow.payments.by_out_trade_no(tx.out_trade_no)
    if payment is None:
        raise NotFoundError("payment", tx.out_trade_no)
    if tx.mchid != mchid:
        raise MerchantMismatchError("mchid")
    if tx.appid != appid:
        raise MerchantMismatchError("appid")
    if tx.amount_fen != payment.amount_fen:
        raise AmountMismatchError(tx.out_trade_no, payment.amount_fen, tx.amount_fen)
    tenant = payment.tenant_id

    def record(verdict: PayOutcome, reason: str = "") -> None:
        uow.payments.record_notify(
            PayNotification(
                tenant_id=tenant, gateway=gateway, event_id=tx.event_id[:64],
                out_trade_no=tx.out_trade_no, amount_fen=tx.amount_fen, verdict=verdict, reason=reason,
            )
        )

    if tx.trade_state != "SUCCESS":
        record(PayOutcome.NOT_SUCCESS, tx.trade_state)
        return PayOutcome.NOT_SUCCESS
    if not await uow.payments.settle(
        payment.id, "created", "paid", transaction_id=tx.transaction_id, payer=tx.payer, paid_at=now
    ):
        record(PayOutcome.DUPLICATE)
        return PayOutcome.DUPLICATE
    order = await uow.orders.get(tenant, payment.order_id)
    assert order is not None
    if await uow.orders.move(
        tenant, order.id, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, paid_at=now, paid_fen=tx.amount_fen
    ):
        record(PayOutcome.APPLIED)
        uow.emit(
            OrderPaid(
                tenant_id=tenant, order_id=order.id, order_no=order.order_no,
                member_id=order.member_id, paid_fen=tx.amount_fen, channel=order.channel,
                fulfilment=order.fulfilment,
            )
        )
        return PayOutcome.APPLIED
    # The money arrived for an order that was already closed (timeout or cancel):
    # keep it on the books and refund it in full.
    refund = await uow.payments.add_refund(
        Refund(
            tenant_id=tenant, order_id=order.id, out_refund_no=f"RL{tx.out_trade_no}",
            amount_fen=tx.amount_fen, reason="paid_after_close", status="pending",
        )
    )
    record(PayOutcome.LATE, order.status)
    uow.emit(
        PaymentNeedsRefund(
            tenant_id=tenant, order_id=order.id, out_trade_no=tx.out_trade_no,
            out_refund_no=refund.out_refund_no, refund_fen=tx.amount_fen, total_fen=tx.amount_fen,
        )
    )
    return PayOutcome.LATE


async def record_rejected(
    uow: UnitOfWork, *, gateway: str, tenant: int | None, out_trade_no: str, reason: str,
    amount_fen: int | None = None, event_id: str = "",
) -> None:
    """Write a refused notify to the audit trail (in its own transaction)."""
    uow.payments.record_notify(
        PayNotification(
            tenant_id=tenant, gateway=gateway, event_id=event_id[:64], out_trade_no=out_trade_no[:32],
            amount_fen=amount_fen, verdict="rejected", reason=reason[:80],
        )
    )


async def settle_refund(uow: UnitOfWork, out_refund_no: str, *, status: str, now: datetime) -> bool:
    """Record the gateway's answer to a refund exactly once.

    pending → processing | succeeded | failed, processing → succeeded | failed. On success
    the order's refunded amount grows (never past what was paid); the last fen of a full
    refund moves the order to refunded and, if it never shipped, puts the stock back.
    """
    refund = await uow.payments.refund_by_no(out_refund_no)
    if refund is None:
        raise NotFoundError("refund", out_refund_no)
    dst = {"SUCCESS": "succeeded", "PROCESSING": "processing"}.get(status, "failed")
    moved = False
    for src in ("pending", "processing"):
        if src != dst and await uow.payments.settle_refund(
            refund.id, src, dst, succeeded_at=now if dst == "succeeded" else None
        ):
            moved = True
            break
    if not moved:
        return False
    uow.audit(refund.tenant_id, "gateway", "refund." + dst, f"refund:{out_refund_no}",
              after={"amount_fen": refund.amount_fen, "reason": refund.reason})
    if dst != "succeeded":
        return True
    order = await uow.orders.get(refund.tenant_id, refund.order_id)
    assert order is not None
    if order.status == OrderStatus.CANCELLED:
        return True  # money that came after the order closed: nothing on the order to undo
    refunded_before, shipped = order.refunded_fen, order.shipped_at is not None
    if not await uow.orders.add_refunded(refund.tenant_id, order.id, refund.amount_fen):
        raise RefundTooLargeError(order.order_no, refund.amount_fen, order.paid_fen - refunded_before)
    full = refunded_before + refund.amount_fen == order.paid_fen
    if full and await uow.orders.move(
        refund.tenant_id, order.id, OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, closed_at=now
    ) and not shipped:
        for line in await uow.orders.lines(refund.tenant_id, order.id):
            await uow.catalog.restock(refund.tenant_id, line.sku_id, line.qty)
    uow.emit(
        OrderRefunded(
            tenant_id=refund.tenant_id, order_id=order.id, order_no=order.order_no,
            member_id=order.member_id, refund_fen=refund.amount_fen, paid_fen=order.paid_fen, full=full,
        )
    )
    return True


REFUNDABLE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED, OrderStatus.REFUND_REQUESTED)


@dataclass(frozen=True)
class RefundView:
    out_refund_no: str
    order_id: int
    amount_fen: int
    status: str
    reason: str


async def request_refund(
    uow: UnitOfWork,
    tenant: int,
    order_id: int,
    *,
    amount_fen: int | None,
    reason: str,
    actor: str,
    now: datetime,
) -> RefundView:
    """Refund part or all of what was paid. None: everything still refundable.

    The gateway is called from the outbox (`payment.needs_refund`), so a crash never
    loses a refund and a retry never pays one twice (out_refund_no is fixed per request).
    A full refund moves the order to refund_requested at once. A double click finds the
    first request pending and is refused as too large, or collides on out_refund_no.
    """
    order = await uow.orders.get(tenant, order_id)
    if order is None:
        raise NotFoundError("order", order_id)
    if order.status not in REFUNDABLE:
        raise NotRefundableError(order.order_no, order.status)
    before = {"status": order.status, "refunded_fen": order.refunded_fen}
    refunds = await uow.payments.refunds_for(tenant, order_id)
    in_flight = sum(r.amount_fen for r in refunds if r.status in ("pending", "processing"))
    refundable = order.paid_fen - order.refunded_fen - in_flight
    amount = refundable if amount_fen is None else amount_fen
    if amount <= 0 or amount > refundable:
        raise RefundTooLargeError(order.order_no, amount, max(refundable, 0))
    if order.refunded_fen + in_flight + amount == order.paid_fen and order.status != OrderStatus.REFUND_REQUESTED:
        if not await uow.orders.move(tenant, order_id, order.status, OrderStatus.REFUND_REQUESTED):
            raise NotRefundableError(order.order_no, "changed")
    refund = await uow.payments.add_refund(
        Refund(tenant_id=tenant, order_id=order_id, out_refund_no=f"RF{order.order_no}{len(refunds) + 1:02d}",
               amount_fen=amount, reason=reason[:80], status="pending", created_at=now)
    )
    uow.audit(tenant, actor, "refund.request", f"order:{order.order_no}",
              before=before, after={"amount_fen": amount, "reason": reason, "out_refund_no": refund.out_refund_no})
    uow.emit(
        PaymentNeedsRefund(
            tenant_id=tenant, order_id=order_id, out_trade_no=order.order_no,
            out_refund_no=refund.out_refund_no, refund_fen=amount, total_fen=order.paid_fen,
        )
    )
    return RefundView(refund.out_refund_no, order_id, amount, refund.status, refund.reason)
