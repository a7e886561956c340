"""The module as a plug-in: found through the entry-point group with its Alembic branch,
its flow, menu entry, job and console page registered when on; switched off, with a live
bargain in the database, the shop answers 「砍价」, 「帮砍 …」 and a bk_ QR scene exactly as a
shop without the package does, and its routes are gone."""

from __future__ import annotations

import re
from datetime import timedelta

from bot import BUILTIN_MODULES
from social_mall import plugins
from social_mall.plugins import discover, installed_modules
from social_mall_bargain import MODULE, service
from tests.conftest import Mall, TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings
from handlers.mp_simulator import MPSimulator

from bargain_kit import follower, make_campaign

USER = "oUser_bargain_seams_0000001"


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert "bargain" in [m.name for m in discover(BUILTIN_MODULES)]
    assert MODULE.migrations is not None and (MODULE.migrations / "bargain_0001_tables.py").is_file()


async def test_enabled_module_registers_its_flow_job_and_menu(mall):
    reg = mall.svc.registry
    assert "bargain" in reg.modules and "bargain.expire" in [j.name for j in reg.jobs]
    assert ("砍价活动", "砍价") in mall.svc.runner.flows.menu.items


async def _mall(backend, tmp_path, fake_wechat, aiohttp_client, disabled=()):
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=list(disabled))
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def _transcript(mall, code: str) -> list[str]:
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    out = [(await wx.event(USER, "subscribe")).text]
    for line in ("砍价", f"帮砍 {code}", "我的砍价", "砍价购买", "菜单"):
        out.append((await wx.text(USER, line)).text)
    out.append((await wx.event(USER, "SCAN", f"bk_{code}")).text)
    return [re.sub(r"https?://\S+", "<url>", t) for t in out]


async def test_switched_off_the_shop_answers_as_without_the_package(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, monkeypatch):
    off = await _mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["bargain"])
    assert "bargain" not in off.svc.registry.modules
    tenant = await off.svc.tenant("demo")
    async with off.svc.uows() as uow:      # a live bargain in the database; the module is off
        c = await make_campaign(uow, tenant.id, off.svc.clock())
        starter = await follower(uow, tenant.id, "oUser_bargain_seams_starter", off.svc.clock() - timedelta(days=2))
        b = await service.start_bargain(uow, tenant.id, starter, c.id, now=off.svc.clock())
        await uow.commit()
    assert (await off.client.get(f"/bk/demo/{b.code}")).status == 404
    assert (await off.client.get(f"/bargain/qr/demo/{b.code}.png")).status == 404
    with_module_off = await _transcript(off, b.code)

    real = plugins.entry_points
    monkeypatch.setattr("social_mall.plugins.entry_points",
                        lambda group: [ep for ep in real(group=group) if ep.name != "bargain"])
    bare = await _mall(backend, tmp_path / "bare", fake_wechat, aiohttp_client)
    assert "bargain" not in bare.svc.registry.modules
    without_package = await _transcript(bare, b.code)
    assert with_module_off == without_package
    assert "砍价活动" not in without_package[-2] and "砍掉" not in "".join(without_package)
    async with off.svc.uows() as uow:
        assert (await service.get_bargain(uow, tenant.id, b.id)).helps == 0


async def test_the_demo_showcase_has_a_bargain_campaign(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, demo_showcase=True)
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    mall = Mall(client, app, settings, fake_wechat)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        live = await service.live_campaigns(uow, tenant.id, mall.svc.clock())
    assert [c.title for c in live] == ["丹东草莓 砍价免单价"]
    assert (live[0].helps_needed, live[0].helper_min_age_hours) == (5, 0) and live[0].floor_fen < live[0].price_fen
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    assert "丹东草莓 砍价免单价" in (await wx.text(USER, "砍价")).text


async def test_a_live_campaign_holds_its_skus_price_through_the_registry(mall):
    """The core's price hold (automatic price rules never raise a SKU a promotion sells: a
    bargain starts at the price of the moment): while the campaign is live, and only then."""
    from datetime import datetime, timezone

    from sqlalchemy import select, update

    from social_mall_bargain.models import BargainCampaign
    from storage.models import Sku

    now = datetime.now(timezone.utc)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        c = await make_campaign(uow, tenant, now)
        await uow.commit()
        other = await uow.session.scalar(select(Sku.id).where(Sku.tenant_id == tenant, Sku.id != c.sku_id).limit(1))
    assert service.campaign_running in mall.svc.registry.price_holds     # registered: the pricing job asks it

    async def held(sku: int, at: datetime, t: int = tenant) -> bool:
        async with mall.svc.uows() as uow:
            return await service.campaign_running(uow, t, sku, at)

    assert await held(c.sku_id, now)
    assert not await held(other, now)
    assert not await held(c.sku_id, now - timedelta(days=2))          # before it starts
    assert not await held(c.sku_id, now + timedelta(days=31))         # once it has ended
    assert not await held(c.sku_id, now, t=tenant + 1000)
    async with mall.svc.uows() as uow:                                # paused by the merchant
        await uow.session.execute(update(BargainCampaign).where(BargainCampaign.id == c.id).values(active=False))
        await uow.commit()
    assert not await held(c.sku_id, now)
