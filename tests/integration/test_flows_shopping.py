"""Shopping in chat, end to end through FlowRunner on both backends (SQLite + memory KV,
PostgreSQL + Redis): browse, product card, SKU (and quantity) straight to the summary,
the address typed whole or field by field, cart, checkout, orders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from flows.engine import Conv
from flows.runner import FlowRunner
from flows.templating import make_env
from flows.types import Inbound, Kind, Reply
from social_mall.catalog.service import list_products, product_detail
from social_mall.members.service import add_address, add_to_cart, resolve_member, view_cart
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import find_order, list_orders, place_order
from social_mall.tenants import TenantView
from storage.uow import UowFactory

ALICE = "o_alice_0123456789abcdefghij"


class FakeLinks:
    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        return f"https://shop.test/pay/{tenant_code}/{order_no}"

    def image_url(self, path: str) -> str:
        return f"https://cdn.test{path}"

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return f"https://shop.test/{tenant_code}/p/{product_id}"


@dataclass
class Chat:
    runner: FlowRunner
    tenant: TenantView
    user: str = ALICE

    def inbound(self, text: str = "", kind: Kind = Kind.TEXT, **payload: str) -> Inbound:
        return Inbound(self.tenant.id, self.tenant.code, "mp", self.user, kind, text, payload)

    async def send(self, text: str) -> list[Reply]:
        return await self.runner.handle(self.inbound(text))

    async def say(self, text: str) -> str:
        replies = await self.send(text)
        assert replies, text
        return "\n".join(r.text if r.kind == "text" else f"[{r.article.title}]" for r in replies if r.article or r.text)

    async def state(self) -> tuple[str, str]:
        conv = await self.runner.state(self.inbound())
        assert conv is not None
        return conv.flow, conv.state


@pytest.fixture
def commits() -> list[int]:
    return []


@pytest.fixture
def runner(uows: UowFactory, kv, demo: TenantView, commits: list[int]) -> FlowRunner:
    return FlowRunner(uows=uows, kv=kv, templates=make_env(), links=FakeLinks(),
                      on_commit=lambda: commits.append(1))


@pytest.fixture
def chat(runner: FlowRunner, demo: TenantView) -> Chat:
    return Chat(runner, demo)


async def member_id(uows: UowFactory, tenant: TenantView, user: str = ALICE) -> int:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", user)
        await uow.commit()
    return member.id


async def sku_of(uows: UowFactory, tenant: TenantView, title: str, spec: str) -> tuple[int, int, int]:
    """(product id, sku id, stock) of a demo SKU."""
    async with uows() as uow:
        card = (await list_products(uow, tenant.id, keyword=title)).items[0]
        sku = next(s for s in (await product_detail(uow, tenant.id, card.id)).skus if s.spec == spec)
    return card.id, sku.id, sku.stock


async def someone_else_buys(uows: UowFactory, tenant: TenantView, sku_id: int, qty: int) -> None:
    bob = await member_id(uows, tenant, "o_bob_0123456789abcdefghijkl")
    async with uows() as uow:
        address = await add_address(uow, tenant.id, bob, "王五", "13700137000", "北京市朝阳区建国路1号")
        await place_order(uow, tenant.id, bob, [(sku_id, qty)], address_id=address.id,
                          now=datetime.now(timezone.utc), timeout=timedelta(minutes=30))
        await uow.commit()


async def to_confirmation(chat: Chat, keyword: str, qty: int, sku_no: int = 1) -> str:
    """Search → (first product) → 「SKU x qty」 → (a new customer: the address) → confirmation."""
    found = await chat.say(f"搜索 {keyword}")
    if "搜索结果" in found:
        await chat.say("1")
    reply = await chat.say(f"{sku_no} x{qty}")
    if "请确认订单" in reply:
        return reply
    assert "请发来收货地址" in reply
    return await chat.say("张三 13800138000 浙江省杭州市西湖区文三路100号")


def order_no_in(text: str) -> str:
    found = re.search(r"订单号：(\d+)", text)
    assert found, text
    return found.group(1)


async def test_subscribe_browse_and_buy_now_places_the_order(uows, demo, chat, commits):
    welcome = await chat.runner.handle(chat.inbound(kind=Kind.SUBSCRIBE))
    assert "欢迎关注" in welcome[0].text and "1. 逛逛分类" in welcome[0].text
    assert "1. 水果生鲜\n2. 休闲零食\n3. 日用百货\n4. 茶饮冲调" in await chat.say("1")  # menu → 分类
    listing = await chat.say("1")
    assert "水果生鲜（第 1/1 页，共 5 件）" in listing
    assert "1. 赣南脐橙 ¥39.90起" in listing
    product, sku, stock = await sku_of(uows, demo, "赣南脐橙", "5斤装")
    (card,) = await chat.send("1")  # one passive reply: the card carries the SKU list
    skus = card.article
    assert card.kind == "news" and card.article is not None
    assert card.article.title == "赣南脐橙 ¥39.90起"
    assert card.article.image == f"https://cdn.test/media/products/{product}.png"
    assert card.article.url == f"https://shop.test/demo/p/{product}"
    assert "1. 5斤装 ¥39.90 有货\n2. 10斤装 ¥69.90 有货" in skus.description
    assert "「2 x3」" in skus.description
    asked = await chat.say("1 x3")  # SKU 1, three of it: the lines and total, and the address asked for
    assert "· 赣南脐橙 5斤装 ¥39.90 × 3 = ¥119.70" in asked and "应付：¥119.70" in asked
    assert "请发来收货地址" in asked and "请确认订单" not in asked
    assert await chat.state() == ("checkout", "new_address")
    confirm = await chat.say("张三，138 0013 8000，浙江省杭州市西湖区文三路100号")
    assert "· 赣南脐橙 5斤装 ¥39.90 × 3 = ¥119.70" in confirm
    assert "运费：免运费" in confirm and "应付：¥119.70" in confirm
    assert "收货：张三 138****8000 浙江省杭州市西湖区文三路100号（新地址，下单时保存）" in confirm
    assert await chat.state() == ("checkout", "confirm")

    placed = await chat.say("确认")
    order_no = order_no_in(placed)
    assert f"https://shop.test/pay/demo/{order_no}" in placed
    assert "30 分钟" in placed and "应付：¥119.70" in placed
    async with uows() as uow:
        order = await find_order(uow, demo.id, order_no, member_id=await member_id(uows, demo))
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert (order.total_fen, order.shipping_fen, order.ship_phone) == (11970, 0, "13800138000")
    assert [(ln.sku_id, ln.qty) for ln in order.lines] == [(sku, 3)]
    assert (await sku_of(uows, demo, "赣南脐橙", "5斤装"))[2] == stock - 3
    assert commits, "on_commit kicks the outbox after each commit"
    assert await chat.state() == ("orders", "detail")
    assert f"https://shop.test/pay/demo/{order_no}" in await chat.say("付款")


async def test_cart_add_change_remove_clear(uows, demo, chat):
    assert "[赣南脐橙 ¥39.90起]" in await chat.say("搜索 脐橙")  # one hit: its card
    await chat.say("1")
    assert "已加入购物车 ✅ 购物车共 1 件，商品合计 ¥39.90" in await chat.say("加购")
    await chat.say("搜 草莓")
    await chat.say("购买")
    await chat.say("x2")
    assert "购物车共 3 件，商品合计 ¥215.90" in await chat.say("加入购物车")
    shown = await chat.say("购物车")
    assert "1. 赣南脐橙 5斤装 ¥39.90 × 1\n2. 丹东草莓 2斤礼盒 ¥88.00 × 2" in shown
    assert "应付：¥215.90" in shown
    mid = await member_id(uows, demo)

    async def lines() -> list[tuple[str, int]]:
        async with uows() as uow:
            return [(ln.title, ln.qty) for ln in (await view_cart(uow, demo.id, mid)).lines]

    assert "已修改：赣南脐橙 5斤装 × 3" in await chat.say("改 1 3")
    assert await lines() == [("赣南脐橙", 3), ("丹东草莓", 2)]
    assert "数量需在 1–99 之间" in await chat.say("改 1 100")
    assert "购物车里没有第 9 项（共 2 项）" in await chat.say("改 9 1")
    assert "格式：「改 序号 数量」" in await chat.say("改 1")
    assert await lines() == [("赣南脐橙", 3), ("丹东草莓", 2)]
    assert "已删除：丹东草莓 2斤礼盒" in await chat.say("删 2")
    assert await lines() == [("赣南脐橙", 3)]
    cleared = await chat.say("清空购物车")
    assert "购物车已清空" in cleared and "购物车是空的" in cleared
    assert await lines() == []
    assert "购物车里还没有可以结算的商品" in await chat.say("结算")


async def test_checkout_from_cart_with_a_saved_address_empties_the_cart(uows, demo, chat):
    await chat.say("菜单")
    mid = await member_id(uows, demo)
    _, sku, stock = await sku_of(uows, demo, "海苔脆", "10包")
    async with uows() as uow:
        await add_address(uow, demo.id, mid, "李四", "13900139000", "上海市浦东新区世纪大道1号")
        await add_to_cart(uow, demo.id, mid, sku, 2)
        await uow.commit()
    summary = await chat.say("结算")  # the saved (default) address is pre-selected
    assert "收货：李四 139****9000 上海市浦东新区世纪大道1号" in summary and "应付：¥47.80" in summary
    assert "1. 李四 139****9000 上海市浦东新区世纪大道1号（默认）" in await chat.say("换地址")
    assert "没有这个序号，请回复 1–1 之间的数字" in await chat.say("3")
    confirm = await chat.say("1")
    assert "运费：¥8.00" in confirm and "应付：¥47.80" in confirm
    order_no = order_no_in(await chat.say("确认"))
    async with uows() as uow:
        order = await find_order(uow, demo.id, order_no, member_id=mid)
        cart = await view_cart(uow, demo.id, mid)
    assert (order.goods_fen, order.shipping_fen, order.total_fen) == (3980, 800, 4780)
    assert order.ship_name == "李四" and cart.lines == ()
    assert (await sku_of(uows, demo, "海苔脆", "10包"))[2] == stock - 2


async def test_a_new_address_is_asked_field_by_field_until_valid(uows, demo, chat):
    await chat.say("菜单")
    mid = await member_id(uows, demo)
    _, sku, _ = await sku_of(uows, demo, "芒果干", "500g")
    async with uows() as uow:
        await add_to_cart(uow, demo.id, mid, sku, 1)
        await uow.commit()
    assert "请发来收货地址" in await chat.say("结算")
    assert "收货人的 11 位手机号" in await chat.say("赵六")  # only a name: asked for the rest, one by one
    for bad in ("12345", "1380013800", "23800138000", "手机"):
        assert "请填写 11 位大陆手机号" in await chat.say(bad)
        assert await chat.state() == ("checkout", "phone")
    await chat.say("13800138000")
    assert "详细地址需为 5–100 个字" in await chat.say("杭州")
    assert await chat.state() == ("checkout", "detail")
    assert "收货：赵六 138****8000 杭州市拱墅区湖墅南路1号" in await chat.say("杭州市拱墅区湖墅南路1号")
    from social_mall.members.service import list_addresses

    async with uows() as uow:
        assert await list_addresses(uow, demo.id, mid) == ()  # shown for confirmation, not saved yet
    order_no = order_no_in(await chat.say("确认"))
    async with uows() as uow:
        assert [(a.name, a.is_default) for a in await list_addresses(uow, demo.id, mid)] == [("赵六", True)]
        assert (await find_order(uow, demo.id, order_no)).ship_name == "赵六"


async def test_bad_inputs_say_why_and_keep_the_state(uows, demo, chat):
    await chat.say("分类")
    assert "没有这个序号，请回复 1–4 之间的数字" in await chat.say("9")
    assert await chat.state() == ("shop", "categories")
    await chat.say("1")
    await chat.say("1")  # the card of 赣南脐橙 (two SKUs)
    for qty in ("0", "100", "10000"):
        assert f"数量需在 1–99 之间（收到的是 {qty}）" in await chat.say(f"1 x{qty}")
        assert await chat.state() == ("shop", "sku")
    assert "没有这个序号，请回复 1–2 之间的数字" in await chat.say("3 x2")
    assert "请先选规格" in await chat.say("x2")
    reply = await chat.say("abc")
    assert "没看懂「abc」" in reply and "回复规格序号" in reply
    assert "没看懂「确认」" in await chat.say("确认")
    assert "× 2 = ¥79.80" in await chat.say("1 x2")
    assert await chat.state() == ("checkout", "new_address")
    assert "× 3 = ¥119.70" in await chat.say("x3")  # the quantity changed before the address
    assert await chat.state() == ("checkout", "new_address")


async def test_a_sold_out_sku_is_marked_and_cannot_be_picked(uows, demo, chat):
    _, sku, stock = await sku_of(uows, demo, "西湖龙井", "250g")
    await someone_else_buys(uows, demo, sku, stock)
    (card,) = await chat.send("搜索 龙井")  # one hit: its card
    assert "1. 250g ¥298.00 售罄" in card.article.description
    refused = await chat.say("1")
    assert "抱歉，西湖龙井 250g 已售罄。" in refused and "回复规格序号" in refused
    assert await chat.state() == ("shop", "sku")


async def test_stock_gone_before_confirm_keeps_the_confirmation(uows, demo, chat):
    _, sku, stock = await sku_of(uows, demo, "云南普洱", "357g")
    assert "应付：¥840.00" in await to_confirmation(chat, "普洱", 5)
    await someone_else_buys(uows, demo, sku, stock - 3)
    refused = await chat.say("确认")
    assert "库存不足，只剩 3 件了" in refused and "回复「确认」下单" in refused
    assert await chat.state() == ("checkout", "confirm")
    async with uows() as uow:
        mine = await list_orders(uow, demo.id, await member_id(uows, demo))
    assert mine.total == 0
    assert (await sku_of(uows, demo, "云南普洱", "357g"))[2] == 3


async def test_cancelling_an_unpaid_order_restores_stock(uows, demo, chat):
    _, sku, stock = await sku_of(uows, demo, "挂耳咖啡", "20包")
    await to_confirmation(chat, "咖啡", 4)
    order_no = order_no_in(await chat.say("确认"))
    assert (await sku_of(uows, demo, "挂耳咖啡", "20包"))[2] == stock - 4
    listed = await chat.say("我的订单")
    assert "1. " in listed and "待付款 ¥236.00 挂耳咖啡" in listed
    detail = await chat.say("1")
    assert f"订单号：{order_no}" in detail and f"https://shop.test/pay/demo/{order_no}" in detail
    assert f"订单 {order_no} 已取消，库存已退回" in await chat.say("取消订单")
    assert (await sku_of(uows, demo, "挂耳咖啡", "20包"))[2] == stock
    async with uows() as uow:
        assert (await find_order(uow, demo.id, order_no)).status == OrderStatus.CANCELLED
    assert "已取消" in await chat.say("取消订单")  # again: nothing more happens
    assert (await sku_of(uows, demo, "挂耳咖啡", "20包"))[2] == stock
    assert "当前「已取消」，无需付款" in await chat.say("付款")


async def test_a_paid_order_cannot_be_cancelled_from_chat(uows, demo, chat):
    await to_confirmation(chat, "燕麦", 1)
    order_no = order_no_in(await chat.say("确认"))
    async with uows() as uow:
        order = await find_order(uow, demo.id, order_no)
        assert await uow.orders.move(demo.id, order.id, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID,
                                     paid_fen=order.total_fen)
        await uow.commit()
    await chat.say("订单")
    assert "已付款" in await chat.say("1")
    refused = await chat.say("取消订单")
    assert f"订单 {order_no} 已付款，不能直接取消" in refused and "联系商家客服申请退款" in refused
    assert "获取支付链接" not in refused
    assert await chat.state() == ("orders", "detail")
    async with uows() as uow:
        assert (await find_order(uow, demo.id, order_no)).status == OrderStatus.PAID


async def test_search_in_chinese_and_an_empty_result(chat):
    listed = await chat.say("搜索 芒")
    assert "1. 海南贵妃芒 ¥29.90起" in listed and "2. 芒果干 ¥29.90起" in listed
    assert "没有找到与「榴莲」相关的商品" in await chat.say("搜索 榴莲")
    assert await chat.state() == ("shop", "search")
    assert "[新疆阿克苏苹果 ¥35.00起]" in await chat.say("苹果")  # the next text is the new keyword


async def test_a_search_with_one_hit_shows_its_card_and_back_lists_the_hit(chat):
    (card,) = await chat.send("搜索 草莓")
    assert card.kind == "news" and card.article.title == "丹东草莓 ¥88.00"
    assert "回复「购买」下单" in card.article.description
    assert await chat.state() == ("shop", "sku")
    assert "1. 丹东草莓 ¥88.00起" in await chat.say("返回")
    assert await chat.state() == ("shop", "products")


async def test_stored_state_is_json_with_ids_only(chat):
    await chat.say("分类")
    await chat.say("2")
    conv = await chat.runner.state(chat.inbound())
    assert isinstance(conv, Conv)
    assert (conv.flow, conv.state, conv.data["page"]) == ("shop", "products", 1)
    assert conv.v == 2 and len(conv.data["items"]) == 5  # type: ignore[arg-type]
