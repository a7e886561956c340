"""Credit terms (账期/月结): an admin gives an approved company a credit limit; its owner and
buyers may then pay an unpaid order 「月结」 — the order is paid on account when the
company's outstanding balance plus the order stays within the limit. One conditional
UPDATE (`outstanding + total ≤ limit`) in the order's payment transaction decides, so two
buyers paying at once can never pass the limit together (tests on SQLite and on
PostgreSQL with separate connections). The order then moves to paid through the core's
payment-method seam (social_mall/payments/methods.py: `mark_paid`, once).

An admin records a repayment received by bank transfer (its bank reference makes it once);
a refund of an order paid on account lowers the balance (once per refund: refunds.py). Every movement
is a CreditEntry in the same transaction as the balance's UPDATE, so
`reconcile` can check outstanding == Σ orders − Σ repayments − Σ refunds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from social_mall.errors import NotFoundError
from social_mall.orders.rules import OrderStatus
from social_mall.payments.methods import RefundWay, mark_paid
from social_mall.views import OrderView
from social_mall_b2b.accounts import approved_company, company
from social_mall_b2b.errors import CreditRefusedError, InvalidApplicationError
from social_mall_b2b.models import CreditAccount, CreditEntry
from storage.uow import UnitOfWork

ORDER, REPAYMENT, REFUND = "order", "repayment", "refund"
METHOD = "credit"


@dataclass(frozen=True)
class CreditView:
    company_id: int
    limit_fen: int
    outstanding_fen: int

    @property
    def available_fen(self) -> int:
        return max(0, self.limit_fen - self.outstanding_fen)


async def account(uow: UnitOfWork, tenant: int, company_id: int) -> CreditView | None:
    row = (await uow.session.execute(select(CreditAccount).where(
        CreditAccount.tenant_id == tenant, CreditAccount.company_id == company_id))).scalar_one_or_none()
    return None if row is None else CreditView(row.company_id, row.limit_fen, row.outstanding_fen)


async def set_limit(uow: UnitOfWork, tenant: int, company_id: int, limit_fen: int, actor: str) -> None:
    """The company's credit limit (0 stops new credit orders; what is owed stays owed)."""
    if not 0 <= limit_fen <= 10**12:
        raise InvalidApplicationError("limit")
    if await company(uow, tenant, company_id) is None:
        raise NotFoundError("b2b_company", company_id)
    s = uow.session
    row = (await s.execute(select(CreditAccount).where(
        CreditAccount.tenant_id == tenant, CreditAccount.company_id == company_id))).scalar_one_or_none()
    before: dict[str, object] | None = None if row is None else {"limit_fen": row.limit_fen}
    if row is None:
        s.add(CreditAccount(tenant_id=tenant, company_id=company_id, limit_fen=limit_fen, outstanding_fen=0))
    else:
        await s.execute(update(CreditAccount).where(CreditAccount.id == row.id).values(limit_fen=limit_fen))
    await s.flush()
    uow.audit(tenant, actor, "b2b.credit_limit", f"company:{company_id}", before=before,
              after={"limit_fen": limit_fen})


async def pay_on_credit(uow: UnitOfWork, tenant: int, member: int, order_id: int, now: datetime) -> OrderView:
    """Pay the member's unpaid order on its company's account (the whole order, once).
    Raises CreditRefusedError with nothing written when it may not."""
    from social_mall.orders.service import load_order

    order = await load_order(uow, tenant, order_id)
    if order.member_id != member or order.status != OrderStatus.PENDING_PAYMENT:
        raise CreditRefusedError("order")
    found = await approved_company(uow, tenant, member)
    if found is None:
        raise CreditRefusedError("no_terms")
    terms = await account(uow, tenant, found.id)
    if terms is None or terms.limit_fen == 0:
        raise CreditRefusedError("no_terms")
    from social_mall_b2b.statements import overdue

    if await overdue(uow, tenant, found.id, now):
        raise CreditRefusedError("overdue")
    s = uow.session
    res = await s.execute(update(CreditAccount).where(
        CreditAccount.tenant_id == tenant, CreditAccount.company_id == found.id,
        CreditAccount.outstanding_fen + order.total_fen <= CreditAccount.limit_fen,
    ).values(outstanding_fen=CreditAccount.outstanding_fen + order.total_fen))
    if getattr(res, "rowcount", 0) != 1:
        now_terms = await account(uow, tenant, found.id)
        assert now_terms is not None
        raise CreditRefusedError("over_limit", now_terms.limit_fen, now_terms.outstanding_fen, order.total_fen)
    if not await mark_paid(uow, tenant, order.id, method=METHOD, actor=f"member:{member}", now=now):
        raise CreditRefusedError("order")        # paid or closed meanwhile: the caller rolls back
    s.add(CreditEntry(tenant_id=tenant, company_id=found.id, kind=ORDER, ref=f"order:{order.id}",
                      order_id=order.id, amount_fen=order.total_fen, actor=f"member:{member}", created_at=now))
    await s.flush()
    uow.audit(tenant, f"member:{member}", "b2b.credit_order", f"order:{order.id}",
              after={"company_id": found.id, "amount_fen": order.total_fen})
    return await load_order(uow, tenant, order.id)


async def record_repayment(uow: UnitOfWork, tenant: int, company_id: int, amount_fen: int, ref: str,
                           actor: str, now: datetime) -> bool:
    """A repayment received by transfer, confirmed by an admin: once per bank reference
    (False: already recorded, nothing changed); never more than what is owed."""
    ref = ref.strip()[:60]
    if amount_fen <= 0 or not ref:
        raise InvalidApplicationError("repayment")
    s = uow.session
    if (await s.execute(select(CreditEntry.id).where(
            CreditEntry.tenant_id == tenant, CreditEntry.kind == REPAYMENT,
            CreditEntry.ref == ref))).first() is not None:
        return False
    res = await s.execute(update(CreditAccount).where(
        CreditAccount.tenant_id == tenant, CreditAccount.company_id == company_id,
        CreditAccount.outstanding_fen >= amount_fen,
    ).values(outstanding_fen=CreditAccount.outstanding_fen - amount_fen))
    if getattr(res, "rowcount", 0) != 1:
        raise InvalidApplicationError("repayment")
    s.add(CreditEntry(tenant_id=tenant, company_id=company_id, kind=REPAYMENT, ref=ref, order_id=None,
                      amount_fen=amount_fen, actor=actor, created_at=now))
    await s.flush()
    from social_mall_b2b.statements import apply_repayment

    await apply_repayment(uow, tenant, company_id, amount_fen)
    uow.audit(tenant, actor, "b2b.credit_repayment", f"company:{company_id}",
              after={"amount_fen": amount_fen, "ref": ref})
    return True


@dataclass(frozen=True)
class Mismatch:
    company_id: int
    outstanding_fen: int
    entries_fen: int


async def reconcile(uow: UnitOfWork, tenant: int | None = None) -> list[Mismatch]:
    """Every credit account whose outstanding balance differs from
    Σ orders − Σ repayments − Σ refunds of its entries (empty: the books agree)."""
    s = uow.session
    q = select(CreditEntry.tenant_id, CreditEntry.company_id, CreditEntry.kind,
               func.sum(CreditEntry.amount_fen)).group_by(CreditEntry.tenant_id, CreditEntry.company_id,
                                                          CreditEntry.kind)
    accounts_q = select(CreditAccount)
    if tenant is not None:
        q = q.where(CreditEntry.tenant_id == tenant)
        accounts_q = accounts_q.where(CreditAccount.tenant_id == tenant)
    sums: dict[tuple[int, int], int] = {}
    for t, c, kind, total in (await s.execute(q)).all():
        sums[(t, c)] = sums.get((t, c), 0) + (int(total) if kind == ORDER else -int(total))
    out: list[Mismatch] = []
    for a in (await s.execute(accounts_q)).scalars().all():
        expected = sums.pop((a.tenant_id, a.company_id), 0)
        if expected != a.outstanding_fen:
            out.append(Mismatch(a.company_id, a.outstanding_fen, expected))
    out.extend(Mismatch(c, 0, v) for (_, c), v in sums.items() if v != 0)
    return out


async def books_check(uow: UnitOfWork, tenant: int) -> list[str]:
    """`reconcile` for the core's books checks (registry.add_books_check): one text per
    company whose balance differs from its entries."""
    return [f"company {m.company_id}: outstanding {m.outstanding_fen} != entries {m.entries_fen}"
            for m in await reconcile(uow, tenant)]


class CreditMethod:
    """The payment method the module registers (registry.add_payment_method)."""

    key = METHOD

    async def offer(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> str:
        found = await approved_company(uow, tenant, order.member_id)
        if found is None:
            return ""
        terms = await account(uow, tenant, found.id)
        if terms is None or terms.limit_fen == 0:
            return ""
        return f"企业账期可用 ¥{terms.available_fen / 100:.2f}：回复「月结」记账支付本单。"

    async def refund(self, uow: UnitOfWork, tenant: int, order: OrderView, out_refund_no: str, amount_fen: int,
                     now: datetime) -> RefundWay | None:
        """A refund of an order paid on account lowers the balance (refunds.py)."""
        from social_mall_b2b.refunds import credit_refund

        return await credit_refund(uow, tenant, order, out_refund_no, amount_fen, now)


METHOD_OBJ = CreditMethod()
