"""A share link and its QR follow the official account the sharer talks to (issue 25): a
distributor's or a team leader's link made in a chat with the tenant's second account
names that account (`?a=<id>`), and the page and image behind it make their QR with that
account's token, so a friend who scans follows the account the sharer uses. Links from
the primary account read as before."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from handlers.mp_simulator import MPSimulator
from handlers.scene_qr import qr_png
from tests.channels_kit import APP2, second_entrance
from tests.e2e.test_channel_accounts_members import distributor_at_second_account, say, settle
from tests.e2e.test_channel_accounts import open_native
from tests.fakes.groupbuy_kit import make_campaign


def made_at(mall, scene: str) -> dict[str, str]:
    """The URL each QR of `scene` encodes → the app id whose token made it (the fake)."""
    fake = mall.fake
    return {fake.qr_urls[t]: fake.qr_apps[t] for t, s in fake.qr_scenes.items() if s == scene}


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def png(mall, path: str) -> bytes:
    resp = await mall.client.get(path)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "image/png"
    return await resp.read()


async def test_a_distributors_link_and_qr_image_follow_the_account_it_talks_to(mall, aiohttp_server, tmp_path):
    wx2, _fake2, account, _merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    user = "oRef_second_acct_link_00001"
    code = await distributor_at_second_account(mall, wx2, user)

    home = await say(wx2, user, "我的推广")
    link = re.search(r"推广链接：(\S+)", home).group(1)
    image = re.search(r"推广二维码：(\S+?)（", home).group(1)
    assert local(link) == f"/r/demo/{code}?a={account}"          # before: /r/demo/<code>, the primary's
    assert local(image) == f"/referral/qr/demo/{code}.png?a={account}"

    page = await mall.client.get(local(link))
    assert page.status == 200
    assert f"/referral/qr/demo/{code}.png?a={account}" in await page.text()
    body = await png(mall, local(image))
    [(url, app)] = made_at(mall, f"ref_{code}").items()          # the one made for the chat's image send
    assert app == APP2 and body == qr_png(url)                   # the page shows that account's QR

    # a product's share card made in the same chat names the account beside the product
    assert "回复商品序号生成分享卡片" in await say(wx2, user, "推广商品")
    answer = await wx2.text(user, "1")
    [card] = [a for a in answer.articles if a.get("Url")]
    query = dict(q.split("=") for q in urlsplit(card["Url"]).query.split("&"))
    assert query["a"] == str(account) and query["p"].isdigit()
    shown = await mall.client.get(local(card["Url"]))
    assert shown.status == 200 and f"/referral/qr/demo/{code}.png?a={account}" in await shown.text()

    # the primary's image is still made at the primary, and an account id that isn't the
    # tenant's official account (malformed, unknown) is the primary too
    tenant = await mall.svc.tenant("demo")
    for path in (f"/referral/qr/demo/{code}.png", f"/referral/qr/demo/{code}.png?a=x1",
                 f"/referral/qr/demo/{code}.png?a=999999"):
        await png(mall, path)
    made = made_at(mall, f"ref_{code}")
    assert sorted(made.values()) == sorted([APP2, tenant.wechat_app_id])    # one each, kept


async def test_a_team_leaders_share_card_and_team_qr_follow_the_account_it_talks_to(mall, aiohttp_server, tmp_path):
    wx2, fake2, account, _merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=3)
        await uow.commit()
    leader = "oGB_share_two_leader_000001"
    mall.fake.openid_apps[leader] = APP2
    await wx2.event(leader, "subscribe")
    for text in ("拼团", "1", "开团", "确认"):
        await wx2.text(leader, text)
    placed = (await wx2.text(leader, "王小明 13912345678 深圳市南山区科技园1号")).text
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    await open_native(mall, order_no)
    assert await fake2.pay(order_no) == 204
    await settle(mall)

    sent = mall.fake.sent_messages(leader)
    [card] = [m["news"]["articles"][0] for m in sent if m["msgtype"] == "news"]
    assert local(card["url"]) == f"/gb/demo/team/{team_id}?a={account}"       # before: no account
    assert local(card["picurl"]) == f"/groupbuy/qr/demo/{team_id}.png?a={account}"
    [progress] = [m["text"]["content"] for m in sent if m["msgtype"] == "text" and "拼团进度" in m["text"]["content"]]
    assert f"/gb/demo/team/{team_id}?a={account}" in progress

    page = await mall.client.get(local(card["url"]))
    assert page.status == 200 and f"/groupbuy/qr/demo/{team_id}.png?a={account}" in await page.text()
    body = await png(mall, local(card["picurl"]))
    [(url, app)] = made_at(mall, f"gb_{team_id}").items()
    assert app == APP2 and body == qr_png(url)                    # before: made with the primary's token

    assert "回复序号管理这个团" in await say(wx2, leader, "我的团")
    led = await say(wx2, leader, "1")
    assert f"/gb/demo/team/{team_id}?a={account}" in led, led

    await png(mall, f"/groupbuy/qr/demo/{team_id}.png")         # the primary's own, kept apart
    assert sorted(made_at(mall, f"gb_{team_id}").values()) == sorted([APP2, tenant.wechat_app_id])
    assert await png(mall, local(card["picurl"])) == body         # the second account's is kept


async def test_a_link_made_at_the_primary_account_reads_as_before(mall):
    tenant = await mall.svc.tenant("demo")
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=tenant.wechat_token, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    user = "oRef_primary_link_000000001"
    await wx1.event(user, "subscribe")
    assert "你已成为分销员" in (await wx1.text(user, "申请分销")).text
    home = (await wx1.text(user, "我的推广")).text
    link = re.search(r"推广链接：(\S+)", home).group(1)
    assert "?" not in link and re.fullmatch(r"/r/demo/\w+", local(link))
