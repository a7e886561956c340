"""Referral end to end through the real endpoint (signed requests, both backends):
distributor A's QR → B follows with A's scene → B buys in chat and pays in the sandbox
→ A (and A's referrer Z) see frozen commissions; refunds reverse; the sweeper unfreezes
with injected time; withdrawals are requested in chat, approved and paid out once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.members.service import resolve_member
from social_mall.orders.service import complete_order, find_order, ship_order
from social_mall.payments.service import request_refund
from social_mall.plugins import Delivery
from social_mall.referral import service
from storage.models import OutboxEvent
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=False)


async def settle(mall) -> None:
    """Events emitted by subscribers (a refund's order.refunded, a payout's result) are
    dispatched by the next outbox run: run it until nothing is left."""
    for _ in range(4):
        await mall.settle()


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def become_distributor(mall, wx, user, scene: str = "") -> str:
    await wx.event(user, "subscribe", f"qrscene_{scene}" if scene else "")
    await settle(mall)
    approved = await say(wx, user, "申请分销")
    assert "你已成为分销员" in approved
    code = re.search(r"推广码 (\w+)", approved).group(1)
    await settle(mall)
    return code


async def buy(mall, wx, user) -> str:
    """赣南脐橙 5斤装 ×2 (¥79.80 + ¥8.00 shipping), paid on the sandbox pay page."""
    await say(wx, user, "分类")
    await say(wx, user, "1")
    await wx.text(user, "1")
    await say(wx, user, "1 x2")
    await say(wx, user, "王小明 13912345678 广东省深圳市南山区科技园1号")
    placed = await say(wx, user, "确认")
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await settle(mall)
    return order_no


def texts(mall, user) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]


async def test_qr_follow_buy_gives_two_levels_of_frozen_commission_and_a_refund_reverses_it(mall, wx):
    z, a, b = "oRef_e2e_Z_000000000000001", "oRef_e2e_A_000000000000001", "oRef_e2e_B_000000000000001"
    z_code = await become_distributor(mall, wx, z)
    a_code = await become_distributor(mall, wx, a, scene=f"ref_{z_code}")     # Z referred A

    # A's QR: the official account's permanent QR with scene ref_<code>, sent as an image
    home = await say(wx, a, "我的推广")
    assert f"推广码 {a_code}" in home and f"/r/demo/{a_code}" in home and "已绑定会员：0 人" in home
    await settle(mall)
    images = [m for m in mall.fake.sent_messages(a) if m["msgtype"] == "image"]
    assert images and images[-1]["image"]["media_id"] in mall.fake.media
    assert f"ref_{a_code}" in mall.fake.qr_scenes.values()
    await say(wx, a, "我的推广")                                            # the QR once a day from here…
    await settle(mall)
    assert len([m for m in mall.fake.sent_messages(a) if m["msgtype"] == "image"]) == len(images)
    assert "推广二维码正在生成" in await say(wx, a, "推广码")                   # …and whenever asked
    await settle(mall)
    assert len([m for m in mall.fake.sent_messages(a) if m["msgtype"] == "image"]) == len(images) + 1
    made = [c for c in mall.fake.calls_to("/cgi-bin/qrcode/create") if f"ref_{a_code}".encode() in c.raw]
    assert len(made) == 1                                                    # made once, kept
    png = await mall.client.get(f"/referral/qr/demo/{a_code}.png")
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")

    # B follows through A's QR, buys and pays
    welcome = await wx.event(b, "subscribe", f"qrscene_ref_{a_code}")
    assert "欢迎关注" in welcome.text
    await settle(mall)
    order_no = await buy(mall, wx, b)

    assert any("佣金 ¥7.98" in t for t in texts(mall, a))                    # 10 % of ¥79.80 goods
    assert any("间推佣金 ¥3.99" in t for t in texts(mall, z))                # 5 % for A's referrer
    home = await say(wx, a, "我的推广")
    assert "已绑定会员：1 人" in home
    assert "冻结佣金：¥7.98" in home and "可提现：¥0.00" in home
    assert f"订单{order_no[-6:]} 直推 ¥7.98 冻结中" in home
    assert "冻结佣金：¥3.99" in await say(wx, z, "我的推广")

    # a partial refund (¥43.90 of ¥87.80 paid) reverses half, then the rest reverses it all
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        await request_refund(uow, tenant.id, order.id, amount_fen=4390, reason="部分退款", actor="admin:1",
                             now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    assert "冻结佣金：¥3.99" in await say(wx, a, "我的推广")                 # 798 − 399
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=None, reason="全部退款", actor="admin:1",
                             now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    home = await say(wx, a, "我的推广")
    assert "冻结佣金：¥0.00" in home and "已退回" in home
    async with mall.svc.uows() as uow:
        for code in (a_code, z_code):
            d = await service.distributor_by_code(uow, tenant.id, code)
            r = await service.reconcile(uow, tenant.id, d.id)
            assert r.ok and (d.frozen_fen, d.available_fen) == (0, 0)


async def test_unfreeze_after_completion_then_withdraw_in_chat_and_pay_out_once(mall, wx):
    a, b = "oRef_e2e_A_000000000000002", "oRef_e2e_B_000000000000002"
    stranger = "oRef_e2e_S_000000000000002"
    a_code = await become_distributor(mall, wx, a)
    await wx.event(b, "subscribe", f"qrscene_ref_{a_code}")
    await settle(mall)
    order_no = await buy(mall, wx, b)

    tenant = await mall.svc.tenant("demo")
    start = mall.svc.clock()
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        await ship_order(uow, tenant.id, order.id, tracking_no="SF100", now=start)
        await complete_order(uow, tenant.id, order.id, now=start)
        await uow.commit()
    await settle(mall)
    unfreeze = next(j for j in mall.svc.registry.jobs if j.name == "referral.unfreeze")
    assert await unfreeze.run() == 0                                         # freeze period: 7 days
    mall.svc.clock = lambda: start + timedelta(days=7, minutes=1)            # time injected, not slept
    assert await unfreeze.run() == 1
    home = await say(wx, a, "我的推广")
    assert "冻结佣金：¥0.00" in home and "可提现：¥7.98" in home

    # clear answers to bad input
    await wx.event(stranger, "subscribe")
    assert "你还不是分销员" in await say(wx, stranger, "提现 5")
    assert "没看懂提现金额「abc」" in await say(wx, a, "提现 abc")
    assert "低于最低提现额 ¥1.00" in await say(wx, a, "提现 0.5")
    assert "超过可提现余额 ¥7.98" in await say(wx, a, "提现 100")
    assert "可提现：¥7.98" in await say(wx, a, "提现")
    requested = await say(wx, a, "提现 5")
    assert "提现申请已提交：¥5.00" in requested and "剩余可提现：¥2.98" in requested

    async with mall.svc.uows() as uow:
        w = (await service.list_withdrawals(uow, tenant.id, status="requested"))[0]
        await service.approve_withdrawal(uow, tenant.id, w.id, actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    assert any("已打款到你的微信零钱" in t for t in texts(mall, a))
    # the payout delivery runs again (a retried outbox row): applied once
    pay_out = mall.svc.registry.subscribers[("referral.payout_due", "referral.pay_out")]
    payload = {"tenant_id": tenant.id, "withdrawal_id": w.id, "member_id": w.member_id,
               "out_bill_no": w.out_bill_no, "amount_fen": w.amount_fen}
    for _ in range(2):
        await pay_out(Delivery(999_999, tenant.id, "referral.payout_due", payload, 2))
    async with mall.svc.uows() as uow:
        assert (await service.get_withdrawal(uow, tenant.id, w.id)).status == "paid"
        d = await service.distributor_by_code(uow, tenant.id, a_code)
        r = await service.reconcile(uow, tenant.id, d.id)
    assert r.ok and d.available_fen == 298
    assert r.by_kind == {"commission": 798, "unfreeze": 0, "withdrawal": -500}
    assert sum("已打款" in t for t in texts(mall, a)) == 1


async def test_product_share_card_lands_on_a_page_that_sets_the_binding_intent(mall, wx):
    a = "oRef_e2e_A_000000000000003"
    code = await become_distributor(mall, wx, a)
    listing = await say(wx, a, "推广商品")
    assert "推广商品（第 1/" in listing and "直推佣金约 ¥" in listing and "回复商品序号生成分享卡片" in listing
    card = await wx.text(a, "1")
    assert card.msg_type == "news"
    url = card.articles[0]["Url"]
    assert f"/r/demo/{code}?p=" in url
    resp = await mall.client.get(url[url.index("/r/"):])
    assert resp.status == 200
    html = await resp.text()
    assert f"/referral/qr/demo/{code}.png" in html and "长按识别二维码关注公众号" in html
    assert card.articles[0]["Title"].split(" ")[0] in html                   # the shared product
    assert resp.cookies["sm_ref_demo"].value == code
    assert (await mall.client.get("/r/demo/zzzzzzzz")).status == 404


def test_the_module_switches_off():
    from bot import BUILTIN_MODULES
    from handlers.context import Services
    from social_mall.plugins import build_registry
    from social_mall.settings import Settings

    on = build_registry(Services(Settings(), ""), BUILTIN_MODULES, [])
    off = build_registry(Services(Settings(), ""), BUILTIN_MODULES, ["referral"])
    assert "referral" in on.modules and "referral" not in off.modules
    assert any(name == "referral.commission" for _, name in on.subscribers)
    assert not any(name.startswith("referral.") for _, name in off.subscribers)
    assert not any(f.name == "referral" for f in off.flows)


async def test_a_distributor_merged_by_bind_code_keeps_downline_commissions_and_qr_under_the_kept_member(mall, wx):
    """K and G are one person: G (referred by Z, a distributor with a buyer C) types K's bind
    code. The kept member K then has G's referrer, downline, commissions, and G's QR
    still binds newcomers, to K."""
    z, k, g = "oRef_e2e_Z_000000000000004", "oRef_e2e_K_000000000000004", "oRef_e2e_G_000000000000004"
    c, n = "oRef_e2e_C_000000000000004", "oRef_e2e_N_000000000000004"
    z_code = await become_distributor(mall, wx, z)
    k_code = await become_distributor(mall, wx, k)                            # the older member
    g_code = await become_distributor(mall, wx, g, scene=f"ref_{z_code}")     # Z referred G
    await wx.event(c, "subscribe", f"qrscene_ref_{g_code}")
    await settle(mall)
    order_no = await buy(mall, wx, c)
    assert "冻结佣金：¥7.98" in await say(wx, g, "我的推广")
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:                    # G also has ¥10 to withdraw, ¥5 asked for
        gone = (await resolve_member(uow, tenant.id, "mp", g))[0].id
        gd = await service.find_distributor(uow, tenant.id, gone)
        await service.adjust(uow, tenant.id, gd.id, 1000, reason="活动奖励", actor="admin:1", ref="e2e",
                             now=mall.svc.clock())
        await uow.commit()
    assert "提现申请已提交：¥5.00" in await say(wx, g, "提现 5")

    code = re.search(r"绑定码：([0-9A-Z]{5}-[0-9A-Z]{5})", await say(wx, k, "绑定码")).group(1)
    assert "绑定成功" in await say(wx, g, f"绑定 {code}")
    await settle(mall)

    for user in (k, g):                              # both identities are the kept member now
        home = await say(wx, user, "我的推广")
        assert f"推广码 {k_code}" in home and "已绑定会员：1 人" in home
        assert "冻结佣金：¥7.98" in home and f"订单{order_no[-6:]} 直推 ¥7.98 冻结中" in home
        assert "可提现：¥5.00" in home

    # G's withdrawal in flight moved along; its payout reaches the person even when the
    # event still names the merged member (the payout reads the withdrawal's member now)
    async with mall.svc.uows() as uow:
        w = (await service.list_withdrawals(uow, tenant.id, status="requested"))[0]
        await service.approve_withdrawal(uow, tenant.id, w.id, actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    pay_out = mall.svc.registry.subscribers[("referral.payout_due", "referral.pay_out")]
    await pay_out(Delivery(999_998, tenant.id, "referral.payout_due", {
        "tenant_id": tenant.id, "withdrawal_id": w.id, "member_id": gone, "out_bill_no": w.out_bill_no,
        "amount_fen": w.amount_fen}, 1))
    await settle(mall)
    async with mall.svc.uows() as uow:
        assert (await service.get_withdrawal(uow, tenant.id, w.id)).status == "paid"
    assert "可提现：¥5.00" in await say(wx, k, "我的推广")
    await wx.event(n, "subscribe", f"qrscene_ref_{g_code}")                    # G's QR, already printed
    await settle(mall)
    assert "已绑定会员：2 人" in await say(wx, k, "我的推广")

    async with mall.svc.uows() as uow:
        kept = (await resolve_member(uow, tenant.id, "mp", k))[0].id
        assert (await resolve_member(uow, tenant.id, "mp", g))[0].id == kept
        zd = await service.distributor_by_code(uow, tenant.id, z_code)
        assert await service.referrer_of(uow, tenant.id, kept, mall.svc.clock()) == zd.member_id
        kd = await service.find_distributor(uow, tenant.id, kept)
        assert (await service.distributor_by_code(uow, tenant.id, g_code)).id == kd.id
        for d in await service.list_distributors(uow, tenant.id):
            assert (await service.reconcile(uow, tenant.id, d.id)).ok
        assert {d.status for d in await service.list_distributors(uow, tenant.id)} == {"approved", "merged"}
        rows = (await uow.session.execute(select(OutboxEvent).where(
            OutboxEvent.topic == "member.merged"))).scalars().all()
    assert [(r.subscriber, r.status) for r in rows] == [("*", "done")]   # every subscriber (referral.merge too) at once
