"""Payments: open a payment for an order, apply a verified notify exactly once.

Every notify we receive is written to pay_notifications with its verdict, whether it was
applied, a duplicate or refused: the audit trail of money coming in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from social_mall.errors import (
    AmountMismatchError,
    MerchantMismatchError,
    NotFoundError,
    NotRefundableError,
    RefundLimitError,
    RefundTooLargeError,
)
from social_mall.events import OrderPaid, OrderRefunded, PaymentNeedsRefund
from social_mall.orders.rules import OrderStatus, after_refund
from social_mall.orders.service import load_order, restock_unshipped
from social_mall.payments.gateway import Transaction
from social_mall.payments.methods import RefundWay, refund_way
from social_mall.views import OrderView
from storage.channel_repos import ChannelRepo
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
    """The payment for an order (one per order; out_trade_no is the order number).

    Conflict-safe: parallel openers of one order (the sandbox's 确认支付, the JSAPI and
    Native buttons) all get the same payment, never an error on the unique number."""
    existing = await uow.payments.open(order.tenant_id, order.id, order.order_no, gateway=gateway,
                                       amount_fen=order.total_fen)
    if existing is None:  # the order number is taken by another order's payment
        raise NotFoundError("payment", order.order_no)
    return PaymentView(existing.out_trade_no, existing.amount_fen, existing.status, existing.gateway)


async def apply_transaction(
    uow: UnitOfWork, tx: Transaction, *, tenant: int, gateway: str, mchid: str, appid: str, now: datetime,
    also_appids: Collection[str] = (),
) -> PayOutcome:
    """Apply a verified pay notify (or query answer) that reached `tenant`'s endpoint,
    verified with `tenant`'s pay account (`mchid`, `appid`). Only that tenant's payment
    can be found, and the transaction must name that account: a merchant's genuine notify
    naming another tenant's order is refused. Raises (and changes nothing) on any mismatch.
    `also_appids`: other apps bound to the merchant whose payers pay here; the app ids of the
    tenant's own channel accounts (its mini-programs) are accepted too: WeChat Pay signed the
    notify with this merchant's key, so the app is one the merchant has bound."""
    if tx.mchid != mchid:
        raise MerchantMismatchError("mchid")
    if tx.appid != appid and (not tx.appid or (tx.appid not in also_appids
                                               and not await ChannelRepo(uow.session).has_app_id(tenant, tx.appid))):
        raise MerchantMismatchError("appid")  # neither the merchant's app nor one of the tenant's own
    payment = await uow.payments.by_out_trade_no(tenant, tx.out_trade_no)
    if payment is None:
        raise NotFoundError("payment", tx.out_trade_no)
    if tx.amount_fen != payment.amount_fen:
        raise AmountMismatchError(tx.out_trade_no, payment.amount_fen, tx.amount_fen)
    # a tenant's merchants each take their own entrances' orders: another merchant of the same
    # tenant (its genuine notify to its own URL) never pays this one's order
    if await uow.payments.merchant_mchid(tenant, payment.order_id) not in (None, tx.mchid):
        raise MerchantMismatchError("merchant")

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


def record_refund_notice(uow: UnitOfWork, *, gateway: str, tenant: int, event_id: str, out_trade_no: str,
                         refund_fen: int, status: str, applied: bool) -> None:
    """Write an accepted refund notify to the audit trail (in the caller's transaction):
    "refund" when it settled the refund, "duplicate" when it had been settled before."""
    uow.payments.record_notify(PayNotification(
        tenant_id=tenant, gateway=gateway, event_id=event_id[:64], out_trade_no=out_trade_no[:32],
        amount_fen=refund_fen, verdict="refund" if applied else "duplicate", reason=f"refund:{status}"[:80]))


async def settle_refund(uow: UnitOfWork, out_refund_no: str, *, tenant: int, status: str, now: datetime,
                        reason: str = "") -> bool:
    """Record the gateway's answer to one of `tenant`'s refunds exactly once.

    pending → processing | succeeded | failed, processing → succeeded | failed (anything
    but SUCCESS and PROCESSING is a failure: a refusal, CLOSED, ABNORMAL). On success the
    order's refunded amount grows (never past what was paid). Every final answer then
    settles the order from the money (`rules.after_refund`), with its row locked so the
    outcomes of one order's refunds apply one at a time, in any order: the last fen
    refunded closes it (and, if it never shipped, puts the stock back); a failure that
    leaves the refunds in flight short of the rest gives it back its state before the
    request, so the rest can be refunded again.
    """
    refund = await uow.payments.refund_by_no(tenant, out_refund_no)
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
              after={"amount_fen": refund.amount_fen, "reason": refund.reason,
                     **({"gateway_status": (reason or status)[:80]} if dst == "failed" else {})})
    if dst == "processing":
        return True
    tenant = refund.tenant_id
    order = await uow.orders.get(tenant, refund.order_id, for_update=True)
    assert order is not None
    if order.status == OrderStatus.CANCELLED:
        return True  # money that came after the order closed: nothing on the order to undo
    if dst == "succeeded" and not await uow.orders.add_refunded(tenant, order.id, refund.amount_fen):
        raise RefundTooLargeError(order.order_no, refund.amount_fen, order.paid_fen - order.refunded_fen)
    order = await uow.orders.get(tenant, order.id)
    assert order is not None
    in_flight = sum(r.amount_fen for r in await uow.payments.refunds_for(tenant, order.id)
                    if r.status in ("pending", "processing"))
    was, shipped = OrderStatus(order.status), order.shipped_at is not None
    to = after_refund(was, paid_fen=order.paid_fen, refunded_fen=order.refunded_fen, in_flight_fen=in_flight,
                      shipped=shipped, completed=order.completed_at is not None)
    if to != was and await uow.orders.move(
        tenant, order.id, was, to, **({"closed_at": now} if to == OrderStatus.REFUNDED else {})
    ):
        uow.audit(tenant, "gateway", "order.refund_settled", f"order:{order.order_no}",
                  before={"status": was}, after={"status": to, "refunded_fen": order.refunded_fen})
        if to == OrderStatus.REFUNDED and not shipped:
            await restock_unshipped(uow, tenant, order.id)
    if dst == "succeeded":
        uow.emit(
            OrderRefunded(
                tenant_id=tenant, order_id=order.id, order_no=order.order_no, member_id=order.member_id,
                refund_fen=refund.amount_fen, paid_fen=order.paid_fen, full=order.refunded_fen == order.paid_fen,
                out_refund_no=refund.out_refund_no,
            )
        )
    return True


def refund_no(order_no: str, refunds: Sequence[Refund]) -> str:
    """The next refund number of an order: RF<order_no><seq>, seq one past the highest
    taken (2 digits, more past 99; ≤ 64 characters, WeChat's limit for out_refund_no)."""
    prefix = f"RF{order_no}"
    taken = [int(r.out_refund_no[len(prefix):]) for r in refunds
             if r.out_refund_no.startswith(prefix) and r.out_refund_no[len(prefix):].isdecimal()
             and r.out_refund_no[len(prefix):].isascii()]
    return f"{prefix}{max(taken, default=0) + 1:02d}"


#: WeChat Pay refuses a 51st refund of one order, and any refund a year after payment.
MAX_REFUNDS_PER_ORDER = 50
REFUND_WINDOW = timedelta(days=365)

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
    loses a refund and a retry never pays one twice (out_refund_no is fixed per request:
    it is chosen here, stored, and carried by the outbox event to every gateway call).
    A full refund moves the order to refund_requested at once.

    Parallel requests for one order are serialised on the order's row (`lock`), so each
    sees the refunds before it: the sum never passes what was paid (one that would is
    refused as too large), and each gets the next free number RF<order_no><seq>.
    """
    order = await uow.orders.get(tenant, order_id, for_update=True)  # one refund move at a time per order
    if order is None:
        raise NotFoundError("order", order_id)
    if order.status not in REFUNDABLE:
        raise NotRefundableError(order.order_no, order.status)
    before = {"status": order.status, "refunded_fen": order.refunded_fen}
    refunds = await uow.payments.refunds_for(tenant, order_id)
    if sum(r.status != "failed" for r in refunds) >= MAX_REFUNDS_PER_ORDER:
        raise RefundLimitError(order.order_no, "count")
    if order.paid_at is not None and now - order.paid_at > REFUND_WINDOW:
        raise RefundLimitError(order.order_no, "age")
    in_flight = sum(r.amount_fen for r in refunds if r.status in ("pending", "processing"))
    refundable = order.paid_fen - order.refunded_fen - in_flight
    amount = refundable if amount_fen is None else amount_fen
    if amount <= 0 or amount > refundable:
        raise RefundTooLargeError(order.order_no, amount, max(refundable, 0))
    if order.refunded_fen + in_flight + amount == order.paid_fen and order.status != OrderStatus.REFUND_REQUESTED:
        if not await uow.orders.move(tenant, order_id, order.status, OrderStatus.REFUND_REQUESTED):
            raise NotRefundableError(order.order_no, "changed")
    refund = await uow.payments.add_refund(
        Refund(tenant_id=tenant, order_id=order_id, out_refund_no=refund_no(order.order_no, refunds),
               amount_fen=amount, reason=reason[:80], status="pending", created_at=now)
    )
    uow.audit(tenant, actor, "refund.request", f"order:{order.order_no}",
              before=before, after={"amount_fen": amount, "reason": reason, "out_refund_no": refund.out_refund_no})
    view = RefundView(refund.out_refund_no, order_id, amount, refund.status, refund.reason)
    order_no, paid_fen = order.order_no, order.paid_fen   # a method's hook may expire the session's rows
    by_method = await refund_way(uow, tenant, await load_order(uow, tenant, order_id), view.out_refund_no,
                                 amount, now) if uow.payment_methods else None
    if by_method is None:   # WeChat Pay took the money: the outbox asks the gateway
        uow.emit(
            PaymentNeedsRefund(
                tenant_id=tenant, order_id=order_id, out_trade_no=order_no,
                out_refund_no=view.out_refund_no, refund_fen=amount, total_fen=paid_fen,
            )
        )
        return view
    key, way = by_method
    uow.audit(tenant, actor, "refund.by_method", f"refund:{view.out_refund_no}",
              after={"method": key, "way": way.value, "amount_fen": amount})
    if way == RefundWay.SETTLED:
        await settle_refund(uow, view.out_refund_no, tenant=tenant, status="SUCCESS", now=now)
        return replace(view, status="succeeded")
    return view
