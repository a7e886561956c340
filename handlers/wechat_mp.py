"""GET/POST /wechat/mp/{tenant}: one official account's message endpoint.

wechatpy does the protocol (signatures, safe-mode crypto, message parsing, reply XML);
this module adds what a production endpoint needs around it: constant-time signature
checks, timestamp freshness, a body cap, refusing DOCTYPE/entities before any parser
sees them, de-duplication of WeChat's retries across workers, and the 5-second window
(passive reply within a budget, otherwise "success" now and a customer-service push
from the outbox later).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
import time
import weakref
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import ArticlesReply, BaseReply, TextReply
from wechatpy.utils import WeChatSigner

from flows.templating import SHANGHAI
from flows.types import Article, Inbound, Kind, Reply
from handlers.context import SERVICES, Services
from handlers.http_utils import read_capped
from social_mall.events import MessageQueued
from social_mall.plugins import Delivery
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CHANNEL = "mp"
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
BUSY = "系统繁忙，请稍后再试"
T = TypeVar("T")


class BadRequest(Exception):
    """The body is not a message we can read (400, no side effect)."""


# -- checks ----------------------------------------------------------------------------

def signature_of(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def signed(token: str, q: Mapping[str, str], *extra: str) -> bool:
    want = signature_of(token, q.get("timestamp", ""), q.get("nonce", ""), *extra)
    return hmac.compare_digest(want, q.get("msg_signature" if extra else "signature", ""))


def fresh(q: Mapping[str, str], max_skew: int) -> bool:
    try:
        return abs(time.time() - int(q.get("timestamp", ""))) <= max_skew
    except ValueError:
        return False


def screen_xml(raw: bytes) -> None:
    if _HOSTILE.search(raw):
        raise BadRequest("DOCTYPE/ENTITY not allowed")


def cdata_safe(text: str) -> str:
    """Text that can sit inside wechatpy's CDATA sections whatever the user typed."""
    return _XML_ILLEGAL.sub("", text).replace("]]>", "]]]]><![CDATA[>")


# -- inbound ---------------------------------------------------------------------------

def to_inbound(tenant: TenantView, msg: BaseMessage) -> Inbound:
    kind, text, payload = _kind_of(msg)
    return Inbound(tenant.id, tenant.code, CHANNEL, msg.source, kind, text, payload,
                   msg_id=str(getattr(msg, "id", "") or ""), at=sent_at(msg))


def _kind_of(msg: BaseMessage) -> tuple[Kind, str, dict[str, str]]:
    if msg.type == "text":
        return Kind.TEXT, msg.content.strip(), {}
    if msg.type == "event":
        ev = msg.event
        if ev == "subscribe":
            return Kind.SUBSCRIBE, "", {}
        if ev == "subscribe_scan":
            return Kind.SUBSCRIBE, "", {"scene": str(msg.scene_id)}
        if ev == "scan":
            return Kind.SCAN, "", {"scene": str(msg.scene_id)}
        if ev == "unsubscribe":
            return Kind.UNSUBSCRIBE, "", {}
        if ev == "click":
            return Kind.CLICK, "", {"key": str(msg.key)}
        if ev == "location":
            return Kind.LOCATION, "", {"lat": str(msg.latitude), "lng": str(msg.longitude)}
    if msg.type == "image":
        return Kind.IMAGE, "", {"media_id": str(msg.media_id)}
    return Kind.OTHER, "", {}


def sent_at(msg: BaseMessage) -> datetime | None:
    """`msg.create_time` (the same instant, UTC+8) read from the parsed fields wechatpy
    keeps in `_data`: its descriptor converts through pytz/dateutil on every read, a
    cost on every message."""
    raw = msg._data.get("CreateTime")
    return datetime.fromtimestamp(int(raw), SHANGHAI) if raw else None


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
                               user_id=inbound.user_id, replies=[reply_to_dict(r) for r in replies]))
        await uow.commit()
    svc.outbox.kick()


async def deliver_queued(svc: Services, d: Delivery) -> None:
    """Outbox subscriber: send queued replies; an API error raises and is retried."""
    if d.payload.get("channel") != CHANNEL:
        return
    tenant = await svc.tenant_by_id(d.tenant_id)
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
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None or not tenant.wechat_token:
        raise web.HTTPNotFound()
    return svc, tenant


@routes.get("/wechat/mp/{tenant}")
async def verify_url(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    if not signed(tenant.wechat_token, request.query):
        raise web.HTTPForbidden(text="bad signature")
    return web.Response(text=request.query.get("echostr", ""))


@routes.post("/wechat/mp/{tenant}")
async def receive(request: web.Request) -> web.Response:
    svc, tenant = await _tenant(request)
    q = request.query
    if not signed(tenant.wechat_token, q):
        raise web.HTTPForbidden(text="bad signature")
    if not fresh(q, svc.settings.signature_max_skew_seconds):
        raise web.HTTPForbidden(text="stale timestamp")
    raw = await read_capped(request, svc.settings.max_body_bytes)
    safe_mode = q.get("encrypt_type") == "aes"
    crypto = WeChatCrypto(tenant.wechat_token, tenant.wechat_aes_key, tenant.wechat_app_id) if safe_mode else None
    try:
        screen_xml(raw)
        xml = raw
        if crypto is not None:
            xml = crypto.decrypt_message(raw, q.get("msg_signature", ""), q["timestamp"], q["nonce"]).encode()
            screen_xml(xml)
        msg = parse_message(xml)
        if not getattr(msg, "source", None):
            raise BadRequest("no FromUserName")
    except (InvalidSignatureException, InvalidAppIdException):
        raise web.HTTPForbidden(text="bad signature") from None
    except web.HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable body is the sender's problem
        log.info("wechat.bad_body", extra={"tenant": tenant.code, "error": type(exc).__name__})
        raise web.HTTPBadRequest(text="bad xml") from None

    inbound = to_inbound(tenant, msg)
    replies = await run_within_budget(svc, inbound, dedupe_key(inbound, msg))
    if replies is None:  # a repeat of a message already handled, or the slow path
        return web.Response(text="success")
    passive, rest = split_replies(replies)
    if rest:
        await queue_push(svc, inbound, rest)
    if passive is None:
        return web.Response(text="success")
    xml_out = render_reply(passive, msg).render()
    if crypto is not None:
        xml_out = crypto.encrypt_message(xml_out, q["nonce"], q["timestamp"])
    return web.Response(text=xml_out, content_type="application/xml")


async def run_within_budget(svc: Services, inbound: Inbound, dedupe: str) -> list[Reply] | None:
    """The flow's replies if ready within the budget; None for a repeat (no effect) and
    past the budget, when the replies go out through the outbox once the work finishes."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    task = asyncio.ensure_future(_signalling(ready, svc.runner.handle_once(inbound, dedupe)))
    await budget_timer(loop).wait(ready, svc.settings.reply_budget_seconds)
    if task.done():
        return task.result()
    log.info("wechat.slow_path", extra={"tenant": inbound.tenant_code})
    late = asyncio.ensure_future(_finish_late(svc, inbound, task))
    svc.background.add(late)
    late.add_done_callback(svc.background.discard)
    return None


async def _signalling(ready: asyncio.Future[None], work: Awaitable[T]) -> T:
    """`work`, releasing `ready` as it ends: in the task's last step, so the waiter
    wakes once and finds the task done (a done-callback would cost one more loop turn)."""
    try:
        return await work
    finally:
        if not ready.done():
            ready.set_result(None)


class BudgetTimer:
    """Waits of up to a budget, all woken by one timer armed for the earliest deadline.

    A `call_later` per message would leave a cancelled handle in the event loop's heap for
    the whole budget (seconds: thousands of them under load), and pushing, purging and
    popping those cost more than the rest of the wait. Here a wait is a dict entry."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._deadlines: dict[asyncio.Future[None], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf

    async def wait(self, waiter: asyncio.Future[None], seconds: float) -> None:
        """Until `waiter` is done or `seconds` have passed (the work behind `waiter` is
        never cancelled here: past the budget it goes on, and its replies are pushed)."""
        deadline = self.loop.time() + seconds
        self._deadlines[waiter] = deadline
        if deadline < self._armed_for:
            self._arm(deadline)
        try:
            await waiter
        finally:
            self._deadlines.pop(waiter, None)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = deadline
        self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, math.inf
        now, upcoming = self.loop.time(), math.inf
        for waiter, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[waiter]
                if not waiter.done():
                    waiter.set_result(None)
            else:
                upcoming = min(upcoming, deadline)
        if upcoming < math.inf:
            self._arm(upcoming)


_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BudgetTimer] = weakref.WeakKeyDictionary()


def budget_timer(loop: asyncio.AbstractEventLoop) -> BudgetTimer:
    """The event loop's BudgetTimer (one per loop: tests run several)."""
    timer = _timers.get(loop)
    if timer is None:
        timer = _timers[loop] = BudgetTimer(loop)
    return timer


async def _finish_late(svc: Services, inbound: Inbound, task: asyncio.Future[list[Reply] | None]) -> None:
    try:
        replies = await task
    except Exception:  # noqa: BLE001 - the user still hears back
        log.exception("wechat.flow_failed")
        replies = [Reply.of_text(BUSY)]
    await queue_push(svc, inbound, replies or [])
