"""The module as a plug-in: found through the entry-point group, it registers the search
provider; switched off (DISABLED_MODULES) or not installed, the shop searches exactly as
the core does (the titles and subtitles containing the words)."""

from __future__ import annotations

from importlib.metadata import entry_points

from bot import BUILTIN_MODULES
from social_mall.plugins import ENTRY_POINT_GROUP, discover, installed_modules
from social_mall_intelligence import MODULE
from social_mall_intelligence.search import IndexedSearch

from intel_kit import add_fashion, make_mall, say, simulator

USER = "oUser_intel_seams_0000000001"
SCRIPT = ("搜 桂花乌龙", "返回", "搜 乌龙", "搜 lianyiqun", "连衣裙", "1", "搜 红色 裙子 L码", "搜索", "xyz")


async def transcript(mall) -> list[str]:
    wx = simulator(mall)
    return [await say(wx, USER, line) for line in SCRIPT]


def test_the_package_is_found_through_the_entry_point_group():
    assert MODULE in installed_modules()
    assert "intelligence" in [m.name for m in discover(BUILTIN_MODULES)]


async def test_enabled_module_registers_its_search(mall):
    assert "intelligence" in mall.svc.registry.modules
    assert isinstance(mall.svc.registry.search, IndexedSearch)
    assert mall.svc.runner.search is mall.svc.registry.search


async def test_switched_off_the_shop_searches_exactly_as_without_the_package(
        backend, engine, fake_wechat, aiohttp_client, tmp_path, monkeypatch):
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["intelligence"])
    assert off.svc.registry.search is None and off.svc.runner.search is None
    await add_fashion(off)
    with_module_off = await transcript(off)

    others = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name != "intelligence"]
    monkeypatch.setattr("social_mall.plugins.entry_points", lambda group: others)   # now: not installed
    assert MODULE not in installed_modules()
    bare = await make_mall(backend, tmp_path / "bare", fake_wechat, aiohttp_client)
    assert "intelligence" not in bare.svc.registry.modules and bare.svc.registry.search is None
    assert bare.svc.registry.modules == [m for m in off.svc.registry.modules]   # the other packages alike
    # (the same database: the fashion products are there already)
    without_package = await transcript(bare)

    assert with_module_off == without_package
    # and that is the core's search: a substring of titles and subtitles, nothing else
    assert "桂花乌龙" in without_package[0]
    assert without_package[3].startswith("没有找到与「lianyiqun」相关的商品。")
    assert "法式碎花连衣裙" in without_package[4] and "蓝色牛仔连衣裙" in without_package[4]
    assert without_package[6].startswith("没有找到与「红色 裙子 L码」相关的商品。")


async def test_switched_on_the_same_words_find_more(mall):
    await add_fashion(mall)
    on = await transcript(mall)
    assert "连衣裙" in on[3] and "没有找到" not in on[3]
    assert on[6].splitlines()[1].startswith("1. 法式碎花连衣裙")


async def test_the_dictionaries_are_loaded_when_a_worker_starts_not_at_the_first_search(
        backend, engine, fake_wechat, aiohttp_client, tmp_path, monkeypatch):
    """jieba's dictionary and pypinyin's tables load through the core's warm-up seam while
    the worker starts (in a thread), so no member's first search waits for them."""
    from social_mall_intelligence import textindex

    monkeypatch.setattr(textindex, "_segmenter", None)
    textindex.pinyin_of.cache_clear()
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    assert ("intelligence.dictionaries", textindex.warm) in mall.svc.registry.warmups
    assert textindex._segmenter is not None                      # before: made by the first search
    assert textindex.pinyin_of.cache_info().currsize >= 1
