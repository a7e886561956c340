"""A segment's rules on what the core knows — bought a product, bought a category, a city in
a saved address, a loyalty level — count the members they should in 人群 (「计算人数」 and the
saved segment's count), a buyer through the signed endpoint and the sandbox payment beside a
follower who bought nothing."""

from __future__ import annotations

import re

from sqlalchemy import select

from storage.loyalty_models import LoyaltyAccount
from storage.models import Product
from tests.fakes.console_kit import login, make_admin

from ins_kit import chat_purchase, member_of, record, simulator

BUYER, LOOKER = "oIns_coreru_buyer_00000001", "oIns_coreru_looker_0000001"


async def test_rules_on_products_categories_cities_and_levels(mall):
    wx = simulator(mall)
    await chat_purchase(mall, wx, BUYER)                          # 赣南脐橙 to 深圳
    await wx.event(LOOKER, "subscribe")
    await record(mall)
    buyer = await member_of(mall, BUYER)
    async with mall.svc.uows() as uow:
        product, category = (await uow.session.execute(select(Product.id, Product.category_id).where(
            Product.title == "赣南脐橙"))).one()
        level = await uow.session.scalar(select(LoyaltyAccount.level).where(LoyaltyAccount.member_id == buyer))
    await make_admin(mall.svc.uows, "boss_coreru")
    csrf = await login(mall.client, "boss_coreru")

    async def count(**rule: str) -> int:
        page = await (await mall.client.post("/console/insights/segments", data={
            "_csrf": csrf, "name": "x", "action": "count", **rule})).text()
        return int(re.search(r"符合条件：(\d+) 人", page).group(1))

    assert await count(product=str(product)) == 1
    assert await count(product=str(product + 10_000)) == 0
    assert await count(category=str(category)) == 1
    assert await count(category=str(category), city="深圳") == 1
    assert await count(city="深圳") == 1 and await count(city="成都") == 0
    assert await count(city="深圳", acq="organic", channel="mp") == 1
    assert level == "普通会员" and await count(level=level) == 1          # the looker has no loyalty account yet
    assert await count(level="没有这个等级") == 0
    saved = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "深圳的脐橙买家", "product": str(product), "city": "深圳", "action": "save"},
        allow_redirects=False)
    assert saved.status == 303
    page = await (await mall.client.get("/console/insights/segments")).text()
    row = page.split("深圳的脐橙买家", 1)[1].split("</tr>", 1)[0]
    assert f"买过商品 #{product}" in row and "城市：深圳（收货地址或发来的位置）" in row and '<td class="num">1</td>' in row
