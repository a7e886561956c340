"""Campaigns: a text (and a tracked link) pushed to a segment, through the outbox.

Create (console; one-time form key: a resubmit finds the campaign it made) → at `send_at`
the job `insights.campaigns` (every 60 s) claims it (scheduled → sending, one conditional
UPDATE), writes one `insights_sends` row per member of the segment (unique per campaign and
member), and hands the queued ones to the outbox in lots (`insights.campaign_send` events,
each send marked emitted once). Nothing is handed over during the tenant's quiet hours
(22:00–08:00 Shanghai unless set otherwise); a send the outbox delivers inside them goes
back to waiting for the job.

Sending one (`deliver`): skipped when the member said 「退订」, or already got `weekly_cap`
pushes in the last 7 days; claimed (queued → sending, conditional); inside WeChat's 48-hour
window (the member's last message, click or scan, from the event record) a
customer-service text, otherwise — or when WeChat answers 45015/45047 — a 订阅通知 when the
member allowed the tenant's subscription template in WeChat's pop-up and has a consent left
(one is spent per message; WeChat's 43101 leaves none), otherwise the tenant's template
message (its template id in 设置; none: skipped). WeChat's rate limit (45009) and
busy (-1) put the send back and raise: the outbox retries it later. Unfollowed (43004):
skipped. Other errors: failed with the code. Sends per tenant per second are capped
(`RATE`) so a big segment stays under WeChat's frequency limits.

Delivery: TEMPLATESENDJOBFINISH (the core's account-event seam) marks the template send with
that MsgID delivered (Status success); a customer-service message or a 订阅通知 counts as
delivered when WeChat accepted it (a subscribe_msg_sent_event with an error code takes the
member's latest 订阅通知 back to undelivered).

Consents (`SubscribeGrant`, per member and template, from the account-event seam):
subscribe_msg_popup_event adds one per 「允许」 (accept) of a template; subscribe_msg_change_event
with reject leaves none. Opened: the tracked link (`/i/c/<tenant>/<send>?s=…`, HMAC-signed) the
message carries, first click. Ordered and revenue: the recipients' paid orders in the 7 days
after their send (net of nothing: refunds show in LTV)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web
from sqlalchemy import and_, func, select, update

from handlers.context import SERVICES, Services
from adapters.wechat_client import WeChatAPIError, WeChatClient
from social_mall.activity import Activity
from social_mall.members.audience import MemberGroups
from social_mall.members.service import push_identity
from social_mall.events import DomainEvent
from social_mall.parsing import parse_id
from social_mall.plugins import Delivery, Registry
from social_mall_insights import segments
from social_mall_insights.models import Campaign, Event, MemberFacts, OptOut, Send, Settings, SubscribeGrant
from social_mall_insights.recorder import _insert, rowcount
from social_mall_insights.rules import in_quiet_hours, within_kf_window
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

TOPIC = "insights.campaign_send"
LOT = 500                   # sends handed to the outbox per campaign per job run
RATE = 50                   # sends per tenant per second
ATTRIBUTION = timedelta(days=7)
RETRY = frozenset({45009, -1})            # rate limited, system busy: later
FALLBACK = frozenset({45015, 45047})      # outside the 48-hour window, customer-service quota: template
UNFOLLOWED = 43004
REFUSED = 43101                           # 订阅通知: no consent left (or taken back in WeChat)
THING_MAX = 20                            # a `thing` keyword's value, characters
OPT_OUT_WORDS = ("退订", "TD", "td")


@dataclass(frozen=True)
class CampaignSendDue(DomainEvent):
    topic: ClassVar[str] = TOPIC
    campaign_id: int
    send_id: int
    member_id: int


class Later(Exception):
    """WeChat asked to slow down (or was busy): the outbox retries the send."""


@dataclass(frozen=True)
class Prefs:
    retention_days: int = 730
    template_id: str = ""
    quiet_start: int = 22 * 60
    quiet_end: int = 8 * 60
    weekly_cap: int = 2
    sub_template_id: str = ""
    sub_text_key: str = "thing1"


async def prefs(uow: UnitOfWork, tenant: int) -> Prefs:
    row = (await uow.session.execute(select(Settings).where(Settings.tenant_id == tenant))).scalar_one_or_none()
    if row is None:
        return Prefs()
    return Prefs(row.retention_days, row.template_id, row.quiet_start, row.quiet_end, row.weekly_cap,
                 row.sub_template_id, row.sub_text_key)


async def save_prefs(uow: UnitOfWork, tenant: int, p: Prefs) -> None:
    values = {"retention_days": p.retention_days, "template_id": p.template_id, "quiet_start": p.quiet_start,
              "quiet_end": p.quiet_end, "weekly_cap": p.weekly_cap, "sub_template_id": p.sub_template_id,
              "sub_text_key": p.sub_text_key}
    stmt = _insert(uow, Settings).values(tenant_id=tenant, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant_id"], set_=values)
    await uow.session.execute(stmt)


# -- opt-out ---------------------------------------------------------------------------------

async def opted_out(uow: UnitOfWork, tenant: int, member: int) -> bool:
    n = await uow.session.scalar(select(func.count()).select_from(OptOut).where(
        OptOut.tenant_id == tenant, OptOut.member_id == member))
    return int(n or 0) > 0


async def set_opt_out(uow: UnitOfWork, tenant: int, member: int, out: bool, now: datetime) -> None:
    if out:
        await uow.session.execute(_insert(uow, OptOut).values(tenant_id=tenant, member_id=member, at=now)
                                  .on_conflict_do_nothing(index_elements=["tenant_id", "member_id"]))
    else:
        from sqlalchemy import delete

        await uow.session.execute(delete(OptOut).where(OptOut.tenant_id == tenant, OptOut.member_id == member))


async def pushes_this_week(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> int:
    return int(await uow.session.scalar(select(func.count()).select_from(Send).where(
        Send.tenant_id == tenant, Send.member_id == member, Send.status == "sent",
        Send.sent_at >= now - timedelta(days=7))) or 0)


# -- 订阅通知 consents ------------------------------------------------------------------------------

async def grant(uow: UnitOfWork, tenant: int, member: int, template_id: str, now: datetime) -> None:
    """One more message of `template_id` allowed (a 「允许」 in WeChat's pop-up)."""
    stmt = _insert(uow, SubscribeGrant).values(tenant_id=tenant, member_id=member, template_id=template_id,
                                               credits=1, updated_at=now)
    await uow.session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "member_id", "template_id"],
        set_={"credits": SubscribeGrant.credits + 1, "updated_at": now}))


async def revoke(uow: UnitOfWork, tenant: int, member: int, template_id: str, now: datetime) -> None:
    """No message of `template_id` allowed any more (turned off, or refused by WeChat)."""
    await uow.session.execute(update(SubscribeGrant).where(
        SubscribeGrant.tenant_id == tenant, SubscribeGrant.member_id == member,
        SubscribeGrant.template_id == template_id).values(credits=0, updated_at=now))


async def credits(uow: UnitOfWork, tenant: int, member: int, template_id: str) -> int:
    return int(await uow.session.scalar(select(SubscribeGrant.credits).where(
        SubscribeGrant.tenant_id == tenant, SubscribeGrant.member_id == member,
        SubscribeGrant.template_id == template_id)) or 0)


async def _spend(uow: UnitOfWork, tenant: int, member: int, template_id: str, by: int) -> bool:
    """Spend (by=-1, only while one is left) or give back (+1) a consent; True when it did."""
    stmt = update(SubscribeGrant).where(SubscribeGrant.tenant_id == tenant, SubscribeGrant.member_id == member,
                                        SubscribeGrant.template_id == template_id)
    if by < 0:
        stmt = stmt.where(SubscribeGrant.credits > 0)
    return rowcount(await uow.session.execute(stmt.values(credits=SubscribeGrant.credits + by))) == 1


def _listed(fields: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The items of a subscribe_msg_* event's list (one item comes as a mapping, several as a list)."""
    outer = fields.get(key)
    inner = outer.get("List") if isinstance(outer, Mapping) else None
    items = inner if isinstance(inner, list) else [inner]
    return [i for i in items if isinstance(i, Mapping)]


async def _sender(svc: Services, uow: UnitOfWork, tenant_id: int, fields: Mapping[str, Any]) -> int | None:
    from social_mall.members.service import member_of

    openid = str(fields.get("FromUserName", ""))
    return await member_of(uow, tenant_id, "mp", openid) if openid else None


async def subscribe_popup(svc: Services, tenant_id: int, fields: Mapping[str, Any]) -> None:
    """subscribe_msg_popup_event: each template the member allowed gives one message."""
    await _consents(svc, tenant_id, fields, "SubscribeMsgPopupEvent", "accept", grant)


async def subscribe_changed(svc: Services, tenant_id: int, fields: Mapping[str, Any]) -> None:
    """subscribe_msg_change_event: a template the member turned off in WeChat leaves none."""
    await _consents(svc, tenant_id, fields, "SubscribeMsgChangeEvent", "reject", revoke)


async def _consents(svc: Services, tenant_id: int, fields: Mapping[str, Any], key: str, status: str,
                    apply: Callable[[UnitOfWork, int, int, str, datetime], Awaitable[None]]) -> None:
    """`apply` to the sender's consent for each template of the event's list in `status`."""
    async with svc.uows() as uow:
        member = await _sender(svc, uow, tenant_id, fields)
        if member is None:
            return
        for item in _listed(fields, key):
            template_id = str(item.get("TemplateId", ""))[:64]
            if template_id and str(item.get("SubscribeStatusString", "")) == status:
                await apply(uow, tenant_id, member, template_id, svc.clock())
        await uow.commit()


async def subscribe_sent(svc: Services, tenant_id: int, fields: Mapping[str, Any]) -> None:
    """subscribe_msg_sent_event with an error code: the member's latest 订阅通知 did not arrive."""
    failed = [i for i in _listed(fields, "SubscribeMsgSentEvent") if str(i.get("ErrorCode", "0")) != "0"]
    if not failed:
        return
    async with svc.uows() as uow:
        member = await _sender(svc, uow, tenant_id, fields)
        if member is None:
            return
        latest = await uow.session.scalar(select(func.max(Send.id)).where(
            Send.tenant_id == tenant_id, Send.member_id == member, Send.via == "subscribe"))
        if latest is not None:
            await uow.session.execute(update(Send).where(Send.id == latest).values(delivered=False))
            await uow.commit()


# -- campaigns -----------------------------------------------------------------------------------

async def create(uow: UnitOfWork, tenant: int, actor: str, *, segment_id: int, name: str, text: str, url: str,
                 send_at: datetime, form_key: str, now: datetime) -> tuple[int, bool]:
    """(campaign id, made now): a form key already used returns its campaign."""
    found = await uow.session.scalar(select(Campaign.id).where(Campaign.tenant_id == tenant,
                                                               Campaign.form_key == form_key))
    if found is not None:
        return int(found), False
    row = Campaign(tenant_id=tenant, segment_id=segment_id, name=name, text=text, url=url, send_at=send_at,
                   status="scheduled", form_key=form_key, created_at=now)
    uow.session.add(row)
    await uow.session.flush()
    uow.audit(tenant, actor, "campaign.create", f"campaign:{row.id}",
              after={"segment": segment_id, "name": name, "send_at": send_at.isoformat()})
    return int(row.id), True


async def listed(uow: UnitOfWork, tenant: int) -> list[Campaign]:
    return list((await uow.session.execute(select(Campaign).where(Campaign.tenant_id == tenant)
                                           .order_by(Campaign.id.desc()).limit(100))).scalars())


async def get(uow: UnitOfWork, tenant: int, campaign_id: int) -> Campaign | None:
    return (await uow.session.execute(select(Campaign).where(Campaign.tenant_id == tenant,
                                                             Campaign.id == campaign_id))).scalar_one_or_none()


async def run_due(uow: UnitOfWork, now: datetime, groups: Mapping[str, MemberGroups] | None = None) -> int:
    """Start due campaigns and hand their next lots of sends to the outbox (outside each
    tenant's quiet hours). Returns the sends handed over. Safe with several workers: the
    claim and each send's emission are conditional UPDATEs."""
    handed = 0
    due = (await uow.session.execute(select(Campaign).where(
        Campaign.status.in_(("scheduled", "sending")), Campaign.send_at <= now).order_by(Campaign.id).limit(20)
    )).scalars().all()
    for c in due:
        p = await prefs(uow, c.tenant_id)
        if in_quiet_hours(now, p.quiet_start, p.quiet_end):
            continue
        if c.status == "scheduled":
            claimed = await uow.session.execute(update(Campaign).where(
                Campaign.id == c.id, Campaign.status == "scheduled").values(status="sending"))
            if rowcount(claimed) != 1:
                continue
            seg = await segments.get(uow, c.tenant_id, c.segment_id)
            rules = segments.Rules.of(seg.rules) if seg is not None else None
            if rules is None or await segments.problems(uow, c.tenant_id, rules, groups):
                # the segment is gone or its rules name a deleted tag / a group no longer
                # offered: send to nobody (never to everyone) and say so on the campaign
                await uow.session.execute(update(Campaign).where(Campaign.id == c.id, Campaign.status == "sending")
                                          .values(status="stopped"))
                continue
            people = await segments.members(uow, c.tenant_id, rules, now, groups)
            if people:
                await uow.session.execute(
                    _insert(uow, Send).on_conflict_do_nothing(index_elements=["campaign_id", "member_id"]),
                    [{"tenant_id": c.tenant_id, "campaign_id": c.id, "member_id": m, "status": "queued", "via": "",
                      "reason": "", "msg_id": 0, "delivered": False} for m, _ in people])
        ids = [i for (i,) in await uow.session.execute(select(Send.id).where(
            Send.campaign_id == c.id, Send.status == "queued", Send.emitted_at.is_(None)).order_by(Send.id).limit(LOT))]
        if ids:
            took = await uow.session.execute(update(Send).where(Send.id.in_(ids), Send.emitted_at.is_(None))
                                             .values(emitted_at=now).returning(Send.id, Send.member_id))
            events = [CampaignSendDue(tenant_id=c.tenant_id, campaign_id=c.id, send_id=int(i), member_id=int(m))
                      for i, m in took]
            await uow.emit_many(events)
            handed += len(events)
        open_left = await uow.session.scalar(select(func.count()).select_from(Send).where(
            Send.campaign_id == c.id, Send.status.in_(("queued", "sending"))))
        if not open_left:
            await uow.session.execute(update(Campaign).where(Campaign.id == c.id, Campaign.status == "sending")
                                      .values(status="sent"))
    return handed


def link_token(svc: Services, tenant_code: str, send_id: int) -> str:
    key = svc.settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"insights:{tenant_code}:{send_id}".encode(), hashlib.sha256).hexdigest()[:24]


def link(svc: Services, tenant_code: str, send_id: int) -> str:
    return f"{svc.public_base_url}/i/c/{tenant_code}/{send_id}?s={link_token(svc, tenant_code, send_id)}"


async def _mark(svc: Services, send_id: int, status: str, when: Mapping[str, Any], *, since: str = "sending") -> None:
    async with svc.uows() as uow:
        await uow.session.execute(update(Send).where(Send.id == send_id, Send.status == since)
                                  .values(status=status, **when))
        await uow.commit()


async def deliver(svc: Services, d: Delivery) -> None:
    """Send one campaign message (see the module's doc)."""
    tenant_id, send_id = d.tenant_id, int(d.payload["send_id"])
    now = svc.clock()
    async with svc.uows() as uow:
        send = (await uow.session.execute(select(Send).where(Send.tenant_id == tenant_id, Send.id == send_id))
                ).scalar_one_or_none()
        if send is None or send.status != "queued":
            return
        camp = await get(uow, tenant_id, send.campaign_id)
        p = await prefs(uow, tenant_id)
        if camp is None:
            return
        if in_quiet_hours(now, p.quiet_start, p.quiet_end):   # back to the job, after the quiet hours
            await uow.session.execute(update(Send).where(Send.id == send_id, Send.status == "queued")
                                      .values(emitted_at=None))
            await uow.commit()
            return
        reason = ""
        if await opted_out(uow, tenant_id, send.member_id):
            reason = "optout"
        elif await pushes_this_week(uow, tenant_id, send.member_id, now) >= p.weekly_cap:
            reason = "cap"
        found = await push_identity(uow, tenant_id, send.member_id, "mp")   # (its account, openid)
        if not reason and found is None:
            reason = "no_openid"
        if reason:
            await uow.session.execute(update(Send).where(Send.id == send_id, Send.status == "queued")
                                      .values(status="skipped", reason=reason))
            await uow.commit()
            return
        last_seen = await uow.session.scalar(select(MemberFacts.last_seen_at).where(
            MemberFacts.tenant_id == tenant_id, MemberFacts.member_id == send.member_id))
        n = await svc.kv.incr(f"insights:rate:{tenant_id}:{int(now.timestamp())}", 2)
        if n > RATE:
            raise Later("rate")
        claimed = await uow.session.execute(update(Send).where(Send.id == send_id, Send.status == "queued")
                                            .values(status="sending"))
        if rowcount(claimed) != 1:
            return
        await uow.commit()
    assert found is not None
    account, openid = found   # through the official account the openid belongs to
    tenant = await svc.channel_by_id(await svc.tenant_by_id(tenant_id), account)
    client = svc.wechat(tenant)
    url = link(svc, tenant.code, send_id)
    try:
        if within_kf_window(last_seen, now):
            try:
                await client.send_text(openid, f"{camp.text}\n{url}\n回复「退订」不再接收")
                await _mark(svc, send_id, "sent", {"via": "kf", "sent_at": now, "delivered": True})
                return
            except WeChatAPIError as exc:
                if exc.errcode not in FALLBACK:
                    raise
        if p.sub_template_id and await _subscribe(svc, client, tenant_id, send.member_id, openid, p, camp.text, url):
            await _mark(svc, send_id, "sent", {"via": "subscribe", "sent_at": now, "delivered": True})
            return
        if not p.template_id:
            await _mark(svc, send_id, "skipped", {"reason": "no_template"})
            return
        msg_id = await client.send_template(openid, p.template_id, {
            "first": {"value": camp.text[:200]}, "remark": {"value": "回复「退订」不再接收"}}, url=url)
        await _mark(svc, send_id, "sent", {"via": "template", "sent_at": now, "msg_id": msg_id})
    except WeChatAPIError as exc:
        if exc.errcode in RETRY:
            await _mark(svc, send_id, "queued", {})
            raise Later(str(exc.errcode)) from exc
        if exc.errcode == UNFOLLOWED:
            await _mark(svc, send_id, "skipped", {"reason": "unfollowed"})
            return
        await _mark(svc, send_id, "failed", {"reason": f"wechat_{exc.errcode}"[:32]})
        log.warning("insights.campaign.failed", extra={"tenant": tenant_id, "send": send_id, "errcode": exc.errcode})


async def _subscribe(svc: Services, client: WeChatClient, tenant_id: int, member: int, openid: str, p: Prefs, text: str,
                     url: str) -> bool:
    """A 订阅通知 when the member has a consent left for the tenant's template (spent here,
    given back when WeChat did not take the message); False: none left, or WeChat refused
    it (43101: none left from now on)."""
    async with svc.uows() as uow:
        spent = await _spend(uow, tenant_id, member, p.sub_template_id, -1)
        await uow.commit()
    if not spent:
        return False
    short = text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"
    try:
        await client.send_subscribe(openid, p.sub_template_id, {p.sub_text_key: short}, page=url)
        return True
    except WeChatAPIError as exc:
        async with svc.uows() as uow:
            if exc.errcode == REFUSED:
                await revoke(uow, tenant_id, member, p.sub_template_id, svc.clock())
            else:
                await _spend(uow, tenant_id, member, p.sub_template_id, +1)
            await uow.commit()
        if exc.errcode == REFUSED:
            return False
        raise


async def template_finished(svc: Services, tenant_id: int, fields: Mapping[str, Any]) -> None:
    """TEMPLATESENDJOBFINISH: the template send with that MsgID reached the member (or not)."""
    raw = str(fields.get("MsgID", ""))
    msg_id = parse_id(raw)
    if msg_id is None:
        return
    ok = str(fields.get("Status", "")) == "success"
    async with svc.uows() as uow:
        await uow.session.execute(update(Send).where(Send.tenant_id == tenant_id, Send.msg_id == msg_id,
                                                     Send.via == "template").values(delivered=ok))
        await uow.commit()


# -- the report ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    targeted: int
    sent: int
    via_kf: int
    via_template: int
    via_subscribe: int
    skipped: Mapping[str, int]
    failed: int
    delivered: int
    opened: int
    buyers: int
    orders: int
    revenue_fen: int


async def report(uow: UnitOfWork, tenant: int, campaign_id: int) -> Report:
    """sent / delivered / opened / ordered / revenue. Two reads, both grouped or joined in
    the database (a campaign may reach 100,000 members; 精准推送 lists 20 reports): the sends
    counted by status, route, reason, delivery and open; the recipients' paid orders within
    ATTRIBUTION after their own send — sends joined to the paid orders of the campaign's
    window ((tenant, kind, at)), only the matches come back."""
    sent_ok = (Send.status == "sent") & Send.sent_at.is_not(None)
    targeted = sent = kf = tpl = sub = failed = delivered = opened = 0
    skipped: dict[str, int] = {}
    for status, via, reason, got, was_opened, ok, n in await uow.session.execute(
            select(Send.status, Send.via, Send.reason, Send.delivered, Send.opened_at.is_not(None), sent_ok,
                   func.count()).where(Send.tenant_id == tenant, Send.campaign_id == campaign_id)
            .group_by(Send.status, Send.via, Send.reason, Send.delivered, Send.opened_at.is_not(None), sent_ok)):
        n = int(n)
        targeted += n
        opened += n if was_opened else 0
        if status == "skipped":
            skipped[str(reason)] = skipped.get(str(reason), 0) + n
        elif status == "failed":
            failed += n
        if ok:
            sent += n
            kf += n if via == "kf" else 0
            tpl += n if via == "template" else 0
            sub += n if via == "subscribe" else 0
            delivered += n if got else 0
    orders = buyers = revenue = 0
    first, last = (await uow.session.execute(select(func.min(Send.sent_at), func.max(Send.sent_at)).where(
        Send.tenant_id == tenant, Send.campaign_id == campaign_id, sent_ok))).one()
    if first is not None and last is not None:
        seen: set[int] = set()
        for m, sent_at, at, amount in await uow.session.execute(
                select(Event.member_id, Send.sent_at, Event.at, Event.amount_fen)
                .join(Send, (Send.member_id == Event.member_id) & (Send.tenant_id == Event.tenant_id))
                .where(Event.tenant_id == tenant, Event.kind == "order.paid", Event.at >= first,
                       Event.at < last + ATTRIBUTION, Send.campaign_id == campaign_id, sent_ok,
                       Event.at >= Send.sent_at)):
            if sent_at is not None and at < sent_at + ATTRIBUTION:
                orders += 1
                revenue += int(amount)
                seen.add(int(m))
        buyers = len(seen)
    return Report(targeted, sent, kf, tpl, sub, skipped, failed, delivered, opened, buyers, orders, revenue)


# -- wiring ------------------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get(r"/i/c/{tenant}/{send}")
async def tracked_link(request: web.Request) -> web.Response:
    """A campaign message's link: counts the first open, notes it on the member's timeline,
    then goes to the campaign's page (its URL, or a short page)."""
    svc = request.app[SERVICES]
    code = request.match_info["tenant"]
    send_id = parse_id(request.match_info["send"])
    given = request.query.get("s", "")
    if send_id is None or not code.isascii() or not given.isascii():
        raise web.HTTPNotFound(text="链接无效")
    tenant = await svc.tenant(code)
    if tenant is None or not hmac.compare_digest(given.encode(), link_token(svc, code, send_id).encode()):
        raise web.HTTPNotFound(text="链接无效")
    now = svc.clock()
    async with svc.uows() as uow:
        row = (await uow.session.execute(select(Send.member_id, Send.campaign_id).where(
            Send.tenant_id == tenant.id, Send.id == send_id))).first()
        if row is None:
            raise web.HTTPNotFound(text="链接无效")
        first = await uow.session.execute(update(Send).where(
            and_(Send.id == send_id, Send.opened_at.is_(None))).values(opened_at=now))
        camp = await get(uow, tenant.id, int(row[1]))
        await uow.commit()
    if rowcount(first) == 1:
        svc.track(Activity(tenant.id, int(row[0]), "mp", "campaign.open", now, int(row[1]), f"campaign_{row[1]}"))
    if camp is not None and camp.url.startswith(("https://", "http://")):
        raise web.HTTPFound(camp.url)
    text = (camp.text if camp is not None else "")
    html = svc.templates.get_template("h5/insights/campaign.html").render(text=text, tenant=tenant)
    return web.Response(text=html, content_type="text/html")


def register(reg: Registry, svc: Services) -> None:
    async def one(d: Delivery) -> None:
        await deliver(svc, d)

    async def due() -> int:
        async with svc.uows() as uow:
            n = await run_due(uow, svc.clock(), reg.member_groups)
            await uow.commit()
        if n:
            svc.outbox.kick()
        return n

    async def finished(tenant_id: int, fields: Mapping[str, Any]) -> None:
        await template_finished(svc, tenant_id, fields)

    reg.subscribe(TOPIC, "insights.send", one)
    reg.add_job("insights.campaigns", 60, due)
    reg.add_account_event("TEMPLATESENDJOBFINISH", finished)

    async def popup(tenant_id: int, fields: Mapping[str, Any]) -> None:
        await subscribe_popup(svc, tenant_id, fields)

    async def changed(tenant_id: int, fields: Mapping[str, Any]) -> None:
        await subscribe_changed(svc, tenant_id, fields)

    async def sent(tenant_id: int, fields: Mapping[str, Any]) -> None:
        await subscribe_sent(svc, tenant_id, fields)

    reg.add_account_event("subscribe_msg_popup_event", popup)
    reg.add_account_event("subscribe_msg_change_event", changed)
    reg.add_account_event("subscribe_msg_sent_event", sent)
    reg.add_routes(routes)

