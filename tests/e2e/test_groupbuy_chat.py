"""Group buying end to end through the real endpoints: signed official-account messages
(MPSimulator), the sandbox H5 pay page with its signed notify, the QR image route, the
sweepers with an injected clock, and a WeCom group conversation (encrypted callbacks +
the group-robot webhook fake)."""

from __future__ import annotations

import asyncio
import html as htmllib
import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.groupbuy import service
from social_mall.payments.sandbox import SandboxGateway
from storage.groupbuy_models import GroupbuySeat, GroupbuyTeam
from storage.models import MemberIdentity, Order, Refund
from tests.conftest import Mall, TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings
from tests.fakes.groupbuy_kit import make_campaign, make_member
from tests.fakes.pay_kit import WECHAT_UA
from tests.fakes.wecom import FakeWeComRobot, WeComBotSimulator, demo_group_bot
from tests.integration.test_flows_one_trip import CountingKV

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
    assert await jobs["groupbuy.expire"]() == {"failed": 0, "simulated": 1, "succeeded": 0}
    await mall.settle()
    assert any("拼团成功" in x and "系统补齐 4 人" in x for x in texts(mall, a))


@pytest.fixture
async def robot(aiohttp_server):
    fake = FakeWeComRobot()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


WECOM_TOKEN, WECOM_KEY = "wecom_token_1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


async def wecom_bot(mall, robot) -> WeComBotSimulator:
    """The demo tenant's WeCom group bot (settings saved) and a simulator posting to it."""
    return await demo_group_bot(mall, robot, WECOM_TOKEN, WECOM_KEY)


async def test_a_wecom_group_from_announcement_to_success(mall, robot):
    await campaign(mall, title="丹东草莓", size=3)
    token, key = WECOM_TOKEN, WECOM_KEY
    bot = await wecom_bot(mall, robot)
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



# -- one person, one member: the WeCom bind link ------------------------------------------------

def bind_link(text: str) -> str:
    return re.search(r"(http\S+/h5/bind/demo\?c=[A-Za-z0-9_-]+)", text).group(1)


class Browser:
    """WeChat's in-app browser for one person: its own cookie jar, WeChat's user agent."""

    def __init__(self, mall) -> None:
        self.mall = mall
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             headers={"User-Agent": WECHAT_UA})

    def url(self, path_or_url: str) -> str:
        path = path_or_url[path_or_url.index("/h5/"):] if "://" in path_or_url else path_or_url
        return str(self.mall.client.make_url(path))

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.session.get(self.url(path), allow_redirects=False) as resp:
            return resp.status, resp.headers.get("Location", ""), await resp.text()

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(self.url(path), data=form, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def open_bind_link(self, link: str, openid: str) -> str:
        """Open the link; without the payer cookie, through snsapi_base OAuth (the fake mints
        WeChat's code for `openid`) and back. Returns the confirmation page."""
        status, location, page = await self.get(link)
        if status == 302:
            assert location.startswith("/h5/oauth/demo?next=")
            status, to_wechat, _ = await self.get(location)
            assert status == 302
            q = parse_qs(urlsplit(to_wechat).query)
            assert q["scope"] == ["snsapi_base"] and q["appid"] == [TEST_APP_ID]
            back = urlsplit(q["redirect_uri"][0]).path
            code = self.mall.fake.mint_code(openid)
            status, location, _ = await self.get(f"{back}?code={code}&state={q['state'][0]}")
            assert status == 302 and location == link[link.index("/h5/"):]
            status, _, page = await self.get(location)
        assert status == 200, page
        return page

    async def confirm(self, page: str) -> tuple[int, str]:
        form = dict(re.findall(r'name="(\w)" value="([^"]*)"', page))
        action = re.search(r'action="([^"]+)"', page).group(1)
        return await self.post(action, {k: htmllib.unescape(v) for k, v in form.items()})

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def browsers():
    made: list[Browser] = []

    def make(mall) -> Browser:
        made.append(Browser(mall))
        return made[-1]

    yield make
    for b in made:
        await b.close()


async def member_of(mall, channel: str, external_id: str) -> int:
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        found = await uow.members.by_identity(tenant.id, channel, external_id)
    return found.id if found else 0


async def counts(mall) -> tuple[int, int]:
    """(identities, orders) in the database: what a refused link must not change."""
    async with mall.svc.uows() as uow:
        return (await uow.session.scalar(select(func.count()).select_from(MemberIdentity)),
                await uow.session.scalar(select(func.count()).select_from(Order)))


async def test_a_wecom_member_without_unionid_binds_once_through_oauth_and_pays_in_the_account(
        mall, robot, browsers):
    c = await campaign(mall, title="丹东草莓", size=2)
    bot = await wecom_bot(mall, robot)
    room, openid = "wrGroupBind01", "oBIND_fresh_0000000000000001"
    opened = (await bot.say(room, "leader_b", "@机器人 开团 丹东草莓")).content
    assert "@leader_b 开团成功" in opened and "/h5/bind/demo?c=" in opened
    joined = (await bot.say(room, "wm_fresh", "参团")).content
    assert "@wm_fresh 参团成功" in joined
    assert re.search(r"@wm_fresh 请先在微信里打开这个绑定链接.*\n" + re.escape(bind_link(joined)), joined)
    link = bind_link(joined)
    assert bind_link(opened) != link and await member_of(mall, "mp", openid) == 0

    # outside WeChat the page can't learn who you are
    outside = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with outside.get(mall.client.make_url(link[link.index("/h5/"):]), allow_redirects=False) as resp:
        assert resp.status == 200 and "请在微信中打开" in await resp.text()
    await outside.close()

    phone = browsers(mall)
    page = await phone.open_bind_link(link, openid)
    assert "@wm_fresh" in page and "确认绑定" in page
    assert await member_of(mall, "mp", openid) == 0                         # nothing happens before 确认
    status, done = await phone.confirm(page)
    assert status == 200 and "绑定成功" in done, done
    wecom_member = await member_of(mall, "wecom", "wm_fresh")
    assert wecom_member and await member_of(mall, "mp", openid) == wecom_member
    pay_url = re.search(r'href="([^"]+/h5/pay/demo/[^"]+)"', done).group(1).replace("&amp;", "&")
    assert pay_url == pay_link(joined)                                       # the pending team order

    # the link works once: the second click, and a replayed form, are refused and change nothing
    before = await counts(mall)
    status, _, again = await phone.get(link)
    assert status == 410 and "已经用过" in again
    status, replay = await phone.confirm(page)
    assert status == 410 and "已经用过" in replay
    assert await counts(mall) == before

    # paid through the pay link: the official account now reaches them
    await pay(mall, pay_url)
    assert any("还差 1 人" in t for t in texts(mall, openid)), texts(mall, openid)
    assert "已经关联公众号" in (await bot.say(room, "wm_fresh", "绑定")).content
    async with mall.svc.uows() as uow:
        seat = await uow.session.scalar(select(GroupbuySeat).where(GroupbuySeat.member_id == wecom_member))
    assert (seat.status, seat.campaign_id) == ("paid", c.id)


async def test_expired_unknown_and_cross_site_bind_attempts_change_nothing(mall, robot, browsers):
    await campaign(mall, title="丹东草莓", size=3)
    bot = await wecom_bot(mall, robot)
    room = "wrGroupBind02"
    await bot.say(room, "leader_x", "@机器人 开团 丹东草莓")
    link = bind_link((await bot.say(room, "wm_late", "参团")).content)
    phone = browsers(mall)
    page = await phone.open_bind_link(link, "oBIND_late_00000000000000001")
    before = await counts(mall)

    # a form posted from another browser (no payer cookie) or with a forged MAC
    stranger = browsers(mall)
    status, text = await stranger.confirm(page)
    assert status == 403 and "重新打开" in text
    forged = page.replace(re.search(r'name="f" value="([^"]+)"', page).group(1), "0" * 32)
    assert (await phone.confirm(forged))[0] == 403
    status, _, unknown = await phone.get("/h5/bind/demo?c=" + "A" * 32)
    assert status == 404 and "链接无效" in unknown

    # 11 minutes later the link has expired
    base = mall.svc.clock
    mall.svc.clock = lambda: base() + timedelta(minutes=11)
    status, _, expired = await phone.get(link)
    assert status == 410 and "已过期" in expired
    status, text = await phone.confirm(page)
    assert status == 410 and "已过期" in text
    assert await counts(mall) == before and await member_of(mall, "mp", "oBIND_late_00000000000000001") == 0

    # 「绑定」 in the group gives a fresh link (and the old one stays dead)
    fresh = (await bot.say(room, "wm_late", "绑定")).content
    assert "@wm_late" in fresh and bind_link(fresh) != link
    mall.svc.clock = base
    status, done = await phone.confirm(await phone.open_bind_link(bind_link(fresh), "oBIND_late_00000000000000001"))
    assert status == 200 and "绑定成功" in done and "回到群里继续参团" not in done


@pytest.fixture(params=["loyalty_on", "loyalty_off"])
async def any_mall(request, backend, engine, fake_wechat, aiohttp_client, tmp_path) -> Mall:
    """The app with the loyalty module on, and switched off (the bind link must not need it)."""
    from bot import build_app
    from handlers.context import SERVICES

    off = ["loyalty"] if request.param == "loyalty_off" else []
    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=off)
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def test_bind_link_merges_an_existing_follower_and_moves_the_team_with_them(any_mall, robot, browsers):
    mall = any_mall
    assert ("loyalty" in mall.svc.registry.modules) != ("loyalty" in mall.settings.disabled_modules)
    await campaign(mall, title="丹东草莓", size=2)
    openid = "oBIND_known_0000000000000001"
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    await wx.event(openid, "subscribe")              # already a member through the official account
    follower = await member_of(mall, "mp", openid)
    assert follower

    bot = await wecom_bot(mall, robot)
    room = "wrGroupBind03"
    opened = (await bot.say(room, "wk_known", "@机器人 开团 丹东草莓")).content
    assert "@wk_known 开团成功" in opened
    wecom_member = await member_of(mall, "wecom", "wk_known")
    assert wecom_member and wecom_member != follower     # no unionid: two members for now

    phone = browsers(mall)
    status, done = await phone.confirm(await phone.open_bind_link(bind_link(opened), openid))
    assert status == 200 and "绑定成功" in done and "去付款" in done
    await mall.settle()                                  # member.merged → the group-buy module
    assert await member_of(mall, "wecom", "wk_known") == follower == await member_of(mall, "mp", openid)
    async with mall.svc.uows() as uow:
        order = await uow.session.scalar(select(Order).where(Order.source.like("groupbuy:team:%")))
        team = await uow.session.scalar(select(GroupbuyTeam))
        seat = await uow.session.scalar(select(GroupbuySeat))
    assert (order.member_id, team.leader_member_id, seat.member_id) == (follower, follower, follower)
    assert "我开的团" in (await wx.text(openid, "我的团")).text     # the leader's tools, in the account

    pay_url = re.search(r'href="([^"]+/h5/pay/demo/[^"]+)"', done).group(1).replace("&amp;", "&")
    await pay(mall, pay_url)
    assert any("还差 1 人" in t for t in texts(mall, openid)), texts(mall, openid)
    # the WeCom side now speaks for the same member: no second link, and 参团 again is refused
    assert "/h5/bind/" not in (await bot.say(room, "wk_known", "绑定")).content
    assert "已经在团" in (await bot.say(room, "wk_known", "参团")).content


async def test_a_crowd_confirming_on_two_workers_fills_the_team_exactly(backend, engine, fake_wechat, aiohttp_client,
                                                                         tmp_path):
    """Signed 「确认」 from 40 followers at once, alternating between two app instances: each
    instance's join desk batches what reaches it; exactly the free seats are taken."""
    from bot import build_app
    from handlers.context import SERVICES

    s1 = app_settings(backend, tmp_path, fake_wechat.base_url)
    apps = [build_app(s1, auto_setup=True), build_app(s1.model_copy(update={"data_dir": tmp_path / "var2"}),
                                                      auto_setup=True)]
    clients = [await aiohttp_client(a) for a in apps]
    for a, cl in zip(apps, clients):
        a[SERVICES].public_base_url = str(cl.make_url("")).rstrip("/")
    if not backend.redis_url:  # the embedded store is per process: share it to model two workers
        apps[1][SERVICES].kv = apps[1][SERVICES].runner.kv = apps[0][SERVICES].kv
    sims = [MPSimulator(c.session, str(c.make_url("/wechat/mp/demo")), token=TEST_TOKEN, app_id=TEST_APP_ID,
                        aes_key=TEST_AES_KEY, safe_mode=True) for c in clients]
    svc = apps[0][SERVICES]
    tenant = await svc.tenant("demo")
    crowd = [f"oGB_crowd_{i:03d}_0000000000001" for i in range(40)]
    async with svc.uows() as uow:
        c = await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), size=4)
        leader = await make_member(uow, tenant.id, "oGB_crowd_leader_0000000001")
        for user in crowd:
            await make_member(uow, tenant.id, user)
        r = await service.open_team(uow, tenant.id, leader[0], c.id, c.prices[0].sku_id, 1, address_id=leader[1],
                                    now=datetime.now(timezone.utc), timeout=timedelta(minutes=30))
        await uow.commit()
    team_id = r.team.id
    for i, user in enumerate(crowd):
        sim = sims[i % 2]
        await sim.event(user, "SCAN", f"gb_{team_id}")
        ans = await sim.text(user, "参团")
        assert "确认" in ans.text, (ans.status, ans.body[:300])
    answers = await asyncio.gather(*(say(sims[i % 2], u, "确认") for i, u in enumerate(crowd)))
    won = [a for a in answers if "参团成功" in a]
    assert len(won) == 3, answers[:3]
    assert all("已满员" in a for a in answers if "参团成功" not in a), [a for a in answers if "参团成功" not in a][:2]
    async with svc.uows() as uow:
        t = await service.load_team(uow, tenant.id, team_id)
        seats = await uow.session.scalar(select(func.count()).select_from(GroupbuySeat)
                                         .where(GroupbuySeat.team_id == team_id))
        orders = await uow.session.scalar(select(func.count()).select_from(Order)
                                          .where(Order.source == f"groupbuy:team:{team_id}"))
    assert (t.held, seats, orders) == (4, 4, 4)
    # each winner can pay its own order
    assert len({pay_link(a) for a in won}) == 3


async def test_confirming_twice_shows_the_same_unpaid_order_again(mall, wx):
    """Joining the same team again (the share card scanned twice, 参团 → 确认) takes no second
    seat and answers with the first order's pay link; once paid, the member is told they are
    in already."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        c = await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), size=3)
        leader = await make_member(uow, tenant.id, "oGB_twice_leader_000000001")
        await make_member(uow, tenant.id, "oGB_twice_member_000000001")
        r = await service.open_team(uow, tenant.id, leader[0], c.id, c.prices[0].sku_id, 1, address_id=leader[1],
                                    now=datetime.now(timezone.utc), timeout=timedelta(minutes=30))
        await uow.commit()
    user = "oGB_twice_member_000000001"
    await wx.event(user, "SCAN", f"gb_{r.team.id}")
    await say(wx, user, "参团")
    first = await say(wx, user, "确认")
    assert "参团成功" in first
    await scan_again(wx, user, r.team.id, 1)
    await say(wx, user, "参团")
    again = await say(wx, user, "确认")
    assert f"你已在团{r.team.id} 里，订单还没付款" in again and pay_link(again) == pay_link(first), again
    async with mall.svc.uows() as uow:
        assert (await service.load_team(uow, tenant.id, r.team.id)).held == 2
        assert await uow.session.scalar(select(func.count()).select_from(Order)
                                        .where(Order.source == f"groupbuy:team:{r.team.id}")) == 2
    await pay(mall, pay_link(first))
    await scan_again(wx, user, r.team.id, 2)
    await say(wx, user, "参团")
    paid = await say(wx, user, "确认")
    assert "你已经在团" in paid and "/h5/pay/" not in paid, paid


async def scan_again(wx, user: str, team_id: int, n: int) -> None:
    """Another scan of the team's QR (events are told apart by sender and CreateTime)."""
    query, body = wx.signed_request(wx.event_xml(user, "SCAN", f"gb_{team_id}", created=int(time.time()) + n),
                                    user=user)
    assert (await wx.post(query, body)).status == 200


async def test_browsing_campaigns_again_takes_one_store_call(mall, wx):
    """The campaign list and a campaign's card are browsing (`reads_only`): once the worker
    wrote the conversation, each such message is one claim-and-compare-and-set call."""
    await campaign(mall)
    user = "o_gb_browse_000000000001"
    assert "丹东草莓拼团" in await say(wx, user, "拼团")
    counting = CountingKV(mall.svc.runner.kv)
    mall.svc.runner.kv = counting
    assert "丹东草莓" in await say(wx, user, "1")
    assert "丹东草莓拼团" in await say(wx, user, "拼团")
    assert counting.calls == ["claim_and_cas", "claim_and_cas"]
