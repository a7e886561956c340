"""Flash prices (限时折扣) and the loyalty module switched off, end to end through the real
official-account endpoint (signed, safe mode).

With loyalty on, a live flash price shows on the product list (限时 marker, lowest price),
on the product card (flash price, 原价, end time), on the quantity and action steps, and
checkout charges exactly that. With loyalty off, none of it shows or applies, and checkout
neither offers nor locks coupons or points (nothing would give them back)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flows.templating import shanghai
from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from social_mall.orders.service import find_order
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind
from storage.loyalty_models import OrderDiscount
from storage.models import Product, Sku
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings

USER = "oUser_e2e_flash_00000000001"


def simulator(mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


@pytest.fixture
def wx(mall):
    return simulator(mall)


@pytest.fixture
async def mall_off(backend, engine, fake_wechat, aiohttp_client, tmp_path) -> Mall:
    """The real app with the loyalty module switched off (settings DISABLED_MODULES)."""
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=["loyalty"])
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def sku_id(mall, title: str, spec: str) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(Sku.id).join(Product, Product.id == Sku.product_id)
                                            .where(Product.title == title, Sku.spec == spec)))


async def add_flash(mall, sku: int, fen: int) -> str:
    """A flash price live for the next two hours; returns its end as the chat shows it."""
    now = mall.svc.clock()
    ends = now + timedelta(hours=2)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await loyalty.add_flash_price(uow, tenant.id, sku, fen, starts_at=now - timedelta(minutes=5), ends_at=ends)
        await uow.commit()
    return shanghai(ends, "%m-%d %H:%M")


async def checkout_new_address(wx) -> str:
    """A new customer's address, sent whole when the summary asks for it."""
    return await say(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")


async def test_a_flash_price_shows_on_list_card_and_steps_and_checkout_charges_it(mall, wx):
    await wx.event(USER, "subscribe")
    await say(wx, "分类")
    before = await say(wx, "1")
    assert "1. 赣南脐橙 ¥39.90起" in before and "限时" not in before

    small = await sku_id(mall, "赣南脐橙", "5斤装")
    await add_flash(mall, await sku_id(mall, "赣南脐橙", "10斤装"), 7990)   # above its price: no flash at all
    ends = await add_flash(mall, small, 2990)
    await add_flash(mall, small, 3490)                                      # two live: the lower one counts

    listing = await say(wx, "搜索 芒")                                      # a search's list
    assert "1. 海南贵妃芒 ¥29.90起" in listing and "限时" not in listing
    await say(wx, "分类")
    fruit = await say(wx, "1")                                              # the category page
    assert "1. 赣南脐橙 【限时】¥29.90起" in fruit and "丹东草莓 ¥88.00起" in fruit

    card = await wx.text(USER, "搜索 脐橙")                                 # one hit: its card
    assert card.msg_type == "news"
    title, description = card.articles[0]["Title"], card.articles[0]["Description"]
    assert title == "赣南脐橙 ¥29.90起 · 限时折扣"
    assert f"1. 5斤装 限时 ¥29.90（原价 ¥39.90，{ends} 结束）" in description
    assert "2. 10斤装 ¥69.90 有货" in description

    asked = await say(wx, "1 x2")                                           # the summary, asking the address
    assert "· 赣南脐橙 5斤装 ¥39.90 × 2 = ¥79.80" in asked and "限时折扣：-¥20.00" in asked
    assert "应付：¥67.80" in asked and "请发来收货地址" in asked

    confirm = await checkout_new_address(wx)
    assert "限时折扣：-¥20.00" in confirm and "应付：¥67.80" in confirm     # ¥59.80 + ¥8 shipping
    placed = await say(wx, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        b = await pricing.breakdown(uow, tenant.id, order.id)
    assert (order.goods_fen, order.discount_fen) == (7980, 2000)
    assert order.total_fen == 5980 + 800
    assert [a.label for a in b.adjustments] == ["限时折扣"]


async def test_with_loyalty_off_checkout_offers_and_locks_no_coupon_points_or_flash(mall_off):
    wx = simulator(mall_off)
    svc = mall_off.svc
    assert "loyalty" not in svc.registry.modules
    tenant = await svc.tenant("demo")
    await wx.event(USER, "subscribe")
    small = await sku_id(mall_off, "赣南脐橙", "5斤装")
    await add_flash(mall_off, small, 2990)
    async with svc.uows() as uow:   # what the merchant set up while the module was on
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        tid = await loyalty.create_template(uow, tenant.id, name="立减5元", kind=CouponKind.AMOUNT, off_fen=500)
        coupon = await loyalty.claim(uow, tenant.id, member.id, tid, now=svc.clock())
        await loyalty.adjust_points(uow, tenant.id, member.id, 1000, ref="gift", actor="admin:1", note="",
                                    now=svc.clock())
        await loyalty.add_full_reduction(uow, tenant.id, 5000, 1000)
        await uow.commit()

    assert "会员中心" not in await say(wx, "会员")                       # the module's chat is gone
    await say(wx, "分类")
    listing = await say(wx, "1")
    assert "1. 赣南脐橙 ¥39.90起" in listing and "限时" not in listing
    card = await wx.text(USER, "1")
    assert "限时" not in card.text and "1. 5斤装 ¥39.90" in card.text
    asked = await say(wx, "1 x2")
    assert "限时" not in asked and "= ¥79.80" in asked
    confirm = await checkout_new_address(wx)
    for offer in ("优惠券", "用券", "积分", "限时折扣", "满50减10"):
        assert offer not in confirm, offer
    assert "商品合计：¥79.80" in confirm and "应付：¥87.80" in confirm      # + ¥8 shipping under ¥99
    assert "积分抵扣" not in await say(wx, "用积分 100")                # typed anyway: nothing spent
    placed = await say(wx, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)

    async with svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        assert (order.goods_fen, order.shipping_fen, order.discount_fen, order.total_fen) == (7980, 800, 0, 8780)
        assert (await loyalty.repo(uow).coupon(tenant.id, coupon.id))[0].status == "available"
        assert await loyalty.points_balance(uow, tenant.id, member.id) == 1000
        assert await uow.session.scalar(select(func.count()).select_from(OrderDiscount)) == 0
    assert "已取消" in await say(wx, "取消订单")
    await mall_off.settle()
    async with svc.uows() as uow:
        assert (await loyalty.repo(uow).coupon(tenant.id, coupon.id))[0].status == "available"
        assert await loyalty.points_balance(uow, tenant.id, member.id) == 1000
