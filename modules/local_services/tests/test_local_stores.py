"""Stores and location, through the signed official-account endpoint: 「附近门店」, a
location message, the location_select menu event and the reported location, the nearest
open stores with distance and map link, picking the member's store; opening hours past
midnight and holiday exceptions; the console's store form over HTTP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from social_mall_local.geo import Point
from social_mall_local.models import MemberStore, Store
from social_mall_local.stores import StoreInput, save_store
from storage.models import AuditEntry, Tenant
from tests.fakes.console_kit import login, make_admin

from local_kit import BUND, FAR_AWAY, PEOPLE_SQUARE, Clock, make_mall, say, shanghai, simulator

USER = "oUser_local_stores_000000001"


@pytest.fixture
def clock():
    return Clock(shanghai(2025, 6, 6, 12, 0))     # a Friday, noon


@pytest.fixture
async def shop(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    return await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)


async def member_store_of(mall, user):
    from social_mall.members.service import resolve_member

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", user)
        row = await uow.session.scalar(select(MemberStore).where(MemberStore.member_id == member.id))
        return None if row is None else (await uow.session.get(Store, row.store_id)).name


async def test_a_location_lists_the_nearest_open_stores_and_a_number_picks_one(shop):
    wx = simulator(shop)
    await wx.event(USER, "subscribe")
    assert "发送您的位置" in await say(wx, USER, "附近门店")
    listed = (await wx.location(USER, *PEOPLE_SQUARE, "人民广场")).text
    names = re.findall(r"^\d\. (\S+店) · (\S+) · (营业中[^\n]*)", listed, re.M)
    assert [n for n, _, _ in names] == ["人民广场店", "陆家嘴店", "徐家汇店"]     # by distance
    assert names[0][1] == "333m" and names[1][1] == "2.6km" and names[2][1] == "5.5km"
    assert names[0][2] == "营业中（至 02:00）"          # Fridays it closes past midnight
    assert names[1][2] == "营业中（至 22:00）"
    assert "https://apis.map.qq.com/uri/v1/marker?marker=coord:31.235470,121.474790;title:" in listed
    assert await member_store_of(shop, USER) is None
    chosen = await say(wx, USER, "1")
    assert "已把「人民广场店」设为您的门店" in chosen
    assert await member_store_of(shop, USER) == "人民广场店"
    # a number that lists nothing changes nothing
    await wx.location(USER, *BUND, "外滩")
    assert "没有这个序号，请回复 1–3 之间的数字" in await say(wx, USER, "7")
    assert await member_store_of(shop, USER) == "人民广场店"


async def test_past_midnight_only_the_late_store_is_open_then_none(shop, clock):
    wx = simulator(shop)
    await wx.event(USER, "subscribe")
    clock.at = shanghai(2025, 6, 7, 0, 30)             # Saturday 00:30: Friday's 10:00–02:00 still runs
    late = (await wx.location(USER, *BUND, "外滩")).text
    assert re.findall(r"^\d\. (\S+店)", late, re.M) == ["人民广场店"]
    assert "营业中（至 02:00）" in late
    clock.at = shanghai(2025, 6, 7, 3, 0)              # 03:00: everyone closed
    closed = (await wx.location(USER, *BUND, "外滩")).text
    assert closed.startswith("附近门店都已打烊")
    assert "休息中（06-07 10:00 开门）" in closed


async def test_a_holiday_closes_a_store_that_day(shop):
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        row = await uow.session.scalar(select(Store).where(Store.tenant_id == tenant.id, Store.name == "人民广场店"))
        row.exceptions = {"2025-06-06": []}
        await uow.commit()
    wx = simulator(shop)
    listed = (await wx.location(USER, *PEOPLE_SQUARE, "人民广场")).text
    assert re.findall(r"^\d\. (\S+店)", listed, re.M) == ["陆家嘴店", "徐家汇店"]


async def test_menu_location_select_and_the_reported_location(shop):
    wx = simulator(shop)
    await wx.event(USER, "subscribe")
    picked = (await wx.location_select(USER, "NEARBY_PICK", *PEOPLE_SQUARE, "人民广场")).text
    assert "1. 人民广场店 · 333m" in picked
    reported = (await wx.reported_location(USER, *BUND)).text
    assert "1. 陆家嘴店 · 1.2km" in reported and "2. 人民广场店 · 1.6km" in reported
    # in the middle of a checkout a reported location says nothing and keeps the step
    assert "西湖龙井" in await say(wx, USER, "搜索 龙井")       # one hit: its card
    assert "请发来收货地址" in await say(wx, USER, "x1")
    quiet = await wx.reported_location(USER, *BUND)
    assert quiet.status == 200 and quiet.body == "success"
    assert "手机号" in await say(wx, USER, "王小明")       # the checkout went on where it was


async def test_bad_and_far_locations_get_clear_answers(shop):
    wx = simulator(shop)
    await wx.event(USER, "subscribe")
    await say(wx, USER, "附近门店")
    bad = (await wx.location(USER, "abc", "121.4758", "?")).text
    assert "没能读出这个位置" in bad and "请发送位置" in bad     # asked again, still waiting
    far = (await wx.location(USER, *FAR_AWAY, "北京")).text
    assert "50 公里内还没有我们的门店" in far
    assert await member_store_of(shop, USER) is None


async def test_another_tenants_stores_are_never_listed(shop):
    async with shop.svc.uows() as uow:
        other = Tenant(code="other", name="别家")
        uow.session.add(other)
        await uow.session.flush()
        await save_store(uow, other.id, "test", StoreInput("别家人民广场店", "上海", "", Point(31_232_700, 121_475_800),
                                                            {str(d): [[0, 1440]] for d in range(1, 8)}, {}, (), True))
        await uow.commit()
    wx = simulator(shop)
    listed = (await wx.location(USER, *PEOPLE_SQUARE, "人民广场")).text
    assert "别家" not in listed and "1. 人民广场店" in listed


async def test_console_store_form_refuses_bad_input_and_saves_good_input_audited(shop):
    await make_admin(shop.svc.uows, "boss")
    csrf = await login(shop.client, "boss")
    form = {"_csrf": csrf, "name": "静安店", "address": "上海市静安区南京西路1号", "phone": "021-1234",
            "lat": "31.229000", "lng": "121.455000", "active": "1", "exceptions": "2025-10-01 休息",
            **{f"hours_{d}": "10:00-22:00" for d in range(1, 8)}}
    for bad in ({"lat": "91"}, {"lng": "abc"}, {"hours_3": "25:00-26:00"}, {"exceptions": "明天 休息"},
                {"pictures": "javascript:alert(1)"}, {"name": ""}, {"name": "店\x07"}):
        resp = await shop.client.post("/console/local/stores", data={**form, **bad}, allow_redirects=False)
        assert resp.status == 400, bad
        assert "role=\"alert\"" in await resp.text()
    tenant = await shop.svc.tenant("demo")
    async with shop.svc.uows() as uow:
        assert await uow.session.scalar(select(Store).where(Store.tenant_id == tenant.id, Store.name == "静安店")) is None
    ok = await shop.client.post("/console/local/stores", data={**form, "hours_6": "18:00-02:00"},
                                allow_redirects=False)
    assert ok.status == 303
    async with shop.svc.uows() as uow:
        row = await uow.session.scalar(select(Store).where(Store.tenant_id == tenant.id, Store.name == "静安店"))
        assert (row.lat_e6, row.lng_e6) == (31_229_000, 121_455_000)
        assert row.hours["6"] == [[1080, 1560]] and row.exceptions == {"2025-10-01": []}
        audit = await uow.session.scalar(select(AuditEntry).where(AuditEntry.subject == f"store:{row.id}"))
        assert audit.actor == "admin:boss" and audit.after["name"] == "静安店"
    page = await (await shop.client.get(ok.headers["Location"])).text()
    assert 'value="18:00-02:00"' in page
    # without a session: the login page; a forged POST without CSRF: 403
    anon = await shop.client.post("/console/local/stores", data={**form, "_csrf": "x"}, allow_redirects=False)
    assert anon.status == 403
