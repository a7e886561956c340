"""Broadcasts (群发) over the caller's unit of work: checked and saved once per console form
(its one-time key), audited; the segment resolved to members' official-account openids
with WeChat's monthly quota counted per member (a service account reaches a follower at
most `MONTHLY_QUOTA` times a calendar month: those at 4 are left out, and with nobody left
the send is refused); a subject (a text, an article, a product on the shelf); claimed for sending with one conditional UPDATE (a double click or
two workers: one send); the result and MASSSENDJOBFINISH recorded.

WeChat itself is called by `sender.py` (the edge); this file holds no HTTP."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from social_mall import codes
from social_mall.errors import MallError, NotFoundError
from social_mall_content.models import Article, Broadcast, BroadcastRecipient, Previewer
from social_mall_content.mpnews import as_card
from social_mall.members.audience import audience as members_audience
from social_mall.members.audience import channel_ids
from social_mall.channels.service import accounts as channel_accounts
from social_mall.members.tags import wechat_links
from storage.uow import UnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHLY_QUOTA = 4          # a service account: 4 mass sends a month reach one follower
PRIMARY = 0                # broadcasts and previews go out from the primary official account
MIN_RECIPIENTS = 2         # mass/send by openid list takes 2..10000
MAX_RECIPIENTS = 10_000
MAX_TEXT = 600
BIND_RULE = codes.CodeRule("preview")
STALE_AFTER = timedelta(minutes=10)


class BroadcastRefusedError(MallError):
    """Why a broadcast can't go (the console says it in Chinese): `field` is one of text,
    article, segment, schedule, quota, too_few, previewer, state, tag_not_synced."""

    code = "broadcast_refused"

    def __init__(self, field: str, **facts: Any) -> None:
        super().__init__(field)
        self.field, self.details = field, facts


@dataclass(frozen=True)
class BroadcastInput:
    key: str
    article_id: int | None
    text: str
    segment: str
    scheduled_at: datetime | None   # None: now
    product_id: int | None = None   # a product on the shelf: its title, price and a buy link


@dataclass(frozen=True)
class Urls:
    """Where a broadcast's links point: an article's H5 page, a product's."""

    article: Callable[[int], str]
    product: Callable[[int], str]


@dataclass(frozen=True)
class BroadcastView:
    id: int
    article_id: int | None
    product_id: int | None
    text: str
    segment: str
    status: str
    scheduled_at: datetime
    sent_at: datetime | None
    recipients: int
    skipped: int
    msg_id: int | None
    error: str
    result: str
    total_count: int
    sent_count: int
    error_count: int


@dataclass(frozen=True)
class Claimed:
    """A broadcast this worker won the right to send: the message and its openids."""

    id: int
    tenant_id: int
    message: Mapping[str, Any]       # {"msgtype": "text", "text": {"content": …}}
    openids: tuple[str, ...]
    client_msg_id: str
    card_article: int | None = None  # an article alone: sent as a 图文 card when its cover is ours (mpnews.py)
    wechat_tag_id: int = 0           # a subscription account: mass/sendall to this user tag, not the openids


def _one(result: Any) -> bool:
    """Whether a conditional UPDATE changed exactly one row."""
    return int(result.rowcount) == 1


def month_of(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


def _view(b: Broadcast) -> BroadcastView:
    return BroadcastView(b.id, b.article_id, b.product_id, b.text, b.segment, b.status, b.scheduled_at, b.sent_at, b.recipients,
                         b.skipped, b.msg_id, b.error, b.result, b.total_count, b.sent_count, b.error_count)


def parse_segment(raw: str) -> str:
    s = raw.strip()
    if s == "all":
        return s
    kind, _, value = s.partition(":")
    if kind == "level" and 1 <= len(value) <= 20:
        return s
    if kind in ("category", "tag") and value.isascii() and value.isdigit() and 0 < len(value) <= 18 \
            and 0 < int(value) < 2**62:
        return s
    raise BroadcastRefusedError("segment")


async def check(uow: UnitOfWork, tenant: int, b: BroadcastInput, now: datetime) -> BroadcastInput:
    text = b.text.strip()
    if len(text) > MAX_TEXT or (b.article_id is None and b.product_id is None and not text):
        raise BroadcastRefusedError("text")
    if b.product_id is not None:
        await _on_sale(uow, tenant, b.product_id)
    if b.article_id is not None:
        art = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant, Article.id == b.article_id,
                                                             Article.published.is_(True)))
        if art is None:
            raise BroadcastRefusedError("article")
    segment = parse_segment(b.segment)
    if b.scheduled_at is not None and b.scheduled_at <= now:
        raise BroadcastRefusedError("schedule")
    if not (8 <= len(b.key) <= 40 and b.key.isascii() and b.key.isalnum()):
        raise BroadcastRefusedError("state")
    return BroadcastInput(b.key, b.article_id, text, segment, b.scheduled_at, b.product_id)


async def audience(uow: UnitOfWork, tenant: int, segment: str) -> list[tuple[int, str]]:
    """(member id, official-account openid) of the segment, by member id (the core's
    members.audience). A tag ("tag:<id>", the core's member tags) goes out like any other
    segment, by openid list (mass/send with `touser`), from a service account; a
    subscription account can't send by openid list: there it goes to the tag's copy on
    WeChat (`wechat_tag_for`). A broadcast goes out from the tenant's primary official
    account, so only openids at that account count (another account's would make WeChat
    refuse the whole send)."""
    kind, _, value = segment.partition(":")
    return await members_audience(uow, tenant, "mp", level=value if kind == "level" else None,
                                  bought_category=int(value) if kind == "category" else None,
                                  tag=int(value) if kind == "tag" else None, account=PRIMARY)


async def wechat_tag_for(uow: UnitOfWork, tenant: int, segment: str) -> int:
    """The WeChat user tag a broadcast to a tag goes to (mass/sendall with filter.tag_id)
    when the tenant's official account is a subscription account, which can't mass-send by
    openid list; 0 otherwise (by openid list). Refused (tag_not_synced) when the tag isn't
    synced to that account (the 会员标签 page's 「同步到微信」)."""
    kind, _, value = segment.partition(":")
    if kind != "tag":
        return 0
    primary = next((a for a in await channel_accounts(uow, tenant) if a.is_primary and a.kind == "mp"), None)
    if primary is None or primary.subtype != "subscription":
        return 0
    for account_id, wechat_tag_id in await wechat_links(uow, tenant, int(value)):
        if account_id == primary.id:
            return wechat_tag_id
    raise BroadcastRefusedError("tag_not_synced")


async def within_quota(uow: UnitOfWork, tenant: int, people: Sequence[tuple[int, str]],
                       now: datetime) -> tuple[list[tuple[int, str]], int]:
    """Those of `people` who may still get a broadcast this month, and how many may not."""
    if not people:
        return [], 0
    month = month_of(now)
    full: set[int] = set()
    ids = [m for m, _ in people]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        rows = await uow.session.execute(
            select(BroadcastRecipient.member_id).where(
                BroadcastRecipient.tenant_id == tenant, BroadcastRecipient.month == month,
                BroadcastRecipient.member_id.in_(chunk))
            .group_by(BroadcastRecipient.member_id)
            .having(func.count() >= MONTHLY_QUOTA))
        full.update(int(r[0]) for r in rows)
    left = [(m, o) for m, o in people if m not in full]
    return left, len(people) - len(left)


def _reachable(left: Sequence[tuple[int, str]], skipped: int) -> None:
    if not left and skipped:
        raise BroadcastRefusedError("quota", skipped=skipped)
    if len(left) < MIN_RECIPIENTS:
        raise BroadcastRefusedError("too_few", count=len(left))
    if len(left) > MAX_RECIPIENTS:
        raise BroadcastRefusedError("segment")


async def create(uow: UnitOfWork, tenant: int, b: BroadcastInput, *, actor: str, now: datetime) -> tuple[int, bool]:
    """The broadcast of this form (its key): (id, made now). A repeat of the form finds
    the one it made; an immediate one is checked against the quota here (refused: nothing
    saved); a scheduled one again when it goes."""
    found = await uow.session.scalar(select(Broadcast.id).where(Broadcast.tenant_id == tenant, Broadcast.key == b.key))
    if found is not None:
        return int(found), False
    clean = await check(uow, tenant, b, now)
    await wechat_tag_for(uow, tenant, clean.segment)
    if clean.scheduled_at is None:
        _reachable(*await within_quota(uow, tenant, await audience(uow, tenant, clean.segment), now))
    row = Broadcast(tenant_id=tenant, key=clean.key, article_id=clean.article_id, product_id=clean.product_id,
                    text=clean.text,
                    segment=clean.segment, status="scheduled", scheduled_at=clean.scheduled_at or now,
                    created_by=actor, created_at=now)
    try:
        async with uow.session.begin_nested():   # the same form posted twice at once: one row
            uow.session.add(row)
            await uow.session.flush()
    except IntegrityError:
        found = await uow.session.scalar(select(Broadcast.id).where(Broadcast.tenant_id == tenant,
                                                                    Broadcast.key == clean.key))
        if found is None:
            raise
        return int(found), False
    uow.audit(tenant, actor, "broadcast.create", f"broadcast:{row.id}",
              after={"segment": clean.segment, "article": clean.article_id, "product": clean.product_id,
                     "text": clean.text[:60],
                     "scheduled_at": row.scheduled_at.isoformat()})
    return row.id, True


async def _on_sale(uow: UnitOfWork, tenant: int, product_id: int) -> tuple[str, str]:
    """A product's title and lowest price among its SKUs on the shelf with stock ("¥29.90起"
    when they differ); refused ("product") when it is not this shop's, off the shelf or sold out."""
    product = await uow.catalog.product(tenant, product_id)
    if product is None or not product.on_shelf:
        raise BroadcastRefusedError("product")
    prices = {s.price_fen for s in await uow.catalog.skus(tenant, product_id) if s.on_shelf and s.stock > 0}
    if not prices:
        raise BroadcastRefusedError("product")
    low = min(prices)
    return product.title, f"¥{low // 100}.{low % 100:02d}" + ("起" if len(prices) > 1 else "")


async def message_of(uow: UnitOfWork, tenant: int, article_id: int | None, text: str,
                     urls: Urls, product_id: int | None = None) -> dict[str, Any]:
    """The mass-send message: a text; an article as its title, digest and a link to its H5
    page; a product as its title, its lowest price on the shelf and a link to its H5 page
    (where it is bought), after the text if there is one. A product taken off the shelf
    (or sold out) since the form refuses the send."""
    parts = [text] if text else []
    if article_id is not None:
        art = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant, Article.id == article_id))
        if art is None:
            raise BroadcastRefusedError("article")
        parts.append(f'【{art.title}】{art.digest}\n<a href="{urls.article(article_id)}">点击阅读</a>')
    if product_id is not None:
        title, price = await _on_sale(uow, tenant, product_id)
        parts.append(f'【{title}】{price}\n<a href="{urls.product(product_id)}">立即购买</a>')
    return {"msgtype": "text", "text": {"content": "\n\n".join(parts)}}


async def claim(uow: UnitOfWork, tenant: int, broadcast_id: int, *, now: datetime, page_url: Urls) -> Claimed | None:
    """Take a due broadcast for sending (scheduled → sending, one conditional UPDATE: one
    winner), record its recipients under the quota. None when someone else took it (or it
    is not due). Refused (quota, too few): marked failed with the reason, audited."""
    won = _one(await uow.session.execute(
        update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id,
                                Broadcast.status == "scheduled", Broadcast.scheduled_at <= now)
        .values(status="sending", sent_at=now)))
    if not won:
        return None
    b = await uow.session.scalar(select(Broadcast).where(Broadcast.id == broadcast_id))
    assert b is not None
    left, skipped = await within_quota(uow, tenant, await audience(uow, tenant, b.segment), now)
    try:
        wechat_tag_id = await wechat_tag_for(uow, tenant, b.segment)
        _reachable(left, skipped)
        message = await message_of(uow, tenant, b.article_id, b.text, page_url, b.product_id)
    except BroadcastRefusedError as exc:
        b.status, b.error, b.skipped = "failed", exc.field, skipped
        uow.audit(tenant, "system", "broadcast.refused", f"broadcast:{b.id}", after={"reason": exc.field})
        return None
    month = month_of(now)
    uow.session.add_all([BroadcastRecipient(tenant_id=tenant, broadcast_id=b.id, member_id=m, month=month)
                         for m, _ in left])
    b.recipients, b.skipped = len(left), skipped
    card = b.article_id if as_card(b.article_id, b.product_id, b.text) else None
    return Claimed(b.id, tenant, message, tuple(o for _, o in left), f"sm-{tenant}-{b.id}", card, wechat_tag_id)


async def stale(uow: UnitOfWork, now: datetime, *, limit: int = 20) -> list[tuple[int, int]]:
    """(tenant, id) of broadcasts left "sending" longer than `STALE_AFTER` (the worker died
    between taking one and hearing WeChat's answer)."""
    rows = (await uow.session.execute(
        select(Broadcast.tenant_id, Broadcast.id).where(Broadcast.status == "sending",
                                                        Broadcast.sent_at <= now - STALE_AFTER)
        .order_by(Broadcast.id).limit(limit))).all()
    return [(int(t), int(i)) for t, i in rows]


async def reclaim(uow: UnitOfWork, tenant: int, broadcast_id: int, *, now: datetime, page_url: Urls) -> Claimed | None:
    """Take a stale "sending" broadcast again (one conditional UPDATE: one winner) with the
    recipients it recorded; the same clientmsgid makes WeChat refuse it (45065) if the lost
    call did go through."""
    won = _one(await uow.session.execute(
        update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id,
                                Broadcast.status == "sending", Broadcast.sent_at <= now - STALE_AFTER)
        .values(sent_at=now)))
    if not won:
        return None
    b = await uow.session.scalar(select(Broadcast).where(Broadcast.id == broadcast_id))
    assert b is not None
    recorded = (await uow.session.scalars(select(BroadcastRecipient.member_id).where(
        BroadcastRecipient.tenant_id == tenant, BroadcastRecipient.broadcast_id == broadcast_id))).all()
    openids = dict(await channel_ids(uow, tenant, "mp", (int(m) for m in recorded), account=PRIMARY))
    message = await message_of(uow, tenant, b.article_id, b.text, page_url, b.product_id)
    uow.audit(tenant, "system", "broadcast.retry", f"broadcast:{b.id}")
    card = b.article_id if as_card(b.article_id, b.product_id, b.text) else None
    return Claimed(b.id, tenant, message, tuple(openids.values()), f"sm-{tenant}-{b.id}", card)


async def sent(uow: UnitOfWork, tenant: int, broadcast_id: int, msg_id: int, *, actor: str) -> None:
    await uow.session.execute(update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id,
                                                      Broadcast.status == "sending")
                              .values(status="sent", msg_id=msg_id))
    uow.audit(tenant, actor, "broadcast.sent", f"broadcast:{broadcast_id}", after={"msg_id": msg_id})


async def failed(uow: UnitOfWork, tenant: int, broadcast_id: int, error: str, *, actor: str) -> None:
    """WeChat refused it: nothing went out, so the quota is given back."""
    await uow.session.execute(update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id,
                                                      Broadcast.status == "sending")
                              .values(status="failed", error=error[:200]))
    await uow.session.execute(delete(BroadcastRecipient).where(BroadcastRecipient.tenant_id == tenant,
                                                               BroadcastRecipient.broadcast_id == broadcast_id))
    uow.audit(tenant, actor, "broadcast.failed", f"broadcast:{broadcast_id}", after={"error": error[:200]})


def _count(fields: Mapping[str, Any], name: str) -> int:
    raw = str(fields.get(name) or "0").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


async def job_finished(uow: UnitOfWork, tenant: int, fields: Mapping[str, Any], now: datetime) -> bool:
    """Record a MASSSENDJOBFINISH (MsgID, Status, TotalCount, FilterCount, SentCount,
    ErrorCount) on the broadcast WeChat gave that msg_id; False for an unknown one or a repeat."""
    raw = str(fields.get("MsgID") or fields.get("MsgId") or "").strip()
    if not raw.isdigit() or len(raw) > 18:
        return False
    done = _one(await uow.session.execute(
        update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.msg_id == int(raw),
                                Broadcast.finished_at.is_(None))
        .values(status="finished", finished_at=now, result=str(fields.get("Status") or "")[:64],
                total_count=_count(fields, "TotalCount"), sent_count=_count(fields, "SentCount"),
                error_count=_count(fields, "ErrorCount"))))
    return done


async def due(uow: UnitOfWork, now: datetime, *, limit: int = 20) -> list[tuple[int, int]]:
    """(tenant, id) of scheduled broadcasts whose time has come, oldest first."""
    rows = (await uow.session.execute(
        select(Broadcast.tenant_id, Broadcast.id).where(Broadcast.status == "scheduled", Broadcast.scheduled_at <= now)
        .order_by(Broadcast.scheduled_at, Broadcast.id).limit(limit))).all()
    return [(int(t), int(i)) for t, i in rows]


async def list_broadcasts(uow: UnitOfWork, tenant: int, *, limit: int = 50) -> list[BroadcastView]:
    rows = (await uow.session.scalars(select(Broadcast).where(Broadcast.tenant_id == tenant)
                                      .order_by(Broadcast.id.desc()).limit(limit))).all()
    return [_view(r) for r in rows]


async def get_broadcast(uow: UnitOfWork, tenant: int, broadcast_id: int) -> BroadcastView:
    row = await uow.session.scalar(select(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id))
    if row is None:
        raise NotFoundError("broadcast", broadcast_id)
    return _view(row)


# -- previews: the admin's own openid -------------------------------------------------------

async def bind_code(uow: UnitOfWork, tenant: int, admin_id: int, now: datetime) -> str:
    """A fresh code (social_mall.codes: 50 bits, attempt-limited, 10 minutes) the admin sends
    in chat as 「预览绑定 K7Q2M-9XD3F」; only its digest is kept."""
    new = codes.issue(BIND_RULE)
    row = await uow.session.scalar(select(Previewer).where(Previewer.admin_id == admin_id))
    if row is None:
        row = Previewer(tenant_id=tenant, admin_id=admin_id)
        uow.session.add(row)
    row.code, row.digest, row.code_expires_at = new.selector, new.digest, now + BIND_RULE.ttl
    await uow.session.flush()
    return new.shown


async def bind(uow: UnitOfWork, kv: codes.Counters, tenant: int, member_id: int, typed: str, openid: str,
               now: datetime) -> None:
    """The admin who was given the code `typed` previews to `openid` from now on (the code
    is spent); a codes.CodeError when it is no live code (attempts counted per member)."""
    async def find(selector: str) -> list[codes.Stored]:
        rows = (await uow.session.scalars(select(Previewer).where(Previewer.tenant_id == tenant,
                                                                  Previewer.code == selector))).all()
        return [codes.Stored(f"{r.id}:{r.digest[:16]}", r.digest, r.code_expires_at or now, not r.digest)
                for r in rows if r.digest]

    hit = await codes.check(kv, BIND_RULE, tenant=tenant, actor=member_id, typed=typed, now=now, find=find)
    if not _one(await uow.session.execute(
            update(Previewer).where(Previewer.tenant_id == tenant, Previewer.digest == hit.digest)
            .values(openid=openid, code="", digest="", code_expires_at=None))):
        raise codes.CodeError(BIND_RULE.purpose)
    uow.audit(tenant, f"member:{member_id}", "broadcast.previewer_bound", "previewer", after={"openid": openid})


async def previewer(uow: UnitOfWork, tenant: int, admin_id: int) -> str:
    row = await uow.session.scalar(select(Previewer.openid).where(Previewer.tenant_id == tenant,
                                                                  Previewer.admin_id == admin_id))
    return str(row or "")
