"""The module as a plug-in: switched off (DISABLED_MODULES), the shop answers the same
conversation exactly as with it on (recording changes no reply) but for the module's own
「消息设置」 entry of the main menu and help, no event is recorded and the console has no
insights page; rules are pure and tested alone."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select

from social_mall_insights import rules
from social_mall_insights.models import Event
from tests.conftest import Mall, app_settings

from ins_kit import job, say, simulator

USER = "oIns_seams_user_00000000001"
SCRIPT = ("分类", "1", "1", "搜索 脐橙", "我的订单", "帮助")


def normalized(text: str) -> str:
    text = re.sub(r"https?://\S+", "<url>", text)
    return re.sub(r"\d{24}", "<order_no>", text)


def without_prefs_entry(text: str) -> str:
    """The reply as it reads with the module off: no 「消息设置」 menu item (the items after
    it numbered one less) and no help line of the module's."""
    lines = text.split("\n")
    out, gone = [], False
    for line in lines:
        m = re.match(r"^(\d+)\. (.*)$", line)
        if m and m[2] == "消息设置":
            gone = True
            continue
        if line.startswith("· 消息设置"):
            continue
        out.append(f"{int(m[1]) - 1}. {m[2]}" if m and gone else line)
    return "\n".join(out)


async def build(backend, tmp_path, fake, aiohttp_client, disabled: list[str]) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    # a loaded box must not turn a passive reply into a pushed one (the transcripts compare replies)
    settings = app_settings(backend, tmp_path, fake.base_url, disabled_modules=disabled, reply_budget_seconds=3600.0)
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake)


async def transcript(mall: Mall) -> list[str]:
    wx = simulator(mall)
    out = [normalized((await wx.event(USER, "subscribe")).text)]
    for line in SCRIPT:
        answer = await wx.text(USER, line)
        out.append(normalized(answer.text if answer.msg_type == "text" else str(answer.articles)))
    return out


async def test_switched_off_the_shop_answers_the_same_and_records_nothing(backend, engine, tmp_path, fake_wechat,
                                                                          aiohttp_client):
    on = await build(backend, tmp_path / "on", fake_wechat, aiohttp_client, [])
    with_module = await transcript(on)
    await on.settle()                  # the outbox's deliveries (member.joined…) recorded before counting
    await job(on, "insights.flush")
    async with on.svc.uows() as uow:
        recorded = await uow.session.scalar(select(func.count()).select_from(Event))
    assert recorded >= len(SCRIPT)
    async with on.svc.uows() as uow:   # the same schema for the second app: start again
        await uow.session.execute(Event.__table__.delete())
        await uow.commit()
    assert any("消息设置" in t for t in with_module)     # the module's menu entry (welcome, 帮助)
    off = await build(backend, tmp_path / "off", fake_wechat, aiohttp_client, ["insights"])
    assert await transcript(off) == [without_prefs_entry(t) for t in with_module]
    # no sink of this module (others, e.g. intelligence's view counter, may listen)
    def insights_sinks(mall: Mall) -> list[object]:
        return [s for s in mall.svc.registry.activity_sinks if s.__module__.startswith("social_mall_insights")]

    assert insights_sinks(on) and not insights_sinks(off)
    await off.settle()
    async with off.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Event)) == 0
    from tests.fakes.console_kit import login, make_admin

    await make_admin(off.svc.uows, "boss")
    await login(off.client, "boss")
    assert "数据洞察" not in await (await off.client.get("/console/")).text()
    assert (await off.client.get("/console/insights")).status == 404


def test_rfm_quintiles_segments_and_quiet_hours():
    assert rules.quintile_scores([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert rules.quintile_scores([5, 5, 5, 5]) == [1, 1, 1, 1]              # ties score alike
    assert rules.quintile_scores([1, 30, 300], higher_is_better=False) == [5, 4, 2]
    assert rules.segment(rules.Rfm(5, 5, 5)) == "重要价值客户"
    assert rules.segment(rules.Rfm(1, 5, 5)) == "重要保持客户"
    assert rules.segment_name("重要唤回客户") == "重要保持客户"
    assert rules.segment(rules.Rfm(1, 1, 1)) == "一般挽留客户"
    night = datetime(2025, 6, 5, 15, 30, tzinfo=timezone.utc)             # 23:30 in Shanghai
    morning = datetime(2025, 6, 6, 0, 5, tzinfo=timezone.utc)             # 08:05
    assert rules.in_quiet_hours(night, 22 * 60, 8 * 60) and not rules.in_quiet_hours(morning, 22 * 60, 8 * 60)
    assert rules.quiet_until(night, 22 * 60, 8 * 60) == datetime(2025, 6, 6, 0, 0, tzinfo=timezone.utc)
    assert rules.acquisition("ref_abc") == "referral" and rules.acquisition("gb_12") == "groupbuy"
    assert rules.acquisition("") == "organic" and rules.median([1, 2, 3, 10]) == 2
