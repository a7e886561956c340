"""The module as a plug-in: found through the entry-point group, its Alembic branch applied
by storage.db.migrate, and a shop that works exactly as before when the module is
switched off (DISABLED_MODULES) or its package is not installed at all."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

import pytest

from bot import BUILTIN_MODULES
from social_mall.plugins import discover, installed_modules
from social_mall_local import MODULE, stores
from social_mall_local.geo import Point
from social_mall_local.products import ProductSettings, save_settings
from storage.db import create_engine, migrate
from tests.conftest import tables_and_versions

from local_kit import PEOPLE_SQUARE, make_mall, say, simulator

USER = "oUser_local_seams_0000000001"

# one conversation, every step the core has, plus the module's words and a location
SCRIPT = ("菜单", "附近门店", "帮助", "搜索 桂花乌龙", "x2", "王小明 13912345678 上海市黄浦区南京东路1号", "确认",
          "我的订单")


def normalized(text: str) -> str:
    """A reply without what differs between two runs: order numbers, links, times."""
    text = re.sub(r"https?://\S+", "<url>", text)
    text = re.sub(r"\d{24}", "<order_no>", text)
    return re.sub(r"\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}", "<time>", text)


async def transcript(mall) -> list[str]:
    wx = simulator(mall)
    out = [normalized((await wx.event(USER, "subscribe")).text)]
    for line in SCRIPT[:3]:
        out.append(normalized(await say(wx, USER, line)))
    out.append(normalized((await wx.location(USER, *PEOPLE_SQUARE, "人民广场")).text))
    for line in SCRIPT[3:]:
        out.append(normalized(await say(wx, USER, line)))
    return out


async def pickup_everything(mall) -> None:
    """What an enabled module would change: 桂花乌龙 may be picked up or delivered."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        from social_mall.catalog.service import list_products

        product = (await list_products(uow, tenant.id, keyword="桂花乌龙")).items[0]
        await save_settings(uow, tenant.id, "test", ProductSettings(product.id, methods=("express", "pickup")))
        await stores.save_store(uow, tenant.id, "test", stores.StoreInput(
            "测试店", "上海市黄浦区", "", Point(31_235_470, 121_474_790), {str(d): [[0, 1440]] for d in range(1, 8)},
            {}, (), True))
        await uow.commit()


def without_this_package(group: str):
    """The entry-point group without this package (other module packages stay installed)."""
    return [ep for ep in entry_points(group=group) if ep.name != MODULE.name]


@pytest.fixture
def no_package(monkeypatch):
    """The package uninstalled: the entry-point group without it."""
    monkeypatch.setattr("social_mall.plugins.entry_points", without_this_package)


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert "local_services" in [m.name for m in discover(BUILTIN_MODULES)]
    assert MODULE.migrations is not None and (MODULE.migrations / "local_0001_stores.py").is_file()


async def test_enabled_module_registers_its_seams_and_seeds_demo_stores(mall):
    reg = mall.svc.registry
    assert "local_services" in reg.modules
    assert {"express", "pickup"} <= set(reg.fulfilments)
    assert ("附近门店", "附近门店") in mall.svc.runner.flows.menu.items
    async with mall.svc.uows() as uow:
        tenant = await mall.svc.tenant("demo")
        assert [s.name for s in await stores.all_stores(uow, tenant.id)] == ["陆家嘴店", "人民广场店", "徐家汇店"]


async def test_switched_off_the_shop_answers_exactly_as_without_the_package(
        backend, engine, fresh_backend, tmp_path, fake_wechat, aiohttp_client, monkeypatch):
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["local_services"])
    await pickup_everything(off)          # the module's data is there; the module is not
    assert "local_services" not in off.svc.registry.modules
    assert set(off.svc.registry.fulfilments) == set()
    assert not any(word in ("附近门店", "我的券码", "预约") for _, word in off.svc.runner.flows.menu.items)
    async with off.svc.uows() as uow:     # no demo stores seeded by a switched-off module
        tenant = await off.svc.tenant("demo")
        assert [s.name for s in await stores.all_stores(uow, tenant.id)] == ["测试店"]
    assert (await off.client.get("/console/local/stores", allow_redirects=False)).status == 404
    with_module_off = await transcript(off)

    monkeypatch.setattr("social_mall.plugins.entry_points", without_this_package)   # now: not installed
    assert MODULE not in installed_modules()
    fresh = create_engine(fresh_backend.db_url, schema=fresh_backend.schema)
    await migrate(fresh)
    await fresh.dispose()
    names, versions = await tables_and_versions(fresh_backend)
    assert "orders" in names and not any(n.startswith("local_") for n in names)
    assert not any(v.startswith("local_") for v in versions)
    bare = await make_mall(fresh_backend, tmp_path / "bare", fake_wechat, aiohttp_client)
    assert [m for m in bare.svc.registry.modules] == [m.name for m in discover(BUILTIN_MODULES)]
    assert "local_services" not in bare.svc.registry.modules
    without_package = await transcript(bare)

    assert with_module_off == without_package
    # and that is the core's shop: express only, the flat fee, help for a location
    assert "附近门店" not in without_package[1]
    assert without_package[2].startswith("没看懂「附近门店」")          # 「附近门店」 is not a word: not understood
    assert without_package[4].startswith("没看懂这条消息")            # a location: not understood, the menu
    assert "请发来收货地址" in without_package[6]                      # x2 on the card → the address at once
    confirm = without_package[-3]
    assert "运费：¥8.00" in confirm and "应付：¥80.00" in confirm     # 2 × ¥36.00 + ¥8.00
    assert "下单成功" in without_package[-2]


async def test_an_uninstalled_package_leaves_its_tables_and_migrate_still_runs(fresh_backend, monkeypatch):
    engine = create_engine(fresh_backend.db_url, schema=fresh_backend.schema)
    try:
        await migrate(engine)                                      # installed: its branch applied
        names, versions = await tables_and_versions(fresh_backend)
        assert {"local_stores", "local_member_stores"} <= names
        local = {v for v in versions if v.startswith("local_")}
        assert local

        monkeypatch.setattr("social_mall.plugins.entry_points", without_this_package)
        await migrate(engine)                                      # uninstalled: its revision is unknown now
        assert await tables_and_versions(fresh_backend) == (names, versions)

        monkeypatch.undo()
        await migrate(engine)                                      # installed again: nothing to do
        assert await tables_and_versions(fresh_backend) == (names, versions)
    finally:
        await engine.dispose()
