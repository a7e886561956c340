"""Buyers' monthly budgets (采购限额): the console sets a buyer's limit per month; every
order the buyer places counts against the month it is placed in (Shanghai), with one
conditional UPDATE in the order's transaction — `spent + total ≤ limit`, a new month
starting from zero — so two orders at once can never both pass it, and an order over it is
not placed: it waits for the company owner's approval (approvals.py), which places it
counted beyond the limit.
An unpaid order cancelled (by the buyer, an admin or the timeout) gives its amount back
once (the entry's `returned` flips with a conditional UPDATE), to the month it was
counted in. Owners and buyers without a limit are not limited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import case, select, update

from social_mall.errors import NotFoundError
from social_mall.views import OrderView
from social_mall_b2b.errors import ApprovalRequestedError, BudgetExceededError, InvalidApplicationError
from social_mall_b2b.models import BudgetEntry, BuyerBudget
from social_mall_b2b.repos import B2bRepo
from storage.uow import UnitOfWork

SHANGHAI = timezone(timedelta(hours=8))


def period_of(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


async def set_limit(uow: UnitOfWork, tenant: int, member: int, limit_fen: int, actor: str) -> None:
    """A buyer's monthly limit (only a member who joined a company as a buyer)."""
    if not 0 <= limit_fen <= 10**12:
        raise InvalidApplicationError("limit")
    if await B2bRepo(uow.session).membership(tenant, member) is None:
        raise NotFoundError("b2b_buyer", member)
    s = uow.session
    found = (await s.execute(select(BuyerBudget).where(BuyerBudget.tenant_id == tenant,
                                                       BuyerBudget.member_id == member))).scalar_one_or_none()
    before: dict[str, object] | None = None if found is None else {"limit_fen": found.limit_fen}
    if found is None:
        s.add(BuyerBudget(tenant_id=tenant, member_id=member, limit_fen=limit_fen, period="", spent_fen=0))
    else:
        found.limit_fen = limit_fen
    await s.flush()
    uow.audit(tenant, actor, "b2b.buyer_limit", f"member:{member}", before=before, after={"limit_fen": limit_fen})


async def count_order(uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> None:
    """The order against its buyer's budget (the pricer's `placed`): refused when over."""
    from social_mall_b2b.approvals import OVERRIDE, file_request

    s = uow.session
    period = period_of(now)
    this_month = case((BuyerBudget.period == period, BuyerBudget.spent_fen), else_=0)
    within = [] if s.info.get(OVERRIDE) else [this_month + order.total_fen <= BuyerBudget.limit_fen]
    res = await s.execute(update(BuyerBudget).where(
        BuyerBudget.tenant_id == tenant, BuyerBudget.member_id == order.member_id, *within,
    ).values(spent_fen=this_month + order.total_fen, period=period))
    if getattr(res, "rowcount", 0) != 1:
        budget = (await s.execute(select(BuyerBudget).where(
            BuyerBudget.tenant_id == tenant, BuyerBudget.member_id == order.member_id))).scalar_one_or_none()
        if budget is None:
            return                                    # no limit for this member
        used = budget.spent_fen if budget.period == period else 0
        if uow.factory is None:
            raise BudgetExceededError(budget.limit_fen, used, order.total_fen)
        refused = ApprovalRequestedError(0, budget.limit_fen, used, order.total_fen)
        company_id = await B2bRepo(s).membership(tenant, order.member_id)

        async def file() -> None:      # once this transaction (the order) is rolled back
            refused.approval_id = await file_request(uow, tenant, company_id or 0, order, now)

        uow.after_rollback(file)
        raise refused
    s.add(BudgetEntry(tenant_id=tenant, member_id=order.member_id, order_id=order.id, period=period,
                      amount_fen=order.total_fen, returned=False, created_at=now))
    await s.flush()


async def give_back(uow: UnitOfWork, tenant: int, order_id: int) -> bool:
    """A cancelled order's amount back to its month's budget, exactly once."""
    s = uow.session
    entry = (await s.execute(select(BudgetEntry).where(BudgetEntry.tenant_id == tenant,
                                                       BudgetEntry.order_id == order_id))).scalar_one_or_none()
    if entry is None:
        return False
    res = await s.execute(update(BudgetEntry).where(BudgetEntry.id == entry.id, BudgetEntry.returned.is_(False))
                          .values(returned=True))
    if getattr(res, "rowcount", 0) != 1:
        return False
    await s.execute(update(BuyerBudget).where(
        BuyerBudget.tenant_id == tenant, BuyerBudget.member_id == entry.member_id,
        BuyerBudget.period == entry.period, BuyerBudget.spent_fen >= entry.amount_fen,
    ).values(spent_fen=BuyerBudget.spent_fen - entry.amount_fen))
    uow.audit(tenant, "system", "b2b.budget_returned", f"order:{order_id}",
              after={"amount_fen": entry.amount_fen, "period": entry.period})
    return True


async def budgets(uow: UnitOfWork, tenant: int, now: datetime) -> dict[int, tuple[int, int]]:
    """member id → (limit, used this month)."""
    period = period_of(now)
    rows = (await uow.session.execute(select(BuyerBudget).where(BuyerBudget.tenant_id == tenant))).scalars().all()
    return {b.member_id: (b.limit_fen, b.spent_fen if b.period == period else 0) for b in rows}
