"""The module as a plug-in: found through the entry-point group, its Alembic branch
applied by migrate, and a shop that answers exactly as before when the module is switched
off or not installed (other module packages stay as they are). Its words, an image
message and a tracking number are then what they always were: not understood."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from bot import BUILTIN_MODULES
from social_mall.plugins import ENTRY_POINT_GROUP, discover, installed_modules
from social_mall_after_sale import MODULE

from after_kit import make_mall, say, simulator

USER = "oUser_aftersale_seams_000001"
SCRIPT = ("菜单", "帮助", "申请售后", "我的售后", "退货单号 SF1234567890", "撤销售后 12", "搜索 桂花乌龙", "x2",
          "王小明 13912345678 上海市黄浦区南京东路1号", "确认", "我的订单")


def normalized(text: str) -> str:
    text = re.sub(r"https?://\S+", "<url>", text)
    text = re.sub(r"\d{24}", "<order_no>", text)
    return re.sub(r"\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}", "<time>", text)


async def transcript(mall, user: str) -> list[str]:
    """One conversation of a new follower (each run its own: both shops share the database)."""
    wx = simulator(mall)
    out = [normalized((await wx.event(user, "subscribe")).text)]
    for line in SCRIPT:
        out.append(normalized(await say(wx, user, line)))
        if line == "申请售后":
            mall.fake.media["MEDIA_seams_0001"] = b"\xff\xd8jpeg"
            out.append(normalized((await wx.image(user, "MEDIA_seams_0001")).text))
    return out


def without_this_package(group: str):
    return [ep for ep in entry_points(group=group) if ep.name != MODULE.name]


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert MODULE.name in [m.name for m in discover(BUILTIN_MODULES)]
    assert MODULE.migrations is not None and (MODULE.migrations / "aftersale_0001_requests.py").is_file()


async def test_enabled_it_offers_its_menu_entry_console_page_and_jobs(mall):
    reg = mall.svc.registry
    assert "after_sale" in reg.modules
    assert ("申请售后", "申请售后") in mall.svc.runner.flows.menu.items
    assert {"aftersale.approve_unanswered", "aftersale.close_unreturned"} <= {j.name for j in reg.jobs}
    assert "aftersale.refunded" in reg.topic_map()["order.refunded"]


async def test_switched_off_the_shop_answers_exactly_as_without_the_package(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, monkeypatch):
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["after_sale"])
    assert "after_sale" not in off.svc.registry.modules
    assert not any(word == "申请售后" for _, word in off.svc.runner.flows.menu.items)
    assert (await off.client.get("/console/after_sale", allow_redirects=False)).status == 404
    with_module_off = await transcript(off, USER + "a")

    monkeypatch.setattr("social_mall.plugins.entry_points", without_this_package)   # now: not installed
    assert MODULE not in installed_modules()
    bare = await make_mall(backend, tmp_path / "bare", fake_wechat, aiohttp_client)
    assert "after_sale" not in bare.svc.registry.modules
    without_package = await transcript(bare, USER + "b")

    assert with_module_off == without_package
    assert without_package[3].startswith("没看懂「申请售后」")
    assert "已收到" not in without_package[4]                   # an image: not a photo for anything
    assert ENTRY_POINT_GROUP == "social_mall.modules"
