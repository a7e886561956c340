"""The demo shop shows every module at work, through the real endpoints: a running
group-buy campaign with an open team, coupons to claim, a flash sale live now, referral on
with a demo distributor, the WeCom group bot answering from the settings, and a console
administrator printed once at the first start (never logged)."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.logs import _Formatter
from social_mall.settings import Settings
from storage.console_models import ApiToken  # noqa: F401 - console tables loaded
from storage.groupbuy_models import GroupbuyCampaign, GroupbuyTeam
from storage.loyalty_models import CouponTemplate, FlashPrice
from storage.models import Admin
from storage.referral_models import Distributor
from tests.conftest import TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import CSRF_RE
from tests.fakes.wecom import WeComBotSimulator

ADMIN_LINE = re.compile(r"用户名 / username: (\S+)\s+密码 / password: (\S+)")
DEFAULTS = Settings()


async def start(backend, tmp_path, fake_wechat, aiohttp_client, clock=None) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, demo_showcase=True)
    app = build_app(settings, auto_setup=True, **({"clock": clock} if clock else {}))
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


def wx_of(mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID)


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


def pushed(mall, user) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]


async def counts(mall) -> dict[str, int]:
    async with mall.svc.uows() as uow:
        async def n(model) -> int:
            return int(await uow.session.scalar(select(func.count()).select_from(model)))
        return {m.__name__: await n(m) for m in (GroupbuyCampaign, GroupbuyTeam, CouponTemplate, FlashPrice,
                                                    Distributor, Admin)}


async def test_every_module_can_be_tried_in_the_demo(backend, engine, fake_wechat, aiohttp_client, tmp_path,
                                                     capsys, caplog):
    with caplog.at_level(logging.DEBUG):
        mall = await start(backend, tmp_path, fake_wechat, aiohttp_client)
        printed = capsys.readouterr().out
        wx, user = wx_of(mall), "oDemo_tryall_0000000000001"
        await wx.event(user, "subscribe")

        # 拼团: a running campaign with an open team of the demo leader
        listing = await say(wx, user, "拼团")
        assert "演示拼团：阳光玫瑰葡萄" in listing and "暂时没有" not in listing
        card = await wx.text(user, "1")                 # the card answers; the teams follow as a push
        assert card.msg_type == "news" and "阳光玫瑰葡萄" in card.text
        await mall.settle()
        assert any("可参加的团" in t and "还差 2 人" in t for t in pushed(mall, user)), pushed(mall, user)

        # 领券: coupons to claim
        coupons = await say(wx, user, "领券")
        assert "新人券 满30减5" in coupons
        assert "领" in await say(wx, user, "1")

        # a flash sale live now, in the product list
        await say(wx, user, "分类")
        fruit = await say(wx, user, "1")
        assert re.search(r"海南贵妃芒 【限时】¥19\.90起", fruit), fruit

        # referral is on: applying makes a distributor at once
        assert "你已成为分销员" in await say(wx, user, "申请分销")

        # the WeCom group bot answers on /wechat/wecom/demo with the settings' token and key
        bot = WeComBotSimulator(mall.client.session, str(mall.client.make_url("/wechat/wecom/demo")),
                                token=DEFAULTS.wecom_token.get_secret_value(),
                                aes_key=DEFAULTS.wecom_aes_key.get_secret_value())
        assert await bot.verify("ping") == (200, "ping")
        group = await bot.say("wrDemoGroup001", "wmDemo001", "@拼团助手 开团 阳光玫瑰葡萄")
        assert group.status == 200 and "开团成功" in group.content, group

        # the console: the administrator printed at the first start logs in
        found = ADMIN_LINE.search(printed)
        assert found, printed
        username, password = found.groups()
        page = await (await mall.client.get("/console/login")).text()
        resp = await mall.client.post("/console/login", allow_redirects=False, data={
            "_csrf": CSRF_RE.search(page).group(1), "username": username, "password": password,
            "next": "/console/referral/distributors"})
        assert resp.status == 303, await resp.text()
        distributors = await mall.client.get("/console/referral/distributors")
        html = await distributors.text()
        assert distributors.status == 200 and html.count("<tr>") >= 3   # the demo distributor and ours

    async with mall.svc.uows() as uow:
        demo_distributor = await uow.session.scalar(select(func.count()).select_from(Distributor)
                                                    .where(Distributor.status == "approved"))
    assert demo_distributor == 2
    # the password went to the terminal once, never to the log stream
    assert printed.count(password) == 1
    assert all(password not in r.getMessage() and password not in str(vars(r)) for r in caplog.records)
    # nor do the WeCom bot's secrets, at the production level, in either format
    production = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert production
    for fmt in ("json", "human"):
        lines = "\n".join(_Formatter(fmt).format(r) for r in production)
        for secret in (DEFAULTS.wecom_token.get_secret_value(), DEFAULTS.wecom_aes_key.get_secret_value(),
                       password):
            assert secret not in lines


async def test_a_later_start_refreshes_the_demo_and_prints_no_second_admin(
        backend, engine, fake_wechat, aiohttp_client, tmp_path, capsys):
    first = await start(backend, tmp_path, fake_wechat, aiohttp_client)
    assert ADMIN_LINE.search(capsys.readouterr().out)
    before = await counts(first)
    assert before["Admin"] == 1 and before["GroupbuyCampaign"] == 1 and before["FlashPrice"] == 1
    again = await start(backend, tmp_path, fake_wechat, aiohttp_client)
    assert not ADMIN_LINE.search(capsys.readouterr().out)
    assert await counts(again) == before                         # the same moment: nothing added

    later = datetime.now(timezone.utc) + timedelta(days=3)
    moved = await start(backend, tmp_path, fake_wechat, aiohttp_client, clock=lambda: later)
    assert not ADMIN_LINE.search(capsys.readouterr().out)
    after = await counts(moved)
    assert after["Admin"] == 1 and after["FlashPrice"] == 1 and after["GroupbuyCampaign"] == 1
    assert after["GroupbuyTeam"] == before["GroupbuyTeam"] + 1   # the old team is past its 48 h
    wx, user = wx_of(moved), "oDemo_later_00000000000001"
    await say(wx, user, "分类")
    assert "海南贵妃芒 【限时】" in await say(wx, user, "1")          # the flash sale is live again
    await wx.event(user, "subscribe")
    await say(wx, user, "拼团")
    await wx.text(user, "1")
    await moved.settle()
    assert any("还差 2 人" in t for t in pushed(moved, user)), pushed(moved, user)


@pytest.mark.parametrize("module", ["groupbuy", "loyalty", "referral"])
async def test_a_disabled_module_adds_nothing_to_the_demo(backend, engine, fake_wechat, aiohttp_client, tmp_path,
                                                         module):
    from bot import build_app

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, demo_showcase=True,
                            disabled_modules=[module])
    mall = Mall(await aiohttp_client(build_app(settings, auto_setup=True)), None, settings, fake_wechat)
    mall.app = mall.client.server.app
    c = await counts(mall)
    off = {"groupbuy": ("GroupbuyCampaign", "GroupbuyTeam"), "loyalty": ("CouponTemplate", "FlashPrice"),
           "referral": ("Distributor",)}[module]
    assert all(c[name] == 0 for name in off), c
    assert all(c[name] > 0 for names in off_of_others(module) for name in names), c


def off_of_others(module: str) -> list[tuple[str, ...]]:
    table = {"groupbuy": ("GroupbuyCampaign", "GroupbuyTeam"), "loyalty": ("CouponTemplate", "FlashPrice"),
             "referral": ("Distributor",)}
    return [v for k, v in table.items() if k != module]


async def test_a_restart_keeps_what_the_merchant_switched_off(backend, engine, fake_wechat, aiohttp_client, tmp_path):
    from social_mall.groupbuy import service as gb
    from social_mall.referral import rules as ref_rules
    from social_mall.referral import service as ref

    first = await start(backend, tmp_path, fake_wechat, aiohttp_client)
    tenant = await first.svc.tenant("demo")
    async with first.svc.uows() as uow:
        campaign = await gb.repo(uow).campaign_titled(tenant.id, "演示拼团：阳光玫瑰葡萄")
        await gb.repo(uow).set_campaign_active(tenant.id, campaign.id, False)
        await ref.save_program(uow, tenant.id, ref_rules.ProgramSettings(enabled=False), actor="boss",
                               now=datetime.now(timezone.utc))
        await uow.commit()
    before = await counts(first)
    later = datetime.now(timezone.utc) + timedelta(days=40)
    again = await start(backend, tmp_path, fake_wechat, aiohttp_client, clock=lambda: later)
    assert await counts(again) == before                      # no new campaign, team or distributor
    async with again.svc.uows() as uow:
        assert not (await gb.repo(uow).campaign(tenant.id, campaign.id)).active
        assert not (await ref.program(uow, tenant.id)).enabled
    assert "暂时没有进行中的拼团活动" in await say(wx_of(again), "oDemo_stopped_000000000001", "拼团")
