"""Reviews end to end through the signed endpoint and the console (both backends): an
order completes (「确认收货」), the member is invited; 「评价」 → the product → stars → text
(a sensitive word masked) and a photo → 「提交」; the product card in chat shows the
average, the count and the latest reviews; the merchant replies, hides one with a reason
(audited), the card follows. A member who writes nothing gets no review: no timer writes
a default 5 stars."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from social_mall_after_sale import rules_reviews as R
from social_mall_after_sale.models import Review, ReviewPhoto
from storage.models import AuditEntry

from after_kit import START, Clock, buy_and_pay, console, make_mall, post, pushes, say, settle, ship, simulator

BUYER = "oUser_aftersale_review_0001"
OTHER = "oUser_aftersale_review_0002"
PHOTO = b"\xff\xd8\xff\xe0JFIF-mango-photo"


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def received(shop, wx, user: str) -> str:
    order_no = await buy_and_pay(shop, wx, user, "芒果干", 1)
    await ship(shop, order_no)
    await say(wx, user, "我的订单")
    await say(wx, user, "1")
    assert "已完成" in await say(wx, user, "确认收货")
    await settle(shop)
    return order_no


async def reviews_count(shop) -> int:
    async with shop.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Review))


async def test_a_review_with_a_photo_shows_on_the_card_and_the_merchant_moderates_it(shop, clock):
    wx = simulator(shop)
    await console(shop)
    assert (await post(shop, "/console/after_sale_words", words="垃圾，骗子\n")).status == 303
    order_no = await received(shop, wx, BUYER)
    assert any(f"订单 {order_no} 已完成" in p and "回复「评价」" in p for p in pushes(shop, BUYER))
    clock.advance(days=30)
    await settle(shop)
    assert await reviews_count(shop) == 0                 # nobody wrote one: nothing written for them

    assert "1. 芒果干" in await say(wx, BUYER, "评价")
    assert "回复 1–5" in await say(wx, BUYER, "1")
    assert "请回复 1–5" in await say(wx, BUYER, "6")
    assert "★★★★☆ 已记下" in await say(wx, BUYER, "4")
    assert "收到" in await say(wx, BUYER, "很甜，不是垃圾货，包装也好")
    shop.fake.media["MEDIA_mango_0001"] = PHOTO
    assert "已收到第 1 张照片" in (await wx.image(BUYER, "MEDIA_mango_0001")).text
    written = await say(wx, BUYER, "提交")
    assert "评价已发表" in written and "★★★★☆" in written and "1 张照片" in written
    await settle(shop)
    async with shop.svc.uows() as uow:
        r = await uow.session.scalar(select(Review))
        assert (r.stars, r.text) == (4, "很甜,不是＊＊货,包装也好")     # chat text arrives NFKC-folded
        assert (await uow.session.scalar(select(ReviewPhoto))).data == PHOTO
    assert "暂时没有待评价的商品" in await say(wx, BUYER, "评价")   # once per order and product

    # a second buyer, 5 stars without words: the card shows ★4.5 (2 条), newest first
    wx2 = simulator(shop)
    await received(shop, wx2, OTHER)
    await say(wx2, OTHER, "评价")
    await say(wx2, OTHER, "1")
    await say(wx2, OTHER, "5")
    assert "评价已发表" in await say(wx2, OTHER, "提交")
    card = (await wx.text(BUYER, "搜索 芒果干"))
    shown = card.text + "".join(a.get("Description", "") for a in card.articles)
    assert "评价 ★4.5（2 条）" in shown, shown
    assert shown.index("★★★★★ （未写文字）") < shown.index("★★★★☆ 很甜")

    # console: the list with the photo, a reply, hide with a reason (audited), show again
    page = await (await shop.client.get("/console/after_sale_reviews")).text()
    assert "很甜,不是＊＊货" in page and f"/console/after_sale_reviews/photos/" in page
    assert (await post(shop, f"/console/after_sale_reviews/{r.id}/reply", reply="谢谢支持！")).status == 303
    bad = await post(shop, f"/console/after_sale_reviews/{r.id}/hide", reason="")
    assert bad.status == 409 and "请填写隐藏原因" in await bad.text()
    assert (await post(shop, f"/console/after_sale_reviews/{r.id}/hide", reason="含有广告")).status == 303
    card = await wx.text(BUYER, "搜索 芒果干")
    shown = card.text + "".join(a.get("Description", "") for a in card.articles)
    assert "评价 ★5.0（1 条）" in shown and "很甜" not in shown
    assert (await post(shop, f"/console/after_sale_reviews/{r.id}/show")).status == 303
    card = await wx.text(BUYER, "搜索 芒果干")
    shown = card.text + "".join(a.get("Description", "") for a in card.articles)
    assert "评价 ★4.5（2 条）" in shown and "商家回复：谢谢支持！" in shown
    h5 = await (await shop.client.get(f"/h5/product/demo/{r.product_id}")).text()     # and the H5 page
    assert "<p>评价 ★4.5（2 条）</p>" in h5 and "商家回复：谢谢支持！" in h5
    async with shop.svc.uows() as uow:
        actions = [a.action for a in (await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.subject == f"review:{r.id}").order_by(AuditEntry.id))).all()]
    assert actions == ["review.reply", "review.hide", "review.show"]


async def test_a_product_without_reviews_shows_its_card_as_before(shop):
    wx = simulator(shop)
    await wx.event(BUYER, "subscribe")
    card = await wx.text(BUYER, "搜索 芒果干")
    shown = card.text + "".join(a.get("Description", "") for a in card.articles)
    assert "芒果干" in shown and "评价" not in shown


def test_the_mask_and_the_average():
    assert R.mask("ＡＢＣ坏蛋abc", ["abc", "坏蛋"]) == "＊＊＊＊＊＊＊＊"
    assert R.mask("坏蛋蛋", ["坏蛋蛋", "坏蛋"]) == "＊＊＊"
    assert R.mask("好评", []) == "好评"
    assert R.avg_tenths(9, 2) == 45 and R.avg_tenths(13, 3) == 43 and R.avg_tenths(0, 0) == 0
    assert R.clean_words(" 垃圾，骗子\n\n垃圾 ") == ["垃圾", "骗子"]
