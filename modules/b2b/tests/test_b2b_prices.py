"""企业价 end to end: the console sets a customer group, a price list with quantity tiers
and a SKU's minimum and case pack; an approved company's member sees 「企业价」 on the
product card, is refused a quantity below the minimum or not a whole case (told the
nearest valid one, nothing written), and pays the tier price it confirmed through the
sandbox; a consumer at the same time sees and pays retail, with no minimum."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.catalog.service import list_products
from social_mall_b2b.models import Company, ListPrice, PriceListRow
from storage.models import AuditEntry, Order, Sku

from b2b_kit import (
    apply_in_chat, console, count, make_mall, pay_in_sandbox, say, simulator,
)

BUYER = "oUser_b2b_buyer_000000000001"
SHOPPER = "oUser_b2b_shopper_0000000001"
ADDRESS = "王小明 13912345678 上海市黄浦区南京东路1号"


async def sku_of(mall, keyword: str) -> Sku:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        product = (await list_products(uow, tenant.id, keyword=keyword)).items[0]
        return await uow.session.scalar(select(Sku).where(Sku.product_id == product.id))


async def approved_company_with_prices(mall, wx, csrf: str, sku_id: int) -> int:
    await wx.event(BUYER, "subscribe")
    await apply_in_chat(wx, BUYER)
    async with mall.svc.uows() as uow:
        c = await uow.session.scalar(select(Company))
    post = mall.client.post
    assert (await post(f"/console/b2b/companies/{c.id}/decide", data={"_csrf": csrf, "verdict": "approve"})).status == 200
    assert (await post("/console/b2b/groups", data={"_csrf": csrf, "name": "餐饮客户"})).status == 200
    page = await (await mall.client.get("/console/b2b/prices")).text()
    assert "餐饮客户" in page
    from social_mall_b2b.models import CustomerGroup

    async with mall.svc.uows() as uow:
        group = await uow.session.scalar(select(CustomerGroup))
    assert (await post(f"/console/b2b/companies/{c.id}/group",
                       data={"_csrf": csrf, "group_id": str(group.id)})).status == 200
    resp = await post("/console/b2b/lists", data={
        "_csrf": csrf, "name": "餐饮批发价", "kind": "override", "group_id": str(group.id),
        "tiers": f"{sku_id} 1 25\n{sku_id} 10 22.00\n{sku_id} 50 19.90", "active": "1"})
    assert resp.status == 200
    assert (await post("/console/b2b/terms", data={"_csrf": csrf, "sku_id": str(sku_id), "moq": "12",
                                                   "case_pack": "12"})).status == 200
    page = await (await mall.client.get("/console/b2b/prices")).text()
    assert "餐饮批发价" in page and "10 件起 ¥22.00" in page
    return c.id


async def test_business_member_sees_and_pays_tier_prices_a_consumer_retail(backend, engine, tmp_path, fake_wechat,
                                                                          aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")          # 500g, retail ¥29.90
    await approved_company_with_prices(mall, wx, csrf, sku.id)

    card = await say(wx, BUYER, "搜索 芒果干")
    # priced at the least it may order (12: the 10+ tier), the higher tiers and the rules listed
    assert card.startswith("芒果干 ¥22.00 · 企业价")
    assert "企业价 ¥22.00（零售 ¥29.90，50件起 ¥19.90，起订 12 件，按 12 件整箱订）" in card
    await wx.event(SHOPPER, "subscribe")
    retail_card = await say(wx, SHOPPER, "搜索 芒果干")
    assert "¥29.90" in retail_card and "企业价" not in retail_card and "起订" not in retail_card

    stock, orders = sku.stock, await count(mall, Order)     # the demo shop has a demo order
    for qty, words in ((5, "12 件起订"), (25, "不是整箱")):
        refused = await say(wx, BUYER, f"x{qty}")
        assert words in refused and f"回复「x{12 if qty == 5 else 24}」" in refused, refused
    assert await count(mall, Order) == orders
    summary = await say(wx, BUYER, "x24")
    assert "企业价 ¥22.00 × 24 = ¥528.00" in summary and "应付：¥528.00" in summary, summary
    summary = await say(wx, BUYER, ADDRESS)
    assert "请确认订单" in summary and "应付：¥528.00" in summary
    # changing the quantity re-prices the tier at once; a bad one is refused in the summary too
    refused = await say(wx, BUYER, "x30")
    assert "不是整箱" in refused and "回复「x36」" in refused and "回复「确认」下单" in refused
    assert "企业价 ¥19.90 × 60 = ¥1194.00" in await say(wx, BUYER, "x60")
    assert "企业价 ¥22.00 × 24 = ¥528.00" in await say(wx, BUYER, "x24")
    order_no = await pay_in_sandbox(mall, await say(wx, BUYER, "确认"))
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        assert (o.status, o.goods_fen, o.discount_fen, o.total_fen, o.paid_fen) == ("paid", 52800, 0, 52800, 52800)
        assert await uow.catalog.stock(o.tenant_id, sku.id) == stock - 24

    # the consumer: retail, one piece is fine, shipping as always
    await say(wx, SHOPPER, "x1")
    summary = await say(wx, SHOPPER, ADDRESS)
    assert "¥29.90 × 1" in summary and "企业价" not in summary
    order_no = await pay_in_sandbox(mall, await say(wx, SHOPPER, "确认"))
    async with mall.svc.uows() as uow:
        o = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        assert (o.goods_fen, o.paid_fen) == (2990, o.total_fen) and o.total_fen >= 2990


async def test_bad_price_list_forms_are_refused_and_write_nothing(backend, engine, tmp_path, fake_wechat,
                                                                 aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")
    post = mall.client.post
    assert (await post("/console/b2b/groups", data={"_csrf": csrf, "name": "餐饮客户"})).status == 200
    from social_mall_b2b.models import CustomerGroup

    async with mall.svc.uows() as uow:
        group = (await uow.session.scalar(select(CustomerGroup))).id
    before_audit = await count(mall, AuditEntry)
    for form, problem in (
        ({"tiers": f"{sku.id} 1 abc"}, "阶梯价格式不对"),
        ({"tiers": f"{sku.id} 1 25\n{sku.id} 1 24"}, "阶梯价格式不对"),
        ({"tiers": "999999999 1 25"}, "没有找到"),
        ({"percent_off": "100"}, "折扣"),
        ({"group_id": ""}, "二选一"),
        ({"kind": "free"}, "类型不对"),
        ({"ends_at": "2030-02-30"}, "结束日期"),
    ):
        data = {"_csrf": csrf, "name": "批发价", "kind": "override", "group_id": str(group), "active": "1",
                "tiers": f"{sku.id} 1 25", **form}
        resp = await post("/console/b2b/lists", data=data)
        assert resp.status in (400, 404), (form, resp.status)
        assert problem in await resp.text(), form
    assert await count(mall, PriceListRow) == 0 and await count(mall, ListPrice) == 0
    assert (await post("/console/b2b/terms", data={"_csrf": csrf, "sku_id": str(sku.id), "moq": "0"})).status == 400
    assert await count(mall, AuditEntry) == before_audit
