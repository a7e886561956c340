"""Costs moved from pricing rules to SKUs (the core's cost_0001, intel_0007): a database at
intel_0006 with a rule upgraded to the heads marks the rule as not moved; the pricing job
then gives each such rule's cost to its SKU when the SKU has none, once, audited; a SKU
with a cost of its own keeps it; a cost the merchant clears afterwards stays cleared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import MetaData, func, select, update

from social_mall_intelligence import pricing as P
from social_mall_intelligence.models import PriceRule
from storage.db import create_engine, migrate
from storage.models import AuditEntry, Sku
from tests.conftest import seed_row

from intel_kit import add_fashion


async def test_intel_0007_marks_the_rules_saved_before(fresh_backend):
    eng = create_engine(fresh_backend.db_url, schema=fresh_backend.schema)
    try:
        await migrate(eng, "intel_0006")

        def seed(conn) -> None:
            meta = MetaData()
            meta.reflect(conn, only=["tenants", "categories", "products", "skus", "intel_price_rules"])
            made = iter(range(1, 1000))

            def row(table: str, /, **values) -> int:
                return seed_row(conn, meta.tables[table], made, **values)

            tenant = row("tenants")
            product = row("products", tenant_id=tenant, category_id=row("categories", tenant_id=tenant))
            sku = row("skus", tenant_id=tenant, product_id=product, price_fen=3990)
            row("intel_price_rules", tenant_id=tenant, sku_id=sku, cost_fen=1850, params={})

        async with eng.begin() as conn:
            await conn.run_sync(seed)
        await migrate(eng)
        async with eng.connect() as conn:
            assert (await conn.execute(select(PriceRule.cost_moved, PriceRule.cost_fen))).all() == [(False, 1850)]
            assert (await conn.execute(select(Sku.cost_fen))).all() == [(None,)]
    finally:
        await eng.dispose()


async def test_the_job_moves_an_old_rules_cost_to_its_sku_once(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        a, b = [int(s) for s in (await uow.session.scalars(select(Sku.id).where(
            Sku.product_id == ids["法式碎花连衣裙"]).order_by(Sku.id).limit(2))).all()]
        now = datetime.now(timezone.utc)
        for sku in (a, b):
            await P.save_rule(uow, tenant, "admin:old", sku, {"cost": "50", "evening": "1"}, now)
        await uow.commit()
    async with mall.svc.uows() as uow:             # as intel_0007 leaves rules saved before: costs on the rules only
        await uow.session.execute(update(PriceRule).values(cost_moved=False, cost_fen=5_500))
        await uow.session.execute(update(Sku).where(Sku.id == a).values(cost_fen=None))
        await uow.session.execute(update(Sku).where(Sku.id == b).values(cost_fen=6_000))   # entered since: kept
        await uow.commit()

    async def costs() -> tuple[object, object, int]:
        async with mall.svc.uows() as uow:
            got = dict((await uow.session.execute(select(Sku.id, Sku.cost_fen).where(Sku.id.in_([a, b])))).all())
            n = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "sku.update", AuditEntry.actor.like("rule:%")))
        return got[a], got[b], int(n or 0)

    morning = (now + timedelta(days=1)).replace(hour=1)
    await P.run_all(mall.svc.uows, morning)
    assert await costs() == (5_500, 6_000, 1)
    async with mall.svc.uows() as uow:
        assert set((await uow.session.scalars(select(PriceRule.cost_moved))).all()) == {True}
        await uow.session.execute(update(Sku).where(Sku.id == a).values(cost_fen=None))   # the merchant clears it
        await uow.commit()
    await P.run_all(mall.svc.uows, morning + timedelta(seconds=P.STEP_SECONDS))
    assert await costs() == (None, 6_000, 1)
