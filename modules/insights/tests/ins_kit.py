"""Helpers of the insights tests: the real app against the fake WeChat, signed chat, the
sandbox payment, the module's jobs run by hand (the suite's app has no scheduler)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall

ORDER_NO = re.compile(r"订单号：(\d+)")
PAY_URL = re.compile(r"(http\S+/h5/pay/demo/\S+)")
ADDRESS = "王小明 13912345678 广东省深圳市南山区科技园1号"


def simulator(mall: Mall, *, safe: bool = True) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=safe)


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def pay(mall: Mall, placed_text: str) -> str:
    order_no = ORDER_NO.search(placed_text).group(1)
    pay_url = PAY_URL.search(placed_text).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no


async def job(mall: Mall, name: str) -> object:
    (found,) = [j for j in mall.svc.registry.jobs if j.name == name]
    return await found.run()


async def record(mall: Mall) -> None:
    """Deliver the outbox, write the buffered activity, roll up today."""
    await mall.settle()
    await job(mall, "insights.flush")
    await job(mall, "insights.rollup")


async def member_of(mall: Mall, openid: str) -> int:
    from storage.models import MemberIdentity

    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.external_id == openid))


async def events_of(mall: Mall, member_id: int) -> list[tuple[str, int, int, str]]:
    from social_mall_insights.models import Event

    async with mall.svc.uows() as uow:
        rows = await uow.session.execute(select(Event.kind, Event.ref, Event.amount_fen, Event.source, Event.at)
                                         .where(Event.member_id == member_id).order_by(Event.at, Event.id))
        return [(k, r, a, s) for k, r, a, s, _at in rows]


async def chat_purchase(mall: Mall, wx: MPSimulator, user: str) -> str:
    """subscribe → 分类 → a category → a product → 「1×2」 → address → 确认 → pay; the order number."""
    await wx.event(user, "subscribe")
    assert "水果生鲜" in await say(wx, user, "分类")
    assert "赣南脐橙" in await say(wx, user, "1")
    card = await wx.text(user, "1")
    assert card.msg_type == "news"
    asked = await say(wx, user, "1×2")
    assert "请发来收货地址" in asked
    confirm = await say(wx, user, ADDRESS)
    assert "应付" in confirm, confirm
    return await pay(mall, await say(wx, user, "确认"))


def now() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)


async def seed_history(uows, tenant_id: int, now: datetime, *, members: int = 40, base_id: int = 900_000) -> dict:
    """Members who joined over the last 11 weeks (`members` − 7 of them; the last 7 thirty
    weeks ago: old enough for every LTV horizon but 365 days) (a third through a distributor's QR code,
    a third through a group-buy team's, the rest organic), each with a first paid order a
    few days later and repurchases in some later weeks, one refund: recorded through the
    module's subscribers as the outbox would deliver them. Returns what was made."""
    from datetime import timedelta

    from social_mall.plugins import Delivery
    from social_mall_insights.subscribers import record as rec

    seq = iter(range(base_id * 10, base_id * 10 + 1_000_000))
    made = {"paid_fen": 0, "refunded_fen": 0, "members": []}

    async def deliver(topic: str, payload: dict, at: datetime) -> None:
        async with uows() as uow:
            await rec(uow, [Delivery(next(seq), tenant_id, topic, payload, 1)], at)
            await uow.commit()

    for i in range(members):
        m = base_id + i
        joined = now - timedelta(weeks=(11 - i % 11) if i < members - 7 else 30, hours=i)
        scene = ("ref_dist7" if i % 3 == 0 else f"gb_{100 + i % 2}" if i % 3 == 1 else "")
        await deliver("member.joined", {"member_id": m, "channel": "mp", "entry_source": scene}, joined)
        if i % 3 == 1:
            await deliver("groupbuy.team_opened", {"member_id": m, "team_id": 100 + i % 2, "campaign_id": 5}, joined)
        for k, weeks_later in enumerate((0, 1, 3) if i % 2 == 0 else (0, 2)):
            at = joined + timedelta(days=2, weeks=weeks_later)
            if at >= now:
                break
            fen = 5000 + 100 * i
            await deliver("order.paid", {"member_id": m, "order_id": m * 10 + k, "paid_fen": fen, "channel": "mp"}, at)
            made["paid_fen"] += fen
        if i == 0:
            await deliver("order.refunded", {"member_id": m, "order_id": m * 10, "refund_fen": 1000, "paid_fen": 5000,
                                             "full": False}, joined + timedelta(days=3))
            made["refunded_fen"] += 1000
        made["members"].append(m)
    return made


class Clock:
    """The app's clock, fixed and moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        from datetime import timedelta

        self.at += timedelta(**kw)


def shanghai(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    from datetime import timezone
    from zoneinfo import ZoneInfo

    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc)


async def app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock: Clock) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES
    from tests.conftest import app_settings

    settings = app_settings(backend, tmp_path, fake_wechat.base_url)
    app = build_app(settings, auto_setup=True, clock=clock)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)
