"""What WeChat sends is stored whole when it is as long as WeChat's documents allow, on
both backends (PostgreSQL refuses a VARCHAR overflow where SQLite keeps it): a genuine
notify or message must never fail on every retry because of a length.

Documented maxima (WeChat Pay APIv3, official-account messages) and where they land:
transaction_id 32 → payments.transaction_id (64); payer.openid 128 → payments.payer (128);
notify id 36 → pay_notifications.event_id (64, cut to 64 on write); QR scene_str 64 →
members.entry_source (80, cut to 80 on write: a longer one is not from a genuine code)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from storage.models import Member, MemberIdentity, Payment
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.pay_kit import WECHAT_UA, XRW, load, new_order, oauth_login
from tests.fakes.wechat_pay import attach_real_pay


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def test_a_notify_with_the_longest_documented_ids_pays_the_order(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", "o_lengths_000000000000000001")
    resp = await mall.client.post(f"/h5/pay/{tenant.code}/{order.order_no}/jsapi?t={token}",
                                  headers={**XRW, "User-Agent": WECHAT_UA})
    assert resp.status == 200, await resp.text()
    transaction_id, payer = "4" * 32, "o" + "P" * 127
    fake = wxpay.orders[order.order_no]
    fake.state, fake.transaction_id, fake.openid = "SUCCESS", transaction_id, payer
    fake.success_time = "2026-11-25T10:00:00+08:00"
    assert await wxpay.send_notify(order.order_no) == 204
    assert (await load(mall, tenant, order.order_no)).status == "paid"
    async with mall.svc.uows() as uow:
        row = (await uow.session.execute(select(Payment.transaction_id, Payment.payer)
                                         .where(Payment.out_trade_no == order.order_no))).one()
    assert tuple(row) == (transaction_id, payer)


async def test_a_qr_scene_longer_than_the_column_still_gets_the_welcome(mall):
    """A scene WeChat would never send (scene_str is at most 64): the endpoint ignores it
    (parse_scene) and the follow is answered like any other, never 「系统繁忙」 (PostgreSQL
    refused the 100-character entry_source on every retry)."""
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    user = "oUser_long_scene_0000000001"
    answer = await wx.event(user, "subscribe", "qrscene_" + "x" * 100)
    assert answer.status == 200 and "欢迎关注" in answer.text
    async with mall.svc.uows() as uow:
        source = await uow.session.scalar(
            select(Member.entry_source).join(MemberIdentity, MemberIdentity.member_id == Member.id)
            .where(MemberIdentity.external_id == user))
    assert source == ""   # no QR code carries it: recorded as a plain follow
    assert "欢迎关注" not in (await wx.text(user, "会员")).text and "会员中心" in (await wx.text(user, "会员")).text
