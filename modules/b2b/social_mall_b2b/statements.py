"""Monthly statements (对账单) of credit orders: a job issues, for every company on credit
terms, the statement of the last month (Shanghai) once — unique per company and month —
with Σ orders − Σ refunds entered that month, due DUE_DAYS after issue, and pushes it to
the company's owner. Repayments pay statements oldest first; a statement unpaid past its
due time is overdue and blocks new credit orders (credit.pay_on_credit). The console lists
them and downloads them as CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError

from social_mall_b2b.budgets import SHANGHAI, period_of
from social_mall_b2b.events import StatementIssued
from social_mall_b2b.models import Company, CreditAccount, CreditEntry, Statement
from storage.uow import UnitOfWork

DUE_DAYS = 15


def last_period(now: datetime) -> tuple[str, datetime, datetime]:
    """The month before `now` (Shanghai): its "YYYY-MM", its start and its end (UTC-aware)."""
    local = now.astimezone(SHANGHAI)
    end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    return period_of(start), start, end


async def issue_due(uow: UnitOfWork, tenant: int, now: datetime) -> list[int]:
    """Issue last month's statements not issued yet (ids of those issued now)."""
    period, start, end = last_period(now)
    s = uow.session
    accounts = (await s.execute(select(CreditAccount.company_id).where(CreditAccount.tenant_id == tenant)
                                .where(~exists().where(Statement.tenant_id == tenant,
                                                       Statement.company_id == CreditAccount.company_id,
                                                       Statement.period == period)))).scalars().all()
    issued: list[int] = []
    for company_id in accounts:
        rows = (await s.execute(select(CreditEntry.kind, func.sum(CreditEntry.amount_fen)).where(
            CreditEntry.tenant_id == tenant, CreditEntry.company_id == company_id,
            CreditEntry.kind.in_(["order", "refund"]), CreditEntry.created_at >= start,
            CreditEntry.created_at < end).group_by(CreditEntry.kind))).all()
        amount = sum(int(t) if k == "order" else -int(t) for k, t in rows)
        if amount <= 0:
            continue
        due = now + timedelta(days=DUE_DAYS)
        try:
            async with s.begin_nested():
                st = Statement(tenant_id=tenant, company_id=company_id, period=period, amount_fen=amount,
                               paid_fen=0, issued_at=now, due_at=due)
                s.add(st)
                await s.flush()
        except IntegrityError:
            continue                                   # another worker issued it
        owner = await s.scalar(select(Company.owner_member_id).where(Company.id == company_id))
        assert owner is not None
        uow.emit(StatementIssued(tenant_id=tenant, member_id=owner, statement_id=st.id, period=period,
                                 amount_fen=amount, due_at=due.isoformat()))
        uow.audit(tenant, "system", "b2b.statement_issued", f"company:{company_id}",
                  after={"period": period, "amount_fen": amount})
        issued.append(st.id)
    return issued


async def apply_repayment(uow: UnitOfWork, tenant: int, company_id: int, amount_fen: int) -> None:
    """A repayment pays the company's open statements oldest first (what is left over pays
    credit orders not yet on a statement)."""
    s = uow.session
    left = amount_fen
    for st in (await s.execute(select(Statement).where(
            Statement.tenant_id == tenant, Statement.company_id == company_id,
            Statement.paid_fen < Statement.amount_fen).order_by(Statement.period))).scalars().all():
        if left <= 0:
            break
        take = min(left, st.amount_fen - st.paid_fen)
        await s.execute(update(Statement).where(Statement.id == st.id,
                                                Statement.paid_fen + take <= Statement.amount_fen)
                        .values(paid_fen=Statement.paid_fen + take))
        left -= take
    s.expire_all()


async def overdue(uow: UnitOfWork, tenant: int, company_id: int, now: datetime) -> bool:
    return (await uow.session.execute(select(Statement.id).where(
        Statement.tenant_id == tenant, Statement.company_id == company_id,
        Statement.paid_fen < Statement.amount_fen, Statement.due_at < now).limit(1))).first() is not None


async def statements(uow: UnitOfWork, tenant: int, company_id: int | None = None) -> list[Statement]:
    q = select(Statement).where(Statement.tenant_id == tenant)
    if company_id is not None:
        q = q.where(Statement.company_id == company_id)
    return list((await uow.session.execute(q.order_by(Statement.period.desc(), Statement.id))).scalars().all())


async def statement_csv(uow: UnitOfWork, tenant: int, statement_id: int) -> tuple[Statement, str] | None:
    """One statement as CSV: its credit orders and refunds of the month, then the totals."""
    s = uow.session
    st = (await s.execute(select(Statement).where(Statement.tenant_id == tenant,
                                                  Statement.id == statement_id))).scalar_one_or_none()
    if st is None:
        return None
    year, month = (int(x) for x in st.period.split("-"))
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["日期", "类型", "订单", "金额(元)"])
    for e in (await s.execute(select(CreditEntry).where(
            CreditEntry.tenant_id == tenant, CreditEntry.company_id == st.company_id,
            CreditEntry.kind.in_(["order", "refund"]), CreditEntry.created_at >= start,
            CreditEntry.created_at < end).order_by(CreditEntry.id))).scalars().all():
        sign = 1 if e.kind == "order" else -1
        w.writerow([e.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d"), "月结订单" if e.kind == "order" else "退款",
                    e.order_id or "", f"{sign * e.amount_fen / 100:.2f}"])
    w.writerow([])
    w.writerow(["账期", st.period, "应还", f"{st.amount_fen / 100:.2f}"])
    w.writerow(["已还", f"{st.paid_fen / 100:.2f}", "到期", st.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d")])
    return st, out.getvalue()


async def issue_all(uows, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """The job: every tenant's last-month statements (one transaction per tenant)."""
    async with uows() as uow:
        tenants = (await uow.session.execute(select(CreditAccount.tenant_id).distinct())).scalars().all()
    n = 0
    for t in tenants:
        async with uows() as uow:
            n += len(await issue_due(uow, t, now))
            await uow.commit()
    return n
