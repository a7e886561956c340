"""What the pay module's jobs (handlers/pay_jobs.py: the active-query sweeper and the daily
reconciliation) read and write, over a unit of work: the payments to ask the gateway about,
the note of each answer, one merchant's day of payments and refunds, the stored report.

A day is reconciled per merchant (each has its own trade bill): an order is paid to the
merchant it names, or to the tenant's default when it names none (`Merchant.covers`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.pay_repos import (
    PayAccountRepo, PayCheckRepo, ReconciliationRepo, paid_between, payment_of, refund_of, refunds_settled_between,
)
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Merchant:
    """An enabled merchant of a tenant, as the reconciliation sees it."""

    tenant_id: int
    id: int
    mch_id: str
    is_default: bool

    @property
    def covers(self) -> tuple[int, ...]:
        """The orders' pay_account_id values paid to it (0: orders naming no merchant)."""
        return (self.id, 0) if self.is_default else (self.id,)


async def overdue_payments(uow: UnitOfWork, gateways: tuple[str, ...], older_than: datetime, newer_than: datetime,
                           limit: int) -> list[tuple[int, str, str, int, int]]:
    """Unpaid payments at a real gateway past the notify window: (tenant, out_trade_no, the
    order's status, its channel account, its merchant)."""
    rows = await PayCheckRepo(uow.session).open_payments(gateways, older_than, newer_than, limit)
    return [(p.tenant_id, p.out_trade_no, o.status, o.channel_account_id or 0, o.pay_account_id or 0)
            for p, o in rows]


async def note_check(uow: UnitOfWork, tenant: int, out_trade_no: str, state: str, *, final: bool,
                     now: datetime) -> None:
    await PayCheckRepo(uow.session).note(tenant, out_trade_no, state, final=final, now=now)


async def merchants(uow: UnitOfWork, tenant: int | None = None) -> list[Merchant]:
    """The enabled merchants (of `tenant`, or of every tenant), each tenant's default first."""
    return [Merchant(r.tenant_id, r.id, r.mch_id, bool(r.is_default))
            for r in await PayAccountRepo(uow.session).enabled_merchants(tenant)]


async def day_records(uow: UnitOfWork, m: Merchant, start: datetime, end: datetime
                      ) -> tuple[list[Any], list[Any], list[Any]]:
    """The merchant's (payments paid, refunds settled, payments created or paid) within [start, end)."""
    return (await paid_between(uow.session, m.tenant_id, start, end, m.covers),
            await refunds_settled_between(uow.session, m.tenant_id, start, end, m.covers),
            await PayCheckRepo(uow.session).payments_between(m.tenant_id, start, end, m.covers))


async def merchant_payment(uow: UnitOfWork, m: Merchant, out_trade_no: str) -> Any:
    """A payment of the merchant's (any day), or None."""
    return await payment_of(uow.session, m.tenant_id, out_trade_no, m.covers)


async def merchant_refund(uow: UnitOfWork, m: Merchant, out_refund_no: str) -> Any:
    """A refund of the merchant's (any day), or None."""
    return await refund_of(uow.session, m.tenant_id, out_refund_no, m.covers)


async def save_report(uow: UnitOfWork, m: Merchant, bill_date: str, *, status: str, checked: int,
                      mismatches: list[dict[str, Any]], now: datetime) -> None:
    await ReconciliationRepo(uow.session).save(m.tenant_id, m.id, bill_date, status=status, checked=checked,
                                               mismatches=mismatches, now=now)


async def unreconciled(uow: UnitOfWork, bill_date: str) -> list[Merchant]:
    """The enabled merchants (of every tenant) whose `bill_date` has no report yet."""
    repo = ReconciliationRepo(uow.session)
    return [m for m in await merchants(uow) if await repo.get(m.tenant_id, m.id, bill_date) is None]
