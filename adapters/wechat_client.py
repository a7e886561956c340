"""Outbound client for the WeChat official-account API (customer-service, template, QR,
media, the JS-SDK ticket).

The access token lives in the key-value store so every worker shares one token; a refresh
is single-flight across workers (KV lock + re-check). The JS-SDK's jsapi_ticket is cached
the same way. Tokens, tickets and the AppSecret are never logged and are scrubbed from
error messages.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, TypedDict
from urllib.parse import quote

import aiohttp
from wechatpy.utils import WeChatSigner

from social_mall.kv import KVStore, LockTimeoutError

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
QR_TEMP_MAX_SECONDS = 2_592_000
MEDIA_MAX_BYTES = 10 * 1024 * 1024   # WeChat's limit for an image
QR_LIMIT_SCENE_MAX = 100_000
SHOW_QRCODE_URL = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="
GETTICKET = "/cgi-bin/ticket/getticket"
_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s'\"]+")

Json = dict[str, Any]
BodyFactory = Callable[[], dict[str, Any]]


class WeChatAPIError(Exception):
    """WeChat answered errcode != 0, or could not be reached (errcode -1)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode, self.errmsg = errcode, errmsg

    def __str__(self) -> str:
        return f"WeChat API error {self.errcode}: {self.errmsg}"


class QRCode(TypedDict):
    ticket: str
    url: str
    expire_seconds: int | None


def qrcode_image_url(ticket: str) -> str:
    """Where WeChat serves the QR image for a ticket."""
    return SHOW_QRCODE_URL + quote(ticket, safe="")


def jsapi_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The JS-SDK `wx.config` signature: sha1 of
    `jsapi_ticket=T&noncestr=N&timestamp=TS&url=U`, the values raw, U without its `#…`
    (wechatpy's signer sorts the four pairs into exactly that order)."""
    signer = WeChatSigner(delimiter=b"&")
    signer.add_data(f"jsapi_ticket={ticket}", f"noncestr={noncestr}", f"timestamp={timestamp}",
                    f"url={url.split('#', 1)[0]}")
    return str(signer.signature)


def token_ttl(expires_in: int) -> float:
    """Cache a token 5 minutes less than WeChat's lifetime (half of it when that is short)."""
    return float(expires_in - 300) if expires_in > 600 else max(expires_in / 2, 1.0)


class WeChatClient:
    """Async client for one tenant's official account."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        kv: KVStore,
        *,
        api_base: str,
        app_id: str,
        app_secret: str,
        tenant: str,
        timeout: float = 10.0,
    ) -> None:
        self._session, self._kv = session, kv
        self._base = api_base.rstrip("/")
        self._app_id, self._secret, self._tenant = app_id, app_secret, tenant
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._key = f"wxtoken:{tenant}"

    def __repr__(self) -> str:
        return f"WeChatClient(app_id={self._app_id!r}, tenant={self._tenant!r})"

    # -- access token -------------------------------------------------------------------

    async def access_token(self, stale: str | None = None) -> str:
        """The cached token; refreshed once for all workers when absent or equal to `stale`.

        After a rejected token (`stale`) the stable token is first re-read in normal mode
        (someone else may have rotated it); only if WeChat hands back the rejected token
        again is it force-refreshed, since forcing revokes the token for every other
        holder and is capped at 20 a day.
        """
        cached = await self._kv.get(self._key)
        if cached and cached != stale:
            return cached
        try:
            async with self._kv.lock(self._key, ttl=30.0, wait=30.0):
                cached = await self._kv.get(self._key)
                if cached and cached != stale:
                    return cached
                if cached is not None:
                    await self._kv.delete(self._key)
                token, expires_in = await self._fetch_token(force=False)
                if stale is not None and token == stale:
                    token, expires_in = await self._fetch_token(force=True)
                await self._kv.set(self._key, token, ttl=token_ttl(expires_in))
                return token
        except LockTimeoutError:
            raise WeChatAPIError(-1, "timed out waiting for the token refresh lock") from None

    async def _fetch_token(self, *, force: bool) -> tuple[str, int]:
        body = {"grant_type": "client_credential", "appid": self._app_id,
                "secret": self._secret, "force_refresh": force}
        data = await self._send("POST", "/cgi-bin/stable_token", {}, _json_body(body)())
        self._raise_for_errcode(data, "/cgi-bin/stable_token")
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatAPIError(-1, "malformed stable_token response")
        log.info("wechat.token.fetched",
                 extra={"tenant": self._tenant, "forced": force, "expires_in": expires_in})
        return token, expires_in

    # -- JS-SDK ---------------------------------------------------------------------------

    async def jsapi_ticket(self) -> str:
        """The JS-SDK ticket (`getticket?type=jsapi`), shared by every worker through the
        key-value store and fetched once for all when absent (like the access token)."""
        key = f"wxticket:{self._tenant}"
        cached = await self._kv.get(key)
        if cached:
            return cached
        try:
            async with self._kv.lock(key, ttl=30.0, wait=30.0):
                cached = await self._kv.get(key)
                if cached:
                    return cached
                data = await self.call("GET", GETTICKET, params={"type": "jsapi"})
                ticket, expires_in = data.get("ticket"), data.get("expires_in")
                if not isinstance(ticket, str) or not ticket or not isinstance(expires_in, int):
                    raise WeChatAPIError(-1, "malformed getticket response")
                await self._kv.set(key, ticket, ttl=token_ttl(expires_in))
                log.info("wechat.jsapi_ticket.fetched", extra={"tenant": self._tenant, "expires_in": expires_in})
                return ticket
        except LockTimeoutError:
            raise WeChatAPIError(-1, "timed out waiting for the ticket refresh lock") from None

    async def invalidate_token(self) -> None:
        """Drop the cached token (next call fetches one)."""
        await self._kv.delete(self._key)

    # -- generic call ---------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Json:
        """Call `path` with the access token; retry once after a token error."""
        body = _json_body(json) if json is not None else dict
        return await self._call(method, path, params, body)

    async def _call(self, method: str, path: str, params: Mapping[str, str] | None,
                    body: BodyFactory) -> Json:
        token = await self.access_token()
        data = await self._send(method, path, {**(params or {}), "access_token": token}, body())
        if data.get("errcode") in TOKEN_ERRORS:
            log.warning("wechat.token.rejected",
                        extra={"tenant": self._tenant, "path": path, "errcode": data["errcode"]})
            token = await self.access_token(stale=token)
            data = await self._send(method, path, {**(params or {}), "access_token": token},
                                    body())
        self._raise_for_errcode(data, path)
        return data

    async def _send(self, method: str, path: str, params: Mapping[str, str],
                    body: dict[str, Any]) -> Json:
        """One HTTP exchange; transport failures and non-JSON answers become errcode -1."""
        url = self._base + path
        try:
            async with self._session.request(method, url, params=params, timeout=self._timeout,
                                             **body) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("wechat.api.unreachable", extra={"path": path, "error": type(exc).__name__})
            raise WeChatAPIError(-1, f"network error: {self._scrub(repr(exc))}") from None
        if status >= 400:
            raise WeChatAPIError(-1, f"HTTP {status} from {path}")
        try:
            data = jsonlib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WeChatAPIError(-1, f"non-JSON answer from {path}") from None
        if not isinstance(data, dict):
            raise WeChatAPIError(-1, f"unexpected JSON from {path}")
        return data

    def _raise_for_errcode(self, data: Json, path: str) -> None:
        errcode = data.get("errcode", 0)
        if errcode in (0, None):
            return
        errmsg = self._scrub(str(data.get("errmsg", "")))
        log.warning("wechat.api.error",
                    extra={"tenant": self._tenant, "path": path, "errcode": errcode})
        raise WeChatAPIError(int(errcode), errmsg)

    def _scrub(self, text: str) -> str:
        text = text.replace(self._secret, "***") if self._secret else text
        return _TOKEN_IN_URL.sub(r"\1***", text)

    # -- customer-service messages ----------------------------------------------------

    async def send_text(self, openid: str, content: str) -> None:
        """Customer-service text message (only within 48 h of the user's last action)."""
        await self._custom(openid, "text", {"content": content})

    async def send_news(self, openid: str, articles: list[dict[str, str]]) -> None:
        """Link card(s): each article has title, description, url, picurl (WeChat allows 1)."""
        items = [{k: a.get(k, "") for k in ("title", "description", "url", "picurl")}
                 for a in articles]
        await self._custom(openid, "news", {"articles": items})

    async def send_image(self, openid: str, media_id: str) -> None:
        """Image message from an uploaded temporary media id."""
        await self._custom(openid, "image", {"media_id": media_id})

    async def _custom(self, openid: str, msgtype: str, payload: dict[str, Any]) -> None:
        body = {"touser": openid, "msgtype": msgtype, msgtype: payload}
        await self.call("POST", "/cgi-bin/message/custom/send", json=body)

    async def send_template(self, openid: str, template_id: str, data: Mapping[str, Any],
                            url: str | None = None) -> int:
        """Template message; `data` values may be plain strings or {"value", "color"}."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: dict(v) if isinstance(v, Mapping) else {"value": str(v)}
                     for k, v in data.items()},
        }
        if url:
            body["url"] = url
        answer = await self.call("POST", "/cgi-bin/message/template/send", json=body)
        return int(answer["msgid"])

    async def send_subscribe(self, openid: str, template_id: str, data: Mapping[str, str], page: str = "") -> None:
        """订阅通知 (`message/subscribe/bizsend`): one message of a template the member allowed
        in WeChat's pop-up; WeChat refuses it (43101) without a consent left. `data`:
        keyword → value (a `thing` keyword holds at most 20 characters); `page`: a web link."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if page:
            body["page"] = page
        await self.call("POST", "/cgi-bin/message/subscribe/bizsend", json=body)

    # -- QR codes and media -----------------------------------------------------------

    async def create_qrcode(self, scene: str | int, expire_seconds: int | None) -> QRCode:
        """Parametric QR code; `expire_seconds=None` makes a permanent one."""
        body = qrcode_request(scene, expire_seconds)
        answer = await self.call("POST", "/cgi-bin/qrcode/create", json=body)
        expires = answer.get("expire_seconds")
        return QRCode(ticket=str(answer["ticket"]), url=str(answer["url"]),
                      expire_seconds=int(expires) if expires is not None else None)

    async def upload_image(self, data: bytes, filename: str) -> str:
        """Upload a temporary image (3 days); returns its media_id."""
        def body() -> dict[str, Any]:
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename,
                           content_type=_image_type(filename))
            return {"data": form}

        answer = await self._call("POST", "/cgi-bin/media/upload", {"type": "image"}, body)
        return str(answer["media_id"])

    async def upload_material(self, data: bytes, filename: str) -> str:
        """Upload a permanent image material (`/cgi-bin/material/add_material?type=image`,
        e.g. an article's cover for a draft); returns its media_id."""
        def body() -> dict[str, Any]:
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename, content_type=_image_type(filename))
            return {"data": form}

        answer = await self._call("POST", "/cgi-bin/material/add_material", {"type": "image"}, body)
        return str(answer["media_id"])

    async def download_media(self, media_id: str, *, max_bytes: int = MEDIA_MAX_BYTES) -> tuple[bytes, str]:
        """A temporary media's bytes and content type (`GET /cgi-bin/media/get`): an image a
        member sent is kept 3 days by WeChat, so whatever must outlive that is fetched
        here and stored. WeChat answers the bytes, or JSON with an errcode (40007: unknown
        media id): raised as WeChatAPIError, like a body past `max_bytes`. A token error is
        retried once with a fresh token."""
        for attempt in (0, 1):
            token = await self.access_token() if attempt == 0 else await self.access_token(stale=token)
            try:
                async with self._session.get(self._base + "/cgi-bin/media/get", timeout=self._timeout,
                                             params={"access_token": token, "media_id": media_id}) as resp:
                    if resp.status >= 400:
                        raise WeChatAPIError(-1, f"HTTP {resp.status} from /cgi-bin/media/get")
                    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    raw = await resp.content.read(max_bytes + 1)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise WeChatAPIError(-1, f"network error: {self._scrub(repr(exc))}") from None
            if len(raw) > max_bytes:
                raise WeChatAPIError(-1, "media too large")
            if ctype in ("application/json", "text/plain"):
                try:
                    data = jsonlib.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise WeChatAPIError(-1, "non-JSON answer from /cgi-bin/media/get") from None
                if not isinstance(data, dict):
                    raise WeChatAPIError(-1, "unexpected JSON from /cgi-bin/media/get")
                if data.get("errcode") in TOKEN_ERRORS and attempt == 0:
                    continue
                self._raise_for_errcode(data, "/cgi-bin/media/get")
                raise WeChatAPIError(-1, "no media in the answer")
            return raw, ctype or "application/octet-stream"
        raise WeChatAPIError(-1, "token refused twice")


def qrcode_request(scene: str | int, expire_seconds: int | None) -> dict[str, Any]:
    """Build the qrcode/create body, checking WeChat's scene rules first."""
    if isinstance(scene, bool):
        raise ValueError("scene must be str or int")
    if isinstance(scene, int):
        limit = QR_LIMIT_SCENE_MAX if expire_seconds is None else 2**32 - 1
        if not 1 <= scene <= limit:
            raise ValueError(f"scene_id must be within 1..{limit}")
        info: dict[str, Any] = {"scene_id": scene}
        action = "QR_SCENE" if expire_seconds is not None else "QR_LIMIT_SCENE"
    else:
        if not 1 <= len(scene) <= 64:
            raise ValueError("scene_str must be 1..64 characters")
        info = {"scene_str": scene}
        action = "QR_STR_SCENE" if expire_seconds is not None else "QR_LIMIT_STR_SCENE"
    body: dict[str, Any] = {"action_name": action, "action_info": {"scene": info}}
    if expire_seconds is not None:
        if not 1 <= expire_seconds <= QR_TEMP_MAX_SECONDS:
            raise ValueError(f"expire_seconds must be within 1..{QR_TEMP_MAX_SECONDS}")
        body["expire_seconds"] = expire_seconds
    return body


def _json_body(obj: Any) -> BodyFactory:
    """UTF-8 JSON, non-ASCII kept as text: WeChat does not decode \\uXXXX escapes."""
    raw = jsonlib.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return lambda: {"data": raw, "headers": headers}


def _image_type(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "gif": "image/gif", "bmp": "image/bmp"}.get(ext, "image/jpeg")
