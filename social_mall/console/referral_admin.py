"""Console side of referral (分销): distributors with their level and balance, withdrawal
decisions, the commission list and its CSV. Decisions go through
social_mall.referral.service (conditional transitions, ledger, audit, payout event)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from social_mall.console import rules
from social_mall.referral import service as ref
from social_mall.referral.rules import CommissionStatus, DistributorStatus, WithdrawalStatus
from social_mall.views import Page
from storage.console_modules_repos import ConsoleModulesRepo
from storage.uow import UnitOfWork

COMMISSION_STATUSES = tuple(s.value for s in CommissionStatus)
CSV_HEADER = ("佣金ID", "订单号", "分销员ID", "层级", "计佣基数", "佣金", "已冲回", "净额", "状态", "时间")


@dataclass(frozen=True)
class DistributorRow:
    d: ref.DistributorView
    level_name: str


async def distributors(uow: UnitOfWork, tenant: int) -> tuple[tuple[DistributorRow, ...], tuple[DistributorRow, ...]]:
    """(pending applications, everyone else)"""
    levels = {lv.id: lv.name for lv in await ref.repo(uow).levels(tenant)}
    rows = tuple(DistributorRow(d, levels.get(d.level_id, "默认") if d.level_id else "默认")
                 for d in await ref.list_distributors(uow, tenant))
    pending = tuple(r for r in rows if r.d.status == DistributorStatus.PENDING)
    return pending, tuple(r for r in rows if r.d.status != DistributorStatus.PENDING)


async def withdrawals(uow: UnitOfWork, tenant: int) -> tuple[tuple[ref.WithdrawalView, ...],
                                                              tuple[ref.WithdrawalView, ...]]:
    """(pending, decided)"""
    every = await ref.list_withdrawals(uow, tenant)
    pending = tuple(w for w in every if w.status == WithdrawalStatus.REQUESTED)
    return pending, tuple(w for w in every if w.status != WithdrawalStatus.REQUESTED)


def commission_status(value: str) -> str | None:
    return value if value in COMMISSION_STATUSES else None


async def commissions(uow: UnitOfWork, tenant: int, status: str | None, *, page: int, per_page: int = 50
                      ) -> Page[ref.CommissionView]:
    rows, total = await ConsoleModulesRepo(uow.session).commissions(tenant, status=status,
                                                                    offset=(page - 1) * per_page, limit=per_page)
    return Page(tuple(ref.commission_view(c) for c in rows), total, page, per_page)


async def export_rows(uow: UnitOfWork, tenant: int, status: str | None, *, batch: int = 500
                      ) -> AsyncIterator[list[str]]:
    """Rows for the commissions CSV, read in keyset batches so memory stays flat."""
    repo = ConsoleModulesRepo(uow.session)
    yield list(CSV_HEADER)
    after = 0
    while True:
        rows = await repo.commissions_after(tenant, after, batch, status=status)
        if not rows:
            return
        out = [[rules.csv_cell(v) for v in (
            c.id, c.order_no, c.distributor_id, c.level, rules.yuan_plain(c.base_fen), rules.yuan_plain(c.amount_fen),
            rules.yuan_plain(c.reversed_fen), rules.yuan_plain(c.amount_fen - c.reversed_fen), c.status,
            c.created_at.astimezone(rules.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
        )] for c in rows]
        after = rows[-1].id
        await uow.rollback()  # end the read transaction before the rows go out over the network
        for row in out:
            yield row
