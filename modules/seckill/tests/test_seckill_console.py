"""The console page: an admin creates a session (Beijing time), adds items (a bad form
answers 400 with the problem and changes nothing), sees 已售 / 待支付 / 剩余 and the
admission memory, edits an item (memory dropped: rebuilt from the database at the next
attempt) and the anti-abuse settings; an operator without the edit permission sees no forms
and can't post; every change is audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from social_mall_seckill.models import SeckillItem, SeckillSession, SeckillSettings
from storage.models import AuditEntry, Sku, Tenant

from tests.fakes.console_kit import csrf_of

from seckill_kit import Clock, console, count, live_session, make_mall, say, simulator

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def clock():
    return Clock(datetime(2030, 6, 6, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc))


async def test_sessions_and_items_from_the_console(backend, engine, tmp_path, fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    csrf = await console(mall)
    before = await count(mall, SeckillSession)
    bad = await mall.client.post("/console/seckill/sessions", data={
        "_csrf": csrf, "title": "14:00 场", "starts_at": "2030-06-06T15:00", "ends_at": "2030-06-06T14:00",
        "pay_minutes": "5"})
    assert bad.status == 400 and "结束时间须晚于开始时间" in await bad.text()
    assert await count(mall, SeckillSession) == before
    ok = await mall.client.post("/console/seckill/sessions", data={
        "_csrf": csrf, "title": "14:00 场", "starts_at": "2030-06-06T14:00", "ends_at": "2030-06-06T15:00",
        "pay_minutes": "5"})
    assert ok.status == 200
    async with mall.svc.uows() as uow:
        s = await uow.session.scalar(select(SeckillSession).where(SeckillSession.title == "14:00 场"))
        tenant = await uow.session.scalar(select(Tenant.id).where(Tenant.code == "demo"))
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant).order_by(Sku.id))
    assert s.starts_at == datetime(2030, 6, 6, 6, 0, tzinfo=timezone.utc)     # 14:00 in Beijing
    dear = await mall.client.post(f"/console/seckill/sessions/{s.id}/items", data={
        "_csrf": csrf, "sku_id": str(sku.id), "price": "999999", "stock": "10", "limit": "1"})
    assert dear.status == 400 and "秒杀价须低于原价" in await dear.text()
    assert await count(mall, SeckillItem, SeckillItem.session_id == s.id) == 0
    added = await mall.client.post(f"/console/seckill/sessions/{s.id}/items", data={
        "_csrf": csrf, "sku_id": str(sku.id), "price": "9.90", "stock": "10", "limit": "2"})
    assert added.status == 200
    async with mall.svc.uows() as uow:
        it = await uow.session.scalar(select(SeckillItem).where(SeckillItem.session_id == s.id))
    assert (it.price_fen, it.stock, it.limit_per_member) == (990, 10, 2)
    page = await (await mall.client.get("/console/seckill")).text()
    assert "14:00 场" in page and "¥9.90" in page and "未载入" in page
    edited = await mall.client.post(f"/console/seckill/items/{it.id}", data={
        "_csrf": csrf, "price": "8.80", "stock": "12", "limit": "1"})
    assert edited.status == 200
    settings = await mall.client.post("/console/seckill/settings", data={
        "_csrf": csrf, "new_member_minutes": "30", "attempts_per_minute": "10", "announce": "1"})
    assert settings.status == 200
    async with mall.svc.uows() as uow:
        it = await uow.session.get(SeckillItem, it.id, populate_existing=True)
        st = await uow.session.get(SeckillSettings, tenant)
        actions = set(await uow.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("seckill.%"))))
    assert (it.price_fen, it.stock, it.limit_per_member) == (880, 12, 1)
    assert (st.new_member_minutes, st.attempts_per_minute) == (30, 10)
    assert actions == {"seckill.session_create", "seckill.item_add", "seckill.item_edit", "seckill.settings"}


async def test_sold_and_reserved_show_and_new_members_are_barred(backend, engine, tmp_path, fake_wechat,
                                                                 aiohttp_client, clock):
    clock.at = datetime.now(timezone.utc)    # members are stamped with the wall clock when first seen
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    _, items = await live_session(mall, clock(), stock=3)
    csrf = await console(mall)
    await mall.client.post("/console/seckill/settings", data={
        "_csrf": csrf, "new_member_minutes": "30", "attempts_per_minute": "20", "announce": "1"})
    await wx.event("o_sk_new", "subscribe")
    await say(wx, "o_sk_new", "秒杀")
    await say(wx, "o_sk_new", "1")
    assert "注册 30 分钟后" in await say(wx, "o_sk_new", "1")
    clock.advance(minutes=31)
    await say(wx, "o_sk_new", "秒杀")
    await say(wx, "o_sk_new", "1")
    await say(wx, "o_sk_new", "1")
    assert "抢到了" in await say(wx, "o_sk_new", "王小明 13912345678 上海市黄浦区南京东路1号")
    page = await (await mall.client.get("/console/seckill")).text()
    row = page[page.index(f'id="item-{items[0]}"'):]
    row = row[:row.index("</tr>")]
    assert '<td class="sold">0</td><td class="reserved">1</td><td class="left">2</td>' in row
    assert "剩 2，占用 1" in row


async def test_an_operator_without_the_edit_permission_only_sees(backend, engine, tmp_path, fake_wechat,
                                                                 aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    await console(mall, "sk_service", role="service")
    page = await (await mall.client.get("/console/seckill")).text()
    assert "秒杀" in page and 'id="new-session"' not in page
    csrf = await csrf_of(mall.client, "/console/seckill")
    before = await count(mall, SeckillSession)
    refused = await mall.client.post("/console/seckill/sessions", data={
        "_csrf": csrf, "title": "x", "starts_at": "2030-06-06T14:00", "ends_at": "2030-06-06T15:00",
        "pay_minutes": "5"})
    assert refused.status == 403 and await count(mall, SeckillSession) == before
