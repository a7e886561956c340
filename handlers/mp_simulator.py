"""Plays WeChat's servers towards our official-account endpoint: builds the XML a user's
message or event becomes, signs it (and encrypts it in safe mode) with wechatpy, posts
it, and reads the passive reply back. Used by `bot.py chat`, the tests and bench/."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass
class Answer:
    status: int
    body: str
    msg_type: str = ""
    content: str = ""
    articles: list[dict[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """What the user sees: the text, or the news card's title and description."""
        if self.msg_type == "news":
            return "\n".join(f"{a.get('Title', '')}\n{a.get('Description', '')}" for a in self.articles)
        return self.content


# WeChat's MsgId is unique across the account: every simulator in a process draws from one
# sequence (two simulators of one test talking to two workers must never collide).
_MSG_IDS = itertools.count(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))


class MPSimulator:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        token: str,
        app_id: str,
        aes_key: str = "",
        safe_mode: bool = False,
        account: str = "gh_0123456789ab",
    ) -> None:
        self.session, self.url = session, url
        self.token, self.app_id, self.account = token, app_id, account
        self.crypto = WeChatCrypto(token, aes_key, app_id) if safe_mode else None
        self._last_event = 0

    def _event_time(self) -> int:
        """Events are de-duplicated by sender + CreateTime + event: two of one kind in one
        second would read as WeChat's retry, so this simulator's menu events tick on."""
        self._last_event = max(int(time.time()), self._last_event + 1)
        return self._last_event

    # -- message XML ---------------------------------------------------------------------
    def _envelope(self, user: str, msg_type: str, body: str, created: int | None) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{created or int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
        )

    def text_xml(self, user: str, content: str, *, msg_id: int | None = None, created: int | None = None) -> str:
        if msg_id is None:
            msg_id = next(_MSG_IDS)
        body = f"<Content>{escape(content)}</Content><MsgId>{msg_id}</MsgId>"
        return self._envelope(user, "text", body, created)

    def event_xml(self, user: str, event: str, key: str = "", *, created: int | None = None) -> str:
        body = f"<Event><![CDATA[{event}]]></Event>"
        if key:
            body += f"<EventKey><![CDATA[{key}]]></EventKey><Ticket><![CDATA[t_{secrets.token_hex(4)}]]></Ticket>"
        return self._envelope(user, "event", body, created)

    def location_xml(self, user: str, lat: str, lng: str, label: str = "", *, msg_id: int | None = None,
                     created: int | None = None) -> str:
        """A location message (the user sent one with + → 位置)."""
        if msg_id is None:
            msg_id = next(_MSG_IDS)
        body = (f"<Location_X>{escape(lat)}</Location_X><Location_Y>{escape(lng)}</Location_Y><Scale>15</Scale>"
                f"<Label><![CDATA[{label}]]></Label><MsgId>{msg_id}</MsgId>")
        return self._envelope(user, "location", body, created)

    def image_xml(self, user: str, media_id: str, pic_url: str = "", *, msg_id: int | None = None,
                  created: int | None = None) -> str:
        """An image message (the user sent a photo)."""
        if msg_id is None:
            msg_id = next(_MSG_IDS)
        body = (f"<PicUrl><![CDATA[{pic_url or 'http://mmbiz.qpic.cn/' + media_id}]]></PicUrl>"
                f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{msg_id}</MsgId>")
        return self._envelope(user, "image", body, created)

    def menu_event_xml(self, user: str, event: str, key: str, inner: str, *, created: int | None = None) -> str:
        """A menu event with its own fields (`inner`: e.g. <ScanCodeInfo>…</ScanCodeInfo>)."""
        body = f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey>{inner}"
        return self._envelope(user, "event", body, created or self._event_time())

    # -- signing and posting -------------------------------------------------------------
    def signed_request(
        self, xml: str, *, user: str, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        ts = str(timestamp or int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        query = {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": user}
        if self.crypto is None:
            return query, xml.encode()
        enc = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        query.update(encrypt_type="aes", msg_signature=sign(self.token, ts, nonce, enc["Encrypt"]))
        body = f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName><Encrypt><![CDATA[{enc['Encrypt']}]]></Encrypt></xml>"
        return query, body.encode()

    async def post(self, query: dict[str, str], body: bytes) -> Answer:
        async with self.session.post(self.url, params=query, data=body,
                                     headers={"Content-Type": "text/xml"}) as resp:
            text = await resp.text()
            return self.read_answer(resp.status, text, query)

    def read_answer(self, status: int, text: str, query: dict[str, str]) -> Answer:
        if status != 200 or not text.strip().startswith("<xml"):
            return Answer(status, text)
        doc: dict[str, Any] = xmltodict.parse(text)["xml"]
        if self.crypto is not None and "Encrypt" in doc:
            expected = sign(self.token, doc["TimeStamp"], doc["Nonce"], doc["Encrypt"])
            if expected != doc["MsgSignature"]:
                raise AssertionError("reply signature does not verify")
            plain = self.crypto.decrypt_message(text, doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"])
            doc = xmltodict.parse(plain)["xml"]
        msg_type = doc.get("MsgType", "")
        articles: list[dict[str, str]] = []
        if msg_type == "news":
            items = doc["Articles"]["item"]
            articles = items if isinstance(items, list) else [items]
        return Answer(status, text, msg_type, doc.get("Content") or "", articles)

    async def text(self, user: str, content: str, **kw: Any) -> Answer:
        query, body = self.signed_request(self.text_xml(user, content), user=user)
        return await self.post(query, body)

    async def event(self, user: str, event: str, key: str = "") -> Answer:
        query, body = self.signed_request(self.event_xml(user, event, key), user=user)
        return await self.post(query, body)

    async def location(self, user: str, lat: str, lng: str, label: str = "") -> Answer:
        query, body = self.signed_request(self.location_xml(user, lat, lng, label), user=user)
        return await self.post(query, body)

    async def image(self, user: str, media_id: str, pic_url: str = "") -> Answer:
        query, body = self.signed_request(self.image_xml(user, media_id, pic_url), user=user)
        return await self.post(query, body)

    async def reported_location(self, user: str, lat: str, lng: str) -> Answer:
        """The LOCATION event WeChat pushes when a user who allowed it opens the chat."""
        inner = f"<Latitude>{escape(lat)}</Latitude><Longitude>{escape(lng)}</Longitude><Precision>65.0</Precision>"
        xml = self._envelope(user, "event", f"<Event><![CDATA[LOCATION]]></Event>{inner}", self._event_time())
        query, body = self.signed_request(xml, user=user)
        return await self.post(query, body)

    async def location_select(self, user: str, key: str, lat: str, lng: str, label: str = "") -> Answer:
        inner = (f"<SendLocationInfo><Location_X>{escape(lat)}</Location_X><Location_Y>{escape(lng)}</Location_Y>"
                 f"<Scale>15</Scale><Label><![CDATA[{label}]]></Label><Poiname><![CDATA[]]></Poiname>"
                 f"</SendLocationInfo>")
        query, body = self.signed_request(self.menu_event_xml(user, "location_select", key, inner), user=user)
        return await self.post(query, body)

    async def scan(self, user: str, key: str, result: str, *, event: str = "scancode_waitmsg") -> Answer:
        """A menu scan button: the user scanned a code, WeChat sends what it read."""
        inner = (f"<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
                 f"<ScanResult><![CDATA[{result}]]></ScanResult></ScanCodeInfo>")
        query, body = self.signed_request(self.menu_event_xml(user, event, key, inner), user=user)
        return await self.post(query, body)
