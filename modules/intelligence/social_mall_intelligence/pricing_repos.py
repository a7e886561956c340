"""Dynamic pricing's SQL (the only pricing file that builds queries): rules, changes and
tests of the module's own tables, and the reads of the shelf and orders the rules need.

Demand: product views (the module's own hourly counters, `intel_view_hours`, filled from
the core's activity sink by views.py), cart adds (`cart_items.created_at`, a member's first
add of a SKU) and order lines of orders placed (any status but cancelled)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from social_mall_intelligence.models import PriceChange, PriceRule, PriceTest, ViewHour
from storage.groupbuy_models import GroupbuyCampaign, GroupbuySku
from storage.models import AuditEntry, CartItem, Order, OrderLine, Product, Sku

PAID = ("paid", "shipped", "completed", "refund_requested", "refunded")
UNPAID = "pending_payment"
CANCELLED = "cancelled"


class PricingRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---------------------------------------------------------------- rules
    async def rules(self, tenant: int, *, enabled_only: bool = False) -> list[PriceRule]:
        stmt = select(PriceRule).where(PriceRule.tenant_id == tenant).order_by(PriceRule.id)
        if enabled_only:
            stmt = stmt.where(PriceRule.enabled.is_(True))
        return list((await self.session.scalars(stmt)).all())

    async def rule(self, tenant: int, rule_id: int) -> PriceRule | None:
        return await self.session.scalar(select(PriceRule).where(PriceRule.tenant_id == tenant, PriceRule.id == rule_id))

    async def rule_of_sku(self, tenant: int, sku_id: int) -> PriceRule | None:
        return await self.session.scalar(select(PriceRule).where(PriceRule.tenant_id == tenant, PriceRule.sku_id == sku_id))

    async def tenants_with_rules(self) -> list[int]:
        stmt = select(PriceRule.tenant_id).where(PriceRule.enabled.is_(True)).distinct()
        return list((await self.session.scalars(stmt)).all())

    async def set_enabled(self, tenant: int, rule_id: int, enabled: bool, now: datetime) -> bool:
        stmt = (update(PriceRule).where(PriceRule.tenant_id == tenant, PriceRule.id == rule_id)
                .values(enabled=enabled, updated_at=now))
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- the shelf
    async def sku(self, tenant: int, sku_id: int) -> tuple[Sku, Product] | None:
        row = (await self.session.execute(
            select(Sku, Product).join(Product, Product.id == Sku.product_id)
            .where(Sku.tenant_id == tenant, Sku.id == sku_id))).first()
        return (row[0], row[1]) if row else None

    async def skus(self, tenant: int, sku_ids: Sequence[int]) -> dict[int, tuple[str, str, int, int, int | None]]:
        """sku id → (title, spec, price fen, stock, cost fen or None)."""
        if not sku_ids:
            return {}
        rows = await self.session.execute(
            select(Sku.id, Product.title, Sku.spec, Sku.price_fen, Sku.stock, Sku.cost_fen)
            .join(Product, Product.id == Sku.product_id).where(Sku.tenant_id == tenant, Sku.id.in_(list(sku_ids))))
        return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows.all()}

    async def product_skus(self, tenant: int, product_id: int) -> list[int]:
        """The on-shelf SKUs of the tenant's product, by id."""
        return [int(s) for s in (await self.session.scalars(select(Sku.id).where(
            Sku.tenant_id == tenant, Sku.product_id == product_id, Sku.on_shelf.is_(True)).order_by(Sku.id))).all()]

    async def costs_to_move(self, tenant: int) -> list[tuple[int, int, int]]:
        """(rule id, sku id, cost) of rules saved before costs moved to SKUs, not moved yet."""
        rows = await self.session.execute(select(PriceRule.id, PriceRule.sku_id, PriceRule.cost_fen).where(
            PriceRule.tenant_id == tenant, PriceRule.cost_moved.is_(False)).order_by(PriceRule.id))
        return [(int(a), int(b), int(c)) for a, b, c in rows.all()]

    async def move_cost(self, tenant: int, rule_id: int, sku_id: int, cost_fen: int) -> bool:
        """The rule's cost to its SKU if the SKU has none (True: written); the rule marked."""
        done = await self.session.execute(update(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id,
                                                            Sku.cost_fen.is_(None)).values(cost_fen=cost_fen))
        await self.session.execute(update(PriceRule).where(PriceRule.tenant_id == tenant, PriceRule.id == rule_id)
                                   .values(cost_moved=True))
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def set_cost(self, tenant: int, sku_id: int, cost_fen: int) -> None:
        await self.session.execute(update(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id)
                                   .values(cost_fen=cost_fen))

    async def set_price(self, tenant: int, sku_id: int, before: int, after: int) -> bool:
        """One conditional UPDATE: only if the price is still `before` (a merchant's edit
        or another worker's step meanwhile wins; this one is dropped)."""
        stmt = (update(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id, Sku.price_fen == before)
                .values(price_fen=after))
        return bool((await self.session.execute(stmt)).rowcount == 1)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- signals
    async def views_since(self, tenant: int, product_id: int, since: datetime) -> int:
        """Views of the product in the hours that began at or after `since`'s hour."""
        if not product_id:
            return 0
        stmt = (select(func.coalesce(func.sum(ViewHour.views), 0))
                .where(ViewHour.tenant_id == tenant, ViewHour.product_id == product_id,
                       ViewHour.hour >= since.replace(minute=0, second=0, microsecond=0)))
        return int(await self.session.scalar(stmt) or 0)

    async def views_by_hour(self, tenant: int, product_ids: Collection[int],
                            since: datetime) -> dict[tuple[int, datetime], int]:
        """(product, hour) → views since."""
        if not product_ids:
            return {}
        rows = await self.session.execute(
            select(ViewHour.product_id, ViewHour.hour, ViewHour.views)
            .where(ViewHour.tenant_id == tenant, ViewHour.product_id.in_(list(product_ids)), ViewHour.hour >= since))
        return {(p, h): int(n) for p, h, n in rows.all()}

    async def products_of(self, tenant: int, sku_ids: Collection[int]) -> dict[int, int]:
        """sku → its product."""
        if not sku_ids:
            return {}
        rows = await self.session.execute(select(Sku.id, Sku.product_id)
                                          .where(Sku.tenant_id == tenant, Sku.id.in_(list(sku_ids))))
        return {s: p for s, p in rows.all()}

    async def units_since(self, tenant: int, sku_id: int, since: datetime) -> int:
        stmt = (select(func.coalesce(func.sum(OrderLine.qty), 0)).join(Order, Order.id == OrderLine.order_id)
                .where(OrderLine.tenant_id == tenant, OrderLine.sku_id == sku_id, Order.created_at >= since,
                       Order.status != CANCELLED))
        return int(await self.session.scalar(stmt) or 0)

    async def carts_since(self, tenant: int, sku_id: int, since: datetime) -> int:
        stmt = select(func.count()).select_from(CartItem).where(
            CartItem.tenant_id == tenant, CartItem.sku_id == sku_id, CartItem.created_at >= since)
        return int(await self.session.scalar(stmt) or 0)

    async def in_unpaid_order(self, tenant: int, sku_id: int) -> bool:
        stmt = (select(OrderLine.id).join(Order, Order.id == OrderLine.order_id)
                .where(OrderLine.tenant_id == tenant, OrderLine.sku_id == sku_id, Order.status == UNPAID).limit(1))
        return await self.session.scalar(stmt) is not None

    async def in_group_buy(self, tenant: int, sku_id: int, now: datetime) -> bool:
        stmt = (select(GroupbuySku.id).join(GroupbuyCampaign, GroupbuyCampaign.id == GroupbuySku.campaign_id)
                .where(GroupbuySku.tenant_id == tenant, GroupbuySku.sku_id == sku_id,
                       GroupbuyCampaign.active.is_(True), GroupbuyCampaign.starts_at <= now,
                       GroupbuyCampaign.ends_at > now).limit(1))
        return await self.session.scalar(stmt) is not None

    # ---------------------------------------------------------------- changes
    async def changed_in(self, tenant: int, sku_id: int, bucket: int) -> bool:
        stmt = select(PriceChange.id).where(PriceChange.tenant_id == tenant, PriceChange.sku_id == sku_id,
                                            PriceChange.bucket == bucket)
        return await self.session.scalar(stmt) is not None

    async def day_open(self, tenant: int, sku_id: int, since: datetime) -> int | None:
        """The price before the SKU's first change since `since` (None: no change)."""
        stmt = (select(PriceChange.before_fen).where(PriceChange.tenant_id == tenant, PriceChange.sku_id == sku_id,
                                                     PriceChange.at >= since)
                .order_by(PriceChange.at, PriceChange.id).limit(1))
        v = await self.session.scalar(stmt)
        return int(v) if v is not None else None

    def add_change(self, row: PriceChange) -> None:
        self.session.add(row)

    async def change(self, tenant: int, change_id: int) -> PriceChange | None:
        return await self.session.scalar(select(PriceChange).where(PriceChange.tenant_id == tenant,
                                                                   PriceChange.id == change_id))

    async def mark_rolled_back(self, tenant: int, change_id: int, now: datetime) -> bool:
        stmt = (update(PriceChange).where(PriceChange.tenant_id == tenant, PriceChange.id == change_id,
                                          PriceChange.rolled_back_at.is_(None))
                .values(rolled_back_at=now))
        return bool((await self.session.execute(stmt)).rowcount == 1)  # type: ignore[attr-defined]

    async def changes(self, tenant: int, *, limit: int = 50, sku_id: int | None = None) -> list[PriceChange]:
        stmt = select(PriceChange).where(PriceChange.tenant_id == tenant)
        if sku_id is not None:
            stmt = stmt.where(PriceChange.sku_id == sku_id)
        return list((await self.session.scalars(stmt.order_by(PriceChange.at.desc(), PriceChange.id.desc())
                                                .limit(limit))).all())

    async def changes_since(self, tenant: int, since: datetime) -> list[PriceChange]:
        stmt = (select(PriceChange).where(PriceChange.tenant_id == tenant, PriceChange.at >= since)
                .order_by(PriceChange.at, PriceChange.id))
        return list((await self.session.scalars(stmt)).all())

    # ---------------------------------------------------------------- history
    async def lines_since(self, tenant: int, since: datetime) -> list[tuple[int, datetime, int, int, str, int]]:
        """(sku, placed at, unit fen, qty, order status, member) of every line placed since."""
        rows = await self.session.execute(
            select(OrderLine.sku_id, Order.created_at, OrderLine.price_fen, OrderLine.qty, Order.status, Order.member_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.tenant_id == tenant, Order.created_at >= since))
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows.all()]

    async def merchant_prices_since(self, tenant: int, since: datetime) -> list[tuple[int, datetime, int, int]]:
        """(sku, at, before, after) of the merchant's price edits since (the core's audit
        entries `sku.update` whose price moved): the list price's history."""
        rows = await self.session.execute(
            select(AuditEntry.subject, AuditEntry.at, AuditEntry.before, AuditEntry.after)
            .where(AuditEntry.tenant_id == tenant, AuditEntry.action == "sku.update", AuditEntry.at >= since))
        out = []
        for subject, at, before, after in rows.all():
            sku = subject.removeprefix("sku:")
            b, a = (before or {}).get("price_fen"), (after or {}).get("price_fen")
            if sku.isdigit() and isinstance(b, int) and isinstance(a, int) and a != b:
                out.append((int(sku), at, b, a))
        return out

    async def carts_by_sku(self, tenant: int, since: datetime) -> dict[int, list[tuple[datetime, int]]]:
        """sku → [(added at, member)] of cart adds since."""
        out: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
        rows = await self.session.execute(
            select(CartItem.sku_id, CartItem.created_at, CartItem.member_id)
            .where(CartItem.tenant_id == tenant, CartItem.created_at >= since))
        for sku, at, member in rows.all():
            out[sku].append((at, member))
        return out

    # ---------------------------------------------------------------- A/B tests
    async def running_test(self, tenant: int) -> PriceTest | None:
        return await self.session.scalar(select(PriceTest).where(PriceTest.tenant_id == tenant,
                                                                 PriceTest.ended_at.is_(None))
                                         .order_by(PriceTest.id.desc()).limit(1))

    async def tests(self, tenant: int) -> list[PriceTest]:
        return list((await self.session.scalars(select(PriceTest).where(PriceTest.tenant_id == tenant)
                                                .order_by(PriceTest.id.desc()).limit(20))).all())

    async def test(self, tenant: int, test_id: int) -> PriceTest | None:
        return await self.session.scalar(select(PriceTest).where(PriceTest.tenant_id == tenant, PriceTest.id == test_id))

    async def end_test(self, tenant: int, test_id: int, now: datetime) -> bool:
        stmt = (update(PriceTest).where(PriceTest.tenant_id == tenant, PriceTest.id == test_id,
                                        PriceTest.ended_at.is_(None)).values(ended_at=now))
        return bool((await self.session.execute(stmt)).rowcount == 1)  # type: ignore[attr-defined]
