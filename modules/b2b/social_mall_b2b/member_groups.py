"""The companies as groups of members for segments (the core's `MemberGroups` seam,
`reg.add_member_groups`): an approved company's owner and its buyers."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.members.audience import MemberGroups
from social_mall_b2b.models import Company, CompanyMember
from storage.uow import UnitOfWork


async def options(uow: UnitOfWork, tenant: int) -> list[tuple[int, str]]:
    rows = await uow.session.execute(select(Company.id, Company.name).where(
        Company.tenant_id == tenant, Company.status == "approved").order_by(Company.name).limit(500))
    return [(int(i), str(n)) for i, n in rows]


async def members(uow: UnitOfWork, tenant: int, company_id: int) -> set[int]:
    owner = await uow.session.scalar(select(Company.owner_member_id).where(
        Company.tenant_id == tenant, Company.id == company_id, Company.status == "approved"))
    if owner is None:
        return set()
    buyers = await uow.session.execute(select(CompanyMember.member_id).where(
        CompanyMember.tenant_id == tenant, CompanyMember.company_id == company_id))
    return {int(owner)} | {int(m) for (m,) in buyers}


GROUPS = MemberGroups("company", "企业", options, members)
