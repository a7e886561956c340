"""WeCom (企业微信) fakes: the group robot's webhook (records what the bot posts to a
group, checks the key and the message shape like the real server) and a simulator of the
AI bot's HTTP callback towards our `/wechat/wecom/{tenant}` (encrypted JSON, signed,
receive id "", replies decrypted and their signature checked)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from wechatpy.utils import WeChatSigner
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto


def sign(*parts: str) -> str:
    s = WeChatSigner()
    s.add_data(*parts)
    return str(s.signature)


@dataclass
class FakeWeComRobot:
    key: str = field(default_factory=lambda: secrets.token_hex(8))
    base_url: str = ""
    posted: list[dict[str, Any]] = field(default_factory=list)
    per_minute: int = 20
    _times: list[float] = field(default_factory=list)

    # corp apps this fake qyapi.weixin.qq.com knows: corp id → {app secret: agent id}
    corps: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # issued access token → corp id

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self._send)
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        return app

    async def _gettoken(self, request: web.Request) -> web.Response:
        """WeCom's gettoken: an unknown corp id is 40013, a wrong secret 40001 (both as the
        real server words them), a missing one 41002 / 41004."""
        corpid, secret = request.query.get("corpid", ""), request.query.get("corpsecret", "")
        if not corpid:
            return web.json_response({"errcode": 41002, "errmsg": "corpid missing"})
        if not secret:
            return web.json_response({"errcode": 41004, "errmsg": "corpsecret missing"})
        if corpid not in self.corps:
            return web.json_response({"errcode": 40013, "errmsg": "invalid corpid"})
        if secret not in self.corps[corpid]:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = secrets.token_urlsafe(48)
        self.tokens[token] = corpid
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/cgi-bin/webhook/send?key={self.key}"

    def texts(self) -> list[str]:
        return [p["text"]["content"] for p in self.posted if p.get("msgtype") == "text"]

    async def _send(self, request: web.Request) -> web.Response:
        if request.query.get("key") != self.key:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"errcode": 40016, "errmsg": "invalid json"})
        kind = body.get("msgtype") if isinstance(body, dict) else None
        if kind not in ("text", "markdown", "image", "news") or not isinstance(body.get(kind), dict):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        if kind in ("text", "markdown") and not body[kind].get("content"):
            return web.json_response({"errcode": 44004, "errmsg": "empty content"})
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < 60]
        if len(self._times) >= self.per_minute:
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        self._times.append(now)
        self.posted.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@dataclass
class WeComReply:
    status: int
    content: str = ""
    raw: str = ""


class WeComBotSimulator:
    """Plays WeCom posting group messages to the bot's callback URL."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, token: str, aes_key: str,
                 aibotid: str = "aib_test", receive_id: str = "") -> None:
        self.session, self.url, self.token, self.aibotid = session, url, token, aibotid
        self.receive_id = receive_id
        self.crypto = WeChatCrypto(token, aes_key, receive_id)

    def envelope(self, plain: dict[str, Any], *, timestamp: str | None = None,
                 nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        ts, nonce = timestamp or str(int(time.time())), nonce or secrets.token_hex(5)
        text = json.dumps(plain, ensure_ascii=False)
        if any("\ud800" <= ch <= "\udfff" for ch in text):  # a lone surrogate has no UTF-8:
            text = json.dumps(plain)                           # it travels as a \u escape
        encrypt = PrpCrypto(self.crypto.key).encrypt(text, self.receive_id).decode()
        query = {"msg_signature": sign(self.token, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}
        return query, json.dumps({"encrypt": encrypt}).encode()

    def group_text(self, chat_id: str, user: str, content: str, *, msgid: str | None = None) -> dict[str, Any]:
        return {"msgid": msgid or secrets.token_hex(8), "aibotid": self.aibotid, "chatid": chat_id,
                "chattype": "group", "from": {"userid": user}, "create_time": int(time.time()),
                "response_url": "http://127.0.0.1/unused", "msgtype": "text", "text": {"content": content}}

    async def post(self, query: dict[str, str], body: bytes) -> WeComReply:
        async with self.session.post(self.url, params=query, data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
            raw = await resp.text()
            if resp.status != 200 or not raw.strip():
                return WeComReply(resp.status, "", raw)
            doc = json.loads(raw)
            if sign(self.token, doc["timestamp"], doc["nonce"], doc["encrypt"]) != doc["msgsignature"]:
                raise AssertionError("reply signature does not verify")
            plain = json.loads(self.crypto.decrypt_message(
                {"Encrypt": doc["encrypt"]}, doc["msgsignature"], doc["timestamp"], doc["nonce"]))
            assert plain["msgtype"] == "stream" and plain["stream"]["finish"] is True
            return WeComReply(200, plain["stream"]["content"], raw)

    async def say(self, chat_id: str, user: str, content: str) -> WeComReply:
        return await self.post(*self.envelope(self.group_text(chat_id, user, content)))

    async def verify(self, echo: str = "hello") -> tuple[int, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(5)
        echostr = PrpCrypto(self.crypto.key).encrypt(echo, self.receive_id).decode()
        q = {"msg_signature": sign(self.token, ts, nonce, echostr), "timestamp": ts, "nonce": nonce,
             "echostr": echostr}
        async with self.session.get(self.url, params=q) as resp:
            return resp.status, await resp.text()


async def demo_group_bot(mall: Any, robot: FakeWeComRobot, token: str, aes_key: str) -> WeComBotSimulator:
    """The demo tenant's WeCom group bot saved in its settings (this token and key, the
    robot's webhook) and a simulator posting to its callback."""
    from datetime import datetime, timezone

    from social_mall.groupbuy import service

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await service.save_wecom_settings(uow, service.WecomSettings(
            tenant.id, token, aes_key, "", robot.webhook_url, "机器人"), actor="test", now=datetime.now(timezone.utc))
        await uow.commit()
    return WeComBotSimulator(mall.client.session, str(mall.client.make_url("/wechat/wecom/demo")),
                             token=token, aes_key=aes_key)
