"""The funnel per day, channel and source (the member's acquisition kind): a follower who
came through a poster buys in the official account, an organic follower only looks, a WeCom
group member opens a team in the group; each filter counts only its own members, stage by
stage, in the JSON, the CSV and the page. Through the signed official-account endpoint, the
WeCom bot's callback, the sandbox payment and the console."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.fakes.console_kit import login, make_admin
from tests.fakes.groupbuy_kit import make_campaign
from tests.fakes.wecom import FakeWeComRobot, WeComBotSimulator, demo_group_bot

from ins_kit import ADDRESS, pay, record, say, simulator

POSTER, ORGANIC = (f"oIns_ffilt_{x}_000000000001" for x in ("poster", "organic"))
WECOM_TOKEN, WECOM_KEY = "wecom_token_ffilt", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
async def robot(aiohttp_server):
    fake = FakeWeComRobot()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


async def group_bot(mall, robot) -> WeComBotSimulator:
    """A group-buy campaign and the demo shop's WeCom group bot, and a simulator of its callback."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, title="丹东草莓", size=3, start=datetime.now(timezone.utc))
        await uow.commit()
    return await demo_group_bot(mall, robot, WECOM_TOKEN, WECOM_KEY)


async def test_the_funnel_filters_by_channel_and_source_per_day(mall, robot):
    wx = simulator(mall)
    await wx.event(POSTER, "subscribe", "qrscene_poster_9")
    await wx.event(ORGANIC, "subscribe")
    assert "水果生鲜" in await say(wx, POSTER, "分类")
    assert "赣南脐橙" in await say(wx, POSTER, "1")
    assert (await wx.text(POSTER, "1")).msg_type == "news"
    assert "请发来收货地址" in await say(wx, POSTER, "1×2")
    assert "应付" in await say(wx, POSTER, ADDRESS)
    await pay(mall, await say(wx, POSTER, "确认"))                 # poster → view, order, paid (bought at once)
    await say(wx, ORGANIC, "分类")
    await say(wx, ORGANIC, "1")
    assert (await wx.text(ORGANIC, "1")).msg_type == "news"          # organic → views only
    bot = await group_bot(mall, robot)
    assert "开团成功" in (await bot.say("wrFunnel01", "leader_ffilt", "@机器人 开团 丹东草莓")).content
    await record(mall)
    await make_admin(mall.svc.uows, "boss_ffilt")
    await login(mall.client, "boss_ffilt")

    async def funnel(query: str) -> dict:
        r = await mall.client.get(f"/console/insights?days=7&format=json{query}")
        assert r.status == 200
        return json.loads(await r.text())

    everyone = await funnel("")
    mp = await funnel("&channel=mp")
    assert mp["channel"] == "mp" and mp["total"]["members"] == [2, 2, 0, 1, 1]
    assert mp["total"]["paid_fen"] == everyone["total"]["paid_fen"] > 0
    wecom = await funnel("&channel=wecom")
    assert wecom["total"]["members"] == [1, 0, 0, 1, 0]             # the leader's order, placed in the group
    poster = await funnel("&source=qr")
    assert poster["source"] == "qr" and poster["total"]["members"] == [1, 1, 0, 1, 1]
    assert poster["total"]["rates"][-1] == 1.0 and mp["total"]["rates"][-1] == 0.5    # paid / visits
    assert (await funnel("&channel=mp&source=organic"))["total"]["members"] == [1, 1, 0, 0, 0]
    assert (await funnel("&channel=wecom&source=organic"))["total"]["members"] == [1, 0, 0, 1, 0]
    assert (await funnel("&channel=wecom&source=qr"))["total"]["members"] == [0, 0, 0, 0, 0]
    # per day: today holds it all, the six days before nothing
    assert [d["members"] for d in poster["days"]] == [[0] * 5] * 6 + [[1, 1, 0, 1, 1]]
    # a value that is no channel or source of the tenant's is no filter
    odd = await funnel("&channel=x%27%3B&source=nope")
    assert odd["channel"] == "" and odd["source"] == "" and odd["total"] == everyone["total"]
    csv = (await (await mall.client.get("/console/insights?days=7&format=csv&channel=wecom")).text()).lstrip("\ufeff")
    assert csv.splitlines()[-1].split(",")[1:6] == ["1", "0", "0", "1", "0"]
    page = await (await mall.client.get("/console/insights?days=7&channel=wecom&source=organic")).text()
    assert '<option value="wecom" selected>' in page and '<option value="organic" selected>' in page


async def test_a_message_to_the_bot_in_a_wecom_group_is_the_members_event(mall, robot):
    """Every channel's messages are recorded: a WeCom group member's 开团 to the bot is a
    `message` event on channel wecom (before: only the order it placed was)."""
    from sqlalchemy import select

    from social_mall.members.service import member_of
    from social_mall_insights.models import Event

    tenant = await mall.svc.tenant("demo")
    bot = await group_bot(mall, robot)
    assert "开团成功" in (await bot.say("wrFunnel02", "leader_wcmsg", "@机器人 开团 丹东草莓")).content
    assert (await bot.say("wrFunnel02", "leader_wcmsg", "@机器人 帮助")).content
    await record(mall)
    async with mall.svc.uows() as uow:
        member = await member_of(uow, tenant.id, "wecom", "leader_wcmsg")
        kinds = [(k, c) for k, c in await uow.session.execute(
            select(Event.kind, Event.channel).where(Event.member_id == member).order_by(Event.id))]
    assert kinds.count(("message", "wecom")) == 2, kinds
