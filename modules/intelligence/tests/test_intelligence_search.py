"""Chinese search end to end: signed WeChat messages into the real endpoint, the module's
search provider behind the shop's 「搜索」, on both backends."""

from __future__ import annotations

import pytest

from tests.fakes.console_kit import csrf_of, login, make_admin

from intel_kit import add_fashion, listed, say, simulator

USER = "oUser_intel_search_000000001"


@pytest.fixture
async def shop(mall):
    ids = await add_fashion(mall)
    return mall, ids


@pytest.mark.parametrize("words", ["搜 连衣裙", "搜索 lianyiqun", "搜 lyq", "搜 连衣群", "搜索 连衣裙"])
async def test_dress_is_found_by_word_pinyin_initials_and_typo(shop, words):
    mall, _ = shop
    reply = await say(simulator(mall), USER, words)
    assert sorted(listed(reply)) == ["法式碎花连衣裙", "蓝色牛仔连衣裙"], reply
    assert "共 2 件" in reply


async def test_colour_category_and_size_words_rank_the_product_with_all_three_first(shop):
    mall, _ = shop
    reply = await say(simulator(mall), USER, "搜 红色 裙子 L码")
    assert listed(reply)[0] == "法式碎花连衣裙", reply


async def test_one_hit_shows_the_card_and_buying_continues_as_before(shop):
    mall, _ = shop
    wx = simulator(mall)
    card = await say(wx, USER, "搜 bzq")   # 百褶裙 by its initials? no: 半身裙 is bsq; bzq is nothing
    assert "没有找到" in card
    card = await say(wx, USER, "搜 半身群")  # homophone typo, one hit: its card
    assert "高腰百褶半身裙" in card and "黑色 / S" in card, card
    summary = await say(wx, USER, "2 x2")
    assert "红色 / M" in summary and "x2" in summary or "×2" in summary, summary


async def test_no_hit_offers_categories_and_products_never_a_dead_end(shop):
    mall, _ = shop
    wx = simulator(mall)
    reply = await say(wx, USER, "搜 女士皮包")
    assert "没有找到" in reply and "女装" in reply, reply
    offered = listed(reply)
    assert offered, reply
    card = await say(wx, USER, "1")
    assert offered[0] in card, card


async def test_no_hit_offers_the_nearest_categorys_best_sellers_in_stock_first(shop):
    """「看看这些热卖」 lists what sells: the nearest category's products by distinct buyers
    (the nightly model), never one sold out, then the rest in the merchant's order."""
    from sqlalchemy import func, select, update

    from storage.models import Sku
    from tests.fakes.console_kit import paid_order

    mall, ids = shop
    tenant = (await mall.svc.tenant("demo")).id

    async def sku_of(title: str) -> int:
        async with mall.svc.uows() as uow:
            return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == ids[title])))

    for n in range(3):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_sugg_a_{n:08d}", sku_id=await sku_of("蓝色牛仔连衣裙"))
    for n in range(2):
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_sugg_b_{n:08d}", sku_id=await sku_of("针织开衫"))
    await paid_order(mall.svc.uows, tenant, "oBuyer_intel_sugg_c_00000000", sku_id=await sku_of("法式碎花连衣裙"))
    await mall.settle()
    async with mall.svc.uows() as uow:   # the merchant's first product sells out
        await uow.session.execute(update(Sku).where(Sku.product_id == ids["法式碎花连衣裙"]).values(stock=0))
        await uow.commit()
    await next(j for j in mall.svc.registry.jobs if j.name == "intel.retrain").run()

    wx = simulator(mall)
    reply = await say(wx, USER, "搜 女士皮包")
    assert "没有找到" in reply and "看看这些热卖" in reply and "女装" in reply, reply
    offered = listed(reply)
    assert offered[:4] == ["蓝色牛仔连衣裙", "针织开衫", "高腰百褶半身裙", "纯棉短袖T恤"], reply
    assert "法式碎花连衣裙" not in offered, reply
    card = await say(wx, USER, "1")
    assert "蓝色牛仔连衣裙" in card and "蓝色 / M" in card, card


async def test_a_console_edit_is_searchable_at_once_and_off_shelf_products_vanish(shop):
    mall, ids = shop
    wx = simulator(mall)
    assert "没有找到" in await say(wx, USER, "搜 旗袍")
    await make_admin(mall.svc.uows, "intel_owner")
    csrf = await login(mall.client, "intel_owner")
    pid = ids["针织开衫"]
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        cat_id = (await uow.catalog.product(tenant.id, pid)).category_id
    resp = await mall.client.post(f"/console/products/{pid}", data={
        "_csrf": csrf, "title": "改良旗袍开衫", "subtitle": "", "description": "", "category_id": str(cat_id),
        "sort": "0"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert "改良旗袍开衫" in await say(wx, USER, "搜 qipao")
    resp = await mall.client.post(f"/console/products/{ids['法式碎花连衣裙']}/shelf",
                                  data={"_csrf": await csrf_of(mall.client, f"/console/products/{pid}"), "on": "0"},
                                  allow_redirects=False)
    assert resp.status == 303
    reply = await say(wx, USER, "搜 连衣裙")
    assert "法式碎花连衣裙" not in reply and "蓝色牛仔连衣裙" in reply, reply


async def test_another_workers_edit_is_seen_after_the_recheck(shop):
    """An edit the process didn't make (another worker): the fingerprint, checked every
    `recheck` seconds of the provider's clock."""
    mall, ids = shop
    provider = mall.svc.registry.search
    now = [0.0]
    provider.clock = lambda: now[0]
    wx = simulator(mall)
    assert "没有找到" in await say(wx, USER, "搜 马甲")
    tenant = await mall.svc.tenant("demo")
    from sqlalchemy import update

    from storage.models import Product

    async with mall.svc.uows() as uow:   # a write this process's read cache doesn't hear of
        await uow.session.execute(update(Product).where(Product.id == ids["针织开衫"])
                                  .values(title="针织马甲背心").execution_options(stock_only=True))
        await uow.commit()
    assert "没有找到" in await say(wx, USER, "搜 马甲")   # within the recheck window: the old index
    now[0] += provider.recheck + 0.1
    assert "针织马甲背心" in await say(wx, USER, "搜 马甲")


async def test_another_workers_same_length_typo_fix_is_seen_after_the_recheck_on_postgresql(shop, backend):
    """The commonest title edit keeps its length (a typo: 连衣群 → 连衣裙; here 开衫 → 马甲).
    PostgreSQL (several workers, one catalog): the fingerprint's text hashes see it within the
    recheck. SQLite (the embedded default, one process): within the index's maximum age."""
    mall, ids = shop
    provider = mall.svc.registry.search
    now = [0.0]
    provider.clock = lambda: now[0]
    wx = simulator(mall)
    assert "没有找到" in await say(wx, USER, "搜 马甲")
    from sqlalchemy import update

    from storage.models import Product

    async with mall.svc.uows() as uow:   # another worker's edit: this process's read cache doesn't hear of it
        await uow.session.execute(update(Product).where(Product.id == ids["针织开衫"])
                                  .values(title="针织马甲").execution_options(stock_only=True))
        await uow.commit()
    now[0] += provider.recheck + 0.1
    reply = await say(wx, USER, "搜 马甲")
    if backend.name == "pg":
        assert "针织马甲" in reply, reply
    else:
        assert "没有找到" in reply, reply
        now[0] += provider.max_age
        assert "针织马甲" in await say(wx, USER, "搜 马甲")
