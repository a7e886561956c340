"""The flow engine without I/O: intent parsing, dispatch, the stored state record."""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import cart, checkout, home, orders, shop
from flows.engine import (
    Conv,
    Flow,
    Flows,
    Intent,
    Keyword,
    MenuEntry,
    Said,
    Say,
    Step,
    Turn,
    normalize,
    not_understood,
    pairs,
)
from flows.runner import BUILTIN_FLOWS
from flows.types import Inbound, Kind

FLOWS = Flows(home.FLOW, BUILTIN_FLOWS)
IDLE = FLOWS.idle()


def text(t: str, conv: Conv = IDLE) -> Said:
    return FLOWS.parse(Inbound(1, "demo", "mp", "o_user", Kind.TEXT, t), conv)


def at(flow: str, state: str, **data: object) -> Conv:
    return Conv(flow, state, data, 3)  # type: ignore[arg-type]


def test_normalize_folds_full_width_and_collapses_spaces():
    assert normalize("  改　１  ３ ") == "改 1 3"
    assert normalize("ＯＫ") == "OK"


@pytest.mark.parametrize(
    ("typed", "intent", "n"),
    [
        ("1", Intent.NUMBER, 1),
        ("９９", Intent.NUMBER, 99),
        ("10000", Intent.NUMBER, 10000),
        ("0", Intent.NUMBER, 0),
        ("13800138000", Intent.TEXT, None),  # too long for a number: a phone, a code…
        ("下一页", Intent.NEXT, None),
        ("上一页", Intent.PREV, None),
        ("确认", Intent.YES, None),
        ("确认。", Intent.YES, None),
        ("取消", Intent.NO, None),
        ("返回", Intent.BACK, None),
        ("随便说点什么", Intent.TEXT, None),
    ],
)
def test_generic_intents(typed: str, intent: str, n: int | None):
    said = text(typed)
    assert (said.intent, said.n, said.flow) == (intent, n, "")


@pytest.mark.parametrize(
    ("typed", "flow", "intent", "args"),
    [
        ("帮助", "home", home.Do.HELP, ()),
        ("菜单", "home", home.Do.MENU, ()),
        ("分类", "shop", shop.Do.BROWSE, ()),
        ("逛逛", "shop", shop.Do.BROWSE, ()),
        ("搜索 草莓", "shop", shop.Do.SEARCH, ("草莓", "")),
        ("搜索草莓", "shop", shop.Do.SEARCH, ("草莓", "")),
        ("搜 苹果", "shop", shop.Do.SEARCH, ("", "苹果")),
        ("购物车", "cart", cart.Do.SHOW, ()),
        ("改 1 3", "cart", cart.Do.SET, ("1 3",)),
        ("删 2", "cart", cart.Do.DEL, ("2",)),
        ("清空购物车", "cart", cart.Do.CLEAR, ()),
        ("结算", "checkout", checkout.Do.CHECKOUT, ()),
        ("我的订单", "orders", orders.Do.LIST, ()),
        ("订单", "orders", orders.Do.LIST, ()),
        ("取消订单", "orders", orders.Do.CANCEL, ()),
    ],
)
def test_global_keywords_name_their_flow(typed: str, flow: str, intent: str, args: tuple[str, ...]):
    said = text(typed, at("shop", shop.St.SKU, product=1, skus=[2]))
    assert (said.flow, said.intent, said.args) == (flow, intent, args)


@pytest.mark.parametrize(
    ("typed", "n", "qty"),
    [
        ("2 x3", 2, 3), ("2x3", 2, 3), ("2×3", 2, 3), ("2 X 3", 2, 3), ("2 *3", 2, 3), ("2*3", 2, 3),
        ("２ｘ３", 2, 3), ("２　Ｘ　３", 2, 3), ("２＊３", 2, 3), ("1 x 12", 1, 12),
        ("x3", None, 3), ("×3", None, 3), ("X 3", None, 3), ("ｘ３", None, 3), ("*3", None, 3),
    ],
)
def test_a_number_times_a_quantity(typed: str, n: int | None, qty: int):
    said = text(typed, at("shop", shop.St.SKU, product=1, skus=[2, 3]))
    assert (said.intent, said.n, said.qty, said.flow) == (Intent.TIMES, n, qty, "")


@pytest.mark.parametrize("typed", ["2 x", "x", "2 x3 x4", "2 y3", "2 x -3", "x1234567"])
def test_not_a_quantity(typed: str):
    assert text(typed, at("shop", shop.St.SKU, product=1, skus=[2])).intent != Intent.TIMES


def test_times_is_not_read_while_typing_an_address():
    said = text("2 x3", at("checkout", checkout.St.DETAIL, src="buy", name="张三", phone="13800138000"))
    assert (said.intent, said.qty) == (Intent.TEXT, None)


def test_search_needs_a_space_after_the_one_character_form():
    assert text("搜狐").intent == Intent.TEXT


def test_patterns_are_off_while_typing_an_address():
    typing = at("checkout", checkout.St.DETAIL, src="cart", a_name="张三", a_phone="13800138000")
    assert text("搜索大厦1号", typing).intent == Intent.TEXT
    assert text("改革路 8 号", at("checkout", checkout.St.NAME)).intent == Intent.TEXT
    assert text("删 1", typing).intent == Intent.TEXT
    assert text("购物车", typing).flow == "cart"  # exact keywords still jump


def test_in_flow_words_only_count_inside_their_flow():
    assert text("立即购买").intent == Intent.TEXT
    assert text("立即购买", at("shop", shop.St.SKU)).intent == shop.Do.BUY_NOW
    assert text("购买", at("shop", shop.St.SKU)).intent == shop.Do.BUY_NOW
    assert text("加购", at("checkout", checkout.St.CONFIRM)).intent == checkout.Do.ADD_CART
    assert text("换地址", at("checkout", checkout.St.CONFIRM)).intent == checkout.Do.CHANGE_ADDRESS
    assert text("付款", at("orders", orders.St.DETAIL, order=7)).intent == orders.Do.PAY
    assert text("新地址", at("checkout", checkout.St.ADDRESS)).intent == checkout.Do.NEW_ADDRESS


def test_menu_clicks_and_events():
    click = Inbound(1, "demo", "mp", "o", Kind.CLICK, payload={"key": "CART"})
    assert FLOWS.parse(click, IDLE) == Said(cart.Do.SHOW, "CART", flow="cart")
    unknown = Inbound(1, "demo", "mp", "o", Kind.CLICK, payload={"key": "NOPE"})
    assert FLOWS.parse(unknown, IDLE).intent == Intent.TEXT
    sub = Inbound(1, "demo", "mp", "o", Kind.SUBSCRIBE, payload={"scene": "ref_9"})
    assert FLOWS.parse(sub, IDLE) == Said(Intent.SUBSCRIBE, args=("ref_9",), flow="home")
    image = Inbound(1, "demo", "mp", "o", Kind.IMAGE, payload={"media_id": "m"})
    assert FLOWS.parse(image, IDLE) == Said(Intent.TEXT, "")


def test_cancel_from_every_state_of_every_flow_returns_to_idle():
    for flow in (home.FLOW, *BUILTIN_FLOWS):
        for state in flow.states:
            conv = Conv(flow.name, state, {"product": 1, "sku": 2, "qty": 3}, 5)
            f, turn, step_fn = FLOWS.decide(conv, Said(Intent.NO, "取消"))
            step = step_fn(turn)
            assert (step.flow or f.name, step.to) == ("home", home.St.IDLE), (flow.name, state)
            assert step.command is None


def test_a_pair_not_in_the_table_keeps_state_and_data_and_asks_for_the_next_input():
    conv = at("shop", shop.St.SKU, product=1, skus=[2])
    flow, turn, step_fn = FLOWS.decide(conv, Said(Intent.YES, "确认"))
    step = step_fn(turn)
    assert step_fn is not_understood
    assert (flow.name, step.to, dict(step.data), step.hint) == ("shop", "sku", {"product": 1, "skus": [2]}, True)
    assert step.replies == (Say("chat/not_understood.txt", {"text": "确认"}),)


def test_keyword_jumps_from_the_target_start_with_fresh_data():
    conv = at("checkout", checkout.St.CONFIRM, src="cart", address=4, items=[1, 2])
    flow, turn, step_fn = FLOWS.decide(conv, text("购物车", conv))
    assert (flow.name, turn.state, dict(turn.data)) == ("cart", cart.St.IDLE, {})
    assert step_fn(turn).to == cart.St.LIST


def test_keyword_of_the_current_flow_uses_the_current_state_when_it_has_the_pair():
    conv = at("orders", orders.St.DETAIL, order=7, orders=[7])
    flow, turn, step_fn = FLOWS.decide(conv, text("取消订单", conv))
    step = step_fn(turn)
    assert turn.state == orders.St.DETAIL
    assert step.command == orders.CancelOrder(7)


def test_a_number_with_no_state_behind_it_says_the_step_expired():
    for stale in (None, Conv("gone_module", "x", {}, 2), Conv("shop", "no_such_state", {}, 2)):
        conv = FLOWS.current(stale)
        assert (conv.flow, conv.state) == ("home", home.St.IDLE)
        flow, turn, step_fn = FLOWS.decide(conv, Said(Intent.NUMBER, "2", n=2))
        assert step_fn(turn).replies[0] == Say("chat/expired.txt")


def test_menu_number_redirects_to_its_keyword():
    flow, turn, step_fn = FLOWS.decide(Conv("home", home.St.MENU, {}), Said(Intent.NUMBER, "3", n=3))
    step = step_fn(turn)
    assert step.redirect == "购物车"
    assert text(step.redirect).flow == "cart"
    n = len(FLOWS.menu.items) + 1
    flow, turn, step_fn = FLOWS.decide(Conv("home", home.St.MENU, {}), Said(Intent.NUMBER, str(n), n=n))
    bad = step_fn(turn)
    assert (bad.to, bad.redirect, bad.hint) == (home.St.MENU, "", True)


def test_conv_round_trips_and_rejects_what_it_did_not_write():
    conv = Conv("shop", "products", {"cat": 3, "q": "草莓", "items": [4, 5]}, 7)
    assert Conv.load(conv.dump()) == conv
    assert json.loads(conv.dump())["data"]["q"] == "草莓"
    for raw in ("not json", "[]", '{"flow":"shop","state":"x","data":{},"v":"1"}',
                '{"flow":"shop","state":"x","data":{"a":1.5},"v":1}',
                '{"flow":"shop","state":"x","data":{"a":true},"v":1}',
                '{"flow":"shop","state":"x","data":{"a":[1,"2"]},"v":1}'):
        assert Conv.load(raw) is None, raw
    assert Conv.load(None) is None


def test_pairs_reads_a_flat_list():
    assert pairs({"items": [11, 2, 12, 1]}, "items") == [(11, 2), (12, 1)]
    assert pairs({}, "items") == []


class GbSt(StrEnum):
    IDLE = "idle"
    JOIN = "join"


class Gb(StrEnum):
    OPEN = "gb.open"
    JOIN = "gb.join"


def _open(turn: Turn) -> Step:
    return Step(GbSt.JOIN, data={"team": 5})


def _join(turn: Turn) -> Step:
    return Step(GbSt.IDLE, (Say("chat/x.txt", {"team": turn.num("team") or 0}),))


GROUPBUY = Flow(
    name="groupbuy", start=GbSt.IDLE,
    table={(GbSt.IDLE, Gb.OPEN): _open, (GbSt.JOIN, Intent.YES): _join, (GbSt.IDLE, Gb.JOIN): _open},
    keywords=(Keyword(Gb.OPEN, words=("拼团", "GROUPBUY")), Keyword(Gb.JOIN, scene="team_")),
)


def test_another_module_adds_a_flow_with_keywords_and_a_scene():
    flows = Flows(home.FLOW, (*BUILTIN_FLOWS, GROUPBUY))
    said = flows.parse(Inbound(1, "d", "mp", "o", Kind.TEXT, "拼团"), flows.idle())
    assert said == Said(Gb.OPEN, "拼团", flow="groupbuy")
    scan = flows.parse(Inbound(1, "d", "mp", "o", Kind.SCAN, payload={"scene": "team_5"}), flows.idle())
    assert (scan.flow, scan.intent, scan.args) == ("groupbuy", Gb.JOIN, ("team_5",))
    joined = Conv("groupbuy", GbSt.JOIN, {"team": 5}, 1)
    flow, turn, step_fn = flows.decide(joined, Said(Intent.YES, "确认"))
    assert step_fn(turn).replies == (Say("chat/x.txt", {"team": 5}),)


def test_a_taken_keyword_or_flow_name_is_refused():
    clash = Flow("other", "idle", {}, keywords=(Keyword("x", words=("购物车",)),))
    with pytest.raises(ValueError, match="购物车"):
        Flows(home.FLOW, (*BUILTIN_FLOWS, clash))
    with pytest.raises(ValueError, match="shop"):
        Flows(home.FLOW, (*BUILTIN_FLOWS, Flow("shop", "idle", {})))
    shadow = Flow("other", "idle", {}, words={"分类": "x"})
    with pytest.raises(ValueError, match="global keyword"):
        Flows(home.FLOW, (*BUILTIN_FLOWS, shadow))


_values = st.one_of(st.text(), st.integers(min_value=-2**63, max_value=2**63), st.lists(st.integers(0, 10**9)))


@given(flow=st.text(), state=st.text(), data=st.dictionaries(st.text(), _values), v=st.integers(0, 10**9),
       member=st.integers(0, 10**9))
def test_a_dump_is_compact_sorted_json_and_loads_back(flow: str, state: str, data: dict, v: int,
                                                      member: int) -> None:
    conv = Conv(flow, state, data, v, member)
    raw = conv.dump()
    doc = {"flow": flow, "state": state, "data": data, "v": v, **({"m": member} if member else {})}
    assert raw == json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert Conv.load(raw) == conv


@pytest.mark.parametrize(("typed", "arg"), [
    ("绑定 K7Q2M-9XD3F", "K7Q2M-9XD3F"), ("绑定k7q2m 9xd3f", "k7q2m 9xd3f"), ("绑定码：K7Q2M9XD3F", "K7Q2M9XD3F"),
    ("绑定 123456", "123456"), ("绑定", ""), ("绑定 手机", "手机"),
])
def test_whatever_follows_bind_goes_to_the_core_which_reads_and_counts_it(typed: str, arg: str):
    from flows import members

    flows = Flows(home.FLOW, (*BUILTIN_FLOWS, members.FLOW))
    said = flows.parse(Inbound(1, "d", "mp", "o", Kind.TEXT, typed), flows.idle())
    assert (said.flow, said.intent, said.args) == ("members", members.Do.BIND, (arg,))
    assert flows.parse(Inbound(1, "d", "mp", "o", Kind.TEXT, "绑定码"), flows.idle()).intent == members.Do.BIND_CODE


def test_the_menu_gathers_the_flows_entries_in_order():
    assert FLOWS.menu.items == (("逛逛分类", "分类"), ("搜索商品", "搜索"), ("购物车", "购物车"),
                                ("我的订单", "我的订单"), ("帮助", "帮助"))
    assert FLOWS.menu.help[-1] == "chat/home/_help.txt" and "chat/checkout/_help.txt" in FLOWS.menu.help
    gb = dataclasses.replace(GROUPBUY, menu=(MenuEntry(40, "chat/gb_help.txt", (("拼团活动", "拼团"),)),))
    with_groupbuy = Flows(home.FLOW, (*BUILTIN_FLOWS, gb))
    assert "chat/gb_help.txt" in with_groupbuy.menu.help
    assert ("拼团活动", "拼团") in with_groupbuy.menu.items
    assert with_groupbuy.menu.items[-1] == ("帮助", "帮助")



# -- images: a photo for a state that asks for one ------------------------------------------------

def _photo_flow() -> Flow:
    def keep(turn: Turn) -> Step:
        return Step("photos", (), {"media": turn.said.args[0]})

    return Flow(name="photos", start="idle", table={("photos", Intent.IMAGE): keep},
                keywords=(Keyword("photos.start", words=("发照片",)),))


def _image(conv: Conv, flows: Flows) -> Said:
    return flows.parse(Inbound(1, "demo", "mp", "o_user", Kind.IMAGE, "",
                               {"media_id": "MEDIA_1", "pic_url": "http://mmbiz.qpic.cn/1"}), conv)


def test_an_image_reaches_a_state_that_takes_one_with_its_media_id():
    flows = Flows(home.FLOW, (*BUILTIN_FLOWS, _photo_flow()))
    said = _image(at("photos", "photos"), flows)
    assert (said.intent, said.args) == (Intent.IMAGE, ("MEDIA_1", "http://mmbiz.qpic.cn/1"))
    flow, turn, step = flows.decide(at("photos", "photos"), said)
    assert step(turn).data == {"media": "MEDIA_1"}


def test_an_image_nobody_asked_for_reads_as_before():
    flows = Flows(home.FLOW, (*BUILTIN_FLOWS, _photo_flow()))
    for conv in (IDLE, at("orders", "list", orders=[1]), at("photos", "idle")):
        assert _image(conv, flows) == FLOWS.parse(Inbound(1, "demo", "mp", "o_user", Kind.IMAGE, "",
                                                          {"media_id": "MEDIA_1"}), conv)
        assert _image(conv, flows).intent == Intent.TEXT
    no_media = flows.parse(Inbound(1, "demo", "mp", "o_user", Kind.IMAGE, "", {"media_id": ""}),
                           at("photos", "photos"))
    assert no_media.intent == Intent.TEXT


def test_a_keyword_carries_the_keys_it_names_from_the_conversation_it_leaves():
    def begin(turn: Turn) -> Step:
        return Step("asked", (), dict(turn.data))

    carrying = Flow(name="asks", start="idle", table={("idle", "asks.begin"): begin},
                    keywords=(Keyword("asks.begin", words=("问问",), carry=("order",)),))
    flows = Flows(home.FLOW, (*BUILTIN_FLOWS, carrying))
    detail = at("orders", "detail", order=42, orders=[42, 43], page=1)
    said = flows.parse_text("问问", detail)
    flow, turn, step = flows.decide(detail, said)
    assert flow.name == "asks" and step(turn).data == {"order": 42}          # only what it names
    flow, turn, step = flows.decide(at("orders", "list", orders=[1]), said)
    assert step(turn).data == {}                                              # nothing to carry
