"""Group buying end to end through the real endpoints: signed official-account messages
(MPSimulator), the sandbox H5 pay page with its signed notify, the QR image route, the
sweepers with an injected clock, and a WeCom group conversation (encrypted callbacks +
the group-robot webhook fake)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.groupbuy import service
from social_mall.payments.sandbox import SandboxGateway
from storage.models import Refund
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.groupbuy_kit import make_campaign
from tests.fakes.wecom import FakeWeComRobot, WeComBotSimulator

ADDRESS = "王小明 13912345678 深圳市南山区科技园1号"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def campaign(mall, **kw) -> service.CampaignView:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        c = await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), **kw)
        await uow.commit()
    return c


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def pay(mall, pay_url: str) -> None:
    path = pay_url[pay_url.index("/h5/"):]
    page = await (await mall.client.get(path)).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()


def pay_link(text: str) -> str:
    return re.search(r"(http\S+/h5/pay/demo/\S+)", text).group(1)


def texts(mall, user) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]


async def test_open_share_scan_join_pay_and_the_team_succeeds(mall, wx):
    c = await campaign(mall, title="丹东草莓", size=2, leader_discount_fen=300, group_fen=6600)
    leader, friend = "oGB_leader_000000000000001", "oGB_friend_000000000000001"
    await wx.event(leader, "subscribe")
    listing = await say(wx, leader, "拼团")
    assert "丹东草莓拼团" in listing and "¥66.00" in listing and "回复序号" in listing
    detail = await wx.text(leader, "1")
    assert detail.msg_type == "news" and "拼团价 ¥66.00" in detail.articles[0]["Description"]
    await say(wx, leader, "拼团")
    await wx.text(leader, "1")
    confirm = await say(wx, leader, "开团")
    assert "拼团价 ¥63.00/件" in confirm and "确认" in confirm      # the leader's discount
    assert "姓名 手机号 详细地址" in await say(wx, leader, "确认")
    placed = await say(wx, leader, ADDRESS)
    assert "开团成功" in placed and "还差 2 人" in placed
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await pay(mall, pay_link(placed))

    # the leader got the progress and a share card with the team's QR image
    assert any("已有 1/2 人付款，还差 1 人" in t for t in texts(mall, leader))
    cards = [m for m in mall.fake.sent_messages(leader) if m["msgtype"] == "news"]
    assert len(cards) == 1
    art = cards[0]["news"]["articles"][0]
    assert art["url"].endswith(f"/gb/demo/team/{team_id}") and art["picurl"].endswith(f"/groupbuy/qr/demo/{team_id}.png")
    png = await mall.client.get(f"/groupbuy/qr/demo/{team_id}.png")
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")
    assert f"gb_{team_id}" in mall.fake.qr_scenes.values()
    page = await (await mall.client.get(f"/gb/demo/team/{team_id}")).text()
    assert "还差 <b>1</b> 人" in page

    # a friend follows through the QR code and lands on the team's join step
    landed = await wx.event(friend, "subscribe", f"qrscene_gb_{team_id}")
    assert f"团{team_id}" in landed.text and "回复「参团」" in landed.text
    confirm = await say(wx, friend, "参团")
    assert "拼团价 ¥66.00/件" in confirm
    await say(wx, friend, "确认")
    placed = await say(wx, friend, ADDRESS)
    assert "参团成功" in placed
    await pay(mall, pay_link(placed))

    for user in (leader, friend):
        assert any("拼团成功" in t and f"团{team_id}" in t for t in texts(mall, user)), texts(mall, user)
    async with mall.svc.uows() as uow:
        t = await service.load_team(uow, (await mall.svc.tenant("demo")).id, team_id)
    assert (t.status, t.paid) == ("succeeded", 2)
    assert "我开的团" in await say(wx, leader, "我的团")


async def test_full_team_offers_a_new_team(mall, wx):
    await campaign(mall, title="丹东草莓", size=2)
    a, b, c = "oGB_full_a_0000000000000001", "oGB_full_b_0000000000000001", "oGB_full_c_0000000000000001"
    for u in (a, b, c):
        await wx.event(u, "subscribe")
    await say(wx, a, "拼团")
    await wx.text(a, "1")
    await say(wx, a, "开团")
    await say(wx, a, "确认")
    team_id = int(re.search(r"团(\d+)", await say(wx, a, ADDRESS)).group(1))
    for u in (b, c):
        await wx.event(u, "SCAN", f"gb_{team_id}")
        await say(wx, u, "参团")
        await say(wx, u, "确认") if u == b else None
    assert "参团成功" in await say(wx, b, ADDRESS)
    full = await say(wx, c, "确认")
    assert "已满员" in full and "开团" in full
    assert "开团确认" in await say(wx, c, "开团")


async def test_expired_team_is_refunded_once_even_with_two_sweepers_at_once(mall, wx, monkeypatch):
    await campaign(mall, title="丹东草莓", size=3)
    calls: list[str] = []
    original = SandboxGateway.refund

    async def counting(self, **kw):
        calls.append(kw["out_refund_no"])
        return await original(self, **kw)

    monkeypatch.setattr(SandboxGateway, "refund", counting)
    a, b = "oGB_exp_a_00000000000000001", "oGB_exp_b_00000000000000001"
    for u in (a, b):
        await wx.event(u, "subscribe")
    await say(wx, a, "拼团")
    await wx.text(a, "1")
    await say(wx, a, "开团")
    await say(wx, a, "确认")
    placed = await say(wx, a, ADDRESS)
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await pay(mall, pay_link(placed))
    await wx.event(b, "SCAN", f"gb_{team_id}")
    await say(wx, b, "参团")
    await say(wx, b, "确认")
    await pay(mall, pay_link(await say(wx, b, ADDRESS)))

    svc = mall.svc
    svc.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=25)
    jobs = {j.name: j.run for j in svc.registry.jobs}
    await asyncio.gather(jobs["groupbuy.expire"](), jobs["groupbuy.expire"]())
    await asyncio.gather(jobs["groupbuy.refund"](), jobs["groupbuy.refund"]())
    await mall.settle()
    await asyncio.gather(jobs["groupbuy.refund"](), jobs["groupbuy.refund"]())
    await mall.settle()

    assert len(calls) == 2 and len(set(calls)) == 2        # one refund per paid order
    async with svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund))).all()
        t = await service.load_team(uow, (await svc.tenant("demo")).id, team_id)
    assert [r.status for r in refunds] == ["succeeded", "succeeded"]
    assert t.status == "refunded"
    for u in (a, b):
        assert any("未能成团" in x for x in texts(mall, u))
        assert any("退款已完成" in x for x in texts(mall, u))


async def test_simulated_completion_succeeds_on_expiry(mall, wx):
    await campaign(mall, title="海苔脆", size=5, simulated=True)
    a = "oGB_sim_a_00000000000000001"
    await wx.event(a, "subscribe")
    await say(wx, a, "拼团")
    await wx.text(a, "1")
    await say(wx, a, "开团")
    await say(wx, a, "确认")
    await pay(mall, pay_link(await say(wx, a, ADDRESS)))
    mall.svc.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=25)
    jobs = {j.name: j.run for j in mall.svc.registry.jobs}
    assert await jobs["groupbuy.expire"]() == {"failed": 0, "simulated": 1}
    await mall.settle()
    assert any("拼团成功" in x and "系统补齐 4 人" in x for x in texts(mall, a))


@pytest.fixture
async def robot(aiohttp_server):
    fake = FakeWeComRobot()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


async def test_a_wecom_group_from_announcement_to_success(mall, robot):
    await campaign(mall, title="丹东草莓", size=3)
    token, key = "wecom_token_1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await service.save_wecom_settings(uow, service.WecomSettings(
            tenant.id, token, key, "", robot.webhook_url, "机器人"), actor="test", now=datetime.now(timezone.utc))
        await uow.commit()
    bot = WeComBotSimulator(mall.client.session, str(mall.client.make_url("/wechat/wecom/demo")),
                            token=token, aes_key=key)
    assert await bot.verify("echo123") == (200, "echo123")
    forged = WeComBotSimulator(mall.client.session, bot.url, token="wrong", aes_key=key)
    assert (await forged.say("chat1", "u1", "参团")).status == 403

    room = "wrGroupChat0001"
    assert (await bot.say(room, "leader", "大家好")).content == ""            # chatter: ignored
    opened = await bot.say(room, "leader", "@机器人 开团 丹东草莓")
    assert "@leader 开团成功" in opened.content and "还差 3 人" in opened.content
    pays = [pay_link(opened.content)]
    msg = bot.group_text(room, "m1", "参团")
    first = await bot.post(*bot.envelope(msg))
    assert "@m1 参团成功" in first.content
    assert (await bot.post(*bot.envelope(msg))).content == ""               # a redelivered msgid
    pays.append(pay_link(first.content))
    again = await bot.say(room, "m1", "参团")
    assert "已经在团" in again.content
    second = await bot.say(room, "m2", "1")
    assert "@m2 参团成功" in second.content
    pays.append(pay_link(second.content))
    late = (await bot.say(room, "m3", "参团")).content
    assert "已满员" in late and "开团" in late                               # offered a new team

    for link in pays:
        await pay(mall, link)
    announced = robot.texts()
    assert any("已付款 1/3，还差 2 人, 剩余 23 小时" in t for t in announced), announced
    assert any("拼团成功" in t for t in announced)
