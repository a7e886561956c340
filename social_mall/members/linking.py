"""One person, one member: link a second channel identity to a member with a one-time
link, for channels that can't say who someone is elsewhere (WeCom gives no unionid for
many group members, so their WeCom member and their official-account member differ).

    token = await issue_link(uow, tenant, member_id, channel="wecom", external_id=userid, now=now)
    # the channel shows https://…/h5/bind/<tenant>?c=<token>; opened in WeChat, web OAuth
    # gives the official-account openid, and then:
    result = await redeem_link(uow, tenant, token, channel="mp", external_id=openid, now=now,
                               merge=merge_members)

A link is 192 random bits (only its SHA-256 is stored), lives `LINK_TTL`, and is spent by
one conditional UPDATE in the transaction that does the linking, so of two clicks exactly
one links and a rolled-back attempt leaves it unspent. Redeeming it:

- the openid is nobody's yet → it becomes an identity of the link's member (`linked`);
- it already resolves to that member → nothing to do (`already`);
- it belongs to another member → the two are merged (`merged`) by the `merge` the caller
  passes in. Merging moves rows of several modules (orders and identities here, points
  and coupons in loyalty) and emits `member.merged` for the rest (group-buy seats,
  referral bindings); today it is `social_mall.loyalty.merge.merge_members`, a service
  over tables that are always migrated, so it works with the loyalty module switched off.
  The core only names its shape (`MergeMembers`) and never imports a module.

Refused (nothing changes): an unknown, used or expired link; a link's member that already
has another identity on the redeeming channel, or a target member that already has
another identity on the link's channel (never silently give one member two WeChat or
two WeCom accounts).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from social_mall.errors import MallError
from storage.identity_models import MemberLinkToken
from storage.identity_repos import LinkRepo
from storage.uow import UnitOfWork

LINK_TTL = timedelta(minutes=10)
TOKEN_CHARS = 32          # secrets.token_urlsafe(24)


class LinkError(MallError):
    code = "link_invalid"


class LinkUnknownError(LinkError):
    code = "link_unknown"


class LinkUsedError(LinkError):
    code = "link_used"


class LinkExpiredError(LinkError):
    code = "link_expired"


class LinkConflictError(LinkError):
    """The identities are tied to other accounts already (`reason` says which side)."""

    code = "link_conflict"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outcome(StrEnum):
    LINKED = "linked"
    MERGED = "merged"
    ALREADY = "already"


@dataclass(frozen=True)
class LinkView:
    member_id: int
    channel: str
    external_id: str
    purpose: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkResult:
    outcome: Outcome
    member_id: int          # the member that now has both identities
    channel: str            # the identity the link was issued for
    external_id: str
    purpose: str


class MergeOutcome(Protocol):
    @property
    def kept(self) -> int: ...


class MergeMembers(Protocol):
    """Merge two members into one (the survivor is `kept`), in the caller's transaction."""

    def __call__(self, uow: UnitOfWork, tenant: int, a: int, b: int, *, via: str, actor: str,
                 now: datetime) -> Awaitable[MergeOutcome]: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return len(token) == TOKEN_CHARS and all(c.isalnum() or c in "-_" for c in token) and token.isascii()


def mask(external_id: str) -> str:
    return external_id[:4] + "***" + external_id[-2:] if len(external_id) > 8 else "***"


async def issue_link(uow: UnitOfWork, tenant: int, member_id: int, *, channel: str, external_id: str,
                     now: datetime, purpose: str = "", ttl: timedelta = LINK_TTL) -> str:
    """A new one-time link for this identity (earlier unused ones of it stop working)."""
    r = LinkRepo(uow.session)
    await r.drop_unused(tenant, channel, external_id)
    token = secrets.token_urlsafe(24)
    await r.add(MemberLinkToken(tenant_id=tenant, token_hash=token_hash(token), member_id=member_id,
                                channel=channel, external_id=external_id, purpose=purpose[:40],
                                created_at=now, expires_at=now + ttl))
    return token


def _refusal(row: MemberLinkToken | None, now: datetime) -> LinkError:
    if row is None:
        return LinkUnknownError()
    if row.used_at is not None:
        return LinkUsedError()
    if row.expires_at <= now:
        return LinkExpiredError()
    return LinkUnknownError()


async def peek_link(uow: UnitOfWork, tenant: int, token: str, now: datetime) -> LinkView:
    """What a live link is for, without spending it; raises a LinkError otherwise."""
    row = await LinkRepo(uow.session).by_hash(tenant, token_hash(token)) if well_formed(token) else None
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise _refusal(row, now)
    return LinkView(row.member_id, row.channel, row.external_id, row.purpose, row.expires_at)


async def _channel_id(uow: UnitOfWork, tenant: int, member_id: int, channel: str) -> str | None:
    for ident in await uow.members.identities(tenant, member_id):
        if ident.channel == channel:
            return ident.external_id
    return None


async def redeem_link(uow: UnitOfWork, tenant: int, token: str, *, channel: str, external_id: str,
                      now: datetime, merge: MergeMembers) -> LinkResult:
    """Spend the link and tie `channel`/`external_id` (e.g. the OAuth openid) to the link's
    member, merging members when it belongs to someone else. The caller commits; on any
    error it rolls back and nothing changed (the link included)."""
    r = LinkRepo(uow.session)
    h = token_hash(token) if well_formed(token) else ""
    if not h or not await r.spend(tenant, h, now, by_channel=channel):
        raise _refusal(await r.by_hash(tenant, h) if h else None, now)
    row = await r.by_hash(tenant, h)
    assert row is not None
    if row.channel == channel:
        raise LinkConflictError("same_channel")
    # the identity, not the stored member id: the member may have been merged since
    source = await uow.members.by_identity(tenant, row.channel, row.external_id)
    if source is None:
        raise LinkUnknownError()
    target = await uow.members.by_identity(tenant, channel, external_id)
    if target is None:
        if await _channel_id(uow, tenant, source.id, channel) is not None:
            raise LinkConflictError("source_has_other")
        try:
            async with uow.session.begin_nested():
                await uow.members.add_identity(tenant, source.id, channel, external_id)
            outcome, member_id = Outcome.LINKED, source.id
        except IntegrityError:   # the same openid was linked a moment ago by another request
            target = await uow.members.by_identity(tenant, channel, external_id)
            if target is None:
                raise
    if target is not None:
        if target.id == source.id:
            outcome, member_id = Outcome.ALREADY, source.id
        else:
            if await _channel_id(uow, tenant, source.id, channel) is not None:
                raise LinkConflictError("source_has_other")
            theirs = await _channel_id(uow, tenant, target.id, row.channel)
            if theirs is not None and theirs != row.external_id:
                raise LinkConflictError("target_has_other")
            merged = await merge(uow, tenant, source.id, target.id, via=f"link_{row.channel}"[:20],
                                 actor=f"member:{target.id}", now=now)
            outcome, member_id = Outcome.MERGED, merged.kept
    await r.set_result(row.id, outcome)
    uow.audit(tenant, f"member:{member_id}", "member.link", f"member:{member_id}",
              after={"outcome": outcome.value, "from": f"{row.channel}:{mask(row.external_id)}",
                     "to": f"{channel}:{mask(external_id)}", "purpose": row.purpose})
    return LinkResult(outcome, member_id, row.channel, row.external_id, row.purpose)
