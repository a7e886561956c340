"""WeChat's message API, played by the server itself while the demo has no real account.

When a tenant runs on the built-in demo app id (`wx_demo_app_id`, which no real account
can have) and WECHAT_API_BASE is WeChat's real host, the pushes (payment confirmations,
group-buy progress, coupons…) would go to api.weixin.qq.com, fail and be retried with
warnings. Instead `Services.wechat` points that tenant's client here, at

  /wechat/sim/{tenant}/cgi-bin/token, …/stable_token   an access token for the app id + secret
  /wechat/sim/{tenant}/cgi-bin/message/custom/send      customer-service text, news, image
  /wechat/sim/{tenant}/cgi-bin/message/template/send    template messages
  /wechat/sim/{tenant}/cgi-bin/message/subscribe/bizsend 订阅通知 (the sender keeps the consents)
  /wechat/sim/{tenant}/cgi-bin/qrcode/create            parametric QR codes
  /wechat/sim/{tenant}/cgi-bin/media/upload             temporary images (served back below)

and keeps what was sent in a per-user inbox in the key-value store (a day; shared by
workers), which `bot.py chat --url` polls:

  GET /wechat/sim/{tenant}/inbox?user&after&timestamp&nonce&signature
      signature = sha1(sorted([token, timestamp, nonce, user])) with the account's token,
      the same secret that signs the user's messages to /wechat/mp/{tenant}
  GET /wechat/sim/{tenant}/media/{id}                    an uploaded image

For any tenant with real credentials (or a WECHAT_API_BASE of one's own) every route here
is a 404. The API calls need the app's secret and then its token, like WeChat's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from typing import Any

from aiohttp import web

from handlers.context import SERVICES, Services
from handlers.http_utils import read_capped
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

PREFIX = "/wechat/sim"
TOKEN_SECONDS = 7200
INBOX_SECONDS = 24 * 3600
MEDIA_SECONDS = 3 * 24 * 3600
MEDIA_MAX_BYTES = 256 * 1024
TEXT_MAX = 2048                    # characters of a message kept
POLL_MAX = 20                      # messages one poll returns at most (the newest)
#: Calls a tenant may make a day, as WeChat has quotas: the demo's secret is no secret, so
#: this is what bounds the memory the inboxes and uploads can take.
DAILY_QUOTA = {"send": 5000, "upload": 100}
_USER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def api_base(svc: Services, tenant: TenantView) -> str:
    return f"{svc.public_base_url}{PREFIX}/{tenant.code}"


def _err(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


async def _tenant(request: web.Request) -> tuple[Services, TenantView]:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None or not svc.simulates_wechat(tenant):
        raise web.HTTPNotFound()
    return svc, tenant


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


async def _json(request: web.Request, svc: Services) -> dict[str, Any] | None:
    try:
        doc = json.loads(await read_capped(request, svc.settings.max_body_bytes))
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


# -- the API ---------------------------------------------------------------------------------

async def _issue_token(svc: Services, tenant: TenantView, appid: object, secret: object) -> web.Response:
    if not (isinstance(appid, str) and isinstance(secret, str) and _same(appid, tenant.wechat_app_id)
            and _same(secret, tenant.wechat_app_secret)):
        return _err(40125, "invalid appsecret")
    key = f"wxsim:token:{tenant.code}"
    token = await svc.kv.get(key)
    if not token:
        token = secrets.token_urlsafe(32)
        await svc.kv.set(key, token, ttl=TOKEN_SECONDS)
    return web.json_response({"access_token": token, "expires_in": TOKEN_SECONDS})


@routes.get(PREFIX + "/{tenant}/cgi-bin/token")
async def token(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    return await _issue_token(svc, tenant, request.query.get("appid"), request.query.get("secret"))


@routes.post(PREFIX + "/{tenant}/cgi-bin/stable_token")
async def stable_token(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    doc = await _json(request, svc) or {}
    return await _issue_token(svc, tenant, doc.get("appid"), doc.get("secret"))


async def _authorized(request: web.Request) -> tuple[Services, TenantView] | web.Response:
    svc, tenant = await _tenant(request)
    token = await svc.kv.get(f"wxsim:token:{tenant.code}")
    if not token or not _same(request.query.get("access_token", ""), token):
        return _err(40001, "invalid credential, access_token is invalid or not latest")
    return svc, tenant


async def _over_quota(svc: Services, tenant: TenantView, kind: str) -> bool:
    day = time.strftime("%Y%m%d", time.gmtime())
    return await svc.kv.incr(f"wxsim:quota:{tenant.code}:{kind}:{day}", 86400.0) > DAILY_QUOTA[kind]


def _quota_error() -> web.Response:
    return _err(45009, "reach max api daily quota limit")


async def _deliver(svc: Services, tenant: TenantView, user: str, entry: dict[str, str]) -> None:
    base = f"wxsim:{tenant.code}:{user}"
    seq = await svc.kv.incr(f"{base}:seq", INBOX_SECONDS)
    kept = {k: v[:TEXT_MAX] for k, v in entry.items()}
    await svc.kv.set(f"{base}:{seq}", json.dumps({"seq": seq, **kept}, ensure_ascii=False), ttl=INBOX_SECONDS)


def _text_of(msg: dict[str, Any], media_url: str) -> dict[str, str] | None:
    kind = msg.get("msgtype")
    body = msg.get(kind) if isinstance(kind, str) else None
    if not isinstance(body, dict):
        return None
    if kind == "text" and isinstance(body.get("content"), str):
        return {"kind": "text", "text": body["content"]}
    if kind == "news" and isinstance(body.get("articles"), list) and body["articles"]:
        a = body["articles"][0] if isinstance(body["articles"][0], dict) else {}
        return {"kind": "news", "text": f"【{a.get('title', '')}】{a.get('description', '')}",
                "url": str(a.get("url", ""))}
    if kind == "image" and isinstance(body.get("media_id"), str) and _MEDIA_ID.match(body["media_id"]):
        return {"kind": "image", "text": "[图片]", "url": f"{media_url}/{body['media_id']}"}
    return None


@routes.post(PREFIX + "/{tenant}/cgi-bin/message/custom/send")
async def custom_send(request: web.Request) -> web.Response:
    auth = await _authorized(request)
    if isinstance(auth, web.Response):
        return auth
    svc, tenant = auth
    msg = await _json(request, svc)
    user = msg.get("touser") if msg else None
    entry = _text_of(msg, f"{api_base(svc, tenant)}/media") if msg else None
    if not isinstance(user, str) or not _USER.match(user) or entry is None:
        return _err(40008, "invalid message type")
    if await _over_quota(svc, tenant, "send"):
        return _quota_error()
    await _deliver(svc, tenant, user, entry)
    return _err(0, "ok")


@routes.post(PREFIX + "/{tenant}/cgi-bin/message/template/send")
async def template_send(request: web.Request) -> web.Response:
    return await _keyed_send(request, "url", {"msgid": secrets.randbelow(10**12)})


@routes.post(PREFIX + "/{tenant}/cgi-bin/message/subscribe/bizsend")
async def subscribe_send(request: web.Request) -> web.Response:
    return await _keyed_send(request, "page", {})


async def _keyed_send(request: web.Request, link: str, answer: dict[str, Any]) -> web.Response:
    """A template message or a 订阅通知: keyword → value lines into the user's inbox, with
    the message's `link` field."""
    auth = await _authorized(request)
    if isinstance(auth, web.Response):
        return auth
    svc, tenant = auth
    msg = await _json(request, svc)
    user = msg.get("touser") if msg else None
    data = msg.get("data") if msg else None
    if not isinstance(user, str) or not _USER.match(user) or not isinstance(data, dict):
        return _err(40003, "invalid openid")
    if await _over_quota(svc, tenant, "send"):
        return _quota_error()
    lines = [str(v.get("value", "")) if isinstance(v, dict) else str(v) for v in data.values()]
    await _deliver(svc, tenant, user, {"kind": "template", "text": "\n".join(lines), "url": str(msg.get(link, ""))})
    return web.json_response({"errcode": 0, "errmsg": "ok", **answer})


@routes.post(PREFIX + "/{tenant}/cgi-bin/qrcode/create")
async def qrcode_create(request: web.Request) -> web.Response:
    auth = await _authorized(request)
    if isinstance(auth, web.Response):
        return auth
    svc, tenant = auth
    doc = await _json(request, svc) or {}
    scene = (doc.get("action_info") or {}).get("scene") if isinstance(doc.get("action_info"), dict) else None
    if not isinstance(scene, dict) or not (scene.get("scene_str") or scene.get("scene_id")):
        return _err(40053, "invalid action info")
    ticket = "sim_" + secrets.token_urlsafe(12)
    expires = doc.get("expire_seconds")
    return web.json_response({"ticket": ticket, "expire_seconds": expires if isinstance(expires, int) else None,
                              "url": f"http://weixin.qq.com/q/{ticket}"})


@routes.post(PREFIX + "/{tenant}/cgi-bin/media/upload")
async def media_upload(request: web.Request) -> web.Response:
    auth = await _authorized(request)
    if isinstance(auth, web.Response):
        return auth
    svc, tenant = auth
    if request.content_type != "multipart/form-data":
        return _err(41005, "media data missing")
    if await _over_quota(svc, tenant, "upload"):
        return _quota_error()
    reader = await request.multipart()
    part = await reader.next()
    if part is None or getattr(part, "name", None) != "media":
        return _err(41005, "media data missing")
    data = bytearray()
    while chunk := await part.read_chunk():  # type: ignore[union-attr]
        data.extend(chunk)
        if len(data) > MEDIA_MAX_BYTES:
            return _err(40006, "invalid meida size")
    if not data.startswith(b"\x89PNG") and not data.startswith(b"\xff\xd8\xff"):
        return _err(40005, "invalid file type")
    media_id = secrets.token_urlsafe(24)
    await svc.kv.set(f"wxsim:media:{tenant.code}:{media_id}", base64.b64encode(bytes(data)).decode(),
                     ttl=MEDIA_SECONDS)
    return web.json_response({"type": "image", "media_id": media_id, "created_at": int(time.time())})


# -- what the terminal reads -------------------------------------------------------------------

def inbox_signature(token: str, timestamp: str, nonce: str, user: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, user])).encode()).hexdigest()


@routes.get(PREFIX + "/{tenant}/inbox")
async def inbox(request: web.Request) -> web.Response:
    """The messages sent to `user` after sequence number `after` (none given: only where
    the inbox stands, so a client starts from now)."""
    svc, tenant = await _tenant(request)
    q = request.query
    user, ts, nonce, sig = q.get("user", ""), q.get("timestamp", ""), q.get("nonce", ""), q.get("signature", "")
    fresh = ts.isascii() and ts.isdigit() and len(ts) <= 12 and \
        abs(time.time() - int(ts)) <= svc.settings.signature_max_skew_seconds
    if not (_USER.match(user) and fresh and 0 < len(nonce) <= 64 and sig.isascii()
            and _same(sig, inbox_signature(tenant.wechat_token, ts, nonce, user))):
        raise web.HTTPForbidden(text="bad signature")
    raw_after = q.get("after", "")
    if raw_after and not (raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 12):
        raise web.HTTPBadRequest(text="after: a number")
    base = f"wxsim:{tenant.code}:{user}"
    last = int(await svc.kv.get(f"{base}:seq") or 0)
    messages: list[Any] = []
    if raw_after:
        after = int(raw_after)
        if after > last:  # the inbox expired and started over since the client last asked
            after = 0
        for seq in range(max(after + 1, last - POLL_MAX + 1), last + 1):
            stored = await svc.kv.get(f"{base}:{seq}")
            if stored:
                messages.append(json.loads(stored))
    return web.json_response({"last": last, "messages": messages}, headers={"Cache-Control": "no-store"})


@routes.get(PREFIX + "/{tenant}/media/{media_id}")
async def media(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    media_id = request.match_info["media_id"]
    stored = await svc.kv.get(f"wxsim:media:{tenant.code}:{media_id}") if _MEDIA_ID.match(media_id) else None
    if not stored:
        raise web.HTTPNotFound()
    body = base64.b64decode(stored)
    kind = "image/png" if body.startswith(b"\x89PNG") else "image/jpeg"
    return web.Response(body=body, content_type=kind,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"})
