"""Refunds of orders paid on credit (月结) or by bank transfer (对公转账), through the core's
one refund path (`payments.service.request_refund`: the console's refund, the after-sale
module's, any other) and its payment-method seam (`PaymentMethod.refund`):

- an order paid on account: the refund lowers the company's outstanding balance there and
  then — one conditional UPDATE (`outstanding ≥ amount`) with a `refund` credit entry
  unique per refund number, in the refund's transaction (the order's row is locked, so two
  refunds of one order apply one at a time and never pass what was paid) — and the refund
  succeeds at once (`order.refunded` follows). A refund of an order whose month's statement
  is already issued pays that company's open statements down (oldest first, as a repayment)
  and is kept out of the next statement (entry kind `stmt_refund`); otherwise the next
  statement nets it (kind `refund`). When the company owes less than the refund
  (it already repaid), the money goes back by bank transfer instead: an offline refund.
- an order paid by transfer: an offline refund; no WeChat Pay call. The console's 对公转账
  page lists it; an admin who sent the money back confirms it with the bank's reference
  (once per reference, one conditional UPDATE pending → confirmed), and the core's refund
  settles then (`settle_refund`: the order's refunded amount, its state, `order.refunded`).
Audited: b2b.credit_refund, b2b.offline_refund, b2b.offline_refund_confirmed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from social_mall.payments.methods import RefundWay
from social_mall.payments.service import settle_refund
from social_mall.views import OrderView
from social_mall_b2b.errors import InvalidApplicationError
from social_mall_b2b.models import CreditAccount, CreditEntry, OfflineRefund, Statement, Transfer
from storage.uow import UnitOfWork

ORDER, REFUND = "order", "refund"
#: a refund of an order whose month was already billed: it pays down the open statements (as
#: a repayment would) instead of being netted into the next month's statement
BILLED_REFUND = "stmt_refund"


async def credit_refund(uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                        now: datetime) -> RefundWay | None:
    """The credit method's refund hook (see the module docstring)."""
    s = uow.session
    charge = (await s.execute(select(CreditEntry).where(
        CreditEntry.tenant_id == tenant, CreditEntry.kind == ORDER,
        CreditEntry.order_id == order.id))).scalar_one_or_none()
    if charge is None:
        return None
    res = await s.execute(update(CreditAccount).where(
        CreditAccount.tenant_id == tenant, CreditAccount.company_id == charge.company_id,
        CreditAccount.outstanding_fen >= amount_fen,
    ).values(outstanding_fen=CreditAccount.outstanding_fen - amount_fen))
    if getattr(res, "rowcount", 0) != 1:     # repaid already: the money goes back by transfer
        return await _offline(uow, tenant, order, out_refund_no, amount_fen, "credit", now)
    from social_mall_b2b.budgets import period_of
    from social_mall_b2b.statements import apply_repayment

    billed = (await s.execute(select(Statement.id).where(
        Statement.tenant_id == tenant, Statement.company_id == charge.company_id,
        Statement.period == period_of(charge.created_at)))).first() is not None
    s.add(CreditEntry(tenant_id=tenant, company_id=charge.company_id, kind=BILLED_REFUND if billed else REFUND,
                      ref=out_refund_no, order_id=order.id, amount_fen=amount_fen, actor="system", created_at=now))
    await s.flush()
    company_id = charge.company_id
    if billed:   # the order's statement is out: what it owes drops now, not on next month's
        await apply_repayment(uow, tenant, company_id, amount_fen)
    uow.audit(tenant, "system", "b2b.credit_refund", f"order:{order.id}",
              after={"company_id": company_id, "amount_fen": amount_fen, "out_refund_no": out_refund_no,
                     "billed": billed})
    return RefundWay.SETTLED


async def transfer_refund(uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                          now: datetime) -> RefundWay | None:
    """The transfer method's refund hook: an order fully paid by transfer is refunded offline."""
    t = (await uow.session.execute(select(Transfer).where(
        Transfer.tenant_id == tenant, Transfer.order_id == order.id))).scalar_one_or_none()
    if t is None or t.received_fen <= 0 or t.received_fen != t.expected_fen:
        return None   # chosen but paid by WeChat Pay after all
    return await _offline(uow, tenant, order, out_refund_no, amount_fen, "transfer", now)


async def _offline(uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                   method: str, now: datetime) -> RefundWay:
    uow.session.add(OfflineRefund(tenant_id=tenant, order_id=order.id, out_refund_no=out_refund_no, method=method,
                                  amount_fen=amount_fen, status="pending", created_at=now))
    await uow.session.flush()
    uow.audit(tenant, "system", "b2b.offline_refund", f"order:{order.id}",
              after={"method": method, "amount_fen": amount_fen, "out_refund_no": out_refund_no})
    return RefundWay.OFFLINE


@dataclass(frozen=True)
class OfflineView:
    id: int
    order_id: int
    out_refund_no: str
    method: str
    amount_fen: int
    status: str
    bank_ref: str


async def offline_refunds(uow: UnitOfWork, tenant: int, limit: int = 200) -> list[OfflineView]:
    rows = (await uow.session.execute(select(OfflineRefund).where(OfflineRefund.tenant_id == tenant)
                                      .order_by(OfflineRefund.id.desc()).limit(limit))).scalars().all()
    return [OfflineView(r.id, r.order_id, r.out_refund_no, r.method, r.amount_fen, r.status, r.bank_ref or "")
            for r in rows]


async def confirm_offline(uow: UnitOfWork, tenant: int, refund_id: int, bank_ref: str, actor: str,
                          now: datetime) -> bool:
    """An admin sent an offline refund's money back: record it with the bank's reference and
    settle the core's refund. Once: False (nothing changed) for a refund confirmed already or
    a reference used before."""
    bank_ref = bank_ref.strip()[:60]
    if not bank_ref:
        raise InvalidApplicationError("refund_ref")
    s = uow.session
    if (await s.execute(select(OfflineRefund.id).where(OfflineRefund.tenant_id == tenant,
                                                       OfflineRefund.bank_ref == bank_ref))).first() is not None:
        return False
    row = (await s.execute(select(OfflineRefund).where(OfflineRefund.tenant_id == tenant,
                                                       OfflineRefund.id == refund_id))).scalar_one_or_none()
    if row is None:
        raise InvalidApplicationError("refund_ref")
    try:
        async with s.begin_nested():
            res = await s.execute(update(OfflineRefund).where(
                OfflineRefund.tenant_id == tenant, OfflineRefund.id == refund_id, OfflineRefund.status == "pending",
            ).values(status="confirmed", bank_ref=bank_ref, actor=actor[:64], confirmed_at=now))
    except IntegrityError:   # the same reference confirmed at the same moment by another admin
        return False
    if getattr(res, "rowcount", 0) != 1:
        return False
    uow.audit(tenant, actor, "b2b.offline_refund_confirmed", f"refund:{row.out_refund_no}",
              after={"amount_fen": row.amount_fen, "bank_ref": bank_ref, "method": row.method})
    await settle_refund(uow, row.out_refund_no, tenant=tenant, status="SUCCESS", now=now)
    return True
