"""Helpers for the console tests: admins, paid orders through the real core services,
logging in with the aiohttp test client, and the whole app (plus the fake WeChat API)
served on a real loopback port from a background thread, for Playwright and schemathesis."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import select

from social_mall.admins import Role, create_admin
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment
from storage.models import Sku, Tenant

T = TypeVar("T")
PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


async def make_admin(uows, username: str, role: str = "owner", tenant_code: str | None = "demo") -> int:
    async with uows() as uow:
        tenant_id = None
        if tenant_code is not None:
            tenant_id = (await uow.tenants.by_code(tenant_code)).id
        admin_id = await create_admin(uow, username=username, password=PASSWORD, role=Role(role), tenant_id=tenant_id)
        await uow.commit()
    return admin_id


async def make_tenant(uows, code: str) -> int:
    async with uows() as uow:
        t = await uow.tenants.add(Tenant(code=code, name=f"{code} 店", pay_gateway="sandbox",
                                         pay_mch_id="1900000109", pay_app_id="wx_other",
                                         pay_apiv3_key="sandboxApiV3Key0123456789abcdefX"))
        await uow.commit()
        return t.id


async def paid_order(uows, tenant_id: int, openid: str, *, qty: int = 1, now: datetime | None = None,
                     sku_id: int | None = None, address: str = "广东省深圳市南山区科技园1号") -> tuple[int, str]:
    """A paid order for an official-account member (so pushes reach the fake WeChat API).
    In a tenant without a catalog a product and SKU are made first."""
    now = now or datetime.now(timezone.utc)
    async with uows() as uow:
        if sku_id is None:
            sku_id = await uow.session.scalar(select(Sku.id).where(Sku.tenant_id == tenant_id, Sku.stock >= qty)
                                              .order_by(Sku.id).limit(1))
        if sku_id is None:
            from storage.models import Category, Product

            cat = Category(tenant_id=tenant_id, name="默认")
            await uow.catalog.add(cat)
            prod = Product(tenant_id=tenant_id, category_id=cat.id, title="租户商品")
            await uow.catalog.add(prod)
            sku = Sku(tenant_id=tenant_id, product_id=prod.id, spec="标准", price_fen=1000, stock=100)
            await uow.catalog.add(sku)
            sku_id = sku.id
        member, _ = await resolve_member(uow, tenant_id, "mp", openid)
        address = await add_address(uow, tenant_id, member.id, "王小明", "13912345678", address)
        order = await place_order(uow, tenant_id, member.id, [(sku_id, qty)], address_id=address.id, now=now,
                                  timeout=timedelta(minutes=30))
        await open_payment(uow, order, gateway="sandbox")
        tenant = await uow.tenants.get(tenant_id)
        tx = Transaction(f"EV-{uuid.uuid4().hex[:8]}", order.order_no, f"42{uuid.uuid4().int % 10**12}", "SUCCESS",
                         order.total_fen, tenant.pay_mch_id, tenant.pay_app_id, openid, "")
        await apply_transaction(uow, tx, tenant=tenant_id, gateway="sandbox", mchid=tenant.pay_mch_id, appid=tenant.pay_app_id,
                                now=now)
        await uow.commit()
    return order.id, order.order_no


async def login(client, username: str, password: str = PASSWORD) -> str:
    """Log in with the aiohttp test client; returns the session's CSRF token."""
    page = await (await client.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    resp = await client.post("/console/login", data={"_csrf": token, "username": username, "password": password,
                                                     "next": "/console/"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return await csrf_of(client)


async def csrf_of(client, path: str = "/console/tokens") -> str:
    html = await (await client.get(path)).text()
    return CSRF_RE.search(html).group(1)


async def issue_token(client, csrf: str, name: str = "test") -> str:
    html = await (await client.post("/console/tokens", data={"_csrf": csrf, "name": name})).text()
    return re.search(r'id="new-token">([^<]+)<', html).group(1)


# -- the app on a real port, from a background thread ----------------------------------------

@dataclass
class ServedMall:
    """build_app + the fake WeChat API, each on 127.0.0.1:<port>, in a thread's event loop."""

    settings_factory: Any
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    url: str = ""
    app: web.Application | None = None
    fake: Any = None
    _runners: list[web.AppRunner] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    @property
    def svc(self):
        from handlers.context import SERVICES

        return self.app[SERVICES]

    def start(self, truncate_pg: bool) -> "ServedMall":
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self._start(truncate_pg))
        return self

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _start(self, truncate_pg: bool) -> None:
        from bot import build_app
        from handlers.context import SERVICES
        from tests.conftest import TEST_APP_ID, TEST_APP_SECRET
        from tests.fakes.wechat_api import FakeWeChatAPI

        self.fake = FakeWeChatAPI(app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)
        self.fake.base_url = await self._serve(self.fake.app())
        settings = self.settings_factory(self.fake.base_url)
        if truncate_pg:
            from storage.db import create_engine
            from tests.conftest import clean_pg

            eng = create_engine(settings.database_url, schema=settings.database_schema)
            async with eng.begin() as conn:
                await clean_pg(conn, settings.database_schema)
            await eng.dispose()
        self.app = build_app(settings, auto_setup=True)
        self.url = await self._serve(self.app)
        self.app[SERVICES].public_base_url = self.url

    def settle(self) -> None:
        async def go() -> None:
            svc = self.svc
            for _ in range(20):
                await svc.outbox.drain()
                if not await svc.outbox.run_once():
                    return

        self.run(go())

    def stop(self) -> None:
        async def down() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()

        try:
            self.run(down())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self._thread:
                self._thread.join(10)
            self.loop.close()


def console_page(browser, base_url: str, username: str = "boss", password: str = PASSWORD):
    """A browser context (desktop size, zh-CN) and a page logged in to the console as
    `username`, at the dashboard: (context, page). Close the context when done."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    return context, page
