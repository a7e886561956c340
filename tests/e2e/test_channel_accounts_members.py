"""What a member does through a tenant's second official account reaches WeChat through
that account (issue 25): an openid, a media id and a QR ticket are valid only with their
own account's token (the fake refuses another's: 40003 / 40007), and a payout's openid
only with the app id of the merchant paying it."""

from __future__ import annotations

import re

from handlers.mp_simulator import MPSimulator
from tests.channels_kit import APP2, second_entrance
from tests.fakes.wechat_pay import attach_real_pay


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def settle(mall) -> None:
    for _ in range(4):
        await mall.settle()


async def distributor_at_second_account(mall, wx2: MPSimulator, user: str) -> str:
    mall.fake.openid_apps[user] = APP2
    await wx2.event(user, "subscribe")
    await settle(mall)
    approved = await say(wx2, user, "申请分销")
    assert "你已成为分销员" in approved
    code = re.search(r"推广码 (\w+)", approved).group(1)
    await settle(mall)
    return code


async def test_the_referral_qr_is_made_uploaded_and_sent_at_the_distributors_account(mall, aiohttp_server, tmp_path):
    wx2, _fake2, _account, _merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    user = "oRef_second_acct_dist_00001"
    code = await distributor_at_second_account(mall, wx2, user)

    images = [m for m in mall.fake.sent_messages(user) if m["msgtype"] == "image"]
    assert images, "no QR image reached the distributor"    # before: the primary's token, 40003
    assert {app for app, to in mall.fake.delivered_via if to == user} == {APP2}
    media_id = images[-1]["image"]["media_id"]
    assert mall.fake.media_apps[media_id] == APP2              # uploaded with the second account's token
    [ticket] = [t for t, scene in mall.fake.qr_scenes.items() if scene == f"ref_{code}"]
    assert mall.fake.qr_apps[ticket] == APP2                   # following it follows the second account

    assert "推广二维码正在生成" in await say(wx2, user, "推广码")   # asked again: the kept QR and media
    await settle(mall)
    assert len([m for m in mall.fake.sent_messages(user) if m["msgtype"] == "image"]) == len(images) + 1
    assert len([t for t, scene in mall.fake.qr_scenes.items() if scene == f"ref_{code}"]) == 1
    assert len(mall.fake.calls_to("/cgi-bin/media/upload")) == 1


async def test_a_payout_goes_through_the_merchant_of_the_distributors_account_and_is_asked_there(
        mall, aiohttp_server, tmp_path):
    """A distributor known only at the second account (its openid valid only with APP2) is
    paid out by that account's merchant (APP2), not the default one (the primary's app id,
    which WeChat Pay refuses with this openid); the sweeper asks that merchant about it."""
    from social_mall.referral import service

    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    wx2, fake2, _account, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    user = "oRef_second_acct_payout_0001"
    for fake in (default, fake2):
        fake.openid_apps[user] = APP2
    code = await distributor_at_second_account(mall, wx2, user)
    fake2.transfer_state = "PROCESSING"
    tenant = await mall.svc.tenant("demo")
    w, _d = await withdraw_500(mall, code)

    assert list(fake2.transfers) == [w.out_bill_no]          # before: sent to the default merchant, refused
    bill = fake2.transfers[w.out_bill_no]
    assert (bill["openid"], bill["amount"]) == (user, 500)
    assert not default.transfers
    assert (w.status, w.payout_merchant_id) == ("approved", merchant)

    fake2.set_transfer(w.out_bill_no, "SUCCESS")
    sweep = next(j for j in mall.svc.registry.jobs if j.name == "referral.payout_sweep")
    assert await sweep.run() == 1
    await settle(mall)
    async with mall.svc.uows() as uow:
        assert (await service.get_withdrawal(uow, tenant.id, w.id)).status == "paid"
    assert not [c for c in default.calls if "transfer-bills" in c.path]     # never asked the default
    assert any("已打款" in m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text")


async def account_without_merchant(mall) -> tuple[MPSimulator, int]:
    """The demo tenant's second official account linked to no merchant of its own (its
    orders and payouts go to the default one)."""
    from tests.channels_kit import SECRET2, TOKEN2, second_account

    account = await second_account(mall, await mall.svc.tenant("demo"), None)
    mall.fake.more_apps[APP2] = SECRET2
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")), token=TOKEN2, app_id=APP2)
    return wx, account


async def withdraw_500(mall, code: str):
    from social_mall.referral import service

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        d = await service.distributor_by_code(uow, tenant.id, code)
        await service.adjust(uow, tenant.id, d.id, 1000, reason="测试入账", actor="admin:1", ref="t1",
                             now=mall.svc.clock())
        w = await service.request_withdrawal(uow, tenant.id, d.member_id, 500, now=mall.svc.clock())
        await service.approve_withdrawal(uow, tenant.id, w.id, actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    await settle(mall)
    async with mall.svc.uows() as uow:
        return (await service.get_withdrawal(uow, tenant.id, w.id),
                await service.distributor_by_code(uow, tenant.id, code))


async def test_a_payout_at_an_account_without_a_merchant_names_its_app_id_at_the_default_merchant(
        mall, aiohttp_server, tmp_path):
    """The distributor's openid is valid only with APP2; the account has no merchant, so the
    default one pays, naming APP2 (bound to it at WeChat Pay): before, the transfer named
    the merchant's own app id with APP2's openid and WeChat Pay refused it."""
    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    default.bound_appids.add(APP2)
    wx2, _account = await account_without_merchant(mall)
    user = "oRef_no_merchant_payout_001"
    default.openid_apps[user] = APP2
    code = await distributor_at_second_account(mall, wx2, user)

    w, d = await withdraw_500(mall, code)
    assert list(default.transfers) == [w.out_bill_no]
    assert (default.transfers[w.out_bill_no]["openid"], default.transfers[w.out_bill_no]["amount"]) == (user, 500)
    [call] = [c for c in default.calls if c.path.endswith("/transfer-bills")]
    assert call.body["appid"] == APP2
    assert (w.status, w.payout_merchant_id, d.available_fen) == ("paid", 0, 500)   # paid at the default
    assert any("已打款" in m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text")


async def test_a_payout_the_merchant_cannot_make_for_that_app_id_fails_and_returns_the_hold(
        mall, aiohttp_server, tmp_path):
    """Not bound: WeChat Pay refuses APPID_MCHID_NOT_MATCH once, for good; the withdrawal
    fails, the 500 go back to the available balance, and the distributor is told."""
    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    wx2, _account = await account_without_merchant(mall)
    user = "oRef_no_merchant_unbound_01"
    default.openid_apps[user] = APP2
    code = await distributor_at_second_account(mall, wx2, user)

    w, d = await withdraw_500(mall, code)
    assert not default.transfers
    assert w.status == "failed"
    assert d.available_fen == 1000
    told = [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]
    assert any("打款失败，金额已退回可提现余额" in t for t in told), told
    assert {app for app, to in mall.fake.delivered_via if to == user} == {APP2}
