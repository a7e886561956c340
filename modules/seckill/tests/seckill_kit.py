"""Helpers for the module's end-to-end tests: the real app (module on, off or not
installed), a signed WeChat simulator, the console over HTTP with CSRF, sandbox payment
through the real pay page and signed notify, and reads of what the database holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.plugins import Module
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings

ORDER_NO = re.compile(r"订单号：(\d+)")
PAY_URL = re.compile(r"(http\S+/h5/pay/demo/\S+)")


class Clock:
    """The app's clock, fixed and moved by the test (never the wall clock)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


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


def simulator(mall: Mall, *, safe: bool = True) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=safe)


async def say(wx: MPSimulator, user: str, text: str) -> str:
    answer = await wx.text(user, text)
    assert answer.status == 200, answer.body
    return answer.text


def pushes(mall: Mall, user: str) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m.get("msgtype") == "text"]


async def pay_in_sandbox(mall: Mall, placed_text: str) -> str:
    """Open the pay link of a placed order, press 确认支付 (a signed notify into the real
    endpoint), deliver the outbox; the order number."""
    order_no = ORDER_NO.search(placed_text).group(1)
    pay_url = PAY_URL.search(placed_text).group(1)
    path = pay_url[pay_url.index("/h5/"):]
    page = await (await mall.client.get(path)).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order_no


async def count(mall: Mall, model, *where) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model).where(*where))


async def console(mall: Mall, username: str = "seckill_boss", role: str = "owner") -> str:
    """An admin of the demo tenant logged in with the app's test client; its CSRF token."""
    from tests.fakes.console_kit import login, make_admin

    await make_admin(mall.svc.uows, username, role)
    return await login(mall.client, username)


async def live_session(mall: Mall, now: datetime, *, stock: int = 5, limit: int = 1, pay_minutes: int = 5,
                       starts_in: timedelta = timedelta(minutes=-1), price_fen: int = 100) -> tuple[int, list[int]]:
    """A session of the demo shop running at `now` (or starting `starts_in` from now), with
    two items of the first two SKUs: (session id, item ids)."""
    from social_mall_seckill import service
    from storage.models import Sku, Tenant

    async with mall.svc.uows() as uow:
        tenant = await uow.session.scalar(select(Tenant.id).where(Tenant.code == "demo"))
        skus = list((await uow.session.scalars(select(Sku).where(Sku.tenant_id == tenant, Sku.stock >= 50,
                                                                  Sku.price_fen > price_fen)
                                               .order_by(Sku.id).limit(2))).all())
        sid = await service.create_session(uow, tenant, "测试场", now + starts_in, now + starts_in + timedelta(hours=1),
                                           pay_minutes, now)
        items = [await service.add_item(uow, tenant, sid, s.id, price_fen, stock, limit) for s in skus]
        await uow.commit()
    return sid, items
