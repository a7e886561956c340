"""`python bot.py chat`: shop from a terminal exactly as from WeChat.

Every line typed becomes a signed WeChat request into the real endpoint. With no server
given (`--url`) and none answering on 127.0.0.1:8080, it starts one in this process on
the embedded default, together with a small stand-in for WeChat's message API on
loopback, so that pushed messages (payment confirmations, slow replies) print here too.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp
from aiohttp import web

from handlers.mp_simulator import Answer, MPSimulator
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
    """A loopback stand-in for api.weixin.qq.com's token and customer-service calls."""

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


async def _alive(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status in (200, 503)
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _start_local(settings: Settings, user: str) -> tuple[str, list[web.AppRunner], Settings]:
    from bot import build_app

    inbox = web.AppRunner(push_inbox(user))
    await inbox.setup()
    inbox_site = web.TCPSite(inbox, "127.0.0.1", 0)
    await inbox_site.start()
    inbox_port = inbox_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    local = settings.model_copy(update={"wechat_api_base": f"http://127.0.0.1:{inbox_port}"})
    runner = web.AppRunner(build_app(local, public_base_url="http://127.0.0.1:8080"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 8080)
    try:
        await site.start()
        url = "http://127.0.0.1:8080"
    except OSError:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    from handlers.context import SERVICES

    runner.app[SERVICES].public_base_url = url
    return url, [runner, inbox], local


async def run_chat(settings: Settings, *, url: str, user: str, tenant: str, safe_mode: bool) -> int:
    runners: list[web.AppRunner] = []
    async with aiohttp.ClientSession() as session:
        if not url:
            url = DEFAULT_URL
            if not await _alive(session, url):
                print("没有发现运行中的服务，正在本进程内启动一个（嵌入式默认配置）…")
                url, runners, settings = await _start_local(settings, user)
        sim = MPSimulator(
            session, f"{url}/wechat/mp/{tenant}", token=settings.wechat_token.get_secret_value(),
            app_id=settings.wechat_app_id, aes_key=settings.wechat_aes_key.get_secret_value(),
            safe_mode=safe_mode,
        )
        print(f"已连接 {url}（用户 {user}）。输入消息回车发送，输入 /quit 退出。\n")
        _print_answer(await sim.event(user, "subscribe"))
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
            for r in runners:
                await r.cleanup()
    return 0
