"""What a member does through a tenant's second official account reaches WeChat through
that account (issue 25): an openid, a media id and a QR ticket are valid only with their
own account's token (the fake refuses another's: 40003 / 40007), and a payout's openid
only with the app id of the merchant paying it."""

from __future__ import annotations

import re

from handlers.mp_simulator import MPSimulator
from tests.channels_kit import APP2, MCH2, second_entrance


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
