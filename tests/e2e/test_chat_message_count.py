"""Issue #18: how many messages a customer sends from 「逛逛」 (or a search) to the pay link,
through the signed WeChat endpoint. A new customer may need at most 6, a returning one
(a saved address) at most 5, for a product with one SKU or several.

The buyer below answers whatever the shop asks, the way a person follows the hints (it
reads the reply and types what it asks for); it knows nothing about how many steps
there should be. It fails when it meets a reply it can't act on."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

NEW_TARGET, RETURNING_TARGET = 6, 5
MAX_MESSAGES = 15
PAY_LINK = re.compile(r"(http\S+/h5/pay/demo/\S+)")
ADDRESS = ("王小明", "13912345678", "广东省深圳市南山区科技园1号")


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)


@dataclass
class Want:
    key: str                                          # ASCII: open ids are ASCII
    category: str
    title: str
    spec: str


ORANGE = Want("orange", "水果生鲜", "赣南脐橙", "10斤装")          # two SKUs
STRAWBERRY = Want("strawberry", "水果生鲜", "丹东草莓", "2斤礼盒")      # one SKU
JERKY = Want("jerky", "休闲零食", "手撕牛肉干", "麻辣 250g")      # two SKUs, another category


def numbered(text: str, label: str) -> str | None:
    """The number in front of the line `N. label …` of a listing, if the reply has one."""
    m = re.search(rf"^(\d+)\. {re.escape(label)}(?:\s|$)", text, re.M)
    return m.group(1) if m else None


def answer_to(reply: str, want: Want) -> str:
    """What a person types next after `reply`, wanting one `want`."""
    if "请确认订单" in reply and "确认" in reply and "收货" in reply:
        return "确认"
    if "请选择收货地址" in reply:
        return "1"
    if "收货人姓名" in reply:
        return ADDRESS[0]
    if "11 位手机号" in reply:
        return ADDRESS[1]
    if "详细收货地址" in reply:
        return ADDRESS[2]
    if "收货地址" in reply and "例如" in reply:          # one message: name, phone, address
        return " ".join(ADDRESS)
    if "请回复购买数量" in reply:
        return "1"
    if "1 加入购物车，2 立即购买" in reply:
        return "2"
    if reply.startswith(want.title):                  # the product card lists the SKUs
        n = numbered(reply, want.spec)
        if n:
            return n
    if "商品分类" in reply:
        n = numbered(reply, want.category)
        if n:
            return n
    n = numbered(reply, want.title)                   # a product list
    if n:
        return n
    raise AssertionError(f"the buyer can't tell what to type after:\n{reply}")


async def buy(wx, user: str, first: str, want: Want) -> tuple[int, str]:
    """Send `first`, then answer each reply, until a pay link comes back: (messages sent, order no)."""
    said = first
    for sent in range(1, MAX_MESSAGES + 1):
        answer = await wx.text(user, said)
        assert answer.status == 200, answer.body
        reply = answer.text
        assert "系统繁忙" not in reply and "没看懂" not in reply, (said, reply)
        link = PAY_LINK.search(reply)
        if link:
            return sent, re.search(r"订单号：(\d+)", reply).group(1)
        said = answer_to(reply, want)
    raise AssertionError(f"no pay link after {MAX_MESSAGES} messages")


async def ordered(mall, order_no):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        return await find_order(uow, tenant.id, order_no)


@pytest.mark.parametrize("want", [ORANGE, STRAWBERRY, JERKY], ids=lambda w: w.key)
async def test_new_and_returning_customers_reach_the_pay_link_within_the_target(mall, wx, want):
    user = f"oUser_count_{want.key}_0000001"
    await wx.event(user, "subscribe")

    new_count, first_no = await buy(wx, user, "逛逛", want)
    first = await ordered(mall, first_no)
    assert [(ln.title, ln.spec, ln.qty) for ln in first.lines] == [(want.title, want.spec, 1)]
    assert (first.ship_name, first.ship_phone, first.ship_address) == ADDRESS
    assert first.status == "pending_payment"

    returning_count, second_no = await buy(wx, user, "逛逛", want)
    second = await ordered(mall, second_no)
    assert second_no != first_no
    assert [(ln.title, ln.spec, ln.qty) for ln in second.lines] == [(want.title, want.spec, 1)]
    assert (second.ship_name, second.ship_phone, second.ship_address) == ADDRESS  # the saved address

    assert new_count <= NEW_TARGET, f"a new customer needed {new_count} messages for {want.title}"
    assert returning_count <= RETURNING_TARGET, f"a returning customer needed {returning_count} messages"


async def test_from_a_search_with_one_hit_the_card_comes_at_once(mall, wx):
    user = "oUser_count_search_00000001"
    await wx.event(user, "subscribe")
    card = await wx.text(user, "搜索 草莓")
    assert card.msg_type == "news" and card.articles[0]["Title"].startswith("丹东草莓")

    new_count, _ = await buy(wx, user, "搜索 草莓", STRAWBERRY)
    returning_count, _ = await buy(wx, user, "搜索 牛肉干", JERKY)
    assert new_count <= NEW_TARGET - 2, f"from a one-hit search a new customer needed {new_count}"
    assert returning_count <= RETURNING_TARGET - 2, f"a returning customer needed {returning_count}"
