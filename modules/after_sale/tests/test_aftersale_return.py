"""A return end to end, through the signed official-account endpoint, the sandbox pay
notify, the console over HTTP (CSRF) and the core's refund path, on both backends:

a member with a 满100减20 coupon buys 4 × 芒果干 (¥119.60 − ¥20 = ¥99.60 paid), the order
ships; in chat 「申请售后」 → the order → 「1 x1」 → 「下一步」 → 退货退款 → reason → a photo
(an image message, fetched through the media API) → 「提交」; the merchant approves in the
console, the member sends the tracking number in chat, the merchant receives (back to
sellable stock) and refunds: ¥24.90, the unit's share of what the line paid after the
coupon (¥29.90 less its ¥5.00 share of the coupon). Every step is pushed."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from social_mall.loyalty import service as loyalty
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind
from social_mall_after_sale.models import AfterSale, AfterSaleLog, AfterSalePhoto, AfterSaleUnits
from storage.models import AuditEntry, Refund

from after_kit import (
    REQUEST_NO, START, Clock, buy_and_pay, console, count, make_mall, order, post, pushes, say, settle, ship,
    simulator, stock,
)

BUYER = "oUser_aftersale_return_00001"
PHOTO = b"\xff\xd8\xff\xe0JFIF-a-broken-lid-photo"


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def request_row(shop, rid: int) -> AfterSale:
    async with shop.svc.uows() as uow:
        return await uow.session.scalar(select(AfterSale).where(AfterSale.id == rid))


async def coupon_order(shop, wx) -> str:
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        await loyalty.create_template(uow, tenant.id, name="满100减20", kind=CouponKind.AMOUNT,
                                      threshold_fen=10000, off_fen=2000, total_qty=10, valid_days=30)
        await uow.commit()
    await wx.event(BUYER, "subscribe")
    assert "满100减20" in await say(wx, BUYER, "领券")
    assert "领取成功" in await say(wx, BUYER, "1")
    return await buy_and_pay(shop, wx, BUYER, "芒果干", 4)


async def test_return_with_a_photo_approved_received_and_refunded_partially_after_the_coupon(shop, clock):
    wx = simulator(shop)
    order_no = await coupon_order(shop, wx)
    placed = await order(shop, order_no)
    assert (placed.status, placed.goods_fen, placed.discount_fen, placed.paid_fen) == ("paid", 11960, 2000, 9960)
    await console(shop)
    await ship(shop, order_no)
    stock_before = await stock(shop, "芒果干")

    # chat: 申请售后 → order → lines → 1 x1 → 下一步 → 退货退款 → reason → photo → 提交
    listed = await say(wx, BUYER, "申请售后")
    assert f"1. {order_no} 已发货 ¥99.60 芒果干" in listed, listed
    lines = await say(wx, BUYER, "1")
    assert "1. 芒果干 500g ×4" in lines and "「1 x2」" in lines
    picked = await say(wx, BUYER, "1 x1")
    assert "✔ 已选 1 件" in picked and "预计退款 ¥24.90" in picked      # 9960 × 1 // 4
    kinds = await say(wx, BUYER, "下一步")
    assert "1. 退货退款" in kinds and "2. 仅退款" in kinds
    reasons = await say(wx, BUYER, "1")
    assert "退货退款，请选择原因" in reasons and "5. 商品破损" in reasons
    assert "发送照片" in await say(wx, BUYER, "5")
    shop.fake.media["MEDIA_lid_photo_0001"] = PHOTO
    got = await wx.image(BUYER, "MEDIA_lid_photo_0001")
    assert "已收到第 1 张照片" in got.text and "还可以再发 2 张" in got.text
    submitted = await say(wx, BUYER, "提交")
    assert "售后申请已提交" in submitted and "预计退款：¥24.90" in submitted and "照片：1 张" in submitted
    rid = int(REQUEST_NO.search(submitted).group(1))
    await settle(shop)
    assert any(f"售后单 {rid} 已提交，等待商家审核" in p for p in pushes(shop, BUYER))
    async with shop.svc.uows() as uow:
        ph = await uow.session.scalar(select(AfterSalePhoto).where(AfterSalePhoto.request_id == rid))
        assert ph.data == PHOTO and ph.media_id == "MEDIA_lid_photo_0001"     # kept: WeChat drops it in 3 days
    assert [c for c in shop.fake.calls_to("/cgi-bin/media/get")]

    # console: the queue, the request with its photo, approve
    queue = await (await shop.client.get("/console/after_sale?status=open")).text()
    assert f'href="/console/after_sale/{rid}"' in queue and "退货退款" in queue and "待审核" in queue
    page = await (await shop.client.get(f"/console/after_sale/{rid}")).text()
    assert f'/console/after_sale/photos/{ph.id}' in page and "商品破损" in page
    img = await shop.client.get(f"/console/after_sale/photos/{ph.id}")
    assert img.status == 200 and await img.read() == PHOTO
    assert (await post(shop, f"/console/after_sale/{rid}/approve")).status == 303
    await settle(shop)
    assert (await request_row(shop, rid)).status == "await_return"
    assert any(f"售后单 {rid}（退货）商家已同意" in p and "7 天内" in p for p in pushes(shop, BUYER))

    # chat: the tracking number
    sent = await say(wx, BUYER, f"售后{rid} 退货单号 YT 1234-567890")
    assert "已登记退货单号 YT1234567890" in sent
    assert (await request_row(shop, rid)).return_tracking == "YT1234567890"

    # console: received, back on sale; refund
    assert (await post(shop, f"/console/after_sale/{rid}/receive", resellable="1")).status == 303
    assert await stock(shop, "芒果干") == stock_before + 1
    assert (await post(shop, f"/console/after_sale/{rid}/refund")).status == 303
    await settle(shop)

    row = await request_row(shop, rid)
    assert (row.status, row.refund_fen) == ("refunded", 2490)
    after = await order(shop, order_no)
    assert (after.status, after.refunded_fen) == ("shipped", 2490)        # partial: the rest stays shipped
    async with shop.svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).where(Refund.order_id == after.id))).all()
        assert [(r.out_refund_no, r.amount_fen, r.status) for r in refunds] == [(row.out_refund_no, 2490, "succeeded")]
        b = await pricing.breakdown(uow, (await shop.svc.tenant("demo")).id, after.id)
        assert b.lines[0].pay_fen == 9960 and b.coupon_id is not None
        # the coupon stays used: a partial refund keeps it (loyalty's rule), its share stays with the merchant
        assert (await loyalty.repo(uow).coupon(after.tenant_id, b.coupon_id))[0].status == "used"
        units = await uow.session.scalar(select(AfterSaleUnits).where(AfterSaleUnits.order_id == after.id))
        assert (units.claimed, units.refunded_qty, units.refunded_fen) == (1, 1, 2490)
        steps = [(e.src, e.dst) for e in (await uow.session.scalars(
            select(AfterSaleLog).where(AfterSaleLog.request_id == rid).order_by(AfterSaleLog.id))).all()]
        assert steps == [("", "pending"), ("pending", "await_return"), ("await_return", "returned"),
                         ("returned", "received"), ("received", "refunding"), ("refunding", "refunded")]
        actions = [a.action for a in (await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.subject.in_([f"aftersale:{rid}", f"order:{order_no}"]))
            .order_by(AuditEntry.id))).all()]
        assert "refund.request" in actions and "aftersale.refunding" in actions and "aftersale.received" in actions
    texts = pushes(shop, BUYER)
    assert any("退款（部分）已到账" in p and "¥24.90" in p for p in texts)
    mine = await say(wx, BUYER, "我的售后")
    assert re.search(rf"{rid}\. \S+ 退货退款 已退款 ¥24.90 订单 {order_no}", mine), mine


async def test_refusals_answer_clearly_and_change_nothing(shop):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)
    await console(shop)
    # more units than the line has
    await say(wx, BUYER, "申请售后")
    await say(wx, BUYER, "1")
    too_many = await say(wx, BUYER, "1 x3")
    assert "最多可申请 2 件" in too_many and "✔" not in too_many
    assert "请先选择商品" in await say(wx, BUYER, "下一步")
    # unshipped: refund only, no kind question
    await say(wx, BUYER, "1 x2")
    assert "仅退款，请选择原因" in await say(wx, BUYER, "下一步")
    assert "没有这个序号" in await say(wx, BUYER, "9")
    await say(wx, BUYER, "1")
    submitted = await say(wx, BUYER, "提交")
    rid = int(REQUEST_NO.search(submitted).group(1))
    # a second request for the same units: nothing left
    assert "暂时没有可以申请售后的订单" in await say(wx, BUYER, "申请售后")
    requests_before, logs_before = await count(shop, AfterSale), await count(shop, AfterSaleLog)

    # the console: reject without a reason, refund before approval, unknown request
    resp = await post(shop, f"/console/after_sale/{rid}/reject", reason=" ")
    assert resp.status == 409 and "请填写驳回原因" in await resp.text()
    resp = await post(shop, f"/console/after_sale/{rid}/refund")
    assert resp.status == 409 and "不能这样操作" in await resp.text()
    resp = await post(shop, f"/console/after_sale/{rid}/receive")
    assert resp.status == 409
    assert (await post(shop, "/console/after_sale/999999/approve")).status == 404
    # the chat: a tracking number with nothing waiting, a bad one, withdrawing another's
    assert "不能这样操作" in await say(wx, BUYER, "退货单号 SF1234567890")
    assert "退货单号格式不对" in await say(wx, BUYER, f"售后{rid} 退货单号 12345")
    await wx.event("oUser_aftersale_stranger_01", "subscribe")
    assert "没有找到" in await say(wx, "oUser_aftersale_stranger_01", f"撤销售后 {rid}")
    row = await request_row(shop, rid)
    assert (row.status, row.reject_reason, row.refund_fen) == ("pending", "", 0)
    assert (await count(shop, AfterSale), await count(shop, AfterSaleLog)) == (requests_before, logs_before)
    assert (await order(shop, order_no)).refunded_fen == 0

    # a reasoned rejection frees the units again
    assert (await post(shop, f"/console/after_sale/{rid}/reject", reason="商品已发出，请收货后申请")).status == 303
    await settle(shop)
    assert any("未通过：商品已发出，请收货后申请" in p for p in pushes(shop, BUYER))
    assert f"1. {order_no}" in await say(wx, BUYER, "申请售后")


async def test_an_exchange_comes_back_and_goes_out_again_without_money(shop):
    wx = simulator(shop)
    order_no = await buy_and_pay(shop, wx, BUYER, "芒果干", 2)
    await console(shop)
    await ship(shop, order_no)
    await say(wx, BUYER, "我的订单")
    assert order_no in await say(wx, BUYER, "1")
    lines = await say(wx, BUYER, "申请售后")                        # on the order's detail: its lines at once
    assert f"订单 {order_no} 的商品" in lines and "1. 芒果干 500g ×2" in lines
    await say(wx, BUYER, "1 x1")
    kinds = await say(wx, BUYER, "下一步")
    assert "3. 换货（寄回后换新的）" in kinds
    assert "换货，请选择原因" in await say(wx, BUYER, "3")
    await say(wx, BUYER, "5")
    rid = int(REQUEST_NO.search(await say(wx, BUYER, "提交")).group(1))
    assert (await post(shop, f"/console/after_sale/{rid}/approve")).status == 303
    assert "商家收到货后为您换货" in await say(wx, BUYER, "退货单号 JD0012345678")
    assert (await post(shop, f"/console/after_sale/{rid}/receive")).status == 303      # not for resale
    shelf = await stock(shop, "芒果干")
    bad = await post(shop, f"/console/after_sale/{rid}/reship", tracking_no="12")
    assert bad.status == 409 and "运单号为 6–30 位" in await bad.text()
    assert (await request_row(shop, rid)).status == "received" and await stock(shop, "芒果干") == shelf
    assert (await post(shop, f"/console/after_sale/{rid}/reship", tracking_no="SF2000000002")).status == 303
    await settle(shop)
    row = await request_row(shop, rid)
    assert (row.status, row.refund_fen, row.out_refund_no) == ("reshipped", 0, "")
    assert await stock(shop, "芒果干") == shelf - 1                               # the replacement
    assert (await order(shop, order_no)).refunded_fen == 0
    assert any(f"售后单 {rid} 换货已发出，运单号：SF2000000002" in p for p in pushes(shop, BUYER))
    assert (await post(shop, f"/console/after_sale/{rid}/reship", tracking_no="SF2000000003")).status == 409
