"""The short chat purchase path (issue #18) step by step through the signed endpoint:
every step goes back one with 「返回」 and 「取消」 leaves; the summary changes the
quantity, puts the SKU in the cart instead, or changes the address (a saved one, or a new
one pasted whole); the address an order ships to becomes the one pre-selected next time."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.members.service import list_addresses, resolve_member, view_cart
from storage.models import Order
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

USER = "oUser_steps_000000000000001"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    assert "系统繁忙" not in answer.text, (text, answer.text)
    return answer.text


async def orders_of(mall) -> list[tuple[str, str, int]]:
    """(ship name, ship address, total) of the user's orders, oldest first."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        rows = (await uow.session.execute(
            select(Order.ship_name, Order.ship_address, Order.total_fen)
            .where(Order.member_id == member.id).order_by(Order.id))).all()
    return [tuple(r) for r in rows]


async def book(mall) -> list[tuple[str, bool]]:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        return [(a.name, a.is_default) for a in await list_addresses(uow, tenant.id, member.id)]


async def test_back_goes_one_step_back_from_every_step_and_cancel_leaves(mall, wx):
    await wx.event(USER, "subscribe")
    assert "1. 水果生鲜" in await say(wx, "逛逛")
    assert "1. 逛逛分类" in await say(wx, "返回")                    # categories → the menu
    await say(wx, "逛逛")
    assert "水果生鲜（第 1/1 页" in await say(wx, "1")
    assert "1. 水果生鲜" in await say(wx, "返回")                    # list → categories
    await say(wx, "1")
    assert (await wx.text(USER, "1")).articles[0]["Title"].startswith("赣南脐橙")
    assert "水果生鲜（第 1/1 页" in await say(wx, "返回")            # card → list
    await wx.text(USER, "1")
    asked = await say(wx, "2")                                        # SKU 2: the summary at once
    assert "· 赣南脐橙 10斤装 ¥69.90 × 1 = ¥69.90" in asked and "请发来收货地址" in asked
    card = await wx.text(USER, "返回")                                # address request → the card
    assert card.msg_type == "news" and "1. 5斤装" in card.articles[0]["Description"]
    assert "× 2 = ¥139.80" in await say(wx, "2 x2")
    summary = await say(wx, "王小明，13912345678，广东省深圳市南山区科技园1号")
    assert "请确认订单" in summary and "收货：王小明 139****5678 广东省深圳市南山区科技园1号" in summary
    assert "× 3 = ¥209.70" in await say(wx, "x3")                     # re-priced at once
    assert "请发来收货地址" in await say(wx, "换地址")                 # nothing saved yet: type one
    back = await say(wx, "返回")                                      # → the summary, as it was
    assert "× 3 = ¥209.70" in back and "收货：王小明 139****5678" in back
    assert (await wx.text(USER, "返回")).msg_type == "news"           # summary → the card
    await say(wx, "1")
    assert "已取消" in await say(wx, "取消")                          # 取消 leaves
    assert "这一步已经失效了" in await say(wx, "确认")
    assert await orders_of(mall) == [] and await book(mall) == []     # nothing ordered, nothing saved


async def test_the_summary_offers_add_to_cart_and_returns_to_the_listing(mall, wx):
    await wx.event(USER, "subscribe")
    await say(wx, "分类")
    await say(wx, "2")                                                # 休闲零食
    await wx.text(USER, "2")                                          # 手撕牛肉干: two SKUs
    await say(wx, "2 x2")
    added = await say(wx, "加购")
    assert "已加入购物车 ✅ 购物车共 2 件，商品合计 ¥98.00" in added and "商品序号" in added
    assert (await wx.text(USER, "3")).articles[0]["Title"].startswith("芒果干")   # the listing is back
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        cart = await view_cart(uow, tenant.id, member.id)
    assert [(ln.title, ln.spec, ln.qty) for ln in cart.lines] == [("手撕牛肉干", "麻辣 250g", 2)]
    asked = await say(wx, "结算")
    assert "¥49.00 × 2 = ¥98.00" in asked and "请发来收货地址" in asked
    assert "请回复「购物车」" in await say(wx, "x3")                    # a cart's quantities change in the cart
    assert "购物车（共 2 件）" in await say(wx, "返回")                 # cart checkout → the cart
    assert await orders_of(mall) == []


async def test_the_last_used_address_is_pre_selected_and_a_new_one_can_be_pasted(mall, wx):
    await wx.event(USER, "subscribe")
    await wx.text(USER, "搜索 龙井")                                   # one hit: its card (one SKU)
    await say(wx, "购买")
    await say(wx, "收货人：王小明\n手机号码：139 1234 5678\n所在地区：广东省 深圳市 南山区\n详细地址：科技园1号")
    assert "下单成功" in await say(wx, "确认")
    assert await book(mall) == [("王小明", True)]

    await wx.text(USER, "搜索 龙井")
    summary = await say(wx, "购买")                                   # returning: no address step
    assert "收货：王小明 139****5678 广东省深圳市南山区科技园1号" in summary and "新地址" not in summary
    listed = await say(wx, "换地址")
    assert "1. 王小明 139****5678 广东省深圳市南山区科技园1号（默认）" in listed
    pasted = await say(wx, "上海市浦东新区世纪大道100号 李雷 13800138000")   # a new one, pasted in the list
    assert "收货：李雷 138****8000 上海市浦东新区世纪大道100号（新地址，下单时保存）" in pasted
    assert "下单成功" in await say(wx, "确认")
    assert await book(mall) == [("李雷", True), ("王小明", False)]

    await wx.text(USER, "搜索 龙井")
    assert "收货：李雷 138****8000" in await say(wx, "购买")          # the last one used
    await say(wx, "换地址")
    assert "收货：王小明 139****5678" in await say(wx, "2")           # pick the older one
    assert "下单成功" in await say(wx, "确认")
    assert await book(mall) == [("王小明", True), ("李雷", False)]    # now the last used
    await wx.text(USER, "搜索 龙井")
    assert "收货：王小明 139****5678" in await say(wx, "购买")

    assert [o[:2] for o in await orders_of(mall)] == [
        ("王小明", "广东省深圳市南山区科技园1号"), ("李雷", "上海市浦东新区世纪大道100号"),
        ("王小明", "广东省深圳市南山区科技园1号")]


async def test_an_address_missing_a_part_asks_only_for_that_part(mall, wx):
    await wx.event(USER, "subscribe")
    await wx.text(USER, "搜索 龙井")
    await say(wx, "购买")
    missing = await say(wx, "王小明 广东省深圳市南山区科技园1号")
    assert "已认出：王小明" in missing and "还缺手机号" in missing and "11 位手机号" in missing
    assert "手机号格式不对" in await say(wx, "0755-12345678")          # a landline: asked again
    summary = await say(wx, "+86 139-1234-5678")
    assert "收货：王小明 139****5678 广东省深圳市南山区科技园1号" in summary
    nothing = await say(wx, "换地址")
    assert "请发来收货地址" in nothing
    unclear = await say(wx, "？？")
    assert "没能认出收货人姓名、手机号和地址" in unclear and "收货人姓名" in unclear
    assert "请发来收货地址" in await say(wx, "返回")                   # field by field → the whole again
    assert "收货：王小明 139****5678" in await say(wx, "返回")         # → the summary it came from
    async with mall.svc.uows() as uow:
        count = await uow.session.scalar(select(func.count()).select_from(Order).where(Order.source == "chat"))
    assert count == 0 and await book(mall) == []
