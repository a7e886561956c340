"""「取消订单」 on an order that is no longer unpaid, through the real endpoint (signed,
encrypted chat), a sandbox payment (H5 confirm → signed notify) and the console API
(shipping): the buyer reads that it is paid (or shipped) and what to do instead, never
「回复「付款」获取支付链接」; the order, its stock and its refunds stay as they were."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from storage.models import Product, Refund, Sku
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.console_kit import issue_token, login, make_admin

USER = "oUser_e2e_cancel_paid_00001"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def facts(mall, order_no: str) -> tuple[str, int, int]:
    """(order status, stock of the SKU bought, refunds of the order)"""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        stock = await uow.session.scalar(select(Sku.stock).join(Product, Product.id == Sku.product_id)
                                         .where(Product.title == "西湖龙井"))
        refunds = await uow.session.scalar(select(func.count()).select_from(Refund).where(Refund.order_id == order.id))
    return order.status, int(stock), int(refunds)


async def test_cancelling_a_paid_then_shipped_order_says_so_and_what_to_do_instead(mall, wx):
    await wx.event(USER, "subscribe")
    for text in ("搜索 龙井", "购买"):   # one hit: its card; one SKU: 购买
        await say(wx, text)
    assert "应付：¥298.00" in await say(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    placed = await say(wx, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    paid = await facts(mall, order_no)
    assert paid[0] == "paid" and paid[2] == 0

    # right after paying, the order is the one on screen
    answer = await say(wx, "取消订单")
    assert f"订单 {order_no} 已付款，不能直接取消" in answer
    assert "联系商家客服申请退款" in answer and "原路退回" in answer
    assert "获取支付链接" not in answer and "「付款」" not in answer
    assert await facts(mall, order_no) == paid

    # from the list too
    assert "已付款" in await say(wx, "我的订单")
    assert order_no in await say(wx, "1")
    assert "已付款，不能直接取消" in await say(wx, "取消订单")
    assert await facts(mall, order_no) == paid

    # shipped: the same, in the words that fit
    await make_admin(mall.svc.uows, "owner_ship")
    token = await issue_token(mall.client, await login(mall.client, "owner_ship"), "ship")
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order_id = (await find_order(uow, tenant.id, order_no)).id
    resp = await mall.client.post(f"/api/v1/orders/{order_id}/ship", json={"tracking_no": "SF1234567890"},
                                  headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    answer = await say(wx, "取消订单")
    assert f"订单 {order_no} 已发货，不能取消" in answer and "退货退款" in answer and "联系商家客服" in answer
    assert "获取支付链接" not in answer
    assert await facts(mall, order_no) == ("shipped", paid[1], 0)
