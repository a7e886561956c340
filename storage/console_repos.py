"""SQL for the admin console and the JSON API. Every query takes the tenant first and
filters by it; the only unscoped reads are the super-admin's tenant list and the lookups
that *find* an admin (by username at login, by token hash for the API)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.console_models import ApiToken
from storage.models import (
    Admin,
    AuditEntry,
    Category,
    Member,
    MemberIdentity,
    MemberTagLink,
    Order,
    OutboxEvent,
    Product,
    Refund,
    Sku,
    Tenant,
)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _like(text: str) -> str:
    return f"%{text.replace('%', '').replace('_', '').strip()}%"


def _refund_failed(tenant: int) -> tuple[Any, ...]:
    """An order a refund failed for, paid money not all returned, and no refund in flight:
    the merchant's to-do (request the refund again, or settle it by hand)."""
    def refunds(*statuses: str) -> Any:
        return select(Refund.id).where(Refund.tenant_id == tenant, Refund.order_id == Order.id,
                                       Refund.status.in_(statuses)).exists()
    return refunds("failed"), ~refunds("pending", "processing"), Order.refunded_fen < Order.paid_fen


class ConsoleRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _page(self, stmt: Select[Any], order: Sequence[Any], offset: int, limit: int) -> tuple[list[Any], int]:
        total = await self.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        rows = (await self.session.scalars(stmt.order_by(*order).offset(offset).limit(limit))).all()
        return list(rows), int(total or 0)

    # -- admins ----------------------------------------------------------------------
    async def admin_by_username(self, username: str) -> Admin | None:
        stmt = select(Admin).where(Admin.username == username)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def admin(self, admin_id: int) -> Admin | None:
        stmt = select(Admin).where(Admin.id == admin_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def tenant_admin(self, tenant: int, admin_id: int) -> Admin | None:
        stmt = select(Admin).where(Admin.tenant_id == tenant, Admin.id == admin_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def admins(self, tenant: int) -> list[Admin]:
        stmt = select(Admin).where(Admin.tenant_id == tenant).order_by(Admin.id)
        return list((await self.session.scalars(stmt)).all())

    async def record_failure(self, admin_id: int) -> int:
        """One more failed login, counted in the database (every worker sees it)."""
        await self.session.execute(
            update(Admin).where(Admin.id == admin_id).values(failed_logins=Admin.failed_logins + 1)
        )
        return int(await self.session.scalar(select(Admin.failed_logins).where(Admin.id == admin_id)) or 0)

    async def lock(self, admin_id: int, until: datetime) -> None:
        await self.session.execute(
            update(Admin).where(Admin.id == admin_id).values(locked_until=until, failed_logins=0)
        )

    async def clear_failures(self, admin_id: int) -> None:
        await self.session.execute(
            update(Admin).where(Admin.id == admin_id).values(failed_logins=0, locked_until=None)
        )

    async def update_admin(self, tenant: int, admin_id: int, **values: object) -> bool:
        stmt = update(Admin).where(Admin.tenant_id == tenant, Admin.id == admin_id).values(**values)
        return _rowcount(await self.session.execute(stmt)) == 1

    async def change_credentials(self, tenant: int, admin_id: int, **values: object) -> bool:
        """Update the admin and move their credentials version on, in one UPDATE (which
        also takes the row lock that `lock_credentials` waits for)."""
        stmt = (update(Admin).where(Admin.tenant_id == tenant, Admin.id == admin_id)
                .values(cred_version=Admin.cred_version + 1, **values))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def lock_credentials(self, admin_id: int) -> tuple[int, datetime | None] | None:
        """(credentials version, disabled at) of the admin, row-locked until commit on
        PostgreSQL (SQLite transactions are serial already)."""
        stmt = select(Admin.cred_version, Admin.disabled_at).where(Admin.id == admin_id).with_for_update()
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (int(row[0]), row[1])

    async def set_password_hash(self, admin_id: int, password_hash: str) -> None:
        await self.session.execute(update(Admin).where(Admin.id == admin_id).values(password_hash=password_hash))

    # -- API tokens ------------------------------------------------------------------
    async def add_token(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        stmt = select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        return await self.session.scalar(stmt)

    async def tokens_for(self, admin_id: int) -> list[ApiToken]:
        stmt = (select(ApiToken).where(ApiToken.admin_id == admin_id, ApiToken.revoked_at.is_(None))
                .order_by(ApiToken.id))
        return list((await self.session.scalars(stmt)).all())

    async def revoke_token(self, admin_id: int, token_id: int, now: datetime) -> bool:
        stmt = (update(ApiToken)
                .where(ApiToken.admin_id == admin_id, ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def revoke_tokens_of(self, admin_id: int, now: datetime) -> int:
        stmt = (update(ApiToken).where(ApiToken.admin_id == admin_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now))
        return _rowcount(await self.session.execute(stmt))

    async def touch_token(self, token_id: int, now: datetime) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))

    # -- tenants (super-admin) -------------------------------------------------------
    async def tenants(self) -> list[Tenant]:
        return list((await self.session.scalars(select(Tenant).order_by(Tenant.id))).all())

    async def update_tenant(self, tenant: int, **values: object) -> bool:
        stmt = update(Tenant).where(Tenant.id == tenant).values(**values)
        return _rowcount(await self.session.execute(stmt)) == 1

    # -- catalog ---------------------------------------------------------------------
    async def products(
        self, tenant: int, *, keyword: str = "", category_id: int | None = None,
        on_shelf: bool | None = None, offset: int = 0, limit: int = 20,
    ) -> tuple[list[Product], int]:
        stmt = select(Product).where(Product.tenant_id == tenant)
        if keyword:
            stmt = stmt.where(or_(Product.title.like(_like(keyword)), Product.subtitle.like(_like(keyword))))
        if category_id is not None:
            stmt = stmt.where(Product.category_id == category_id)
        if on_shelf is not None:
            stmt = stmt.where(Product.on_shelf.is_(on_shelf))
        # category by category (in the categories' own order), then each category's order
        stmt = stmt.join(Category, Category.id == Product.category_id)
        return await self._page(stmt, (Category.sort, Category.id, Product.sort, Product.id), offset, limit)

    async def sku_summary(self, tenant: int, product_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
        """product id → (min price, max price, total stock) over all its SKUs."""
        if not product_ids:
            return {}
        stmt = (
            select(Sku.product_id, func.min(Sku.price_fen), func.max(Sku.price_fen), func.sum(Sku.stock))
            .where(Sku.tenant_id == tenant, Sku.product_id.in_(product_ids))
            .group_by(Sku.product_id)
        )
        return {pid: (int(lo), int(hi), int(st or 0)) for pid, lo, hi, st in (await self.session.execute(stmt)).all()}

    async def sku(self, tenant: int, sku_id: int) -> Sku | None:
        stmt = select(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def update_product(self, tenant: int, product_id: int, **values: object) -> bool:
        stmt = update(Product).where(Product.tenant_id == tenant, Product.id == product_id).values(**values)
        return _rowcount(await self.session.execute(stmt)) == 1

    async def update_sku(self, tenant: int, sku_id: int, **values: object) -> bool:
        stmt = update(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id).values(**values)
        return _rowcount(await self.session.execute(stmt)) == 1

    async def adjust_stock(self, tenant: int, sku_id: int, delta: int, cap: int) -> bool:
        """Add `delta` (may be negative) to the stock, never below zero and, when adding,
        never past `cap` (the total, whatever the deltas before it); orders reserving at
        the same moment keep their units (no read-modify-write)."""
        bound = Sku.stock + delta >= 0 if delta < 0 else Sku.stock + delta <= cap
        stmt = (update(Sku)
                .where(Sku.tenant_id == tenant, Sku.id == sku_id, bound)
                .values(stock=Sku.stock + delta))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def category_counts(self, tenant: int) -> dict[int, int]:
        stmt = (select(Product.category_id, func.count()).where(Product.tenant_id == tenant)
                .group_by(Product.category_id))
        return {cid: int(n) for cid, n in (await self.session.execute(stmt)).all()}

    async def update_category(self, tenant: int, category_id: int, **values: object) -> bool:
        stmt = update(Category).where(Category.tenant_id == tenant, Category.id == category_id).values(**values)
        return _rowcount(await self.session.execute(stmt)) == 1

    async def delete_empty_category(self, tenant: int, category_id: int) -> bool:
        used = select(Product.id).where(Product.tenant_id == tenant, Product.category_id == category_id)
        stmt = delete(Category).where(
            Category.tenant_id == tenant, Category.id == category_id, ~used.exists())
        return _rowcount(await self.session.execute(stmt)) == 1

    # -- orders ----------------------------------------------------------------------
    def _orders(
        self, tenant: int, *, status: str = "", query: str = "", member_id: int | None = None,
        since: datetime | None = None, until: datetime | None = None, refund_failed: bool = False,
    ) -> Select[Any]:
        stmt = select(Order).where(Order.tenant_id == tenant)
        if refund_failed:
            stmt = stmt.where(*_refund_failed(tenant))
        if status:
            stmt = stmt.where(Order.status == status)
        if query:
            stmt = stmt.where(or_(Order.order_no.like(_like(query)), Order.ship_name.like(_like(query)),
                                  Order.tracking_no == query.strip()))
        if member_id is not None:
            stmt = stmt.where(Order.member_id == member_id)
        if since is not None:
            stmt = stmt.where(Order.created_at >= since)
        if until is not None:
            stmt = stmt.where(Order.created_at < until)
        return stmt

    async def count_refund_failed(self, tenant: int) -> int:
        """Orders whose refund the gateway refused, with the money still not returned."""
        stmt = select(func.count()).select_from(Order).where(Order.tenant_id == tenant, *_refund_failed(tenant))
        return int(await self.session.scalar(stmt) or 0)

    async def orders(self, tenant: int, *, offset: int, limit: int, **filters: Any) -> tuple[list[Order], int]:
        return await self._page(self._orders(tenant, **filters), (Order.id.desc(),), offset, limit)

    async def orders_after(self, tenant: int, after_id: int, limit: int, **filters: Any) -> list[Order]:
        """Keyset pages for streaming exports (stable under concurrent inserts)."""
        stmt = self._orders(tenant, **filters).where(Order.id > after_id).order_by(Order.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    # -- members ---------------------------------------------------------------------
    async def members(self, tenant: int, *, query: str = "", member_id: int | None = None,
                      tag_ids: Sequence[int] = (), offset: int = 0, limit: int = 20) -> tuple[list[Member], int]:
        """A page of the tenant's members, newest first: matching `query` and holding every tag in `tag_ids`."""
        stmt = select(Member).where(Member.tenant_id == tenant)
        for tag_id in sorted(set(tag_ids)):
            stmt = stmt.where(Member.id.in_(select(MemberTagLink.member_id).where(
                MemberTagLink.tenant_id == tenant, MemberTagLink.tag_id == tag_id)))
        q = query.strip()
        if q:
            ident = select(MemberIdentity.member_id).where(
                MemberIdentity.tenant_id == tenant, MemberIdentity.external_id == q)
            conds = [Member.nickname.like(_like(q)), Member.id.in_(ident), Member.unionid == q]
            if member_id is not None:  # the query read as an id (social_mall.parsing.parse_id)
                conds.append(Member.id == member_id)
            stmt = stmt.where(or_(*conds))
        return await self._page(stmt, (Member.id.desc(),), offset, limit)

    async def member_order_stats(self, tenant: int, member_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """member id → (orders, fen paid)."""
        if not member_ids:
            return {}
        stmt = (select(Order.member_id, func.count(), func.coalesce(func.sum(Order.paid_fen), 0))
                .where(Order.tenant_id == tenant, Order.member_id.in_(member_ids)).group_by(Order.member_id))
        return {m: (int(n), int(f)) for m, n, f in (await self.session.execute(stmt)).all()}

    # -- audit -----------------------------------------------------------------------
    async def audit(
        self, tenant: int, *, actor: str = "", action: str = "", subject: str = "",
        since: datetime | None = None, until: datetime | None = None, offset: int = 0, limit: int = 50,
    ) -> tuple[list[AuditEntry], int]:
        stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant)
        if actor:
            stmt = stmt.where(AuditEntry.actor == actor)
        if action:
            stmt = stmt.where(AuditEntry.action.like(action.replace("%", "").replace("_", "\\_") + "%", escape="\\"))
        if subject:
            stmt = stmt.where(AuditEntry.subject == subject)
        if since is not None:
            stmt = stmt.where(AuditEntry.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEntry.at < until)
        return await self._page(stmt, (AuditEntry.id.desc(),), offset, limit)

    # -- dashboard -------------------------------------------------------------------
    async def orders_created(self, tenant: int, since: datetime) -> list[tuple[datetime, int]]:
        stmt = select(Order.created_at, Order.member_id).where(Order.tenant_id == tenant, Order.created_at >= since)
        return [(at, m) for at, m in (await self.session.execute(stmt)).all()]

    async def orders_paid(self, tenant: int, since: datetime) -> list[tuple[datetime, int, int]]:
        stmt = (select(Order.paid_at, Order.paid_fen, Order.member_id)
                .where(Order.tenant_id == tenant, Order.paid_at.is_not(None), Order.paid_at >= since))
        return [(at, fen, m) for at, fen, m in (await self.session.execute(stmt)).all() if at is not None]

    async def visits(self, tenant: int, since: datetime, topics: Sequence[str], limit: int = 50_000) -> list[int]:
        """Member ids of visit-like events (entries, sign-ups, orders) since `since`, read
        from the outbox, which keeps every emitted event as a record."""
        stmt = (select(OutboxEvent.payload)
                .where(OutboxEvent.tenant_id == tenant, OutboxEvent.topic.in_(topics),
                       OutboxEvent.created_at >= since)
                .limit(limit))
        out: list[int] = []
        for payload in (await self.session.scalars(stmt)).all():
            member = payload.get("member_id") if isinstance(payload, dict) else None
            if isinstance(member, int):
                out.append(member)
        return out
