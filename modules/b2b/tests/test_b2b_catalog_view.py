"""What a business buyer and a consumer see while browsing in chat, at the same time, through
the signed endpoint: 「企业价」 in category lists and search results, on the card (with the
tiers) and in the cart, retail only for the consumer (the core's list-price and cart use of
the unit-price seam); and products sold to business accounts only (企业专供, the core's
visibility seam): the buyer lists, finds and opens them, the consumer never meets them (lists,
search, recommendations, card) and adding or ordering one is refused, nothing written."""

from __future__ import annotations

import re

from sqlalchemy import select

from social_mall_b2b.models import ExclusiveProduct
from storage.models import AuditEntry, CartItem, Order, Product, Sku

from b2b_kit import console, count, make_mall, say, simulator
from test_b2b_prices import ADDRESS, BUYER, SHOPPER, approved_company_with_prices, sku_of


async def open_category(wx, user: str, name: str) -> str:
    cats = await say(wx, user, "分类")
    n = re.search(rf"(\d+)\. ?{name}", cats).group(1)
    return await say(wx, user, n)


async def product_id(mall, title: str) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Product.id).where(Product.title == title))


async def test_buyer_sees_company_prices_in_lists_card_and_cart_a_consumer_retail(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")          # 500g, retail ¥29.90; the list: 22.00 from 10, 19.90 from 50
    await approved_company_with_prices(mall, wx, csrf, sku.id)
    await wx.event(SHOPPER, "subscribe")

    listed = await open_category(wx, BUYER, "休闲零食")
    assert "芒果干 企业价 ¥22.00起（零售 ¥29.90起）" in listed, listed
    assert "海苔脆 ¥19.90起" in listed            # no company price for it: retail, unmarked
    consumer = await open_category(wx, SHOPPER, "休闲零食")
    assert "芒果干 ¥29.90起" in consumer and "企业价" not in consumer, consumer

    # a search listing several products (the search seam's page), then the card with its tiers
    found = await say(wx, BUYER, "搜索 干")
    assert "企业价 ¥22.00起（零售 ¥29.90起）" in found, found
    assert "企业价" not in await say(wx, SHOPPER, "搜索 干")
    # a module's list (「猜你喜欢」) and a search's suggestions: one product a line
    for said in (await say(wx, BUYER, "猜你喜欢"), await say(wx, BUYER, "搜索 不存在的东西xyz")):
        assert len(re.findall(r"^\d+\. \S+ (企业价 )?¥", said, re.M)) >= 2, said
    await say(wx, BUYER, "取消")

    card = await say(wx, BUYER, "搜索 芒果干")
    assert card.startswith("芒果干 ¥22.00 · 企业价") and "50件起 ¥19.90" in card and "起订 12 件" in card

    # the cart shows the tier the quantity reaches, the retail price beside it
    await say(wx, BUYER, "x12")
    await say(wx, BUYER, "加购")
    cart = await say(wx, BUYER, "购物车")
    assert "芒果干 500g 企业价 ¥22.00 × 12（零售 ¥29.90）" in cart and "商品合计：¥264.00" in cart, cart
    assert "芒果干 500g 企业价 ¥19.90 × 60" in await say(wx, BUYER, "改 1 60")
    await say(wx, SHOPPER, "搜索 芒果干")
    await say(wx, SHOPPER, "x2")
    await say(wx, SHOPPER, "加购")
    cart = await say(wx, SHOPPER, "购物车")
    assert "芒果干 500g ¥29.90 × 2" in cart and "企业价" not in cart, cart


async def test_business_only_products_are_kept_from_consumers(backend, engine, tmp_path, fake_wechat,
                                                             aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")
    await approved_company_with_prices(mall, wx, csrf, sku.id)
    await wx.event(SHOPPER, "subscribe")
    only = await product_id(mall, "海苔脆")
    recommended = await say(wx, SHOPPER, "猜你喜欢")
    first = re.search(r"1\. (\S+) ", recommended).group(1)
    assert first != "海苔脆"
    # the consumer opened the card and the summary before the merchant marked it
    await say(wx, SHOPPER, "搜索 海苔脆")
    assert "请确认订单" in await say(wx, SHOPPER, "购买") + await say(wx, SHOPPER, ADDRESS)

    post = mall.client.post
    for pid in (only, await product_id(mall, first)):
        assert (await post("/console/b2b/exclusive", data={"_csrf": csrf, "product_id": str(pid),
                                                          "on": "1"})).status == 200
    page = await (await mall.client.get("/console/b2b/prices")).text()
    assert "海苔脆" in page and "企业专供" in page
    assert await count(mall, AuditEntry, AuditEntry.action == "b2b.exclusive_on") == 2

    # the consumer: refused at the summary it holds, nothing written
    async with mall.svc.uows() as uow:
        stock = await uow.session.scalar(select(Sku.stock).where(Sku.product_id == only))
    orders, carts = await count(mall, Order), await count(mall, CartItem)
    for word in ("加购", "确认"):
        refused = await say(wx, SHOPPER, word)
        assert "海苔脆" in refused and "企业采购专供" in refused, refused
    assert (await count(mall, Order), await count(mall, CartItem)) == (orders, carts)
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(Sku.stock).where(Sku.product_id == only)) == stock

    # ... and never meets it again: list (a full page, counted without it), search, card, recommendations
    consumer = await open_category(wx, SHOPPER, "休闲零食")
    assert "海苔脆" not in consumer and "共 4 件" in consumer, consumer
    missing = await say(wx, SHOPPER, "搜索 海苔脆")
    assert "没有找到" in missing and "海苔脆 ¥" not in missing and "儿童零食" not in missing, missing
    assert "海苔脆 ¥" not in await say(wx, SHOPPER, "搜索 海苔")
    assert first not in await say(wx, SHOPPER, "猜你喜欢")
    assert (await mall.client.get(f"/h5/product/demo/{only}")).status == 404     # the H5 page knows no member

    # the company's buyer sees it everywhere and buys it as any other
    listed = await open_category(wx, BUYER, "休闲零食")
    assert "海苔脆" in listed and "共 5 件" in listed
    card = await say(wx, BUYER, "搜索 海苔脆")
    assert card.startswith("海苔脆"), card
    await say(wx, BUYER, "购买")
    assert "请确认订单" in await say(wx, BUYER, ADDRESS)
    assert "订单号" in await say(wx, BUYER, "确认")
    assert await count(mall, Order) == orders + 1

    # unmarked: the consumer finds it again
    assert (await post("/console/b2b/exclusive", data={"_csrf": csrf, "product_id": str(only),
                                                      "on": "0"})).status == 200
    assert await count(mall, ExclusiveProduct) == 1
    assert "海苔脆" in await open_category(wx, SHOPPER, "休闲零食")
    assert (await mall.client.get(f"/h5/product/demo/{only}")).status == 200


async def test_a_list_page_costs_the_same_statements_for_one_product_or_five(backend, engine, tmp_path, fake_wechat,
                                                                            aiohttp_client):
    """The buyer's list prices and the hidden products are asked once for the whole page
    (batched), never per product: a page of one product and a page of five (six SKUs) cost
    the same statements, for the buyer and for the consumer (none of the module's at all)."""
    from sqlalchemy import event

    from storage.models import Category

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")
    await approved_company_with_prices(mall, wx, csrf, sku.id)
    await wx.event(SHOPPER, "subscribe")
    assert (await mall.client.post("/console/b2b/exclusive", data={
        "_csrf": csrf, "product_id": str(await product_id(mall, "黑巧克力")), "on": "1"})).status == 200
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        cat = Category(tenant_id=tenant.id, name="单品批发", sort=99)
        await uow.catalog.add(cat)
        p = Product(tenant_id=tenant.id, category_id=cat.id, title="整箱矿泉水", subtitle="", description="", image="")
        await uow.catalog.add(p)
        await uow.catalog.add(Sku(tenant_id=tenant.id, product_id=p.id, spec="24瓶", price_fen=3600, stock=50))
        await uow.commit()

    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(mall.svc.engine.sync_engine, "before_cursor_execute", seen)
    try:
        costs = {}
        for user in (BUYER, SHOPPER):
            for name in ("休闲零食", "单品批发"):
                cats = await say(wx, user, "分类")
                n = re.search(rf"(\d+)\. ?{name}", cats).group(1)
                await say(wx, user, n)           # warm: the worker's read cache holds what it may
                await say(wx, user, "分类")
                statements.clear()
                listed = await say(wx, user, n)
                # the seams' statements (the module's tables, the page's SKUs); other modules'
                # writes (a background flush of activity) may land in between
                costs[(user, name)] = [re.split(r"\s+WHERE", x)[0] for x in statements
                                       if "b2b_" in x or x.lstrip().startswith("SELECT skus.id")]
                assert ("企业价" in listed) == (user == BUYER and name == "休闲零食"), listed
    finally:
        event.remove(mall.svc.engine.sync_engine, "before_cursor_execute", seen)
    assert costs[(BUYER, "休闲零食")] == costs[(BUYER, "单品批发")], costs
    assert costs[(SHOPPER, "休闲零食")] == costs[(SHOPPER, "单品批发")], costs
    assert len(costs[(BUYER, "单品批发")]) <= 9, costs
    # a consumer's list page asks the module nothing once the worker knows it is no business
    # member and which products are business-only (accounts.business_member, the read cache)
    assert not [x for x in costs[(SHOPPER, "休闲零食")] if "b2b_" in x], costs
