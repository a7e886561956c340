"""SQL for the pay module (tenant pay accounts, sweeper checks, reconciliation reports)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Order, Payment
from storage.pay_models import PayReconciliation, PayTradeCheck, TenantPayAccount


class PayAccountRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_tenant(self, tenant: int) -> TenantPayAccount | None:
        """The tenant's default merchant (the first one if none is marked)."""
        stmt = (select(TenantPayAccount).where(TenantPayAccount.tenant_id == tenant)
                .order_by(TenantPayAccount.is_default.desc(), TenantPayAccount.id).limit(1))
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def merchants(self, tenant: int) -> list[TenantPayAccount]:
        """Every merchant of the tenant, the default first."""
        stmt = (select(TenantPayAccount).where(TenantPayAccount.tenant_id == tenant)
                .order_by(TenantPayAccount.is_default.desc(), TenantPayAccount.id))
        return list((await self.session.scalars(stmt.execution_options(populate_existing=True))).all())

    async def for_merchant(self, tenant: int, merchant_id: int) -> TenantPayAccount | None:
        stmt = select(TenantPayAccount).where(TenantPayAccount.tenant_id == tenant, TenantPayAccount.id == merchant_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def add_merchant(self, tenant: int, now: datetime, **values: Any) -> TenantPayAccount:
        """Another merchant of the tenant (the default only if it is the first)."""
        first = await self.for_tenant(tenant) is None
        row = TenantPayAccount(tenant_id=tenant, created_at=now, updated_at=now, is_default=first, **values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_merchant(self, row: TenantPayAccount, now: datetime, **values: Any) -> None:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        await self.session.flush()

    async def make_default(self, tenant: int, merchant_id: int) -> None:
        await self.session.execute(update(TenantPayAccount).where(TenantPayAccount.tenant_id == tenant)
                                   .values(is_default=TenantPayAccount.id == merchant_id)
                                   .execution_options(synchronize_session=False))

    async def save(self, tenant: int, now: datetime, **values: Any) -> TenantPayAccount:
        row = await self.for_tenant(tenant)
        if row is None:
            row = TenantPayAccount(tenant_id=tenant, created_at=now, updated_at=now, **values)
            self.session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
        await self.session.flush()
        return row

    async def enabled_tenants(self) -> list[int]:
        stmt = select(TenantPayAccount.tenant_id).where(TenantPayAccount.enabled.is_(True)).distinct()
        return list((await self.session.scalars(stmt)).all())

    async def enabled_merchants(self, tenant: int | None = None) -> list[TenantPayAccount]:
        """Every enabled merchant (of `tenant`, or of every tenant), each tenant's default first."""
        stmt = select(TenantPayAccount).where(TenantPayAccount.enabled.is_(True))
        if tenant is not None:
            stmt = stmt.where(TenantPayAccount.tenant_id == tenant)
        stmt = stmt.order_by(TenantPayAccount.tenant_id, TenantPayAccount.is_default.desc(), TenantPayAccount.id)
        return list((await self.session.scalars(stmt)).all())

    async def delete(self, tenant: int) -> None:
        row = await self.for_tenant(tenant)
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()


class PayCheckRepo:
    """Payments still open at a real gateway, and what the sweeper learned about them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_payments(
        self, gateways: tuple[str, ...], older_than: datetime, newer_than: datetime, limit: int
    ) -> list[tuple[Payment, Order]]:
        """Created (unpaid) payments past the notify window, not yet settled by a query."""
        stmt = (
            select(Payment, Order)
            .join(Order, and_(Order.id == Payment.order_id, Order.tenant_id == Payment.tenant_id))
            .outerjoin(PayTradeCheck, and_(PayTradeCheck.tenant_id == Payment.tenant_id,
                                           PayTradeCheck.out_trade_no == Payment.out_trade_no))
            .where(
                Payment.status == "created",
                Payment.gateway.in_(gateways),
                Payment.created_at <= older_than,
                Payment.created_at >= newer_than,
                (PayTradeCheck.id.is_(None)) | (PayTradeCheck.final.is_(False)),
            )
            .order_by(Payment.id)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt.execution_options(populate_existing=True))).all()
        return [(p, o) for p, o in rows]

    async def note(self, tenant: int, out_trade_no: str, state: str, *, final: bool, now: datetime) -> None:
        done = await self.session.execute(
            update(PayTradeCheck)
            .where(PayTradeCheck.tenant_id == tenant, PayTradeCheck.out_trade_no == out_trade_no)
            .values(trade_state=state, final=final, last_checked_at=now, checks=PayTradeCheck.checks + 1)
        )
        if getattr(done, "rowcount", 0) == 0:
            self.session.add(PayTradeCheck(tenant_id=tenant, out_trade_no=out_trade_no, trade_state=state,
                                           final=final, checks=1, last_checked_at=now))
            await self.session.flush()

    async def get(self, tenant: int, out_trade_no: str) -> PayTradeCheck | None:
        return await self.session.scalar(
            select(PayTradeCheck).where(PayTradeCheck.tenant_id == tenant, PayTradeCheck.out_trade_no == out_trade_no)
            .execution_options(populate_existing=True))

    async def payments_between(self, tenant: int, start: datetime, end: datetime,
                               merchants: Collection[int]) -> list[Payment]:
        """Payments of one tenant to one of `merchants` created or paid within [start, end)."""
        stmt = select(Payment).join(Order, Order.id == Payment.order_id).where(
            Payment.tenant_id == tenant, paid_to(merchants),
            ((Payment.paid_at >= start) & (Payment.paid_at < end))
            | ((Payment.created_at >= start) & (Payment.created_at < end)),
        ).order_by(Payment.id)
        return list((await self.session.scalars(stmt)).all())


class ReconciliationRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant: int, merchant: int, bill_date: str) -> PayReconciliation | None:
        return await self.session.scalar(select(PayReconciliation).where(
            PayReconciliation.tenant_id == tenant, PayReconciliation.pay_account_id == merchant,
            PayReconciliation.bill_date == bill_date))

    async def save(self, tenant: int, merchant: int, bill_date: str, *, status: str, checked: int,
                   mismatches: list[dict[str, Any]], now: datetime) -> PayReconciliation:
        row = await self.get(tenant, merchant, bill_date)
        if row is None:
            row = PayReconciliation(tenant_id=tenant, pay_account_id=merchant, bill_date=bill_date, created_at=now,
                                    status=status, checked=checked, mismatches=mismatches)
            self.session.add(row)
        else:
            row.status, row.checked, row.mismatches, row.created_at = status, checked, mismatches, now
        await self.session.flush()
        return row


def paid_to(merchants: Collection[int]) -> ColumnElement[bool]:
    """Orders paid to one of `merchants` (ids of tenant_pay_accounts; 0: the tenant's default)."""
    return func.coalesce(Order.pay_account_id, 0).in_(list(merchants))


async def refunds_settled_between(session: AsyncSession, tenant: int, start: datetime, end: datetime,
                                  merchants: Collection[int]) -> list[Any]:
    from storage.models import Refund

    stmt = (select(Refund).join(Order, Order.id == Refund.order_id)
            .where(Refund.tenant_id == tenant, Refund.succeeded_at >= start, Refund.succeeded_at < end,
                   paid_to(merchants)).order_by(Refund.id))
    return list((await session.scalars(stmt)).all())


async def paid_between(session: AsyncSession, tenant: int, start: datetime, end: datetime,
                       merchants: Collection[int]) -> list[Payment]:
    stmt = (select(Payment).join(Order, Order.id == Payment.order_id)
            .where(Payment.tenant_id == tenant, Payment.status == "paid", Payment.paid_at >= start,
                   Payment.paid_at < end, paid_to(merchants)).order_by(Payment.id))
    return list((await session.scalars(stmt)).all())


async def payment_of(session: AsyncSession, tenant: int, out_trade_no: str, merchants: Collection[int]) -> Payment | None:
    """The tenant's payment `out_trade_no` if its order is paid to one of `merchants`."""
    stmt = (select(Payment).join(Order, Order.id == Payment.order_id)
            .where(Payment.tenant_id == tenant, Payment.out_trade_no == out_trade_no, paid_to(merchants)))
    return await session.scalar(stmt.execution_options(populate_existing=True))


async def refund_of(session: AsyncSession, tenant: int, out_refund_no: str, merchants: Collection[int]) -> Any:
    """The tenant's refund `out_refund_no` if its order is paid to one of `merchants`."""
    from storage.models import Refund

    stmt = (select(Refund).join(Order, Order.id == Refund.order_id)
            .where(Refund.tenant_id == tenant, Refund.out_refund_no == out_refund_no, paid_to(merchants)))
    return await session.scalar(stmt.execution_options(populate_existing=True))
