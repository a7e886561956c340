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
