"""The owner's approval of buyers' orders over their monthly budget (待审批).

A buyer's order that would pass its monthly limit is not placed: its lines, total and
destination become a request in a transaction of its own once the order's has rolled back
(the core's `uow.after_rollback`), pushed
to the company's owner; the buyer is told it waits. The owner lists them (「待审批」) and
decides (「同意 N」/「驳回 N」): a conditional UPDATE pending → approved/rejected decides
once; approving places the order for the buyer in the same transaction, counted against the
buyer's month beyond its limit (the owner allowed it), and pushes the order number to the
buyer, who pays as usual (or 「月结」). Audited; a repeated request (the same lines while one
is pending) is not filed twice.

Price: fixed when the buyer submits. Each line keeps the unit price the buyer confirmed (its
tier, price list or accepted quote as they were then); the owner is shown that total and
approving places the order at exactly those prices, whatever the price lists say since — the
owner approves what the buyer asked for, not a different bill. That holds for APPROVAL_DAYS
(7) days: a request older than that is not approved but expires (pending → expired, one
conditional UPDATE, audited, the buyer told to order again at today's prices), so a price
list changed weeks ago is never undercut by a forgotten request. A request filed before the
prices were kept (lines 「sku:qty」) is placed at today's prices, as it was."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from social_mall.members.service import add_address
from social_mall.views import OrderView
from social_mall_b2b.errors import ApprovalError
from social_mall_b2b.events import ApprovalDecided, ApprovalRequested
from social_mall_b2b.models import ApprovalRequest, Company
from social_mall_b2b.repos import B2bRepo
from storage.uow import UnitOfWork

PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"
OVERRIDE = "b2b.approved_over_budget"    # session.info: this order was approved over budget
APPROVAL_DAYS = 7                        # a request keeps its submitted prices this long


def encode(lines: Sequence[tuple[int, int, int]]) -> str:
    """(sku, qty, unit fen) lines as 「sku:qty:fen,…」 (sorted: a repeated request compares equal)."""
    return ",".join(f"{s}:{q}:{f}" for s, q, f in sorted(lines))


def decode(text: str) -> list[tuple[int, int, int | None]]:
    """The lines of `encode`; an older 「sku:qty」 line has no price (None: today's)."""
    out: list[tuple[int, int, int | None]] = []
    for part in (p.split(":") for p in text.split(",") if p):
        out.append((int(part[0]), int(part[1]), int(part[2]) if len(part) > 2 else None))
    return out


def expires_at(created_at: datetime) -> datetime:
    at = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=timezone.utc)
    return at + timedelta(days=APPROVAL_DAYS)


async def file_request(uow: UnitOfWork, tenant: int, company_id: int, order: OrderView, now: datetime) -> int:
    """The over-budget order as a request, in a transaction of its own (committed), run
    after the order's transaction rolled back (uow.after_rollback); its id."""
    assert uow.factory is not None
    lines = encode([(ln.sku_id, ln.qty, ln.price_fen) for ln in order.lines])
    async with uow.factory() as own:
        s = own.session
        same = (await s.execute(select(ApprovalRequest.id).where(
            ApprovalRequest.tenant_id == tenant, ApprovalRequest.member_id == order.member_id,
            ApprovalRequest.status == PENDING, ApprovalRequest.lines == lines))).scalar_one_or_none()
        if same is not None:
            return same
        req = ApprovalRequest(tenant_id=tenant, company_id=company_id, member_id=order.member_id, lines=lines,
                              total_fen=order.total_fen, ship_name=order.ship_name[:40],
                              ship_phone=order.ship_phone[:20], ship_address=order.ship_address[:200],
                              status=PENDING, created_at=now, account_id=order.channel_account_id or 0)
        s.add(req)
        await s.flush()
        owner = await s.scalar(select(Company.owner_member_id).where(Company.id == company_id))
        assert owner is not None
        own.emit(ApprovalRequested(tenant_id=tenant, member_id=owner, approval_id=req.id,
                                   buyer_id=order.member_id, total_fen=order.total_fen))
        own.audit(tenant, f"member:{order.member_id}", "b2b.approval_requested", f"approval:{req.id}",
                  after={"total_fen": order.total_fen, "lines": lines})
        await own.commit()
        return req.id


async def _owned(uow: UnitOfWork, tenant: int, owner: int) -> Company:
    company = await B2bRepo(uow.session).company_of_member(tenant, owner)
    if company is None or company.status != "approved":
        raise ApprovalError("not_owner")
    return company


async def pending(uow: UnitOfWork, tenant: int, owner: int) -> list[ApprovalRequest]:
    company = await _owned(uow, tenant, owner)
    return list((await uow.session.execute(select(ApprovalRequest).where(
        ApprovalRequest.tenant_id == tenant, ApprovalRequest.company_id == company.id,
        ApprovalRequest.status == PENDING).order_by(ApprovalRequest.id))).scalars().all())


async def decide(uow: UnitOfWork, tenant: int, owner: int, approval_id: int, *, approve: bool, now: datetime,
                 timeout: timedelta, channel: str = "mp") -> tuple[ApprovalRequest, OrderView | None]:
    """The owner's decision, once; approving places the order (its errors roll all back)."""
    from social_mall.orders.entrance import entered
    from social_mall.orders.service import place_order

    company = await _owned(uow, tenant, owner)
    s = uow.session
    req = (await s.execute(select(ApprovalRequest).where(
        ApprovalRequest.tenant_id == tenant, ApprovalRequest.id == approval_id,
        ApprovalRequest.company_id == company.id))).scalar_one_or_none()
    if req is None:
        raise ApprovalError("missing")
    if approve and now >= expires_at(req.created_at):
        return await _expire(uow, tenant, owner, req, now)
    res = await s.execute(update(ApprovalRequest).where(
        ApprovalRequest.id == req.id, ApprovalRequest.status == PENDING,
    ).values(status=APPROVED if approve else REJECTED, decided_at=now))
    if getattr(res, "rowcount", 0) != 1:
        raise ApprovalError("decided")
    order: OrderView | None = None
    if approve:
        address = await add_address(uow, tenant, req.member_id, req.ship_name, req.ship_phone, req.ship_address)
        lines = decode(req.lines)
        kept = {sku: fen for sku, _, fen in lines if fen is not None}   # the prices the buyer submitted
        s.info[OVERRIDE] = True
        try:
            with entered(req.account_id or None):   # the buyer's entrance, not the owner's
                order = await place_order(uow, tenant, req.member_id, [(sku, qty) for sku, qty, _ in lines],
                                          address_id=address.id, now=now, timeout=timeout, channel=channel,
                                          source=f"b2b:approval:{req.id}", unit_prices=kept or None)
        finally:
            s.info.pop(OVERRIDE, None)
        await s.execute(update(ApprovalRequest).where(ApprovalRequest.id == req.id).values(order_id=order.id))
    uow.emit(ApprovalDecided(tenant_id=tenant, member_id=req.member_id, approval_id=req.id, approved=approve,
                             order_no=order.order_no if order else "", total_fen=order.total_fen if order
                             else req.total_fen))
    uow.audit(tenant, f"member:{owner}", "b2b.approval_approved" if approve else "b2b.approval_rejected",
              f"approval:{req.id}", after={"order_id": order.id if order else None})
    await s.refresh(req)
    return req, order


async def _expire(uow: UnitOfWork, tenant: int, owner: int, req: ApprovalRequest,
                  now: datetime) -> tuple[ApprovalRequest, OrderView | None]:
    """Approved too late: the request expires (once), nothing is placed, the buyer is told."""
    s = uow.session
    res = await s.execute(update(ApprovalRequest).where(
        ApprovalRequest.id == req.id, ApprovalRequest.status == PENDING).values(status=EXPIRED, decided_at=now))
    if getattr(res, "rowcount", 0) != 1:
        raise ApprovalError("decided")
    uow.emit(ApprovalDecided(tenant_id=tenant, member_id=req.member_id, approval_id=req.id, approved=False,
                             order_no="", total_fen=req.total_fen, expired=True))
    uow.audit(tenant, f"member:{owner}", "b2b.approval_expired", f"approval:{req.id}",
              after={"days": APPROVAL_DAYS})
    await s.refresh(req)
    return req, None
