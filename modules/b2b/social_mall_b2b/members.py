"""A company's buyers (采购员): the owner of an approved account asks for a one-time invite
code in chat (「邀请采购员」: social_mall/codes.py — 50 bits, only its SHA-256 stored, 24
hours, one use, attempt-limited per member and per code); a member sends 「加入企业 code」
and from then on buys for the company (its 企业价, quick order, quotes). A member buys for
at most one company in a tenant. Joining is audited; a spent, expired or wrong code joins
nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall import codes
from social_mall_b2b.accounts import APPROVED, CompanyView, approved_company, forget, view
from social_mall_b2b.errors import AlreadyAppliedError, NotBusinessError
from social_mall_b2b.models import CompanyMember, Invite
from social_mall_b2b.repos import B2bRepo
from storage.uow import UnitOfWork

INVITE = codes.CodeRule("b2b_invite", ttl=timedelta(hours=24))


@dataclass(frozen=True)
class NewInvite:
    shown: str
    expires_at: datetime
    company: CompanyView


async def create_invite(uow: UnitOfWork, tenant: int, owner: int, now: datetime) -> NewInvite:
    """A one-time invite for the owner's approved company (only the owner may invite)."""
    r = B2bRepo(uow.session)
    company = await r.company_of_member(tenant, owner)
    if company is None or company.status != APPROVED:
        raise NotBusinessError()
    new = codes.issue(INVITE)
    expires = now + INVITE.ttl
    await r.add(Invite(tenant_id=tenant, company_id=company.id, selector=new.selector, digest=new.digest,
                       expires_at=expires, created_at=now))
    uow.audit(tenant, f"member:{owner}", "b2b.invite", f"b2b_company:{company.id}",
              after={"expires_at": expires.isoformat()})
    return NewInvite(new.shown, expires, view(company))


async def join(uow: UnitOfWork, kv: codes.Counters, tenant: int, member: int, typed: str, now: datetime
               ) -> CompanyView:
    """Join a company with its owner's code: a CodeError (wrong, spent, expired, too many
    tries) or AlreadyAppliedError (the member buys for a company already) joins nothing."""
    if await approved_company(uow, tenant, member) is not None or \
            await B2bRepo(uow.session).company_of_member(tenant, member) is not None:
        raise AlreadyAppliedError("member")
    r = B2bRepo(uow.session)
    found: dict[str, Invite] = {}

    async def find(selector: str) -> list[codes.Stored]:
        rows = await r.invites_by_selector(tenant, selector)
        found.update({str(i.id): i for i in rows})
        return [codes.Stored(str(i.id), i.digest, i.expires_at, i.used_by is not None) for i in rows]

    hit = await codes.check(kv, INVITE, tenant=tenant, actor=member, typed=typed, now=now, find=find)
    invite = found[hit.ref]
    if not await r.spend_invite(tenant, invite.id, member, now):
        raise codes.CodeError(INVITE.purpose)          # spent meanwhile by someone else
    await r.add(CompanyMember(tenant_id=tenant, company_id=invite.company_id, member_id=member, role="buyer",
                              created_at=now))
    forget(uow)
    uow.audit(tenant, f"member:{member}", "b2b.join", f"b2b_company:{invite.company_id}",
              after={"invite": invite.id})
    company = await r.company(tenant, invite.company_id)
    assert company is not None
    return view(company)
