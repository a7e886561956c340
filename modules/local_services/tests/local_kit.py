"""Helpers for the module's end-to-end tests: the real app (with the module on, off, or
not installed), a signed WeChat simulator, sandbox payment through the real pay page and
signed notify, and reads of what the database holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from handlers.mp_simulator import MPSimulator
from social_mall.orders.service import find_order
from social_mall.plugins import Module
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings

ORDER_NO = re.compile(r"订单号：(\d+)")
PAY_URL = re.compile(r"(http\S+/h5/pay/demo/\S+)")
CODE = re.compile(r"\b(\d{12})\b")

# 人民广场 and a point 1.2 km east of it (GCJ-02)
PEOPLE_SQUARE = ("31.232600", "121.475800")
BUND = ("31.240300", "121.490900")
FAR_AWAY = ("39.908722", "116.397499")   # Beijing


SHANGHAI = timezone(timedelta(hours=8))


class Clock:
    """The app's clock, fixed and moved by the test (never the wall clock: store hours,
    slots and validity would depend on when the suite runs)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def shanghai(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(timezone.utc)


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


async def order(mall: Mall, order_no: str):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        return await find_order(uow, tenant.id, order_no)


def pushes(mall: Mall, user: str) -> list[str]:
    return [m["text"]["content"] for m in mall.fake.sent_messages(user) if m.get("msgtype") == "text"]


async def bind_staff(mall: Mall, wx: MPSimulator, user: str, store_name: str, *, admin: str = "boss") -> None:
    """The store manager makes a bind code in the console; the staff member sends it."""
    from sqlalchemy import select

    from social_mall_local.models import Store
    from tests.fakes.console_kit import login, make_admin

    client = mall.client
    try:
        await make_admin(mall.svc.uows, admin)
    except Exception:  # noqa: BLE001 - made by an earlier call
        pass
    csrf = await login(client, admin)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        store_id = await uow.session.scalar(select(Store.id).where(Store.tenant_id == tenant.id,
                                                                   Store.name == store_name))
    page = await (await client.post("/console/local/staff/codes", data={"_csrf": csrf, "store_id": str(store_id)})).text()
    code = re.search(r"绑定码：<strong>([0-9A-Z\-]+)</strong>", page).group(1)
    await wx.event(user, "subscribe")
    assert f"您已是「{store_name}」的核销员" in await say(wx, user, f"绑定核销员 {code}")


async def to_checkout(wx: MPSimulator, user: str, keyword: str, qty: int = 1) -> str:
    """Search, open the product and buy `qty` of its first SKU: checkout's first answer
    (the methods, the address asked for, or the summary)."""
    await wx.event(user, "subscribe")
    found = await say(wx, user, f"搜索 {keyword}")
    if "的搜索结果" in found:                                # several hits: the first one's card
        await say(wx, user, "1")
    return await say(wx, user, f"1 x{qty}")


async def buy_for_pickup(mall: Mall, wx: MPSimulator, user: str, keyword: str, qty: int = 1, *,
                         store: int = 1, time: int | None = 1, method_listed: bool = True) -> str:
    """Search, buy `qty` from the card, pick-up at the n-th store (and time); the
    confirmation text."""
    methods = await to_checkout(wx, user, keyword, qty)
    if method_listed:
        assert "2. 门店自提 / 到店使用" in methods, methods
        methods = await say(wx, user, "2")
    assert "请选择门店" in methods, methods
    picked = await say(wx, user, str(store))
    if time is not None:
        assert "可自提的时间" in picked, picked
        picked = await say(wx, user, str(time))
    assert "请确认订单" in picked, picked
    return picked


def codes_in(text: str) -> list[str]:
    return [c.replace(" ", "") for c in re.findall(r"(\d{4} \d{4} \d{4})", text)]
