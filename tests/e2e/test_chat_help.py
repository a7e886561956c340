"""「帮助」 and the main menu list what the enabled modules offer; a message nobody
understands says so before the short menu; an empty listing leaves the member at the
menu, so a number picks a menu item. Through the signed official-account endpoint."""

from __future__ import annotations

import re

import pytest

from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_APP_ID, TEST_TOKEN, Mall, app_settings

#: what each module lets a member type, as 「帮助」 must show it
OFFERS = {
    "shop": ("分类", "搜索", "购物车", "结算", "我的订单"),
    "groupbuy": ("拼团", "我的团"),
    "loyalty": ("会员", "签到", "领券"),
    "referral": ("申请分销", "我的推广"),
}


def wx_of(mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID)


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


def menu_items(text: str) -> dict[str, int]:
    """label → number of the main menu in a reply."""
    return {label: int(n) for n, label in re.findall(r"^(\d+)\. (\S+)$", text, re.M)}


@pytest.fixture
async def mall_without_groupbuy(backend, engine, fake_wechat, aiohttp_client, tmp_path) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=["groupbuy"])
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def test_help_lists_what_every_enabled_module_offers(mall):
    wx, user = wx_of(mall), "oHelp_all_000000000000001"
    text = await say(wx, user, "帮助")
    for module, words in OFFERS.items():
        for word in words:
            assert f"「{word}" in text or f"· {word}" in text, (module, word, text)
    assert "取消" in text
    items = menu_items(text)
    assert {"拼团活动", "会员中心", "推广赚钱"} <= set(items), items
    assert max(items.values()) == len(items)          # numbered 1..n, 帮助 included
    # a menu number opens what its item stands for
    assert "拼团" in await say(wx, user, str(items["拼团活动"]))


async def test_every_menu_label_typed_as_text_answers_as_its_number(mall):
    """The menu shows labels (「推广赚钱」, 「拼团活动」…): a member types them as often as the
    numbers, so each one means what its number means, never 「没看懂」."""
    wx = wx_of(mall)
    items = menu_items(await say(wx, "oHelp_labels_00000000001", "菜单"))
    assert len(items) >= 6, items
    for label, n in items.items():
        numbered, labelled = f"oHelp_num_{n:015d}", f"oHelp_lab_{n:015d}"
        for user in (numbered, labelled):
            await say(wx, user, "菜单")          # both at the menu, where a number picks an item
        by_number = await say(wx, numbered, str(n))
        by_label = await say(wx, labelled, label)
        assert not by_label.startswith("没看懂"), (label, by_label)
        member_links = re.compile(r"https?://\S+|距开始 [0-9:]+")   # signed per member, a countdown: compared without them
        assert member_links.sub("<link>", by_label) == member_links.sub("<link>", by_number), (label, by_label)


async def test_a_disabled_modules_entries_vanish(mall_without_groupbuy):
    wx, user = wx_of(mall_without_groupbuy), "oHelp_nogb_00000000000001"
    text = await say(wx, user, "帮助")
    assert "拼团" not in text and "我的团" not in text
    for word in (*OFFERS["shop"], *OFFERS["loyalty"], *OFFERS["referral"]):
        assert word in text, (word, text)
    menu = await say(wx, user, "菜单")
    assert "拼团" not in menu and "会员中心" in menu


async def test_nonsense_says_it_was_not_understood_then_the_short_menu(mall):
    wx, user = wx_of(mall), "oHelp_nonsense_0000000001"
    await wx.event(user, "subscribe")
    help_text = await say(wx, user, "帮助")
    text = await say(wx, user, "今天天气怎么样")
    assert text.startswith("没看懂「今天天气怎么样」")
    assert "可以这样和我说" not in text and len(text) < len(help_text)
    items = menu_items(text)
    assert items["逛逛分类"] == 1 and "帮助" in items
    assert "1. 水果生鲜" in await say(wx, user, "1")    # the number picks from that menu


async def test_a_greeting_is_greeted_with_the_menu_but_never_throws_a_step_away(mall):
    wx, user = wx_of(mall), "oHelp_greeting_0000000001"
    for hello in ("你好", "在吗？", "Hi!"):
        text = await say(wx, user, hello)
        assert text.startswith("你好！") and "没看懂" not in text, text
        assert menu_items(text)["逛逛分类"] == 1
    assert "1. 水果生鲜" in await say(wx, user, "1")    # the number picks from that menu
    # inside a step a greeting is that step's business: the order summary stays
    await say(wx, user, "1")
    await say(wx, user, "1")
    summary = await say(wx, user, "1")
    assert "请发来收货地址" in summary
    inside = await say(wx, user, "你好")
    assert not inside.startswith("你好！")
    placed = await say(wx, user, "张三 13800138000 上海市浦东新区世纪大道100号")
    assert "请确认订单" in placed


async def test_a_number_after_an_empty_groupbuy_list_picks_from_the_menu(mall):
    wx, user = wx_of(mall), "oHelp_empty_gb_0000000001"
    text = await say(wx, user, "拼团")
    assert "暂时没有进行中的拼团活动" in text
    assert menu_items(text).get("逛逛分类") == 1
    after = await say(wx, user, "1")
    assert "失效" not in after and "1. 水果生鲜" in after


@pytest.mark.parametrize("word", ["我的订单", "我的团", "领券"])
async def test_other_empty_listings_leave_the_member_at_the_menu(mall, word):
    wx, user = wx_of(mall), f"oHelp_empty_{len(word)}_{word.encode().hex()[:8]}"
    text = await say(wx, user, word)
    assert menu_items(text).get("逛逛分类") == 1, text
    assert "1. 水果生鲜" in await say(wx, user, "1")
