"""A worker serving many tenants keeps at most `max_tenants` search indexes and
recommendation models in memory: the least recently used is dropped and rebuilt from the
database on its tenant's next request, with the same answers. Both backends."""

from __future__ import annotations

import pytest

from social_mall_intelligence.lru import Lru
from social_mall_intelligence.recommendations import Recommender, retrain
from social_mall_intelligence.search import IndexedSearch
from storage.models import Category, Product, Sku
from tests.fakes.console_kit import make_tenant, paid_order

SHOPS = {"evict_a": "法式碎花连衣裙", "evict_b": "赣南脐橙", "evict_c": "不锈钢保温杯"}


async def shops(mall) -> dict[str, tuple[int, int]]:
    """Three tenants with one product each: code → (tenant, sku)."""
    out = {}
    for code, title in SHOPS.items():
        tenant = await make_tenant(mall.svc.uows, code)
        async with mall.svc.uows() as uow:
            cat = Category(tenant_id=tenant, name="全部", sort=1)
            await uow.catalog.add(cat)
            p = Product(tenant_id=tenant, category_id=cat.id, title=title, subtitle="", description="", image="")
            await uow.catalog.add(p)
            sku = Sku(tenant_id=tenant, product_id=p.id, spec="标准", price_fen=1000, stock=9)
            await uow.catalog.add(sku)
            await uow.commit()
            out[code] = (tenant, sku.id)
    return out


async def test_search_indexes_beyond_the_cap_are_evicted_and_rebuilt_on_demand(mall):
    t = {code: tenant for code, (tenant, _) in (await shops(mall)).items()}
    provider = IndexedSearch(max_tenants=2)

    async def hits(code: str, q: str) -> int:
        async with mall.svc.uows() as uow:
            return (await provider.search(uow, t[code], q, offset=0, limit=5)).total

    assert await hits("evict_a", "lyq") == 1 and await hits("evict_b", "连衣裙") == 0
    assert await hits("evict_b", "脐橙") == 1 and provider.builds == 2
    assert await hits("evict_a", "连衣裙") == 1 and provider.builds == 2        # kept: no rebuild
    assert await hits("evict_c", "bwb") == 1 and provider.builds == 3           # over the cap: b (least recent) goes
    assert t["evict_b"] not in provider._entries and t["evict_a"] in provider._entries
    assert await hits("evict_b", "qicheng") == 1 and provider.builds == 4       # rebuilt on demand, same answer
    assert t["evict_a"] not in provider._entries and len(provider._entries) == 2
    assert len(provider._locks) <= 2 + 1


async def test_recommendation_models_beyond_the_cap_are_evicted_and_reloaded(mall):
    s = await shops(mall)
    for code, (tenant, sku) in s.items():
        await paid_order(mall.svc.uows, tenant, f"oBuyer_{code}_00000001", sku_id=sku)
        await mall.settle()   # the order.paid subscriber records the purchase
        async with mall.svc.uows() as uow:
            await retrain(uow, tenant, mall.svc.clock())
            await uow.commit()
    rec = Recommender(max_tenants=2)

    async def top(code: str) -> list[int]:
        tenant = s[code][0]
        async with mall.svc.uows() as uow:
            ids = (await rec.for_member(uow, tenant, 0, 3)).ids
            loaded = await rec.model(uow, tenant)
            await uow.commit()
        assert loaded.model.popular, code
        return ids

    first = {code: await top(code) for code in ("evict_a", "evict_b")}
    assert rec.loads == 2
    await top("evict_a")
    assert rec.loads == 2
    await top("evict_c")
    assert rec.loads == 3 and len(rec._models) == 2 and s["evict_b"][0] not in rec._models
    assert await top("evict_b") == first["evict_b"] and rec.loads == 4


def test_the_lru_keeps_the_most_recently_used():
    lru: Lru[str, int] = Lru(2)
    assert lru.put("a", 1) == [] and lru.put("b", 2) == []
    assert lru.get("a") == 1
    assert lru.put("c", 3) == ["b"] and lru.evictions == 1
    assert lru.get("b") is None and len(lru) == 2
    with pytest.raises(ValueError):
        Lru(0)
