"""Seckill end to end through the signed WeChat endpoint: 「秒杀」 → an item → a quantity →
the address → the pay link, paid through the sandbox's real notify path; the order costs
the seckill price and nothing else; the limit and 「已抢光」 refuse at once and write
nothing; an unpaid order is released back to the session at its own deadline (but not one
whose payment arrived); 「提醒我」 queues a push sent when the session starts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from social_mall_seckill import jobs
from social_mall_seckill.models import SeckillClaim, SeckillItem, SeckillOrder, SeckillReminder
from social_mall_seckill.rules import pool
from social_mall.groupbuy.service import WecomSettings, save_wecom_settings
from storage.models import Order
from tests.fakes.wecom import FakeWeComRobot

from seckill_kit import Clock, count, live_session, make_mall, pay_in_sandbox, pushes, say, simulator

SHANGHAI = timezone(timedelta(hours=8))
ADDRESS = "王小明 13912345678 上海市黄浦区南京东路1号"


@pytest.fixture
def clock():
    return Clock(datetime(2030, 6, 6, 19, 59, 30, tzinfo=SHANGHAI).astimezone(timezone.utc))


async def _item(mall, item_id: int) -> SeckillItem:
    async with mall.svc.uows() as uow:
        return await uow.session.get(SeckillItem, item_id, populate_existing=True)


async def _buy(wx, user: str, address: bool = True) -> str:
    board = await say(wx, user, "秒杀")
    assert "抢购中" in board, board
    asked = await say(wx, user, "1")
    if "回复购买数量" not in asked:
        return asked
    got = await say(wx, user, "1")
    if address and "收货地址" in got:
        got = await say(wx, user, ADDRESS)
    return got


async def test_a_seckill_purchase_to_a_paid_order_at_the_seckill_price(backend, engine, tmp_path, fake_wechat,
                                                                      aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    sid, items = await live_session(mall, clock(), stock=2, limit=1, price_fen=100)
    await wx.event("o_sk_a", "subscribe")
    board = await say(wx, "o_sk_a", "秒杀")
    assert "测试场" in board and "秒杀价 ¥1.00" in board and "剩 2 件" in board and "距结束 00:59:00" in board
    assert "回复购买数量" in await say(wx, "o_sk_a", "1")
    assert "收货地址" in await say(wx, "o_sk_a", "1")
    placed = await say(wx, "o_sk_a", ADDRESS)
    assert "抢到了" in placed and "应付：¥1.00" in placed and "5 分钟内完成支付" in placed, placed
    order_no = await pay_in_sandbox(mall, placed)
    async with mall.svc.uows() as uow:
        order = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        so = await uow.session.scalar(select(SeckillOrder).where(SeckillOrder.order_id == order.id))
    assert order.status == "paid" and order.total_fen == 100 and order.paid_fen == 100
    assert order.discount_fen == 0 and order.shipping_fen == 0
    assert order.expires_at == clock() + timedelta(minutes=7)     # the core's backstop: ours + 2 minutes
    assert so.status == "paid" and so.pay_by == clock() + timedelta(minutes=5)
    assert (await _item(mall, items[0])).sold == 1

    # the same member again: over the limit, refused at once, nothing written
    orders = await count(mall, Order)
    again = await _buy(wx, "o_sk_a")
    assert "每人限购 1 件" in again and await count(mall, Order) == orders
    # another member takes the last one; a third hears 「已抢光」 and nothing is written
    assert "抢到了" in await _buy(wx, "o_sk_b")
    orders = await count(mall, Order)
    board = await say(wx, "o_sk_c", "秒杀")
    assert "已抢光" in board
    await say(wx, "o_sk_c", "1")
    assert await count(mall, Order) == orders
    it = await _item(mall, items[0])
    assert it.sold == 2 and it.stock == 2
    # a product card and ordinary checkout still sell at the retail price
    assert await count(mall, SeckillClaim) == 2


async def test_an_unpaid_order_is_released_back_to_the_session_at_its_deadline(backend, engine, tmp_path,
                                                                               fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    _, items = await live_session(mall, clock(), stock=1, limit=1, pay_minutes=3)
    placed = await _buy(wx, "o_sk_late")
    assert "抢到了" in placed
    assert "已抢光" in await _buy(wx, "o_sk_next")
    clock.advance(minutes=2, seconds=59)
    assert await jobs.expire_unpaid(mall.svc) == 0                  # not yet
    clock.advance(seconds=2)
    assert await jobs.expire_unpaid(mall.svc) == 1
    assert await jobs.expire_unpaid(mall.svc) == 0                  # once
    await mall.settle()                                             # order.cancelled: nothing more to give back
    told = [p for p in pushes(mall, "o_sk_late") if "名额已释放" in p]
    assert len(told) == 1 and "超过 3 分钟未支付" in told[0]
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    async with mall.svc.uows() as uow:
        order = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
        so = await uow.session.scalar(select(SeckillOrder).where(SeckillOrder.order_id == order.id))
        claim = await uow.session.scalar(select(SeckillClaim))
    assert order.status == "cancelled" and so.status == "released" and claim.qty == 0
    it = await _item(mall, items[0])
    assert it.sold == 0
    tenant = order.tenant_id
    state = await mall.svc.admission.state(tenant, pool(items[0]))
    assert state.stock_left == 1 and state.reserved == 0
    # the stock went back to the session: the next member gets it, and the first may try again
    assert "抢到了" in await _buy(wx, "o_sk_next")


async def test_a_payment_that_arrived_is_kept_not_released(backend, engine, tmp_path, fake_wechat, aiohttp_client,
                                                           clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    _, items = await live_session(mall, clock(), stock=1, limit=1, pay_minutes=3)
    placed = await _buy(wx, "o_sk_payer")
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()   # paid; order.paid not delivered yet
    clock.advance(minutes=4)
    assert await jobs.expire_unpaid(mall.svc) == 0
    async with mall.svc.uows() as uow:
        so = await uow.session.scalar(select(SeckillOrder))
        order = await uow.session.get(Order, so.order_id)
    assert order.status == "paid" and so.status == "paid"
    assert (await _item(mall, items[0])).sold == 1
    await mall.settle()
    assert (await _item(mall, items[0])).sold == 1


@pytest.fixture
async def robot(aiohttp_server):
    fake = FakeWeComRobot()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


async def test_remind_me_pushes_when_the_session_starts(backend, engine, tmp_path, fake_wechat, aiohttp_client,
                                                        clock, robot):
    clock.advance(minutes=-40)    # 19:19:30: ours starts at 19:29:30, the demo shop's at 20:00
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:   # the tenant's WeCom group robot (the one group-buy posts with)
        await save_wecom_settings(uow, WecomSettings(tenant.id, "wecom_token_1", "k" * 43, "", robot.webhook_url,
                                                     "机器人"), actor="test", now=clock())
        await uow.commit()
    await live_session(mall, clock(), starts_in=timedelta(minutes=10))
    for user in ("o_sk_r1", "o_sk_r2"):
        await wx.event(user, "subscribe")
        board = await say(wx, user, "秒杀")
        assert "距开始 00:10:00" in board and "提醒我" in board
        assert "已设置提醒" in await say(wx, user, "提醒我")
    assert "已经设置过提醒" in await say(wx, "o_sk_r1", "提醒我")
    assert await count(mall, SeckillReminder) == 2
    await say(wx, "o_sk_r1", "秒杀")
    assert "距开始 00:10:00" in await say(wx, "o_sk_r1", "1")   # before the start: no buying, a countdown
    assert await jobs.start_sessions(mall.svc) == 0
    clock.advance(minutes=10)
    assert await jobs.start_sessions(mall.svc) == 1
    assert await jobs.start_sessions(mall.svc) == 0                 # once
    await mall.settle()
    for user in ("o_sk_r1", "o_sk_r2"):
        got = [p for p in pushes(mall, user) if "开抢了" in p]
        assert len(got) == 1 and "测试场" in got[0] and "回复「秒杀」" in got[0]
    announced = [t for t in robot.texts() if "开抢了" in t]
    assert len(announced) == 1 and "测试场" in announced[0] and "秒杀价 ¥1.00" in announced[0]


async def test_the_reconcile_job_repairs_memory_that_drifted_from_the_database(backend, engine, tmp_path,
                                                                               fake_wechat, aiohttp_client, clock):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    _, items = await live_session(mall, clock(), stock=2, limit=1)
    assert "抢到了" in await _buy(wx, "o_sk_drift")
    async with mall.svc.uows() as uow:
        so = await uow.session.scalar(select(SeckillOrder))
    tenant = so.tenant_id
    assert await jobs.reconcile_live(mall.svc) == 0
    # memory loses the order's reservation (as when a confirm could not reach Redis)
    assert await mall.svc.admission.release(tenant, pool(items[0]), so.token)
    assert (await mall.svc.admission.state(tenant, pool(items[0]))).stock_left == 2
    assert await jobs.reconcile_live(mall.svc) == 1
    state = await mall.svc.admission.state(tenant, pool(items[0]))
    assert state.stock_left == 1 and set(state.held) == {so.token} and state.members == {so.member_id: 1}
    assert await jobs.reconcile_live(mall.svc) == 0


async def test_one_attempt_in_flight_per_member_and_a_rate_limit(backend, engine, tmp_path, fake_wechat,
                                                                 aiohttp_client, clock):
    import asyncio

    from social_mall.members.service import add_address, resolve_member
    from social_mall_seckill import service
    from social_mall_seckill.errors import BusyError, SeckillError, TooFastError
    from social_mall_seckill.flow import HOLDER

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    _, items = await live_session(mall, clock(), stock=5, limit=1)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        await service.save_settings(uow, tenant, service.Settings(0, 3, True))
        m, _ = await resolve_member(uow, tenant, "mp", "o_sk_rush")
        await add_address(uow, tenant, m.id, "张三", "13800138000", "上海市浦东新区世纪大道100号")
        await uow.commit()
    desk = HOLDER.desk
    desk.forget(tenant)

    async def attempt() -> str:
        try:
            await desk.buy(tenant, m.id, items[1], 1, address_id=None, channel="mp", now=clock())
        except SeckillError as exc:
            return exc.code
        return "placed"

    # two at once: one goes through, the other is told the first is still being answered
    got = await asyncio.gather(attempt(), attempt())
    assert sorted(got) == sorted(["placed", BusyError.code])
    assert await attempt() == "seckill_over_limit"          # the third of the minute: still answered
    assert await attempt() == TooFastError.code             # the fourth: over 3 a minute
    assert await count(mall, SeckillOrder) == 1


async def test_the_order_costs_the_seckill_price_and_no_promotion_applies_on_top(backend, engine, tmp_path,
                                                                                 fake_wechat, aiohttp_client, clock):
    from social_mall.loyalty import service as loyalty
    from storage.models import Tenant

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx = simulator(mall)
    _, items = await live_session(mall, clock(), stock=2, limit=1, price_fen=500)
    it = await _item(mall, items[0])
    async with mall.svc.uows() as uow:
        tenant = await uow.session.scalar(select(Tenant.id).where(Tenant.code == "demo"))
        # a flash price even lower than the seckill price, and 满1减0.50: neither may apply
        await loyalty.add_flash_price(uow, tenant, it.sku_id, 50, starts_at=clock() - timedelta(minutes=5),
                                      ends_at=clock() + timedelta(hours=2))
        await loyalty.add_full_reduction(uow, tenant, 100, 50)
        await uow.commit()
    placed = await _buy(wx, "o_sk_promo")
    assert "抢到了" in placed and "应付：¥5.00" in placed, placed
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    async with mall.svc.uows() as uow:
        order = await uow.session.scalar(select(Order).where(Order.order_no == order_no))
    assert (order.goods_fen, order.discount_fen, order.shipping_fen, order.total_fen) == (500, 0, 0, 500)


async def test_a_seckill_bought_through_a_second_account_is_paid_at_its_merchant(
        backend, engine, tmp_path, fake_wechat, aiohttp_client, aiohttp_server, clock):
    from tests.channels_kit import MCH2, open_native, opened, second_entrance

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    wx2, fake2, account, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    await live_session(mall, clock(), stock=2, limit=1, price_fen=100)
    await wx2.event("o_sk_two", "subscribe")
    placed = await _buy(wx2, "o_sk_two")
    assert "抢到了" in placed, placed
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    assert await open_native(mall, order_no) == (account, merchant)
    assert opened(fake2, order_no) == [MCH2]
