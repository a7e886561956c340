"""The module as a plug-in: found through the entry-point group, its Alembic branch applied
by storage.db.migrate, its unit pricer registered; and a shop that answers exactly as
before when the module is switched off (its business accounts, price lists and minimums
still in the database) or its package is not installed at all."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from bot import BUILTIN_MODULES
from social_mall.catalog.service import list_products
from social_mall.members.service import resolve_member
from social_mall import plugins
from social_mall.plugins import discover, installed_modules
from social_mall_b2b import MODULE, accounts, prices
from social_mall_b2b.rules import ListKind
from storage.db import create_engine, migrate
from storage.models import Sku
from tests.conftest import tables_and_versions

from b2b_kit import GOOD_USCC, make_mall, say, simulator

USER = "oUser_b2b_seams_000000000001"
SCRIPT = ("菜单", "帮助", "企业采购", "搜索 芒果干", "x2", "王小明 13912345678 上海市黄浦区南京东路1号", "确认", "我的订单")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def normalized(reply: str) -> str:
    reply = re.sub(r"https?://\S+", "<url>", reply)
    reply = re.sub(r"\d{24}", "<order_no>", reply)
    return re.sub(r"\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}", "<time>", reply)


async def transcript(mall) -> list[str]:
    wx = simulator(mall)
    out = [normalized((await wx.event(USER, "subscribe")).text)]
    for line in SCRIPT:
        out.append(normalized(await say(wx, USER, line)))
    return out


async def business_everything(mall) -> None:
    """What an enabled module would change: USER's company approved, 芒果干 at a B2B price
    with a minimum of 12 in cases of 12."""
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", USER)
        c = await accounts.apply(uow, tenant.id, member.id, accounts.Application(
            "上海味之源餐饮管理有限公司", GOOD_USCC, "张三", "13800138000", "上海味之源餐饮管理有限公司", GOOD_USCC), NOW)
        await accounts.decide(uow, tenant.id, c.id, approve=True, reason="", actor="test", now=NOW)
        product = (await list_products(uow, tenant.id, keyword="芒果干")).items[0]
        sku_id = await uow.session.scalar(select(Sku.id).where(Sku.product_id == product.id))
        await prices.save_list(uow, tenant.id, None, prices.ListInput(
            "批发", ListKind.OVERRIDE, None, c.id, 0, None, None, True, ((sku_id, 1, 1000),)), "test")
        await prices.set_terms(uow, tenant.id, sku_id, 12, 12, "test")
        await uow.commit()


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert "b2b" in [m.name for m in discover(BUILTIN_MODULES)]
    assert MODULE.migrations is not None and (MODULE.migrations / "b2b_0001_accounts_prices.py").is_file()


async def test_enabled_module_registers_its_pricer_flow_and_console(mall):
    reg = mall.svc.registry
    assert "b2b" in reg.modules
    assert "b2b" in [p.key for p in reg.pricers]          # (other installed modules may price too)
    async with mall.svc.uows() as uow:
        assert "b2b" in [p.key for p in uow.pricers]
    assert ("企业采购", "企业采购") in mall.svc.runner.flows.menu.items


async def test_switched_off_the_shop_answers_exactly_as_without_the_package(
        backend, engine, fresh_backend, tmp_path, fake_wechat, aiohttp_client, monkeypatch):
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["b2b"])
    await business_everything(off)        # the module's data is there; the module is not
    assert "b2b" not in off.svc.registry.modules and "b2b" not in [p.key for p in off.svc.registry.pricers]
    async with off.svc.uows() as uow:
        assert "b2b" not in [p.key for p in uow.pricers]
    assert (await off.client.get("/console/b2b/companies", allow_redirects=False)).status == 404
    with_module_off = await transcript(off)

    # now: this package not installed (other module packages, if any, stay as they are)
    real = plugins.entry_points
    monkeypatch.setattr("social_mall.plugins.entry_points",
                        lambda group: [ep for ep in real(group=group) if ep.name != "b2b"])
    assert "b2b" not in [m.name for m in installed_modules()]
    fresh = create_engine(fresh_backend.db_url, schema=fresh_backend.schema)
    await migrate(fresh)
    await fresh.dispose()
    names, versions = await tables_and_versions(fresh_backend)
    assert "orders" in names and not any(n.startswith("b2b_") for n in names)
    assert not any(v.startswith("b2b_") for v in versions)
    bare = await make_mall(fresh_backend, tmp_path / "bare", fake_wechat, aiohttp_client)
    assert "b2b" not in bare.svc.registry.modules and "b2b" not in [p.key for p in bare.svc.registry.pricers]
    without_package = await transcript(bare)

    assert with_module_off == without_package
    assert without_package[3].startswith("没看懂「企业采购」")
    card = without_package[4]
    assert "¥29.90" in card and "企业价" not in card
    confirm = without_package[-3]
    assert "¥29.90 × 2" in confirm and "下单成功" in without_package[-2]
