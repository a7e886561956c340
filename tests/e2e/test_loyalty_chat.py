"""Membership end to end through the real official-account endpoint (signed requests) and
real sandbox payments (H5 confirm → signed pay notify): a member earns points and a level,
signs in, claims a coupon, checks out with coupon + points, is refunded and gets points
and coupon back per the rules."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from handlers.mp_simulator import MPSimulator
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.rules import Level
from social_mall.orders.service import find_order
from social_mall.payments.service import request_refund
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind, Step
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

USER = "oUser_e2e_loyalty_000000001"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, text: str) -> str:
    answer = await wx.text(USER, text)
    assert answer.status == 200, answer.body
    return answer.text


async def pay(mall, placed: str) -> str:
    """Open the pay link from the chat and confirm on the H5 page (a signed notify)."""
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no


async def settle(mall) -> None:
    """The refund runs from the outbox and its `order.refunded` is a second round."""
    for _ in range(3):
        await mall.settle()


async def buy(wx, keyword: str, qty: int, *, first: bool) -> str:
    """Search → (product) → 「1 x qty」 → (a new customer's address) → the confirmation."""
    if "搜索结果" in await say(wx, f"搜索 {keyword}"):
        await wx.text(USER, "1")
    summary = await say(wx, f"1 x{qty}")
    if first:
        return await say(wx, "王小明 13912345678 广东省深圳市南山区科技园1号")
    return summary                  # the saved address, pre-selected


async def test_points_level_coupon_checkout_and_refund_end_to_end(mall, wx):
    svc = mall.svc
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        await loyalty.set_levels(uow, tenant.id, [Level("普通会员", 0), Level("银卡会员", 100, 9800, "98折")])
        tid = await loyalty.create_template(uow, tenant.id, name="满100减20", kind=CouponKind.AMOUNT,
                                            threshold_fen=10000, off_fen=2000, total_qty=10, valid_days=30)
        await uow.commit()

    await wx.event(USER, "subscribe")
    home = await say(wx, "会员")
    assert "等级：普通会员" in home and "积分：0" in home and "升级为银卡会员" in home

    # 1. a first purchase: ¥168 → 168 points, growth 168 → 银卡 (pushed)
    confirm = await buy(wx, "普洱", 1, first=True)
    assert "应付：¥168.00" in confirm and "优惠券" not in confirm
    first_no = await pay(mall, await say(wx, "确认"))
    pushes = [m["text"]["content"] for m in mall.fake.sent_messages(USER)]
    assert any("支付成功" in p for p in pushes)
    assert any("恭喜升级为「银卡会员」" in p for p in pushes)
    home = await say(wx, "会员")
    assert "等级：银卡会员（购物享 9.8 折）" in home and "积分：168" in home

    # 2. sign in, claim the coupon (once)
    signed = await say(wx, "签到")
    assert "签到成功" in signed and "+5 积分" in signed and "当前积分 173" in signed
    assert "今天已经签到过了" in await say(wx, "签到")
    listing = await say(wx, "领券")
    assert "1. 满100减20：满¥100.00减¥20.00（剩 10 张）" in listing
    assert "领取成功" in await say(wx, "1")
    assert "每人限领 1 张" in await say(wx, "领券") + await say(wx, "1")

    # 3. check out with the coupon (proposed) and points
    confirm = await buy(wx, "普洱", 1, first=False)
    # ¥168 × 98% = ¥164.64, coupon -¥20 → ¥144.64, + ¥8 shipping (goods < ¥99? no: free from ¥99)
    assert "银卡会员折扣：-¥3.36" in confirm
    assert "满100减20：-¥20.00" in confirm and "回复「不用券」" in confirm
    assert "可用 173 积分抵扣" in confirm
    no_coupon = await say(wx, "不用券")
    assert "满100减20" not in no_coupon.split("应付")[0] and "应付：¥164.64" in no_coupon
    assert "满100减20：-¥20.00" in await say(wx, "用券")
    with_points = await say(wx, "用积分 100")
    assert "积分抵扣（100 积分）：-¥1.00" in with_points and "应付：¥143.64" in with_points
    placed = await say(wx, "确认")
    assert "应付：¥143.64" in placed and "已优惠 ¥24.36" in placed
    async with svc.uows() as uow:
        assert await loyalty.points_balance(uow, tenant.id, await _member(uow, tenant.id)) == 73
    order_no = await pay(mall, placed)

    async with svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        member = order.member_id
        b = await pricing.breakdown(uow, tenant.id, order.id)
        coupon_id = b.coupon_id
        assert (order.status, order.paid_fen, order.discount_fen) == ("paid", 14364, 2436)
        assert [a.step for a in b.adjustments] == [Step.LEVEL, Step.COUPON, Step.POINTS]
        assert (await loyalty.repo(uow).coupon(tenant.id, coupon_id))[0].status == "used"
        assert await loyalty.points_balance(uow, tenant.id, member) == 73 + 143

    # 4. a partial refund: points back in proportion, the coupon stays used
    async with svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=4788, reason="少发一件", actor="admin:1",
                             now=datetime.now(timezone.utc))
        await uow.commit()
    await settle(mall)
    async with svc.uows() as uow:
        # spent 100 → 100 × 4788 // 14364 = 33 back; earned 143 → 47 taken back
        assert await loyalty.points_balance(uow, tenant.id, member) == 216 + 33 - 47
        assert (await loyalty.repo(uow).coupon(tenant.id, coupon_id))[0].status == "used"

    # 5. the rest: every spent point back, every earned point taken back, the coupon returned
    async with svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=None, reason="退货", actor="admin:1",
                             now=datetime.now(timezone.utc))
        await uow.commit()
    await settle(mall)
    async with svc.uows() as uow:
        assert (await find_order(uow, tenant.id, order_no)).status == "refunded"
        assert await loyalty.points_balance(uow, tenant.id, member) == 173
        assert await loyalty.ledger_consistent(uow, tenant.id, member)
        assert (await loyalty.repo(uow).coupon(tenant.id, coupon_id))[0].status == "available"
    home = await say(wx, "会员")
    assert "积分：173" in home and "满100减20" in home
    async with svc.uows() as uow:   # the first order still stands
        assert (await find_order(uow, tenant.id, first_no)).status == "paid"


async def _member(uow, tenant_id: int) -> int:
    from social_mall.members.service import resolve_member

    member, _ = await resolve_member(uow, tenant_id, "mp", USER)
    return member.id


async def test_cancelling_an_unpaid_order_releases_coupon_and_points(mall, wx):
    svc = mall.svc
    tenant = await svc.tenant("demo")
    await wx.event(USER, "subscribe")
    async with svc.uows() as uow:
        tid = await loyalty.create_template(uow, tenant.id, name="立减5元", kind=CouponKind.AMOUNT, off_fen=500)
        member = await _member(uow, tenant.id)
        await loyalty.adjust_points(uow, tenant.id, member, 200, ref="gift", actor="admin:1", note="", now=svc.clock())
        await loyalty.claim(uow, tenant.id, member, tid, now=svc.clock())
        await uow.commit()
    confirm = await buy(wx, "龙井", 1, first=True)
    assert "立减5元：-¥5.00" in confirm
    assert "积分抵扣（200 积分）：-¥2.00" in await say(wx, "用积分")
    await say(wx, "确认")
    async with svc.uows() as uow:
        assert await loyalty.points_balance(uow, tenant.id, member) == 0
    assert "已取消" in await say(wx, "取消订单")
    await mall.settle()
    async with svc.uows() as uow:
        assert await loyalty.points_balance(uow, tenant.id, member) == 200
        coupons = await loyalty.repo(uow).coupons(tenant.id, member)
        assert [c.status for c, _ in coupons] == ["available"]


async def test_a_bind_code_typed_on_another_identity_merges_the_two_members(mall, wx):
    svc = mall.svc
    tenant = await svc.tenant("demo")
    other = "oUser_e2e_loyalty_000000002"
    await wx.event(USER, "subscribe")
    await wx.event(other, "subscribe")
    async with svc.uows() as uow:
        kept = await _member(uow, tenant.id)
        await loyalty.adjust_points(uow, tenant.id, kept, 30, ref="g1", actor="admin:1", note="", now=svc.clock())
        await uow.commit()
    assert "今天已经签到过了" not in (await wx.text(other, "签到")).text          # +5 on the other member
    code = re.search(r"绑定码：([0-9A-Z]{5}-[0-9A-Z]{5})", await say(wx, "绑定码")).group(1)
    wrong = "00000-00000" if code != "00000-00000" else "11111-11111"
    assert "绑定码无效" in (await wx.text(other, f"绑定 {wrong}")).text
    assert "绑定成功" in (await wx.text(other, f"绑定 {code}")).text
    await mall.settle()
    assert "积分：35" in (await wx.text(other, "会员")).text
    assert "积分：35" in await say(wx, "会员")
    assert "绑定码无效" in (await wx.text(other, f"绑定 {code}")).text        # used once
