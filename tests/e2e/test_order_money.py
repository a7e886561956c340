"""Money at the edges of an order, through the real official-account endpoint (signed,
encrypted requests), the console API and sandbox payments (H5 confirm → signed notify):

* amounts past 32 bits (¥21,474,836.47) are stored and paid on both backends;
* an order over the tenant's cap (`tenants.max_order_fen`) is refused with a clear answer
  and nothing written;
* 「确认」 places the order only at the total the buyer was shown.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, update

from handlers.mp_simulator import MPSimulator
from social_mall.orders.rules import DEFAULT_MAX_ORDER_FEN
from social_mall.orders.service import find_order
from storage.models import Order, Product, Sku, Tenant
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.console_kit import issue_token, login, make_admin

TEN_MILLION_YUAN = 10_000_000_00    # the console's highest SKU price, in fen


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def api_token(mall, username: str) -> str:
    await make_admin(mall.svc.uows, username)
    csrf = await login(mall.client, username)
    return await issue_token(mall.client, csrf, "prices")


async def set_price(mall, token: str, sku_id: int, price_fen: int) -> None:
    """The merchant changes a price through the console's JSON API."""
    resp = await mall.client.patch(f"/api/v1/skus/{sku_id}", json={"price_fen": price_fen},
                                   headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()


async def sku_of(mall, title: str) -> tuple[int, int]:
    """(sku id, stock) of the demo product's only SKU."""
    async with mall.svc.uows() as uow:
        row = (await uow.session.execute(
            select(Sku.id, Sku.stock).join(Product, Product.id == Sku.product_id).where(Product.title == title)
        )).one()
    return int(row[0]), int(row[1])


async def orders_count(mall) -> int:
    """Orders placed from chat (the demo tenant comes with a sample order of its own)."""
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Order).where(Order.source == "chat"))
                   or 0)


async def set_cap(mall, fen: int) -> None:
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Tenant).where(Tenant.code == "demo").values(max_order_fen=fen))
        await uow.commit()


async def to_confirmation(wx, user: str, keyword: str, qty: int) -> str:
    """Search → (product) → 「1 x qty」 → a new address (when asked for) → the summary."""
    await wx.event(user, "subscribe")
    if "搜索结果" in await say(wx, user, f"搜索 {keyword}"):
        await wx.text(user, "1")
    answer = await say(wx, user, f"1 x{qty}")
    if "请发来收货地址" not in answer:
        return answer
    return await say(wx, user, "王小明 13912345678 广东省深圳市南山区科技园1号")


async def pay(mall, placed: str) -> str:
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no


async def test_an_order_past_32_bits_is_placed_and_paid_under_a_raised_cap(mall, wx):
    """3 × a ¥10M SKU = ¥30M = 3,000,000,000 fen: past int32 (it answered 系统繁忙 on
    PostgreSQL), placed and paid once the tenant's cap allows it."""
    user = "oUser_e2e_big_order_0000001"
    token = await api_token(mall, "owner_big")
    sku_id, stock = await sku_of(mall, "西湖龙井")
    await set_price(mall, token, sku_id, TEN_MILLION_YUAN)
    await set_cap(mall, 3 * TEN_MILLION_YUAN)                 # exactly this order: at the cap

    confirm = await to_confirmation(wx, user, "龙井", 3)
    assert "应付：¥30000000.00" in confirm
    placed = await say(wx, user, "确认")
    assert "下单成功" in placed and "应付：¥30000000.00" in placed
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock - 3)
    order_no = await pay(mall, placed)

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    assert (order.status, order.total_fen, order.paid_fen) == ("paid", 3 * TEN_MILLION_YUAN, 3 * TEN_MILLION_YUAN)
    assert order.lines[0].line_fen == 3 * TEN_MILLION_YUAN


async def test_an_order_over_the_cap_is_refused_with_a_clear_answer_and_nothing_written(mall, wx):
    """3 × a ¥10M SKU under the default cap (¥1,000,000): a clear answer at the summary,
    no order, no stock taken; a cap one fen short of the order refuses it as well."""
    user = "oUser_e2e_over_cap_00000001"
    token = await api_token(mall, "owner_cap")
    sku_id, stock = await sku_of(mall, "西湖龙井")
    await set_price(mall, token, sku_id, TEN_MILLION_YUAN)

    answer = await to_confirmation(wx, user, "龙井", 3)
    assert "本单应付 ¥30000000.00，超过本店单笔订单上限 ¥1000000.00，无法下单" in answer
    assert "请回复" not in answer and "确认" not in answer          # no summary to confirm
    assert "已经失效" in await say(wx, user, "确认")                # the checkout is over: nothing to confirm
    assert await orders_count(mall) == 0
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock)
    assert DEFAULT_MAX_ORDER_FEN == 1_000_000_00

    await set_cap(mall, 3 * TEN_MILLION_YUAN - 1)
    answer = await to_confirmation(wx, user + "2", "龙井", 3)
    assert "超过本店单笔订单上限 ¥29999999.99" in answer
    assert await orders_count(mall) == 0
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock)


async def test_a_summary_within_the_cap_is_refused_at_confirmation_when_the_cap_drops(mall, wx):
    """The cap is checked again when the order is placed: lowered after the summary, 「确认」
    places nothing and says why."""
    user = "oUser_e2e_cap_dropped_00001"
    sku_id, stock = await sku_of(mall, "西湖龙井")
    confirm = await to_confirmation(wx, user, "龙井", 2)
    assert "应付：¥596.00" in confirm
    await set_cap(mall, 500_00)
    answer = await say(wx, user, "确认")
    assert "本单应付 ¥596.00，超过本店单笔订单上限 ¥500.00，无法下单" in answer and "下单成功" not in answer
    assert await orders_count(mall) == 0
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock)


async def test_confirm_after_a_price_change_shows_the_new_summary_and_places_nothing(mall, wx):
    """Summary at ¥298 × 2, the merchant raises the price, 「确认」: nothing placed, the new
    summary (¥350 × 2) to confirm; 「确认」 again places the order at the price now shown."""
    user = "oUser_e2e_price_moved_00001"
    token = await api_token(mall, "owner_price")
    sku_id, stock = await sku_of(mall, "西湖龙井")
    confirm = await to_confirmation(wx, user, "龙井", 2)
    assert "应付：¥596.00" in confirm

    await set_price(mall, token, sku_id, 350_00)
    again = await say(wx, user, "确认")
    assert "商品价格有变动，订单还没有提交。应付金额由 ¥596.00 变为 ¥700.00" in again
    assert "西湖龙井 250g ¥350.00 × 2 = ¥700.00" in again and "应付：¥700.00" in again
    assert "回复「确认」下单" in again and "下单成功" not in again
    assert await orders_count(mall) == 0
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock)

    placed = await say(wx, user, "确认")
    assert "下单成功" in placed and "应付：¥700.00" in placed
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, re.search(r"订单号：(\d+)", placed).group(1))
    assert (order.total_fen, order.lines[0].price_fen, order.lines[0].qty) == (700_00, 350_00, 2)
    assert await orders_count(mall) == 1
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock - 2)


async def test_a_price_cut_after_the_summary_is_shown_before_it_is_charged(mall, wx):
    """Cheaper is also another total: shown before 「确认」 places anything (the buyer
    confirms what they will pay, from the cart too)."""
    user = "oUser_e2e_price_cut_0000001"
    token = await api_token(mall, "owner_cut")
    sku_id, stock = await sku_of(mall, "西湖龙井")
    await wx.event(user, "subscribe")
    await wx.text(user, "搜索 龙井")
    await say(wx, user, "购买")
    assert "购物车" in await say(wx, user, "加入购物车")
    assert "请发来收货地址" in await say(wx, user, "结算")
    assert "应付：¥298.00" in await say(wx, user, "王小明 13912345678 广东省深圳市南山区科技园1号")

    await set_price(mall, token, sku_id, 199_00)
    again = await say(wx, user, "确认")
    assert "应付金额由 ¥298.00 变为 ¥199.00" in again and "应付：¥199.00" in again
    assert await orders_count(mall) == 0
    placed = await say(wx, user, "确认")
    assert "下单成功" in placed and "应付：¥199.00" in placed
    assert await sku_of(mall, "西湖龙井") == (sku_id, stock - 1)
