"""The WeCom (企业微信) group channel of the group-buy module: the group bot's HTTP
callback `/wechat/wecom/{tenant}` and the group-robot webhook for announcements.

Protocol (../shared/WECHAT.md §2, AI bot over HTTP): `GET ?msg_signature&timestamp&nonce&echostr`
is verified and answered with the decrypted echostr; `POST` with the same query carries
`{"encrypt": "…"}`, signed as sha1(sorted(token, timestamp, nonce, encrypt)) and
AES-256-CBC encrypted like the official account's safe mode with receive id "" (wechatpy's
work crypto). The plain JSON has msgid (de-duplicated), chatid, chattype, from.userid,
msgtype text. The answer is the same envelope `{"encrypt", "msgsignature", "timestamp",
"nonce"}` around `{"msgtype": "stream", "stream": {"id", "finish": true, "content"}}`;
empty 200 when there is nothing to say. Progress and results go to the group through the
robot webhook (`{"msgtype": "text", "text": {"content", "mentioned_list"}}`).

Per-tenant settings (token, AES key, webhook URL, bot name): a WeCom row of the console's
渠道与商户 page (channel accounts) when there is one, else `groupbuy_wecom` (the 企业微信
page; the environment seeds it for the demo): `service.wecom_settings`.

Input from outside is read once, here: the signature is compared as bytes in constant
time; the sender must be a WeCom userid (1..64 of letters, digits, _-@.) and a group a
visible-ASCII chat id of at most 64, else 400 (the backends would not store them alike);
NUL and lone surrogates are dropped from the text. The signature covers the body, so a
replayed request is the same message: it is de-duplicated by msgid, or by its signature
when it has none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import jinja2
from aiohttp import web
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import WeChatSigner
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from flows import groupbuy_group
from flows.engine import Say
from flows.runner import Claimed, claim_message  # the claim-verdict of the runner's claim_message
from handlers.context import SERVICES, Services
from handlers.http_utils import read_capped
from social_mall import activity
from social_mall.activity import Activity
from social_mall.errors import MallError
from social_mall.members.service import member_of
from social_mall.groupbuy import service
from social_mall.parsing import parse_id, parse_openid, parse_token, parse_wecom_userid, same_secret, storable_text
from social_mall.tenants import TenantView

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

DEDUPE_TTL = 3600.0
BUSY = "系统繁忙，请稍后再试"


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, encrypt)
    return str(signer.signature)


def fresh(timestamp: str, max_skew: int) -> bool:
    ts = parse_id(timestamp)
    return ts is not None and abs(time.time() - ts) <= max_skew


SINGLE = "single:"
CHAT_ID_MAX = 64  # groupbuy_teams.chat_id


def chat_key(chat_id: str, user_id: str) -> str:
    """The chat a message came from: the group's id, or one per member for a single chat
    (hashed when the userid would not fit the column)."""
    if chat_id:
        return chat_id
    key = SINGLE + user_id
    return key if len(key) <= CHAT_ID_MAX else SINGLE + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def seal(s: service.WecomSettings, plain: Mapping[str, object], nonce: str, timestamp: str) -> dict[str, str]:
    """The encrypted JSON envelope WeCom expects back."""
    crypto = WeChatCrypto(s.token, s.aes_key, s.receive_id)
    encrypt = PrpCrypto(crypto.key).encrypt(json.dumps(plain, ensure_ascii=False), s.receive_id).decode()
    return {"encrypt": encrypt, "msgsignature": signature(s.token, timestamp, nonce, encrypt),
            "timestamp": timestamp, "nonce": nonce}


async def _settings(request: web.Request) -> tuple[Services, TenantView, service.WecomSettings]:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound()
    async with svc.uows() as uow:
        s = await service.wecom_settings(uow, tenant.id, webhook_base=svc.settings.wecom_api_base)
    if s is None or not s.token or not s.aes_key:
        raise web.HTTPNotFound()
    return svc, tenant, s


@routes.get("/wechat/wecom/{tenant}")
async def verify_url(request: web.Request) -> web.Response:
    _, _, s = await _settings(request)
    q = request.query
    try:
        echo = WeChatCrypto(s.token, s.aes_key, s.receive_id).check_signature(
            q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""), q.get("echostr", ""))
    except (InvalidSignatureException, InvalidCorpIdException):
        raise web.HTTPForbidden(text="bad signature") from None
    except Exception:  # noqa: BLE001 - an undecryptable echostr
        raise web.HTTPBadRequest(text="bad echostr") from None
    return web.Response(text=echo)


def _render(env: jinja2.Environment, says: list[Say]) -> str:
    out: list[str] = []
    for say in says:
        name = say.template
        try:
            tpl = env.get_template(name)
        except jinja2.TemplateNotFound:
            tpl = env.get_template("chat/errors/groupbuy_error.txt")
        out.append(tpl.render(**say.ctx).strip())
    return "\n".join(o for o in out if o)


def _error(env: jinja2.Environment, exc: MallError) -> Say:
    for cls in type(exc).__mro__:
        code = vars(cls).get("code")
        if isinstance(code, str):
            try:
                env.get_template(f"chat/errors/{code}.txt")
                return Say(f"chat/errors/{code}.txt", exc.facts())
            except jinja2.TemplateNotFound:
                continue
    return Say("chat/errors/mall_error.txt", exc.facts())


@routes.post("/wechat/wecom/{tenant}")
async def receive(request: web.Request) -> web.Response:
    svc, tenant, s = await _settings(request)
    q = request.query
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not fresh(timestamp, svc.settings.signature_max_skew_seconds):
        raise web.HTTPForbidden(text="stale timestamp")
    raw = await read_capped(request, svc.settings.max_body_bytes)
    try:
        body = json.loads(raw)
        encrypt = body["encrypt"] if isinstance(body, dict) else None
        if not isinstance(encrypt, str):
            raise ValueError("no encrypt")
    except (ValueError, KeyError):
        raise web.HTTPBadRequest(text="bad body") from None
    msg_signature = q.get("msg_signature", "")
    if not same_secret(msg_signature, signature(s.token, timestamp, nonce, encrypt)):
        raise web.HTTPForbidden(text="bad signature")
    try:
        plain = WeChatCrypto(s.token, s.aes_key, s.receive_id).decrypt_message(
            {"Encrypt": encrypt}, msg_signature, timestamp, nonce)
        msg = json.loads(plain)
        if not isinstance(msg, dict):
            raise ValueError("not an object")
    except (InvalidSignatureException, InvalidCorpIdException):
        raise web.HTTPForbidden(text="bad signature") from None
    except Exception as exc:  # noqa: BLE001 - an unreadable body is the sender's problem
        log.info("wecom.bad_body", extra={"tenant": tenant.code, "error": type(exc).__name__})
        raise web.HTTPBadRequest(text="bad body") from None

    sender = msg.get("from") if isinstance(msg.get("from"), dict) else {}
    text_part = msg.get("text") if isinstance(msg.get("text"), dict) else {}
    if msg.get("msgtype") != "text":
        return web.Response(text="")
    user_id = parse_wecom_userid(sender.get("userid"))
    chat_id = parse_token(msg["chatid"]) if msg.get("chatid") else ""
    if user_id is None or chat_id is None:
        log.info("wecom.bad_sender", extra={"tenant": tenant.code})
        raise web.HTTPBadRequest(text="bad userid or chatid")
    # de-duplicated by msgid; a message without one by its signature (a replay is the same body)
    msgid = msg.get("msgid")
    once = f"m:{msgid}" if isinstance(msgid, str | int) and str(msgid) else f"q:{msg_signature}"
    claim = f"wecom_dedupe:{tenant.code}:{hashlib.sha256(once.encode('utf-8', 'surrogatepass')).hexdigest()}"
    # a lease until the step is committed (a worker that dies first leaves the retry its go)
    verdict, _ = await claim_message(svc.kv, claim, f"wecom_seen:{tenant.code}")
    if verdict is not Claimed.WROTE:
        log.info("wecom.duplicate", extra={"tenant": tenant.code})
        return web.Response(text="")
    content = text_part.get("content")
    group = groupbuy_group.GroupMessage(
        tenant_id=tenant.id, tenant_code=tenant.code, chat_id=chat_key(chat_id, user_id), user_id=user_id,
        text=storable_text(content)[:500] if isinstance(content, str) else "", now=svc.clock(),
        order_timeout=timedelta(minutes=svc.settings.order_timeout_minutes),
        unionid=parse_openid(sender.get("unionid")),
    )
    try:
        async with svc.uows() as uow:
            try:
                says = await groupbuy_group.handle(uow, group, svc, s.bot_name)
                await uow.commit()
            except MallError as exc:
                await uow.rollback()
                says = [_error(svc.templates, exc)]
        svc.outbox.kick()
        await svc.kv.confirm(claim, DEDUPE_TTL)
        if says and svc.registry.activity_sinks:   # a message to the bot from a member in the group
            await _track_message(svc, tenant, user_id)
        content = _render(svc.templates, says)
    except Exception:
        log.exception("wecom.failed", extra={"tenant": tenant.code})
        content = BUSY
    if not content:
        return web.Response(text="")
    reply = {"msgtype": "stream", "stream": {"id": secrets.token_hex(8), "finish": True, "content": content}}
    return web.json_response(seal(s, reply, nonce, timestamp))


async def _track_message(svc: Services, tenant: TenantView, user_id: str) -> None:
    """Report the group message as the member's activity (channel "wecom"), like a message
    to the official account: those who take note of activity see WeCom groups too. Never
    in the way of the answer: a failed lookup is logged and the message goes unrecorded."""
    try:
        async with svc.uows() as uow:
            member = await member_of(uow, tenant.id, "wecom", user_id)
    except Exception:
        log.exception("wecom.activity_failed", extra={"tenant": tenant.code})
        return
    if member is not None:
        svc.track(Activity(tenant.id, member, "wecom", activity.MESSAGE, svc.clock(), props={"kind": "text"}))


# -- announcements in the group ------------------------------------------------------------

async def announce(svc: Services, tenant: TenantView, team: service.TeamView, campaign: service.CampaignView,
                   now: datetime) -> bool:
    """Post the team's progress or result to the WeCom group it was opened in (robot
    webhook). False when the team isn't a group team or the tenant has no webhook."""
    if not team.chat_id or team.chat_id.startswith("single:"):
        return False
    async with svc.uows() as uow:
        s = await service.wecom_settings(uow, tenant.id, webhook_base=svc.settings.wecom_api_base)
    if s is None or not s.webhook_url:
        return False
    text = svc.templates.get_template("chat/groupbuy/group/announce.txt").render(
        t=team, c=campaign, hm=team.time_left(now)).strip()
    async with svc.http.post(s.webhook_url, json={"msgtype": "text", "text": {"content": text}}) as resp:
        answer = await resp.json(content_type=None)
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        raise RuntimeError(f"wecom webhook errcode {answer.get('errcode') if isinstance(answer, dict) else '?'}")
    return True
