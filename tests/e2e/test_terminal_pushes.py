"""Pushes without WeChat: when the demo tenant runs on the built-in demo credentials
against the real API host (no account behind them), the server plays WeChat's message API
itself under /wechat/sim/{tenant}/, and `bot.py chat --url` prints the pushes addressed to
its user. The whole loop through real processes: the chat client is a subprocess, the
payment goes through the sandbox pay page over HTTP, the push through the outbox."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from storage.models import OutboxEvent, Sku
from tests.conftest import TEST_TOKEN, Mall, app_settings

ROOT = Path(__file__).resolve().parents[2]
REAL_API = "https://api.weixin.qq.com"
DEMO_APP_ID, DEMO_SECRET = "wx_demo_app_id", "demo_app_secret"


@pytest.fixture
async def demo_mall(backend, engine, fake_wechat, aiohttp_client, tmp_path) -> Mall:
    """The app as `dev.py run` configures it: the demo app id and secret, the real API host."""
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, REAL_API, wechat_app_id=DEMO_APP_ID,
                            wechat_app_secret=SecretStr(DEMO_SECRET), wechat_aes_key=SecretStr(""))
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def place_and_pay(mall: Mall, openid: str) -> str:
    """An order of the chat's member, paid on the sandbox pay page (HTTP): its number."""
    svc = mall.svc
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", openid)
        address = await add_address(uow, tenant.id, member.id, "王小明", "13912345678", "深圳市南山区科技园1号")
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant.id).order_by(Sku.id).limit(1))
        order = await place_order(uow, tenant.id, member.id, [(sku.id, 1)], address_id=address.id,
                                  now=svc.clock(), timeout=timedelta(minutes=30))
        await uow.commit()
    url = svc.pay_url(tenant.code, order.order_no)
    page = await (await mall.client.get(url[url.index("/h5/"):])).text()
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "支付成功" in await (await mall.client.post(action)).text()
    await mall.settle()
    return order.order_no


async def read_until(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while not any(needle in line for line in seen):
        line = await stream.readline()
        if not line:
            raise AssertionError(f"the chat ended before {needle!r}: {''.join(seen)[-2000:]}")
        seen.append(line.decode())


async def test_the_paid_push_is_printed_by_the_terminal_chat(demo_mall):
    url = str(demo_mall.client.make_url("")).rstrip("/")
    user = "oTerminalPush_00000000001"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), "chat", "--url", url, "--user", user,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"SOCIAL_MALL_WECHAT_TOKEN": TEST_TOKEN, "SOCIAL_MALL_WECHAT_APP_ID": DEMO_APP_ID,
             "PATH": "/usr/bin:/bin", "SOCIAL_MALL_LOG_LEVEL": "WARNING"},
        cwd=str(ROOT))
    seen: list[str] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, "欢迎关注", seen), 60)
        order_no = await place_and_pay(demo_mall, user)
        await asyncio.wait_for(read_until(proc.stdout, order_no, seen), 60)
    finally:
        if proc.returncode is None:
            proc.stdin.write("/quit\n".encode())
            await proc.stdin.drain()
            await asyncio.wait_for(proc.wait(), 30)
    text = "".join(seen)
    push = text[text.index("[推送]"):]
    assert "支付成功" in push and order_no in push
    assert proc.returncode == 0
    async with demo_mall.svc.uows() as uow:    # delivered at the first try: no retry row, no warning
        rows = (await uow.session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "order.paid"))).all()
    assert [(r.subscriber, r.status, r.attempts) for r in rows] == [("*", "done", 1)]


def inbox_query(user: str, token: str = TEST_TOKEN, **extra: str) -> dict[str, str]:
    ts, nonce = str(int(time.time())), "n0nce"
    sig = hashlib.sha1("".join(sorted([token, ts, nonce, user])).encode()).hexdigest()
    return {"user": user, "timestamp": ts, "nonce": nonce, "signature": sig, **extra}


async def test_the_inbox_answers_only_to_the_accounts_signature(demo_mall):
    client, user = demo_mall.client, "oInboxOwner_00000000001"
    await MPSimulator(client.session, str(client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                      app_id=DEMO_APP_ID).event(user, "subscribe")
    start = await client.get("/wechat/sim/demo/inbox", params=inbox_query(user))
    assert start.status == 200
    after = str((await start.json())["last"])
    order_no = await place_and_pay(demo_mall, user)
    got = await (await client.get("/wechat/sim/demo/inbox", params=inbox_query(user, after=after))).json()
    assert any(order_no in m["text"] for m in got["messages"])
    for forged in (inbox_query(user, token="not-the-token", after=after),
                   {**inbox_query(user, after=after), "user": "oSomeoneElse_0000000001"},
                   {**inbox_query(user, after=after), "timestamp": "1"}):
        resp = await client.get("/wechat/sim/demo/inbox", params=forged)
        assert resp.status == 403


async def test_the_simulated_api_wants_the_apps_secret_and_its_token(demo_mall):
    client = demo_mall.client
    wrong = await client.post("/wechat/sim/demo/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": DEMO_APP_ID, "secret": "guessed"})
    assert (await wrong.json())["errcode"] != 0
    sent = await client.post("/wechat/sim/demo/cgi-bin/message/custom/send", params={"access_token": "made-up"},
                             json={"touser": "oX", "msgtype": "text", "text": {"content": "spoofed"}})
    assert (await sent.json())["errcode"] == 40001


async def test_with_real_credentials_nothing_is_simulated(mall):
    """The test settings' own app id (a real-looking account): the routes are not there."""
    for path in ("/wechat/sim/demo/inbox", "/wechat/sim/demo/cgi-bin/token"):
        assert (await mall.client.get(path, params=inbox_query("oX"))).status == 404


async def api_token(client) -> str:
    answer = await (await client.post("/wechat/sim/demo/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": DEMO_APP_ID, "secret": DEMO_SECRET})).json()
    return answer["access_token"]


async def test_an_uploaded_picture_is_pushed_as_a_link_that_serves_it(demo_mall):
    import aiohttp

    from handlers.health import solid_png

    client, user = demo_mall.client, "oPicture_000000000000001"
    token = await api_token(client)
    png = solid_png(8, 8, (1, 2, 3))
    form = aiohttp.FormData()
    form.add_field("media", png, filename="qr.png", content_type="image/png")
    up = await (await client.post("/wechat/sim/demo/cgi-bin/media/upload",
                                  params={"access_token": token, "type": "image"}, data=form)).json()
    start = (await (await client.get("/wechat/sim/demo/inbox", params=inbox_query(user))).json())["last"]
    sent = await client.post("/wechat/sim/demo/cgi-bin/message/custom/send", params={"access_token": token},
                             json={"touser": user, "msgtype": "image", "image": {"media_id": up["media_id"]}})
    assert (await sent.json())["errcode"] == 0
    [m] = (await (await client.get("/wechat/sim/demo/inbox",
                                   params=inbox_query(user, after=str(start)))).json())["messages"]
    assert m["kind"] == "image"
    picture = await client.get(m["url"][m["url"].index("/wechat/sim/"):])
    assert picture.status == 200 and await picture.read() == png


async def test_past_the_daily_quota_nothing_more_is_kept(demo_mall, monkeypatch):
    from handlers import wechat_simulator

    monkeypatch.setitem(wechat_simulator.DAILY_QUOTA, "send", 2)
    client, user = demo_mall.client, "oQuota_00000000000000001"
    token = await api_token(client)
    start = (await (await client.get("/wechat/sim/demo/inbox", params=inbox_query(user))).json())["last"]
    codes = []
    for i in range(3):
        sent = await client.post("/wechat/sim/demo/cgi-bin/message/custom/send", params={"access_token": token},
                                 json={"touser": user, "msgtype": "text", "text": {"content": f"m{i}"}})
        codes.append((await sent.json())["errcode"])
    assert codes == [0, 0, 45009]
    got = (await (await client.get("/wechat/sim/demo/inbox", params=inbox_query(user, after=str(start)))).json())
    assert [m["text"] for m in got["messages"]] == ["m0", "m1"]


async def test_a_subscription_message_reaches_the_inbox_with_its_link(demo_mall):
    client, user = demo_mall.client, "oSubscribe_0000000000001"
    token = await api_token(client)
    start = (await (await client.get("/wechat/sim/demo/inbox", params=inbox_query(user))).json())["last"]
    sent = await client.post("/wechat/sim/demo/cgi-bin/message/subscribe/bizsend", params={"access_token": token},
                             json={"touser": user, "template_id": "SUB_1", "page": "https://shop.example.com/x",
                                   "data": {"thing1": {"value": "周末水果节"}}})
    assert (await sent.json()) == {"errcode": 0, "errmsg": "ok"}
    [m] = (await (await client.get("/wechat/sim/demo/inbox",
                                   params=inbox_query(user, after=str(start)))).json())["messages"]
    assert (m["text"], m["url"]) == ("周末水果节", "https://shop.example.com/x")
    bad = await client.post("/wechat/sim/demo/cgi-bin/message/subscribe/bizsend", params={"access_token": token},
                            json={"touser": user, "template_id": "SUB_1", "data": "x"})
    assert (await bad.json())["errcode"] == 40003
    assert (await (await client.get("/wechat/sim/demo/inbox",
                                    params=inbox_query(user, after=str(start)))).json())["messages"] == [m]
