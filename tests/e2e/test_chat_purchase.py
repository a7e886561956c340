"""A whole purchase inside chat, through the real endpoint with signed (and encrypted)
requests: subscribe → browse → product → 「SKU x quantity」 → the address in one message →
confirm → pay link → sandbox pay → the paid confirmation pushed by the customer-service API."""

import re

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from storage.models import Sku
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN


@pytest.fixture(params=["plain", "safe"])
def wx(request, mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY,
                       safe_mode=request.param == "safe")


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def stock(mall, title, spec) -> int:
    async with mall.svc.uows() as uow:
        from storage.models import Product

        return await uow.session.scalar(
            select(Sku.stock).join(Product, Product.id == Sku.product_id)
            .where(Product.title == title, Sku.spec == spec))


async def test_buy_a_product_end_to_end_in_chat_and_get_the_paid_push(mall, wx):
    user = "oUser_e2e_buyer_00000000001"
    before = await stock(mall, "赣南脐橙", "5斤装")
    welcome = await wx.event(user, "subscribe")
    assert "欢迎关注" in welcome.text
    assert "水果生鲜" in await say(wx, user, "分类")
    assert "赣南脐橙" in await say(wx, user, "1")
    card = await wx.text(user, "1")
    assert card.msg_type == "news"
    assert card.articles[0]["Title"].startswith("赣南脐橙")
    assert card.articles[0]["PicUrl"].endswith(".png")
    assert "1. 5斤装 ¥39.90" in card.articles[0]["Description"]
    asked = await say(wx, user, "1×2")
    assert "= ¥79.80" in asked and "请发来收货地址" in asked
    partial = await say(wx, user, "王小明 12345 广东省深圳市南山区科技园1号")   # no valid phone in it
    assert "还缺手机号" in partial and "11 位手机号" in partial
    assert "手机号" in await say(wx, user, "12345")          # invalid phone: asked again
    confirm = await say(wx, user, "13912345678")
    assert "应付：¥87.80" in confirm                          # ¥79.80 + ¥8.00 shipping
    assert "收货：王小明 139****5678 广东省深圳市南山区科技园1号" in confirm
    placed = await say(wx, user, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    assert await stock(mall, "赣南脐橙", "5斤装") == before - 2

    # the pay link opens the H5 pay page; 确认支付 sends a signed notify to the real endpoint
    path = pay_url[pay_url.index("/h5/"):]
    page = await (await mall.client.get(path)).text()
    assert "¥87.80" in page
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    assert (order.status, order.paid_fen) == ("paid", 8780)
    pushes = mall.fake.sent_messages(user)
    assert len(pushes) == 1
    assert "支付成功" in pushes[0]["text"]["content"] and order_no in pushes[0]["text"]["content"]

    listing = await say(wx, user, "我的订单")
    assert "已付款" in listing


async def test_out_of_stock_and_bad_quantities_get_clear_answers(mall, wx):
    user = "oUser_e2e_badqty_0000000001"
    await wx.event(user, "subscribe")
    await wx.text(user, "搜索 龙井")                          # one hit: its card (one SKU)
    assert "数量需在 1–99 之间（收到的是 0）" in await say(wx, user, "x0")
    assert "数量需在 1–99 之间（收到的是 10000）" in await say(wx, user, "ｘ10000")
    assert "没看懂「一些」" in await say(wx, user, "一些")
    assert "只剩 20 件" in await say(wx, user, "1 x50")       # 20 in stock
    assert "= ¥596.00" in await say(wx, user, "x2")           # the state stayed usable
    assert "只剩 20 件" in await say(wx, user, "x21")         # on the summary too
    assert "= ¥596.00" in await say(wx, user, "x2")
