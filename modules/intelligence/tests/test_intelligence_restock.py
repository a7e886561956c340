"""「该补货了」 as a segment: members whose consumable is due again (the merchant's cycle or
the nightly estimate) form the member group 「该补货了」 (any consumable, or by category),
which the merchant counts and targets in 精准推送's 人群 like any other group; a member
within the cycle, long lapsed, or who switched personalisation off (PIPL) is not in it."""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from social_mall_intelligence.models import CycleMark, Interaction
from social_mall_intelligence.restock import ANY, due_members
from storage.models import Product, Sku
from tests.fakes.console_kit import login, make_admin, paid_order

from intel_kit import add_fashion, say, simulator

UTC = timezone.utc


async def _bought(mall, tenant: int, openid: str, product: int, days_ago: float) -> int:
    async with mall.svc.uows() as uow:
        sku = int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == product)))
    await paid_order(mall.svc.uows, tenant, openid, sku_id=sku)
    await mall.settle()                           # order.paid → the purchase recorded
    async with mall.svc.uows() as uow:
        member = await uow.session.scalar(select(func.max(Interaction.member_id)).where(Interaction.product_id == product))
        await uow.session.execute(update(Interaction).where(Interaction.member_id == member,
                                                            Interaction.product_id == product)
                                  .values(at=datetime.now(UTC) - timedelta(days=days_ago)))
        await uow.commit()
    return int(member)


async def test_members_with_a_consumable_due_again_form_the_restock_group(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    tee, cardigan = ids["纯棉短袖T恤"], ids["针织开衫"]
    async with mall.svc.uows() as uow:             # the merchant's marks: a T-shirt every 30 days, a cardigan lasts
        uow.session.add_all([CycleMark(tenant_id=tenant, product_id=tee, consumable=True, days=30),
                             CycleMark(tenant_id=tenant, product_id=cardigan, consumable=False, days=0)])
        await uow.commit()
    due = await _bought(mall, tenant, "oRestock_due_000000000001", tee, 28)         # 90 % of 30 days passed
    fresh = await _bought(mall, tenant, "oRestock_fresh_0000000001", tee, 5)
    lapsed = await _bought(mall, tenant, "oRestock_lapsed_000000001", tee, 120)     # past 3 cycles: gone elsewhere
    durable = await _bought(mall, tenant, "oRestock_durable_00000001", cardigan, 60)
    private = await _bought(mall, tenant, "oRestock_private_00000001", tee, 29)
    await say(simulator(mall), "oRestock_private_00000001", "关闭个性化推荐")

    now = datetime.now(UTC)
    async with mall.svc.uows() as uow:
        assert await due_members(uow, tenant, now) == {due}
        cat = await uow.session.scalar(select(Product.category_id).where(Product.id == tee))
        assert await due_members(uow, tenant, now, int(cat)) == {due}
        assert await due_members(uow, tenant, now, int(cat) + 1000) == set()
        kind = mall.svc.registry.member_groups["restock"]
        assert await kind.members(uow, tenant, ANY) == {due}
        assert (ANY, "任意常购品") in await kind.options(uow, tenant)
        assert (int(cat), "女装类常购品") in await kind.options(uow, tenant)
    assert {fresh, lapsed, durable, private}.isdisjoint({due})

    if importlib.util.find_spec("social_mall_insights") is None:   # the segment page is the insights module's
        assert not os.environ.get("CI"), "CI: the insights module package is not installed"
        return
    await make_admin(mall.svc.uows, "restock_boss")
    csrf = await login(mall.client, "restock_boss")
    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "该补货了：任意常购品" in page and "该补货了：女装类常购品" in page
    counted = await (await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "T恤该补货", "action": "count", "group": "restock:0"})).text()
    assert "符合条件：1 人" in counted, counted[-600:]
