"""`python bot.py chat`: shop from a terminal exactly as from WeChat.

Every line typed becomes a signed WeChat request into the real endpoint. With no server
given (`--url`) and none answering on 127.0.0.1:8080, it starts one in this process on
the embedded default.

Pushed messages (payment confirmations, group-buy progress, slow replies) print here too:
while the shop runs on the demo account, the server plays WeChat's message API itself
(handlers/wechat_simulator.py) and keeps what it sends to each user in an inbox, which
this client polls every second, signed with the account's token. A server with a real
account answers the inbox with 404, and the pushes go to the user's phone instead.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from handlers.mp_simulator import Answer, MPSimulator
from handlers.wechat_simulator import inbox_signature
from social_mall.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8080"


def _print_answer(answer: Answer) -> None:
    if answer.status != 200:
        print(f"[HTTP {answer.status}] {answer.body}")
    elif answer.msg_type == "news":
        for a in answer.articles:
            print(f"【{a.get('Title', '')}】{a.get('Description', '')}\n  图片 {a.get('PicUrl', '')}\n  链接 {a.get('Url', '')}")
    elif answer.content:
        print(answer.content)
    print()


def push_inbox(user: str) -> web.Application:
    """A loopback stand-in for api.weixin.qq.com's token and customer-service calls that
    prints what is sent to `user` (bench/ serves it to the apps it measures)."""

    async def token(_: web.Request) -> web.Response:
        return web.json_response({"access_token": "terminal-token", "expires_in": 7200})

    async def custom_send(request: web.Request) -> web.Response:
        msg: dict[str, Any] = await request.json()
        if msg.get("touser") == user:
            if msg.get("msgtype") == "text":
                print(f"\n[推送] {msg['text']['content']}\n> ", end="", flush=True)
            elif msg.get("msgtype") == "news":
                for a in msg["news"]["articles"]:
                    print(f"\n[推送]【{a['title']}】{a.get('description', '')}\n  链接 {a.get('url', '')}\n> ",
                          end="", flush=True)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/cgi-bin/stable_token", token)
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/message/custom/send", custom_send)
    app.router.add_post("/cgi-bin/message/template/send", custom_send)
    return app


class PushInbox:
    """The user's inbox at the server's stand-in for WeChat's message API."""

    def __init__(self, session: aiohttp.ClientSession, url: str, tenant: str, user: str, token: str) -> None:
        self.session, self.url, self.user, self.token = session, f"{url}/wechat/sim/{tenant}/inbox", user, token
        self.after: int | None = None

    async def fetch(self) -> list[dict[str, Any]] | None:
        """New messages since the last fetch (the first only finds where the inbox stands);
        None when the server has no inbox for us (a real account: pushes go to WeChat)."""
        ts, nonce = str(int(time.time())), secrets.token_hex(6)
        query = {"user": self.user, "timestamp": ts, "nonce": nonce,
                 "signature": inbox_signature(self.token, ts, nonce, self.user)}
        if self.after is not None:
            query["after"] = str(self.after)
        async with self.session.get(self.url, params=query, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            doc = await resp.json()
        self.after = int(doc["last"])
        return [m for m in doc["messages"] if isinstance(m, dict)]

    async def print_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                messages = await self.fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                await asyncio.sleep(interval * 3)  # the server restarting, say: try again
                continue
            if messages is None:
                return
            for m in messages:
                link = f"\n  链接 {m['url']}" if m.get("url") else ""
                print(f"\n[推送] {m.get('text', '')}{link}\n> ", end="", flush=True)
            await asyncio.sleep(interval)


async def _alive(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status in (200, 503)
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _start_local(settings: Settings) -> tuple[str, list[web.AppRunner]]:
    from bot import build_app
    from handlers.context import SERVICES

    runner = web.AppRunner(build_app(settings, public_base_url=DEFAULT_URL), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 8080)
    try:
        await site.start()
        url = DEFAULT_URL
    except OSError:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    runner.app[SERVICES].public_base_url = url
    return url, [runner]


async def run_chat(settings: Settings, *, url: str, user: str, tenant: str, safe_mode: bool) -> int:
    runners: list[web.AppRunner] = []
    async with aiohttp.ClientSession() as session:
        if not url:
            url = DEFAULT_URL
            if not await _alive(session, url):
                print("没有发现运行中的服务，正在本进程内启动一个（嵌入式默认配置）…")
                url, runners = await _start_local(settings)
        url = url.rstrip("/")
        token = settings.wechat_token.get_secret_value()
        sim = MPSimulator(
            session, f"{url}/wechat/mp/{tenant}", token=token,
            app_id=settings.wechat_app_id, aes_key=settings.wechat_aes_key.get_secret_value(),
            safe_mode=safe_mode,
        )
        inbox = PushInbox(session, url, tenant, user, token)
        try:
            has_inbox = await inbox.fetch() is not None
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            has_inbox = False
        print(f"已连接 {url}（用户 {user}）。输入消息回车发送，输入 /quit 退出。")
        if has_inbox:
            print("推送消息（支付成功、拼团进度…）会以 [推送] 显示在这里。")
        print()
        _print_answer(await sim.event(user, "subscribe"))
        pushes = asyncio.create_task(inbox.print_forever()) if has_inbox else None
        loop = asyncio.get_running_loop()
        try:
            while True:
                print("> ", end="", flush=True)
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line or line.strip() in {"/quit", "/exit"}:
                    break
                if line.strip():
                    _print_answer(await sim.text(user, line.strip()))
        finally:
            if pushes is not None:
                pushes.cancel()
            for r in runners:
                await r.cleanup()
    return 0
