"""Payments: open a payment for an order, apply a verified notify exactly once.

Every notify we receive is written to pay_notifications with its verdict, whether it was
applied, a duplicate or refused: the audit trail of money coming in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from social_mall.errors import AmountMismatchError, MerchantMismatchError, NotFoundError
from social_mall.events import OrderPaid, PaymentNeedsRefund
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
    """Record the gateway's answer to a refund once (pending → succeeded | failed)."""
    refund = await uow.payments.refund_by_no(out_refund_no)
    if refund is None:
        raise NotFoundError("refund", out_refund_no)
    dst = "succeeded" if status == "SUCCESS" else "processing" if status == "PROCESSING" else "failed"
    moved = await uow.payments.settle_refund(refund.id, "pending", dst, succeeded_at=now if dst == "succeeded" else None)
    if moved:
        uow.audit(refund.tenant_id, "system", "refund." + dst, f"refund:{out_refund_no}",
                  after={"amount_fen": refund.amount_fen, "reason": refund.reason})
    return moved
