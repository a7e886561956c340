"""What the pay module's jobs (handlers/pay_jobs.py: the active-query sweeper and the daily
reconciliation) read and write, over a unit of work: the payments to ask the gateway about,
the note of each answer, one day's payments and refunds, the stored report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.pay_repos import PayAccountRepo, PayCheckRepo, ReconciliationRepo, paid_between, refunds_settled_between
from storage.uow import UnitOfWork


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


async def day_records(uow: UnitOfWork, tenant: int, start: datetime, end: datetime
                      ) -> tuple[list[Any], list[Any], list[Any]]:
    """(payments paid, refunds settled, payments created or paid) within [start, end)."""
    return (await paid_between(uow.session, tenant, start, end),
            await refunds_settled_between(uow.session, tenant, start, end),
            await PayCheckRepo(uow.session).payments_between(tenant, start, end))


async def save_report(uow: UnitOfWork, tenant: int, bill_date: str, *, status: str, checked: int,
                      mismatches: list[dict[str, Any]], now: datetime) -> None:
    await ReconciliationRepo(uow.session).save(tenant, bill_date, status=status, checked=checked,
                                               mismatches=mismatches, now=now)


async def unreconciled_tenants(uow: UnitOfWork, bill_date: str) -> list[int]:
    """Tenants with an enabled merchant whose `bill_date` has no report yet."""
    repo = ReconciliationRepo(uow.session)
    return [t for t in await PayAccountRepo(uow.session).enabled_tenants()
            if await repo.get(t, bill_date) is None]
