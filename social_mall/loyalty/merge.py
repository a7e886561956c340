"""One person, one member: link channel identities with a one-time bind code (when WeChat
gives no unionid) and merge two members.

A merge keeps the older member and moves everything of the other to it in one
transaction: channel identities (so every channel now resolves to the kept member),
orders, addresses, cart, the points ledger and balance, growth, coupons and order
discounts. It then emits `member.merged` (social_mall/loyalty/events.py) for the modules
that keep rows of their own: the referral module moves its bindings on that event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.loyalty import rules
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.errors import BindCodeError, MergeRefusedError
from social_mall.loyalty.events import MemberMerged
from storage.loyalty_models import BindCode
from storage.loyalty_repos import LoyaltyRepo
from storage.uow import UnitOfWork

BIND_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class MergeResult:
    kept: int
    merged: int


async def merge_members(uow: UnitOfWork, tenant: int, a: int, b: int, *, via: str, actor: str,
                        now: datetime) -> MergeResult:
    if a == b:
        raise MergeRefusedError("same_member")
    r = LoyaltyRepo(uow.session)
    if await r.merged_into(tenant, a) is not None or await r.merged_into(tenant, b) is not None:
        raise MergeRefusedError("already_merged")
    keep, gone = min(a, b), max(a, b)
    lvls = await loyalty.levels(uow, tenant)
    await r.ensure_account(tenant, keep, rules.level_for(0, lvls).name)
    if not await r.merge(tenant, keep, gone, via=via, now=now):
        raise MergeRefusedError("already_merged")
    await loyalty.refresh_level(uow, tenant, keep)
    uow.audit(tenant, actor, "member.merge", f"member:{gone}", after={"into": keep, "via": via})
    uow.emit(MemberMerged(tenant_id=tenant, kept_member_id=keep, merged_member_id=gone, via=via))
    return MergeResult(keep, gone)


async def issue_bind_code(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> str:
    """A 6-digit code, valid 10 minutes, to type on another channel (「绑定 123456」)."""
    r = LoyaltyRepo(uow.session)
    await r.drop_bind_codes(tenant, member)
    for _ in range(10):
        code = f"{secrets.randbelow(10**6):06d}"
        if await r.add_bind_code(BindCode(tenant_id=tenant, code=code, member_id=member, expires_at=now + BIND_TTL)):
            return code
    raise BindCodeError()


async def bind_with_code(uow: UnitOfWork, tenant: int, member: int, code: str, now: datetime) -> MergeResult:
    other = await LoyaltyRepo(uow.session).use_bind_code(tenant, code.strip(), now)
    if other is None:
        raise BindCodeError()
    if other == member:
        raise MergeRefusedError("same_member")
    return await merge_members(uow, tenant, member, other, via="bind_code", actor=f"member:{member}", now=now)
