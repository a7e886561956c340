"""GET/POST /wechat/mp/{tenant}: one official account's message endpoint.

wechatpy does the protocol (signatures, safe-mode crypto, message parsing, reply XML);
this module adds what a production endpoint needs around it: constant-time signature
checks, timestamp freshness, a body cap, refusing DOCTYPE/entities before any parser
sees them, de-duplication of WeChat's retries across workers, and the 5-second window
(passive reply within a budget, otherwise "success" now and a customer-service push
from the outbox later).

In plaintext mode the signature covers the token, timestamp and nonce, not the body: anyone
who sees one request URL could post any message with it while the timestamp is fresh. So
a signed query is good for one message: the claim that de-duplicates the message spends it
(one call to the key-value store, shared by every worker), and the same query with another
message is refused (403). WeChat's retries are the same message, so they are answered as
duplicates, whether they come with the same query or a new one. Safe mode signs the body
(`msg_signature`) and is the recommended setting.

Every field of the message is read once here, against the shape WeChat gives it: a field
given twice, an element where text belongs, a sender that is no openid is a 400 (no such
message comes from WeChat, and the backends would not store it alike); a field left empty
is a message like any other (answered as one the bot doesn't understand).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import xmltodict
from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage
from wechatpy.replies import ArticlesReply, BaseReply, TextReply
from wechatpy.utils import WeChatSigner

from flows.templating import SHANGHAI
from flows.runner import DEDUPE_TTL, Replayed, Unavailable, claim_message
from flows.types import Article, Inbound, Kind, Reply
from handlers.context import SERVICES, Services
from handlers.http_utils import read_capped
from handlers.metrics import WECHAT_ANSWERS
from social_mall.events import MessageQueued
from social_mall.logs import log_tenant, request_id
from social_mall.parsing import parse_id, parse_openid, parse_scene, parse_token, same_secret
from social_mall.plugins import AccountEventHandler, Delivery
from social_mall.tenants import TenantView
from social_mall.kv import Claimed

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CHANNEL = "mp"
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_COORD = re.compile(r"-?[0-9]{1,3}(?:\.[0-9]{1,12})?")
LABEL_MAX = 100
SCAN_RESULT_MAX = 200
MEDIA_ID_MAX = 128      # an image message's MediaId (64 characters in practice)
PIC_URL_MAX = 512
BUSY = "系统繁忙，请稍后再试"


class BadRequest(Exception):
    """The body is not a message we can read (400, no side effect)."""


# -- checks ----------------------------------------------------------------------------

def signature_of(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def signed(token: str, q: Mapping[str, str], *extra: str) -> bool:
    want = signature_of(token, q.get("timestamp", ""), q.get("nonce", ""), *extra)
    return same_secret(q.get("msg_signature" if extra else "signature", ""), want)


def fresh(q: Mapping[str, str], max_skew: int) -> bool:
    ts = parse_id(q.get("timestamp", ""))
    return ts is not None and abs(time.time() - ts) <= max_skew


def ticket_of(tenant: TenantView, q: Mapping[str, str], max_skew: int) -> tuple[str, float]:
    """The key a signed (and fresh) query is spent under, and for how long: as long as its
    timestamp passes `fresh` on a worker whose clock is up to a minute behind."""
    ttl = max(1.0, int(q["timestamp"]) + max_skew + 60 - time.time())
    return f"once:{tenant.id}:{q['signature']}", ttl


# per app (a worker process; the tests run several): the tenants whose missing AES key it logged
_aes_missing: weakref.WeakKeyDictionary[web.Application, set[int]] = weakref.WeakKeyDictionary()


def safe_mode_crypto(app: web.Application, tenant: TenantView) -> WeChatCrypto | None:
    """The tenant's safe-mode crypto, or None when its EncodingAESKey is missing or not one
    (logged once per tenant and worker: a configuration error, not the sender's)."""
    logged = _aes_missing.setdefault(app, set())
    try:
        crypto = WeChatCrypto(tenant.wechat_token, tenant.wechat_aes_key, tenant.wechat_app_id)
        if len(crypto.key) == 32:
            logged.discard(tenant.id)  # set up now: log again should it go
            return crypto
    except Exception:  # noqa: BLE001 - wechatpy asserts, or fails to decode, on a bad key
        pass
    if tenant.id not in logged:
        logged.add(tenant.id)
        log.error("wechat.safe_mode_without_aes_key", extra={"tenant": tenant.code})
    return None


def screen_xml(raw: bytes) -> None:
    if _HOSTILE.search(raw):
        raise BadRequest("DOCTYPE/ENTITY not allowed")


# The fields the endpoint reads (wechatpy's messages and events read them as given).
_TEXT_FIELDS = frozenset({
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID", "Content", "Event",
    "EventKey", "Ticket", "MediaId", "PicUrl", "Latitude", "Longitude", "Precision", "Status",
    "Location_X", "Location_Y", "Scale", "Label",
})
CREATE_TIME_MAX = 10**11  # seconds: past the year 5000


def read_message(xml: bytes) -> BaseMessage:
    """The message in `xml` (screened), as wechatpy's `parse_message` reads it, once every
    field is checked: BadRequest for a field given twice, an element where text belongs, a
    sender that is no openid, a time or message id that is no number."""
    doc = xmltodict.parse(xml)
    fields = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(fields, dict):
        raise BadRequest("no <xml> element")
    for name, value in fields.items():
        if value.__class__ is str:  # the common case: one test per field
            continue
        if isinstance(value, list):
            raise BadRequest(f"{name} given twice")
        if name in _TEXT_FIELDS:
            if value is not None:
                raise BadRequest(f"{name} is not text")
            fields[name] = ""  # <Field></Field> or <Field/>
    if parse_openid(fields.get("FromUserName")) is None:
        raise BadRequest("FromUserName is no openid")
    if parse_token(fields.get("ToUserName")) is None:
        raise BadRequest("ToUserName is no account id")
    created = parse_id(fields.get("CreateTime", ""))
    if created is None or created >= CREATE_TIME_MAX:
        raise BadRequest("CreateTime is no time")
    for name in ("MsgId", "MsgID"):
        if name in fields and parse_id(fields[name]) is None:
            raise BadRequest(f"{name} is no id")
    return _message(fields)


def _message(fields: dict[str, Any]) -> BaseMessage:
    """wechatpy's message or event class for checked `fields` (as `parse_message` picks it)."""
    msg_type = str(fields.get("MsgType", "")).lower()
    if msg_type != "event":
        return MESSAGE_TYPES.get(msg_type, UnknownMessage)(fields)  # type: ignore[no-any-return]
    event = str(fields.get("Event", "")).lower()
    key = str(fields.get("EventKey", ""))
    if event == "subscribe" and key.startswith(("scanbarcode|", "scanimage|")):
        event = fields["Event"] = "subscribe_scan_product"
    elif event == "subscribe" and key.startswith("qrscene_"):
        event = fields["Event"] = "subscribe_scan"
        fields["EventKey"] = key[len("qrscene_"):]
    return EVENT_TYPES.get(event, UnknownMessage)(fields)  # type: ignore[no-any-return]


def cdata_safe(text: str) -> str:
    """Text that can sit inside wechatpy's CDATA sections whatever the user typed."""
    return _XML_ILLEGAL.sub("", text).replace("]]>", "]]]]><![CDATA[>")


# -- inbound ---------------------------------------------------------------------------

def to_inbound(tenant: TenantView, msg: BaseMessage) -> Inbound:
    """The normalized message; `msg` comes from `read_message` (every field read is text)."""
    kind, text, payload = _kind_of(msg._data)
    return Inbound(tenant.id, tenant.code, CHANNEL, msg.source, kind, text, payload,
                   msg_id=str(getattr(msg, "id", "") or ""), at=sent_at(msg), account=tenant.account_id)


def coordinate(raw: object, limit: int) -> str:
    """A latitude (limit 90) or longitude (limit 180) as WeChat sends it ("23.134521"),
    rounded to 6 decimals (~0.1 m) as a plain decimal string; "" when it isn't one."""
    text = str(raw or "").strip()
    if not (text.isascii() and _COORD.fullmatch(text)):
        return ""
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    micro = int(whole) * 1_000_000 + int((frac + "0000000")[:7]) // 10 + (1 if (frac + "0000000")[6] >= "5" else 0)
    if micro > limit * 1_000_000:
        return ""
    micro *= sign
    return f"{'-' if micro < 0 else ''}{abs(micro) // 1_000_000}.{abs(micro) % 1_000_000:06d}"


def _location(lat: object, lng: object, label: object, src: str) -> dict[str, str]:
    return {"lat": coordinate(lat, 90), "lng": coordinate(lng, 180),
            "label": _XML_ILLEGAL.sub("", str(label or "")).strip()[:LABEL_MAX], "src": src}


def _kind_of(f: Mapping[str, Any]) -> tuple[Kind, str, dict[str, str]]:
    msg_type = str(f.get("MsgType", "")).lower()
    if msg_type == "text":
        return Kind.TEXT, f.get("Content", "").strip(), {}
    if msg_type == "location":
        return Kind.LOCATION, "", _location(f.get("Location_X"), f.get("Location_Y"), f.get("Label"), "message")
    if msg_type == "event":
        ev = str(f.get("Event", "")).lower()
        if ev in ("subscribe", "subscribe_scan", "scan"):
            kind = Kind.SCAN if ev == "scan" else Kind.SUBSCRIBE
            scene = parse_scene(f.get("EventKey", "")) if ev != "subscribe" else None
            return kind, "", {"scene": scene} if scene else {}
        if ev == "unsubscribe":
            return Kind.UNSUBSCRIBE, "", {}
        if ev == "click":
            return Kind.CLICK, "", {"key": f.get("EventKey", "")}
        if ev == "location":  # the location WeChat reports when the user opens the chat
            return Kind.LOCATION, "", _location(f.get("Latitude"), f.get("Longitude"), "", "report")
        if ev == "location_select":
            info = f.get("SendLocationInfo")
            info = info if isinstance(info, dict) else {}
            return Kind.LOCATION, "", _location(info.get("Location_X"), info.get("Location_Y"),
                                                info.get("Label"), "select")
        if ev in ("scancode_waitmsg", "scancode_push"):
            info = f.get("ScanCodeInfo")
            info = info if isinstance(info, dict) else {}
            result = _XML_ILLEGAL.sub("", str(info.get("ScanResult") or "")).strip()[:SCAN_RESULT_MAX]
            return Kind.SCANCODE, "", {"key": str(f.get("EventKey", "")), "result": result}
    if msg_type == "image":
        media_id = _XML_ILLEGAL.sub("", str(f.get("MediaId") or "")).strip()[:MEDIA_ID_MAX]
        pic_url = _XML_ILLEGAL.sub("", str(f.get("PicUrl") or "")).strip()[:PIC_URL_MAX]
        return Kind.IMAGE, "", {"media_id": media_id, "pic_url": pic_url}
    return Kind.OTHER, "", {}


def sent_at(msg: BaseMessage) -> datetime | None:
    """`msg.create_time` (the same instant, UTC+8) read from the parsed fields wechatpy
    keeps in `_data`: its descriptor converts through pytz/dateutil on every read, a
    cost on every message."""
    created = parse_id(msg._data.get("CreateTime") or "")
    return datetime.fromtimestamp(created, SHANGHAI) if created is not None else None


def dedupe_key(inbound: Inbound, msg: BaseMessage) -> str:
    """MsgId for a message; for an event (none), sender + CreateTime + event, as WeChat's docs say."""
    if inbound.msg_id:
        return f"dedupe:{inbound.tenant_id}:m:{inbound.msg_id}"
    return f"dedupe:{inbound.tenant_id}:e:{inbound.user_id}:{msg.time}:{getattr(msg, 'event', msg.type)}"


# -- replies ---------------------------------------------------------------------------

def split_replies(replies: Sequence[Reply]) -> tuple[Reply | None, list[Reply]]:
    """One passive reply (texts merged; a news card goes first) and the rest to push."""
    if not replies:
        return None, []
    if len(replies) == 1:
        return replies[0], []
    if all(r.kind == "text" for r in replies):
        return Reply.of_text("\n\n".join(r.text for r in replies)), []
    return replies[0], list(replies[1:])


def render_reply(reply: Reply, msg: BaseMessage) -> BaseReply:
    if reply.kind == "news" and reply.article is not None:
        a = reply.article
        articles = [{
            "title": cdata_safe(a.title), "description": cdata_safe(a.description),
            "image": cdata_safe(a.image), "url": cdata_safe(a.url),
        }]
        return ArticlesReply(message=msg, articles=articles)
    return TextReply(message=msg, content=cdata_safe(reply.text))


def reply_to_dict(r: Reply) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": r.kind, "text": r.text}
    if r.article is not None:
        d["article"] = {"title": r.article.title, "description": r.article.description,
                        "url": r.article.url, "image": r.article.image}
    return d


def reply_from_dict(d: Mapping[str, Any]) -> Reply:
    art = d.get("article")
    if d.get("kind") == "news" and isinstance(art, Mapping):
        return Reply.of_article(Article(art["title"], art["description"], art["url"], art["image"]))
    return Reply.of_text(str(d.get("text", "")))


async def queue_push(svc: Services, inbound: Inbound, replies: Sequence[Reply]) -> None:
    """Deliver replies later through the customer-service API (durably, with retries)."""
    if not replies:
        return
    async with svc.uows() as uow:
        uow.emit(MessageQueued(tenant_id=inbound.tenant_id, channel=inbound.channel,
                               user_id=inbound.user_id, replies=[reply_to_dict(r) for r in replies],
                               account=inbound.account))
        await uow.commit()
    svc.outbox.kick()


async def deliver_queued(svc: Services, d: Delivery) -> None:
    """Outbox subscriber: send queued replies; an API error raises and is retried."""
    if d.payload.get("channel") != CHANNEL:
        return
    tenant = await svc.tenant_by_id(d.tenant_id)
    account = d.payload.get("account")
    if isinstance(account, int) and account:  # queued by another of the tenant's official accounts
        tenant = await svc.channel_by_id(tenant, account)
    client = svc.wechat(tenant)
    user = str(d.payload["user_id"])
    for reply in [reply_from_dict(r) for r in d.payload["replies"]]:
        if reply.kind == "news" and reply.article is not None:
            a = reply.article
            await client.send_news(user, [{"title": a.title, "description": a.description,
                                           "url": a.url, "picurl": a.image}])
        else:
            await client.send_text(user, reply.text)


# -- the endpoint ----------------------------------------------------------------------

async def _tenant(request: web.Request) -> tuple[Services, TenantView]:
    """The tenant of `/wechat/mp/{tenant}` (its primary official account) or of
    `/wechat/mp/{tenant}/{account}` (another official account of it: storage/channel_models.py)."""
    svc = request.app[SERVICES]
    code = request.match_info["tenant"]
    account = request.match_info.get("account")
    if account is None:
        tenant = svc.known_tenant(code) or await svc.tenant(code)
    else:
        tenant = await svc.channel(code, account)
        if tenant is not None and tenant.account_kind != CHANNEL:
            tenant = None
    if tenant is None or not tenant.wechat_token:
        raise web.HTTPNotFound()
    return svc, tenant


@routes.get("/wechat/mp/{tenant}/{account}")
@routes.get("/wechat/mp/{tenant}")
async def verify_url(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    if not signed(tenant.wechat_token, request.query):
        raise web.HTTPForbidden(text="bad signature")
    return web.Response(text=request.query.get("echostr", ""))


@routes.post("/wechat/mp/{tenant}/{account}")
@routes.post("/wechat/mp/{tenant}")
async def receive(request: web.Request) -> web.StreamResponse:
    svc, tenant = await _tenant(request)
    log_tenant.set(tenant.code)
    q = request.query
    if not signed(tenant.wechat_token, q):
        raise web.HTTPForbidden(text="bad signature")
    if not fresh(q, svc.settings.signature_max_skew_seconds):
        raise web.HTTPForbidden(text="stale timestamp")
    raw = await read_capped(request, svc.settings.max_body_bytes)
    crypto: WeChatCrypto | None = None
    if q.get("encrypt_type") == "aes":
        crypto = safe_mode_crypto(request.app, tenant)
        if crypto is None:  # a configuration error on our side, told once in the log
            raise web.HTTPBadRequest(text="safe mode (encrypt_type=aes) is not set up: no EncodingAESKey")
    try:
        screen_xml(raw)
        xml = raw
        if crypto is not None:
            xml = crypto.decrypt_message(raw, q.get("msg_signature", ""), q["timestamp"], q["nonce"]).encode()
            screen_xml(xml)
        msg = read_message(xml)
        inbound = to_inbound(tenant, msg)
    except (InvalidSignatureException, InvalidAppIdException):
        raise web.HTTPForbidden(text="bad signature") from None
    except web.HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable body is the sender's problem
        log.info("wechat.bad_body", extra={"tenant": tenant.code, "error": type(exc).__name__})
        raise web.HTTPBadRequest(text="bad xml") from None

    ticket, ticket_ttl = ticket_of(tenant, q, svc.settings.signature_max_skew_seconds)
    if msg.type == "event":
        account_event = svc.registry.account_events.get(str(msg._data.get("Event", "")).lower())
        if account_event is not None:
            return await _account_event(svc, tenant, msg, inbound, account_event, (ticket, ticket_ttl))
    window = budget_timer(asyncio.get_running_loop()).open(request, svc, inbound, svc.settings.reply_budget_seconds)
    replies: list[Reply] | None = None
    replayed = unavailable = False
    try:
        # One turn of the event loop first, so it takes in every request that is ready before
        # any handler writes its reply. On the embedded store a flow never waits, and handling
        # each message start to finish in one go cost ~50 µs more per request under load
        # (bench/wechat_endpoint.py, SQLite: 220 against 168 µs); on Redis it is even.
        await asyncio.sleep(0)
        replies = await svc.runner.handle_once(inbound, dedupe_key(inbound, msg), ticket, ticket_ttl)
    except Replayed:  # nothing was done
        replayed = True
    except Unavailable:  # nothing was committed: WeChat's retry (5 s on, past the claim's lease) runs it
        unavailable = True
    finally:
        # past the budget WeChat has had "success" and retries nothing: an outage is told by a push
        answered = None if window.in_time() else await window.late(
            [Reply.of_text(BUSY)] if unavailable else replies)
    if answered is not None:  # past the budget: WeChat has had its "success", the replies a push
        WECHAT_ANSWERS.labels("push").inc()
        return answered
    if replayed:
        raise web.HTTPForbidden(text="this signed query was used for another message")
    if unavailable:
        WECHAT_ANSWERS.labels("unavailable").inc()
        raise web.HTTPServiceUnavailable(text="try again")
    if replies is None:  # a repeat of a message already handled
        WECHAT_ANSWERS.labels("repeat").inc()
        return web.Response(text="success")
    WECHAT_ANSWERS.labels("passive").inc()
    passive, rest = split_replies(replies)
    if rest:
        await queue_push(svc, inbound, rest)
    if passive is None:
        return web.Response(text="success")
    xml_out = render_reply(passive, msg).render()
    if crypto is not None:
        xml_out = crypto.encrypt_message(xml_out, q["nonce"], q["timestamp"])
    return web.Response(text=xml_out, content_type="application/xml")


async def _account_event(svc: Services, tenant: TenantView, msg: BaseMessage, inbound: Inbound,
                         handler: AccountEventHandler, ticket: tuple[str, float]) -> web.Response:
    """An event a module records (`Registry.add_account_event`): once per event (WeChat's
    retries are claimed like a message's), no flow, no member; "success"."""
    claim = dedupe_key(inbound, msg)
    verdict, _ = await claim_message(svc.kv, claim, f"acct:{tenant.id}", *ticket)
    if verdict is Claimed.SPENT:
        raise web.HTTPForbidden(text="this signed query was used for another message")
    if verdict is Claimed.WROTE:  # a lease: confirmed once recorded, gone if this worker dies first
        try:
            await handler(tenant.id, msg._data)
        except Exception:
            await svc.kv.delete(claim)  # WeChat's retry gets another go
            log.exception("wechat.account_event_failed", extra={"tenant": tenant.code})
            raise web.HTTPInternalServerError(text="not recorded") from None
        await svc.kv.confirm(claim, DEDUPE_TTL)
    return web.Response(text="success")


class ReplyWindow:
    """WeChat's 5-second window for one message. The handler runs the flow itself (no
    task per message); if the budget runs out first, the window answers "success" on the
    request's behalf right then, and the handler, once the flow is done, returns that
    response (already sent) and pushes the replies through the outbox instead."""

    def __init__(self, timer: BudgetTimer, request: web.Request, svc: Services, inbound: Inbound) -> None:
        self.timer, self.request, self.svc, self.inbound = timer, request, svc, inbound
        self.request_id = request_id.get()  # for the early answer, made outside the request's context
        self.answering: asyncio.Task[web.StreamResponse] | None = None
        self.finished: asyncio.Future[None] | None = None

    def expire(self) -> None:
        """The budget ran out (called by the timer): answer now; the work goes on."""
        loop = asyncio.get_running_loop()
        self.answering = loop.create_task(self._answer())
        # shutdown and the tests wait for the late work as for any background task
        self.finished = loop.create_future()
        self.svc.background.add(self.finished)
        self.finished.add_done_callback(self.svc.background.discard)

    async def _answer(self) -> web.StreamResponse:
        request_id.set(self.request_id)  # this task's own context: the logs carry the request's id
        log.info("wechat.slow_path", extra={"tenant": self.request.match_info.get("tenant", "")})
        response = web.Response(text="success", headers={"X-Request-Id": self.request_id})
        try:
            await response.prepare(self.request)
            await response.write_eof()
        except ConnectionError:  # WeChat gave up on this request already
            pass
        return response

    def in_time(self) -> bool:
        """The work is done: close the window. True when it finished within the budget
        (the handler answers as usual); otherwise call `late`."""
        if self.answering is None:
            self.timer.cancel(self)
            return True
        return False

    async def late(self, replies: Sequence[Reply] | None) -> web.StreamResponse:
        """Past the budget: queue `replies` for a push and return the "success" response
        that went out."""
        assert self.answering is not None
        try:
            answered = await self.answering
            try:
                await queue_push(self.svc, self.inbound, replies or [])
            except Exception:  # noqa: BLE001 - "success" went out already: nothing to answer with
                log.exception("wechat.push_not_queued", extra={"tenant": self.inbound.tenant_code})
            return answered
        finally:
            if self.finished is not None and not self.finished.done():
                self.finished.set_result(None)


class BudgetTimer:
    """Reply windows, all expired by one timer armed for the earliest deadline.

    A `call_later` per message would leave a cancelled handle in the event loop's heap for
    the whole budget (seconds: thousands of them under load), and pushing, purging and
    popping those cost more than the rest of the wait. Here a window is a dict entry."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._deadlines: dict[ReplyWindow, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf

    def open(self, request: web.Request, svc: Services, inbound: Inbound, seconds: float) -> ReplyWindow:
        """A window that expires in `seconds` unless closed first."""
        window = ReplyWindow(self, request, svc, inbound)
        deadline = self.loop.time() + seconds
        self._deadlines[window] = deadline
        if deadline < self._armed_for:
            self._arm(deadline)
        return window

    def cancel(self, window: ReplyWindow) -> None:
        self._deadlines.pop(window, None)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = deadline
        self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, math.inf
        now, upcoming = self.loop.time(), math.inf
        for window, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[window]
                window.expire()
            else:
                upcoming = min(upcoming, deadline)
        if upcoming < math.inf:
            self._arm(upcoming)


_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BudgetTimer] = weakref.WeakKeyDictionary()
_last: BudgetTimer | None = None


def budget_timer(loop: asyncio.AbstractEventLoop) -> BudgetTimer:
    """The event loop's BudgetTimer (one per loop: tests run several)."""
    global _last
    if _last is not None and _last.loop is loop:  # a server runs on one loop: skip the weak lookup
        return _last
    timer = _timers.get(loop)
    if timer is None:
        timer = _timers[loop] = BudgetTimer(loop)
    _last = timer
    return timer
