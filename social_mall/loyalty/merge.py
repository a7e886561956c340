"""One person, one member: link channel identities with a one-time bind code (when WeChat
gives no unionid) and merge two members.

A merge keeps the older member and moves everything of the other to it in one
transaction: channel identities (so every channel now resolves to the kept member),
orders, addresses, cart, the points ledger and balance, growth, coupons and order
discounts. It then emits `member.merged` (social_mall/loyalty/events.py) for the modules
that keep rows of their own: the referral module moves its bindings on that event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from social_mall import codes
from social_mall.loyalty import rules
from social_mall.loyalty import service as loyalty
from social_mall.loyalty.errors import MergeRefusedError
from social_mall.loyalty.events import MemberMerged
from storage.loyalty_models import BindCode
from storage.loyalty_repos import LoyaltyRepo
from storage.uow import UnitOfWork

BIND = codes.CodeRule("bind")  # 10 characters, 10 minutes, 5 attempts per member per 15 minutes and per code


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
    """A one-time code, valid 10 minutes, to type on another channel (「绑定 K7Q2M-9XD3F」):
    the member's earlier codes stop working. Returns the code as shown; only its hash is kept."""
    r = LoyaltyRepo(uow.session)
    await r.drop_bind_codes(tenant, member, now)
    new = codes.issue(BIND)
    await r.add_bind_code(BindCode(tenant_id=tenant, selector=new.selector, code_hash=new.digest, member_id=member,
                                   expires_at=now + BIND.ttl))
    return new.shown


async def bind_with_code(uow: UnitOfWork, kv: codes.Counters, tenant: int, member: int, typed: str,
                         now: datetime) -> MergeResult:
    """Merge `member` with the member whose live code was typed. Attempt-limited per member
    and per code (social_mall/codes.py): a CodeError refuses, and nothing changes."""
    r = LoyaltyRepo(uow.session)
    issued: dict[str, BindCode] = {}

    async def find(selector: str) -> list[codes.Stored]:
        found = await r.bind_codes(tenant, selector)
        # row ids can come back (SQLite reuses a deleted last one): the hash makes the ref unique
        issued.update((f"{c.id}.{c.code_hash[:12]}", c) for c in found)
        return [codes.Stored(ref, c.code_hash, c.expires_at, c.used_at is not None) for ref, c in issued.items()]

    hit = await codes.check(kv, BIND, tenant=tenant, actor=member, typed=typed, now=now, find=find)
    row = issued[hit.ref]
    if row.member_id == member:
        raise MergeRefusedError("same_member")
    if not await r.spend_bind_code(row.id, now):
        raise codes.CodeError(BIND.purpose)       # spent by a concurrent redeemer, or just expired
    return await merge_members(uow, tenant, member, row.member_id, via="bind_code", actor=f"member:{member}", now=now)
