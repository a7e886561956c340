"""Bargains end to end through the real endpoint: signed (AES) official-account messages
from the starter and each friend (MPSimulator), the share card's QR scene, pushes through
the outbox to the fake WeChat API, the sandbox pay page with its signed notify."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from social_mall_bargain import rules, service
from social_mall_bargain.models import Bargain
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN

from bargain_kit import backdate, make_campaign, snapshot

ADDRESS = "王小明 13912345678 深圳市南山区科技园1号"


@pytest.fixture
def wx(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx, user, text) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


def texts(mall, user) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]


async def pay(mall, pay_url: str) -> None:
    path = pay_url[pay_url.index("/h5/"):]
    page = await (await mall.client.get(path)).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()


async def tenant_id(mall) -> int:
    return (await mall.svc.tenant("demo")).id


async def campaign(mall, **kw):
    async with mall.svc.uows() as uow:
        c = await make_campaign(uow, await tenant_id(mall), mall.svc.clock(), **kw)
        await uow.commit()
    return c


async def seasoned(mall, wx, *users: str) -> None:
    """Users who followed (a subscribe event) two days ago."""
    tid = await tenant_id(mall)
    for u in users:
        await wx.event(u, "subscribe")
    async with mall.svc.uows() as uow:
        from social_mall.members.service import member_of

        for u in users:
            await backdate(uow, tid, await member_of(uow, tid, "mp", u), mall.svc.clock() - timedelta(days=2))
        await uow.commit()


async def state(mall):
    async with mall.svc.uows() as uow:
        return await snapshot(uow, await tenant_id(mall))


async def start(mall, wx, user, account: int = 0) -> str:
    """Start a bargain from the chat; its card names the official account talked to
    (`?a=`, none for the primary), so the QR behind it is made there."""
    listing = await say(wx, user, "砍价")
    assert "草莓砍价" in listing and "回复序号" in listing
    card = await wx.text(user, "1")
    assert card.status == 200 and card.msg_type == "news", card.body
    art = card.articles[0]
    code = re.search(r"帮砍 ([A-Z0-9]{8})", art["Description"]).group(1)
    at = f"?a={account}" if account else ""
    assert art["Url"].endswith(f"/bk/demo/{code}{at}") and art["PicUrl"].endswith(f"/bargain/qr/demo/{code}.png{at}")
    await mall.settle()
    assert any(f"帮砍 {code}" in t for t in texts(mall, user))       # the rest of the answer, pushed
    return code


async def test_a_bargain_helped_to_the_floor_by_n_friends_bought_and_paid(mall, wx):
    c = await campaign(mall, helps=3, floor_fen=990)
    starter, friends = "oBK_starter_0000000000001", [f"oBK_friend_{i}_00000000000001" for i in range(3)]
    await seasoned(mall, wx, starter, *friends)
    code = await start(mall, wx, starter)

    # the share page and its QR image (the official account's QR with scene bk_<code>)
    page = await (await mall.client.get(f"/bk/demo/{code}")).text()
    assert "帮砍 " + code in page and "0/3" in page
    png = await mall.client.get(f"/bargain/qr/demo/{code}.png")
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")
    assert f"bk_{code}" in mall.fake.qr_scenes.values()

    # friend 0 scans the card's QR code while following; friends 1 and 2 type 帮砍 <code>
    scanned = await wx.event(friends[0], "SCAN", f"bk_{code}")
    assert "你帮好友砍掉了" in scanned.text and "还差" in scanned.text
    assert "你帮好友砍掉了" in await say(wx, friends[1], f"帮砍 {code}")
    last = await say(wx, friends[2], f"帮砍 {code.lower()}")
    assert "已砍到最低价 ¥9.90" in last
    await mall.settle()
    pushes = [t for t in texts(mall, starter) if "好友帮你砍掉了" in t]
    assert len(pushes) == 3 and "还差" in pushes[0] and "已砍到最低价 ¥9.90" in pushes[2]

    async with mall.svc.uows() as uow:
        b = await service.bargain_by_code(uow, await tenant_id(mall), code)
        cuts = [cut for _, cut, _ in await service.helps_of(uow, await tenant_id(mall), b.id)]
    assert (b.status, b.price_fen, b.helps) == ("reached", 990, 3)
    assert sum(cuts) == b.start_fen - 990 and all(x >= 1 for x in cuts)
    assert "不能再帮砍" in await say(wx, friends[0], "帮砍 " + code)      # reached: closed to helps

    # the starter buys at the floor: an address first, then the order and its pay link
    assert "请发来收货地址" in await say(wx, starter, "砍价购买")
    placed = await say(wx, starter, ADDRESS)
    assert "下单成功" in placed
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    again = await say(wx, starter, f"砍价购买 {code}")      # idempotent: the same order's pay link
    assert re.search(r"订单号：(\S+)", again).group(1) == re.search(r"订单号：(\S+)", placed).group(1)
    await pay(mall, pay_url)
    async with mall.svc.uows() as uow:
        b = await service.bargain_by_code(uow, await tenant_id(mall), code)
        order = await find_order(uow, await tenant_id(mall), re.search(r"订单号：(\S+)", placed).group(1))
    assert b.status == "bought" and order.status == "paid" and order.goods_fen == 990
    assert order.lines[0].price_fen == 990 and order.paid_fen == order.total_fen
    assert "已购买" in await say(wx, starter, "我的砍价")


async def test_refusals_change_nothing(mall, wx):
    await campaign(mall, helps=5, daily=2, hours=48)
    starter, s2, s3 = "oBK_rs_starter_000000001", "oBK_rs_s2_00000000000001", "oBK_rs_s3_00000000000001"
    helper, busy, fresh = "oBK_rs_helper_0000000001", "oBK_rs_busy_000000000001", "oBK_rs_fresh_00000000001"
    await seasoned(mall, wx, starter, s2, s3, helper, busy)
    code = await start(mall, wx, starter)
    code2, code3 = await start(mall, wx, s2), await start(mall, wx, s3)

    assert "你帮好友砍掉了" in await say(wx, helper, f"帮砍 {code}")
    # `busy` spends today's 2 helps on the other bargains
    assert "你帮好友砍掉了" in await say(wx, busy, f"帮砍 {code2}")
    assert "你帮好友砍掉了" in await say(wx, busy, f"帮砍 {code3}")
    await mall.settle()

    before = await state(mall)
    assert "不能给自己砍价" in await say(wx, starter, f"帮砍 {code}")
    assert "已经帮这位好友砍过" in await say(wx, helper, f"帮砍 {code}")
    assert "今天已帮砍 2 次" in await say(wx, busy, f"帮砍 {code}")
    await wx.event(fresh, "subscribe")                     # followed just now: too new to count
    assert "关注满 24 小时后才能帮砍" in await say(wx, fresh, f"帮砍 {code}")
    assert "关注满 24 小时后才能帮砍" in (await wx.event(fresh, "SCAN", f"bk_{code}")).text
    assert "8 位砍价码" in await say(wx, helper, "帮砍 nonsense")
    assert "没有找到你可以购买的砍价" in await say(wx, helper, f"砍价购买 {code}")    # not his bargain
    await mall.settle()
    assert await state(mall) == before

    # a new day: `busy` may help again
    runner = mall.svc.runner
    base = runner.clock
    runner.clock = lambda: base() + timedelta(days=1)
    try:
        assert "你帮好友砍掉了" in await say(wx, busy, f"帮砍 {code}")
    finally:
        runner.clock = base


async def test_expiry_ends_a_bargain_and_an_unpaid_order_reopens_it(mall, wx):
    c = await campaign(mall, helps=2, hours=2, stock=1)
    starter, friend = "oBK_exp_starter_00000001", "oBK_exp_friend_000000001"
    await seasoned(mall, wx, starter, friend)
    code = await start(mall, wx, starter)
    assert "你帮好友砍掉了" in await say(wx, friend, f"帮砍 {code}")
    await say(wx, starter, "砍价购买")
    placed = await say(wx, starter, ADDRESS)
    order_no = re.search(r"订单号：(\S+)", placed).group(1)
    tid = await tenant_id(mall)
    async with mall.svc.uows() as uow:
        assert (await service.get_campaign(uow, tid, c.id)).stock == 0
        from social_mall.orders.service import cancel_order

        order = await find_order(uow, tid, order_no)
        await cancel_order(uow, tid, order.id, now=mall.svc.clock(), reason="user")
        await uow.commit()
    await mall.settle()
    async with mall.svc.uows() as uow:
        b = await service.bargain_by_code(uow, tid, code)
        assert (b.status, b.order_id) == ("open", None)
        assert (await service.get_campaign(uow, tid, c.id)).stock == 1
    assert await service.expire_due(mall.svc.uows, now=mall.svc.clock() + timedelta(hours=3)) == 1
    assert await service.expire_due(mall.svc.uows, now=mall.svc.clock() + timedelta(hours=3)) == 0
    await mall.settle()
    assert any("砍价已到期结束" in t for t in texts(mall, starter))
    async with mall.svc.uows() as uow:
        status = await uow.session.scalar(select(Bargain.status).where(Bargain.code == code))
    assert status == "expired"


async def test_a_bargain_bought_through_a_second_account_is_paid_at_its_merchant(mall, aiohttp_server, tmp_path):
    from tests.channels_kit import APP2, MCH2, open_native, opened, second_entrance

    wx2, fake2, account, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    await campaign(mall, helps=1, floor_fen=990)
    starter, friend = "oBK_two_starter_000000001", "oBK_two_friend_0000000001"
    await seasoned(mall, wx2, starter, friend)
    code = await start(mall, wx2, starter, account)
    image = await mall.client.get(f"/bargain/qr/demo/{code}.png?a={account}")
    assert image.status == 200 and image.content_type == "image/png"
    made = [t for t, scene in mall.fake.qr_scenes.items() if scene == rules.scene_for(code)]
    assert [mall.fake.qr_apps[t] for t in made] == [APP2]       # the friend who scans follows the second account
    assert "已砍到最低价" in await say(wx2, friend, f"帮砍 {code}")
    assert "请发来收货地址" in await say(wx2, starter, "砍价购买")
    placed = await say(wx2, starter, ADDRESS)
    assert "下单成功" in placed, placed
    order_no = re.search(r"订单号：(\S+)", placed).group(1)
    assert await open_native(mall, order_no) == (account, merchant)
    assert opened(fake2, order_no) == [MCH2]
