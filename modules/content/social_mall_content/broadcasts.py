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
from social_mall_content.models import Article, Broadcast, BroadcastRecipient, BroadcastSend, Previewer
from social_mall_content.mpnews import as_card
from social_mall.members.audience import audience as members_audience
from social_mall.members.audience import channel_ids
from social_mall.channels.service import accounts as channel_accounts
from social_mall.members.tags import wechat_links
from storage.uow import UnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHLY_QUOTA = 4          # a service account: 4 mass sends a month reach one follower
PRIMARY = 0                # the primary official account (member identities' account 0)
MIN_RECIPIENTS = 2         # mass/send by openid list takes 2..10000
MAX_RECIPIENTS = 10_000
MAX_TEXT = 600
BIND_RULE = codes.CodeRule("preview")
STALE_AFTER = timedelta(minutes=10)
MAX_ATTEMPTS = 6                   # an account's mass send WeChat didn't answer: tried this many times in all
CLIENT_ID_KEPT = timedelta(hours=23)   # WeChat remembers a clientmsgid 24 h: no retry after this


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
class Send:
    """One official account's part of a claimed broadcast: its openids (or, a subscription
    account to a tag, the tag's copy on WeChat) and its own clientmsgid."""

    account_id: int                  # 0: the primary
    openids: tuple[str, ...]
    client_msg_id: str
    wechat_tag_id: int = 0           # a subscription account: mass/sendall to this user tag, not the openids


@dataclass(frozen=True)
class SendView:
    account_id: int
    recipients: int
    status: str
    msg_id: int | None
    error: str
    result: str
    total_count: int
    sent_count: int
    error_count: int


@dataclass(frozen=True)
class Claimed:
    """A broadcast this worker won the right to send: the message and, per official
    account, its openids (one mass send each: an openid is valid only with its own
    account's token). `sends` holds only the parts not sent yet."""

    id: int
    tenant_id: int
    message: Mapping[str, Any]       # {"msgtype": "text", "text": {"content": …}}
    sends: tuple[Send, ...]
    card_article: int | None = None  # an article alone: sent as a 图文 card when its cover is ours (mpnews.py)

    @property
    def openids(self) -> tuple[str, ...]:
        return tuple(o for send in self.sends for o in send.openids)


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


async def mp_accounts(uow: UnitOfWork, tenant: int) -> list[tuple[int, str]]:
    """(account id, subtype) of the tenant's enabled official accounts, the primary first
    as 0 (member identities' account for it)."""
    found = [a for a in await channel_accounts(uow, tenant) if a.kind == "mp" and a.enabled]
    primary = next((a.subtype for a in found if a.is_primary), "")
    return [(PRIMARY, primary)] + [(a.id, a.subtype) for a in found if not a.is_primary]


async def audience(uow: UnitOfWork, tenant: int, segment: str) -> list[tuple[int, str, int]]:
    """(member id, openid, account id) of the segment, by member id (the core's
    members.audience), each member once, at the first of the tenant's official accounts it
    follows — the primary first, then the others by id: a broadcast goes out from every
    account, one mass send each (an openid is valid only with its own account's token),
    and a member following two gets it once. A tag ("tag:<id>", the core's member tags) goes
    out like any other segment, by openid list (mass/send with `touser`), from a service
    account; a subscription account can't send by openid list: there it goes to the tag's
    copy on WeChat (`wechat_tag_for`), which reaches every follower holding the tag there:
    for a tag, subscription accounts come first, so a member following one of them and
    another account is counted at the subscription account and left out of the other's
    openid list (they get it once, not twice)."""
    kind, _, value = segment.partition(":")
    taken: dict[int, tuple[str, int]] = {}
    accounts = await mp_accounts(uow, tenant)
    if kind == "tag":     # sendall to a tag can't leave anyone out: those accounts first
        accounts.sort(key=lambda a: a[1] != "subscription")
    for account, _subtype in accounts:
        for member, openid in await members_audience(
                uow, tenant, "mp", level=value if kind == "level" else None,
                bought_category=int(value) if kind == "category" else None,
                tag=int(value) if kind == "tag" else None, account=account):
            taken.setdefault(member, (openid, account))
    return [(m, o, a) for m, (o, a) in sorted(taken.items())]


async def wechat_tag_for(uow: UnitOfWork, tenant: int, segment: str, account: int = PRIMARY) -> int:
    """The WeChat user tag a broadcast to a tag goes to at `account` (mass/sendall with
    filter.tag_id) when that official account is a subscription account, which can't
    mass-send by openid list; 0 otherwise (by openid list). Refused (tag_not_synced) when
    the tag isn't synced to that account (the 会员标签 page's 「同步到微信」)."""
    kind, _, value = segment.partition(":")
    if kind != "tag":
        return 0
    rows = await channel_accounts(uow, tenant)
    row = next((a for a in rows if a.kind == "mp" and (a.is_primary if account == PRIMARY else a.id == account)), None)
    if row is None or row.subtype != "subscription":
        return 0
    for account_id, wechat_tag_id in await wechat_links(uow, tenant, int(value)):
        if account_id == row.id:
            return wechat_tag_id
    raise BroadcastRefusedError("tag_not_synced")


async def within_quota(uow: UnitOfWork, tenant: int, people: Sequence[tuple[int, str, int]],
                       now: datetime) -> tuple[list[tuple[int, str, int]], int]:
    """Those of `people` who may still get a broadcast this month, and how many may not."""
    if not people:
        return [], 0
    month = month_of(now)
    full: set[int] = set()
    ids = [p[0] for p in people]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        rows = await uow.session.execute(
            select(BroadcastRecipient.member_id).where(
                BroadcastRecipient.tenant_id == tenant, BroadcastRecipient.month == month,
                BroadcastRecipient.member_id.in_(chunk))
            .group_by(BroadcastRecipient.member_id)
            .having(func.count() >= MONTHLY_QUOTA))
        full.update(int(r[0]) for r in rows)
    left = [p for p in people if p[0] not in full]
    return left, len(people) - len(left)


async def split(uow: UnitOfWork, tenant: int, segment: str, left: Sequence[tuple[int, str, int]],
                skipped: int) -> tuple[dict[int, list[tuple[int, str]]], dict[int, int], int]:
    """`left` by official account ({account: [(member, openid)]}), each account's WeChat tag
    (subscription accounts, a tag segment) and how many are left out in all: the quota's,
    and a lone follower at an account sent by openid list (mass/send takes 2 at least).
    Refused when nobody is left (quota / too_few) or an account would get too many."""
    by_account: dict[int, list[tuple[int, str]]] = {}
    for member, openid, account in left:
        by_account.setdefault(account, []).append((member, openid))
    tags: dict[int, int] = {}
    for account in list(by_account):
        tags[account] = await wechat_tag_for(uow, tenant, segment, account)
        if not tags[account] and len(by_account[account]) < MIN_RECIPIENTS:
            skipped += len(by_account.pop(account))
    total = sum(len(v) for v in by_account.values())
    if not left and skipped:
        raise BroadcastRefusedError("quota", skipped=skipped)
    if total < MIN_RECIPIENTS:
        raise BroadcastRefusedError("too_few", count=total)
    if any(len(v) > MAX_RECIPIENTS for v in by_account.values()):
        raise BroadcastRefusedError("segment")
    return by_account, tags, skipped


async def create(uow: UnitOfWork, tenant: int, b: BroadcastInput, *, actor: str, now: datetime) -> tuple[int, bool]:
    """The broadcast of this form (its key): (id, made now). A repeat of the form finds
    the one it made; an immediate one is checked against the quota here (refused: nothing
    saved); a scheduled one again when it goes."""
    found = await uow.session.scalar(select(Broadcast.id).where(Broadcast.tenant_id == tenant, Broadcast.key == b.key))
    if found is not None:
        return int(found), False
    clean = await check(uow, tenant, b, now)
    for account, _subtype in await mp_accounts(uow, tenant):
        await wechat_tag_for(uow, tenant, clean.segment, account)
    if clean.scheduled_at is None:
        left, skipped = await within_quota(uow, tenant, await audience(uow, tenant, clean.segment), now)
        await split(uow, tenant, clean.segment, left, skipped)
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
        by_account, tags, skipped = await split(uow, tenant, b.segment, left, skipped)
        message = await message_of(uow, tenant, b.article_id, b.text, page_url, b.product_id)
    except BroadcastRefusedError as exc:
        b.status, b.error, b.skipped = "failed", exc.field, skipped
        uow.audit(tenant, "system", "broadcast.refused", f"broadcast:{b.id}", after={"reason": exc.field})
        return None
    month = month_of(now)
    sends = []
    for account, people in sorted(by_account.items()):
        uow.session.add_all([BroadcastRecipient(tenant_id=tenant, broadcast_id=b.id, member_id=m, month=month,
                                                account_id=account) for m, _ in people])
        send = Send(account, tuple(o for _, o in people), client_msg_id(tenant, b.id, account), tags[account])
        uow.session.add(BroadcastSend(tenant_id=tenant, broadcast_id=b.id, account_id=account,
                                      recipients=len(people), client_msg_id=send.client_msg_id,
                                      wechat_tag_id=send.wechat_tag_id, status="sending",
                                      attempts=1, first_tried_at=now))
        sends.append(send)
    b.recipients, b.skipped = sum(len(p) for p in by_account.values()), skipped
    card = b.article_id if as_card(b.article_id, b.product_id, b.text) else None
    return Claimed(b.id, tenant, message, tuple(sends), card)


def client_msg_id(tenant: int, broadcast_id: int, account: int) -> str:
    """The clientmsgid of a broadcast's send at `account`: WeChat refuses a second job with
    it (45065), so a retried call sends once (the primary's as it always was)."""
    return f"sm-{tenant}-{broadcast_id}" + (f"-{account}" if account else "")


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
    call did go through. Only the accounts' parts still "sending" go again (a worker died
    before their call, or WeChat didn't answer it); a part tried `MAX_ATTEMPTS` times, or
    first tried longer ago than WeChat remembers its clientmsgid, is given up (failed):
    sending it again could reach its followers twice."""
    won = _one(await uow.session.execute(
        update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id,
                                Broadcast.status == "sending", Broadcast.sent_at <= now - STALE_AFTER)
        .values(sent_at=now)))
    if not won:
        return None
    b = await uow.session.scalar(select(Broadcast).where(Broadcast.id == broadcast_id))
    assert b is not None
    recorded = (await uow.session.execute(select(BroadcastRecipient.member_id, BroadcastRecipient.account_id).where(
        BroadcastRecipient.tenant_id == tenant, BroadcastRecipient.broadcast_id == broadcast_id))).all()
    parts = {int(r.account_id): r for r in (await uow.session.scalars(select(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id))).all()}
    worn = (await uow.session.scalars(select(BroadcastSend.account_id).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id,
        BroadcastSend.status == "sending",
        (BroadcastSend.attempts >= MAX_ATTEMPTS) | (BroadcastSend.first_tried_at <= now - CLIENT_ID_KEPT)))).all()
    for account in worn:
        tries = parts[int(account)].attempts
        await part_failed(uow, tenant, broadcast_id, int(account), f"-1 微信 {tries} 次未答复，已停止重试")
        uow.audit(tenant, "system", "broadcast.gave_up", f"broadcast:{broadcast_id}",
                  after={"account": int(account), "attempts": tries})
        parts[int(account)].status = "failed"
        recorded = [r for r in recorded if int(r[1]) != int(account)]
    members: dict[int, list[int]] = {}
    for member, account in recorded:
        members.setdefault(int(account), []).append(int(member))
    sends = []
    for account, ids in sorted(members.items()):
        part = parts.get(account)
        if part is not None and part.status != "sending":
            continue                      # sent (or refused) before the worker died
        openids = dict(await channel_ids(uow, tenant, "mp", ids, account=account))
        if part is None:                  # taken before sends were kept per account: the primary's
            part = BroadcastSend(tenant_id=tenant, broadcast_id=b.id, account_id=account, recipients=len(openids),
                                 client_msg_id=client_msg_id(tenant, b.id, account), wechat_tag_id=0, status="sending",
                                 attempts=0, first_tried_at=now)
            uow.session.add(part)
        part.attempts += 1
        sends.append(Send(account, tuple(openids.values()), part.client_msg_id, part.wechat_tag_id))
    message = await message_of(uow, tenant, b.article_id, b.text, page_url, b.product_id)
    uow.audit(tenant, "system", "broadcast.retry", f"broadcast:{b.id}")
    card = b.article_id if as_card(b.article_id, b.product_id, b.text) else None
    return Claimed(b.id, tenant, message, tuple(sends), card)


async def part_sent(uow: UnitOfWork, tenant: int, broadcast_id: int, account: int, msg_id: int) -> None:
    """WeChat took the account's mass send (msg_id; 0 when a retry learnt it by 45065)."""
    await uow.session.execute(update(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id,
        BroadcastSend.account_id == account, BroadcastSend.status == "sending")
        .values(status="sent", msg_id=msg_id, error=""))


async def part_unanswered(uow: UnitOfWork, tenant: int, broadcast_id: int, account: int, error: str) -> None:
    """WeChat didn't answer the account's mass send (busy, unreachable, a 5xx): it may or may
    not have taken it, so the part stays "sending" (its followers' quota kept) with the
    reason shown, and the stale sweep (`reclaim`) sends it again with the same clientmsgid
    (45065 if the first did go through). The other accounts' sends are not held up."""
    await uow.session.execute(update(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id,
        BroadcastSend.account_id == account, BroadcastSend.status == "sending").values(error=error[:200]))


async def part_failed(uow: UnitOfWork, tenant: int, broadcast_id: int, account: int, error: str) -> None:
    """WeChat refused the account's mass send: nothing went to its followers, so their
    quota is given back; the other accounts' sends stand."""
    await uow.session.execute(update(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id,
        BroadcastSend.account_id == account, BroadcastSend.status == "sending")
        .values(status="failed", error=error[:200]))
    await uow.session.execute(delete(BroadcastRecipient).where(
        BroadcastRecipient.tenant_id == tenant, BroadcastRecipient.broadcast_id == broadcast_id,
        BroadcastRecipient.account_id == account))


async def settle(uow: UnitOfWork, tenant: int, broadcast_id: int, *, actor: str) -> str:
    """The broadcast's state from its accounts' sends once none is under way: sent when
    WeChat took at least one (msg_id: the first's; recipients: those of the sends taken),
    failed when it refused them all (the error: the first refusal). Audited; the state."""
    parts = (await uow.session.scalars(select(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == broadcast_id)
        .order_by(BroadcastSend.account_id))).all()
    if any(p.status == "sending" for p in parts):
        return "sending"
    taken = [p for p in parts if p.status in ("sent", "finished")]
    refused = [p for p in parts if p.status == "failed"]
    if taken:
        values: dict[str, Any] = {"status": "sent", "msg_id": taken[0].msg_id or 0,
                                  "recipients": sum(p.recipients for p in taken)}
        if refused:
            values["error"] = "; ".join(f"{p.account_id}:{p.error}" for p in refused)[:200]
        done = _one(await uow.session.execute(update(Broadcast).where(
            Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id, Broadcast.status == "sending").values(**values)))
        if done:
            uow.audit(tenant, actor, "broadcast.sent", f"broadcast:{broadcast_id}",
                      after={"msg_id": values["msg_id"], "accounts": [p.account_id for p in taken],
                             "refused": [p.account_id for p in refused]})
        return "sent"
    error = refused[0].error if refused else "nothing"
    done = _one(await uow.session.execute(update(Broadcast).where(
        Broadcast.tenant_id == tenant, Broadcast.id == broadcast_id, Broadcast.status == "sending")
        .values(status="failed", error=error[:200])))
    if done:
        await uow.session.execute(delete(BroadcastRecipient).where(BroadcastRecipient.tenant_id == tenant,
                                                                   BroadcastRecipient.broadcast_id == broadcast_id))
        uow.audit(tenant, actor, "broadcast.failed", f"broadcast:{broadcast_id}", after={"error": error[:200]})
    return "failed"


def _count(fields: Mapping[str, Any], name: str) -> int:
    raw = str(fields.get(name) or "0").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


async def job_finished(uow: UnitOfWork, tenant: int, fields: Mapping[str, Any], now: datetime) -> bool:
    """Record a MASSSENDJOBFINISH (MsgID, Status, TotalCount, FilterCount, SentCount,
    ErrorCount) on the broadcast WeChat gave that msg_id; False for an unknown one or a repeat."""
    raw = str(fields.get("MsgID") or fields.get("MsgId") or "").strip()
    if not raw.isdigit() or len(raw) > 18:
        return False
    counts = {"result": str(fields.get("Status") or "")[:64], "total_count": _count(fields, "TotalCount"),
              "sent_count": _count(fields, "SentCount"), "error_count": _count(fields, "ErrorCount")}
    part = await uow.session.scalar(select(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.msg_id == int(raw)).limit(1))
    if part is None:    # a broadcast sent before sends were kept per account
        return _one(await uow.session.execute(
            update(Broadcast).where(Broadcast.tenant_id == tenant, Broadcast.msg_id == int(raw),
                                    Broadcast.finished_at.is_(None))
            .values(status="finished", finished_at=now, **counts)))
    if not _one(await uow.session.execute(update(BroadcastSend).where(
            BroadcastSend.id == part.id, BroadcastSend.finished_at.is_(None))
            .values(status="finished", finished_at=now, **counts))):
        return False
    parts = (await uow.session.scalars(select(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id == part.broadcast_id))).all()
    finished = [p for p in parts if p.status == "finished"]
    values: dict[str, Any] = {k: sum(getattr(p, k) for p in finished)
                              for k in ("total_count", "sent_count", "error_count")}
    results = sorted({p.result for p in finished})
    values["result"] = "、".join(results)[:64]
    if all(p.status in ("finished", "failed") for p in parts):      # every account heard from
        values.update(status="finished", finished_at=now)
    await uow.session.execute(update(Broadcast).where(Broadcast.tenant_id == tenant,
                                                      Broadcast.id == part.broadcast_id).values(**values))
    return True


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


async def sends_of(uow: UnitOfWork, tenant: int, broadcast_ids: Sequence[int]) -> dict[int, list[SendView]]:
    """Each broadcast's sends per official account (primary first)."""
    if not broadcast_ids:
        return {}
    rows = (await uow.session.scalars(select(BroadcastSend).where(
        BroadcastSend.tenant_id == tenant, BroadcastSend.broadcast_id.in_(list(broadcast_ids)))
        .order_by(BroadcastSend.broadcast_id, BroadcastSend.account_id))).all()
    found: dict[int, list[SendView]] = {}
    for r in rows:
        found.setdefault(r.broadcast_id, []).append(SendView(
            r.account_id, r.recipients, r.status, r.msg_id, r.error, r.result, r.total_count, r.sent_count,
            r.error_count))
    return found


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
               now: datetime, account: int = PRIMARY) -> None:
    """The admin who was given the code `typed` previews to `openid` (at the official
    account `account`, through which previews then go) from now on (the code is spent); a
    codes.CodeError when it is no live code (attempts counted per member)."""
    async def find(selector: str) -> list[codes.Stored]:
        rows = (await uow.session.scalars(select(Previewer).where(Previewer.tenant_id == tenant,
                                                                  Previewer.code == selector))).all()
        return [codes.Stored(f"{r.id}:{r.digest[:16]}", r.digest, r.code_expires_at or now, not r.digest)
                for r in rows if r.digest]

    hit = await codes.check(kv, BIND_RULE, tenant=tenant, actor=member_id, typed=typed, now=now, find=find)
    if not _one(await uow.session.execute(
            update(Previewer).where(Previewer.tenant_id == tenant, Previewer.digest == hit.digest)
            .values(openid=openid, account_id=account, code="", digest="", code_expires_at=None))):
        raise codes.CodeError(BIND_RULE.purpose)
    uow.audit(tenant, f"member:{member_id}", "broadcast.previewer_bound", "previewer",
              after={"openid": openid, "account": account})


async def previewer(uow: UnitOfWork, tenant: int, admin_id: int) -> tuple[str, int]:
    """The admin's bound openid ("" for none) and the official account it is at."""
    row = (await uow.session.execute(select(Previewer.openid, Previewer.account_id).where(
        Previewer.tenant_id == tenant, Previewer.admin_id == admin_id))).first()
    return (str(row.openid or ""), int(row.account_id or 0)) if row is not None else ("", PRIMARY)
