"""Helpers for the after-sale tests: the real app (module on, off or not installed) with
a test-moved clock, a signed WeChat simulator, a chat purchase paid in the sandbox, the
console over HTTP with CSRF, and reads of what the database holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from social_mall.plugins import Module
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import csrf_of, login, make_admin

ORDER_NO = re.compile(r"订单号：(\d+)")
PAY_URL = re.compile(r"(http\S+/h5/pay/demo/\S+)")
REQUEST_NO = re.compile(r"售后单号：(\d+)")
ADDRESS = "王小明 13912345678 广东省深圳市南山区科技园1号"


class Clock:
    """The app's clock, fixed and moved by the test (never the wall clock)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


START = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)   # 12:00 in Shanghai


async def make_mall(backend, tmp_path, fake_wechat, aiohttp_client, *, disabled: Sequence[str] = (),
                    modules: Sequence[Module] | None = None, clock: Clock | None = None, **overrides) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=list(disabled), **overrides)
    kw = {"clock": clock} if clock is not None else {}
    app = build_app(settings, auto_setup=True, modules=modules, **kw)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


def simulator(mall: Mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


async def settle(mall: Mall) -> None:
    """Deliver the outbox until quiet (a refund's order.refunded is a second round)."""
    for _ in range(3):
        await mall.settle()


async def buy_and_pay(mall: Mall, wx: MPSimulator, user: str, keyword: str, qty: int, *, first: bool = True) -> str:
    """Search → 「1 xN」 → (a new customer's address) → 「确认」 → pay on the H5 page (a
    signed sandbox notify); the order number."""
    await wx.event(user, "subscribe")
    if "搜索结果" in await say(wx, user, f"搜索 {keyword}"):
        await say(wx, user, "1")
    summary = await say(wx, user, f"1 x{qty}")
    if first:
        summary = await say(wx, user, ADDRESS)
    assert "请确认订单" in summary or "应付" in summary, summary
    placed = await say(wx, user, "确认")
    order_no = ORDER_NO.search(placed).group(1)
    pay_url = PAY_URL.search(placed).group(1)
    page = await (await mall.client.get(pay_url[pay_url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await settle(mall)
    await say(wx, user, "菜单")    # leave the placed order's detail (「申请售后」 there goes to its lines)
    return order_no


async def order(mall: Mall, order_no: str):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        return await find_order(uow, tenant.id, order_no)


async def console(mall: Mall, username: str = "boss", role: str = "owner") -> str:
    """An admin logged in over HTTP; the session's CSRF token."""
    try:
        await make_admin(mall.svc.uows, username, role=role)
    except Exception:  # noqa: BLE001 - made by an earlier call
        pass
    return await login(mall.client, username)


async def post(mall: Mall, path: str, **form: str):
    csrf = await csrf_of(mall.client)
    return await mall.client.post(path, data={"_csrf": csrf, **form}, allow_redirects=False)


async def ship(mall: Mall, order_no: str, tracking: str = "SF1000000001") -> None:
    o = await order(mall, order_no)
    resp = await post(mall, f"/console/orders/{o.id}/ship", tracking_no=tracking)
    assert resp.status == 303, await resp.text()
    await settle(mall)


def pushes(mall: Mall, user: str) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m.get("msgtype") == "text"]


async def count(mall: Mall, model) -> int:
    async with mall.svc.uows() as uow:
        return await mall_scalar(uow, select(func.count()).select_from(model))


async def mall_scalar(uow, stmt):
    return await uow.session.scalar(stmt)


async def stock(mall: Mall, title: str) -> int:
    from storage.models import Product, Sku

    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Sku.stock).join(Product, Product.id == Sku.product_id)
                                        .where(Product.title == title).order_by(Sku.id).limit(1))


class SecondWorker:
    """Another worker of the same app: its own engine and pool on the same database, the
    app's subscribers (so what it emits is delivered like the app's own)."""

    def __init__(self, mall: Mall, backend) -> None:
        from storage.db import create_engine, session_factory
        from storage.uow import uow_factory

        reg = mall.svc.registry
        self.engine = create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg" else \
            create_engine(backend.db_url)
        self.uows = uow_factory(session_factory(self.engine), reg.topic_map(), modules=reg.modules)

    async def close(self) -> None:
        await self.engine.dispose()
