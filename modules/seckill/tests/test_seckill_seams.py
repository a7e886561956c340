"""The module as a plug-in: found through the entry-point group, its Alembic branch applied,
its pricer, flow, menu entry and jobs registered; and a shop that answers exactly as before
when the module is switched off (its sessions still in the database) or its package is not
installed at all."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from bot import BUILTIN_MODULES
from social_mall import plugins
from social_mall.plugins import discover, installed_modules
from social_mall_seckill import MODULE

from seckill_kit import Clock, live_session, make_mall, say, simulator

USER = "oUser_seckill_seams_00000001"
SCRIPT = ("菜单", "帮助", "秒杀", "提醒我", "搜索 脐橙", "我的订单")
NOW = datetime(2030, 6, 6, 11, 30, tzinfo=timezone.utc)


def normalized(reply: str) -> str:
    reply = re.sub(r"https?://\S+", "<url>", reply)
    return re.sub(r"\d{1,2}:\d{2}(:\d{2})?|\d{4}-\d{2}-\d{2}", "<time>", reply)


async def transcript(mall) -> list[str]:
    wx = simulator(mall)
    out = [normalized((await wx.event(USER, "subscribe")).text)]
    for line in SCRIPT:
        out.append(normalized(await say(wx, USER, line)))
    return out


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert "seckill" in [m.name for m in discover(BUILTIN_MODULES)]
    assert MODULE.migrations is not None and (MODULE.migrations / "seckill_0001_sessions.py").is_file()


async def test_enabled_module_registers_its_pricer_flow_menu_and_jobs(backend, engine, tmp_path, fake_wechat,
                                                                      aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=Clock(NOW))
    reg = mall.svc.registry
    assert "seckill" in reg.modules and "seckill" in [p.key for p in reg.pricers]
    assert ("限时秒杀", "秒杀") in mall.svc.runner.flows.menu.items
    assert {"seckill.start", "seckill.expire", "seckill.sweep", "seckill.reconcile"} <= {j.name for j in reg.jobs}
    await live_session(mall, NOW)
    assert "测试场" in await say(simulator(mall), USER, "秒杀")


async def test_switched_off_the_shop_answers_exactly_as_without_the_package(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, monkeypatch):
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["seckill"],
                          clock=Clock(NOW))
    await live_session(off, NOW)          # the module's data is there; the module is not
    assert "seckill" not in off.svc.registry.modules
    assert "seckill" not in [p.key for p in off.svc.registry.pricers]
    assert (await off.client.get("/console/seckill", allow_redirects=False)).status == 404
    with_module_off = await transcript(off)

    real = plugins.entry_points
    monkeypatch.setattr("social_mall.plugins.entry_points",
                        lambda group: [ep for ep in real(group=group) if ep.name != "seckill"])
    assert "seckill" not in [m.name for m in installed_modules()]
    bare = await make_mall(backend, tmp_path / "bare", fake_wechat, aiohttp_client, clock=Clock(NOW))
    assert "seckill" not in bare.svc.registry.modules
    without_package = await transcript(bare)
    assert with_module_off == without_package
    assert without_package[3].startswith("没看懂「秒杀」")


async def test_a_running_session_holds_its_skus_prices_through_the_registry(backend, engine, tmp_path, fake_wechat,
                                                                            aiohttp_client):
    """The core's price hold (automatic price rules never raise a SKU a promotion sells):
    while a session runs, and only then, for its SKUs, of its shop, while it is enabled."""
    from sqlalchemy import select, update

    from social_mall_seckill import service
    from social_mall_seckill.models import SeckillItem, SeckillSession
    from storage.models import Sku

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=Clock(NOW))
    assert service.selling in mall.svc.registry.price_holds     # registered: the pricing job asks it
    sid, items = await live_session(mall, NOW)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        skus = list((await uow.session.scalars(select(SeckillItem.sku_id).where(SeckillItem.session_id == sid))).all())
        other = await uow.session.scalar(select(Sku.id).where(Sku.tenant_id == tenant, Sku.id.not_in(skus)).limit(1))
        await uow.session.execute(update(SeckillSession).where(SeckillSession.id != sid).values(enabled=False))
        await uow.commit()    # the demo shop's own sessions off: this one alone

    async def held(sku: int, at: datetime, t: int = tenant) -> bool:
        async with mall.svc.uows() as uow:
            return await service.selling(uow, t, sku, at)

    assert [await held(s, NOW) for s in skus] == [True, True]
    assert not await held(other, NOW)
    assert not await held(skus[0], NOW - timedelta(minutes=2))        # before it starts
    assert not await held(skus[0], NOW + timedelta(hours=1))          # once it has ended
    assert not await held(skus[0], NOW, t=tenant + 1000)              # another shop's SKU id
    async with mall.svc.uows() as uow:                                # switched off by the merchant
        await uow.session.execute(update(SeckillSession).where(SeckillSession.id == sid).values(enabled=False))
        await uow.commit()
    assert not await held(skus[0], NOW)
