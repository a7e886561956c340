"""The module's SQL: the only file here that builds queries. Every query is scoped by
tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from social_mall_b2b.models import (
    Company, CompanyGroup, CompanyMember, CustomerGroup, Invite, ListPrice, PriceListRow, SkuCode, SkuTerms,
)


class B2bRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- companies ----------------------------------------------------------------------

    async def company_of_member(self, tenant: int, member: int) -> Company | None:
        return (await self.s.execute(select(Company).where(
            Company.tenant_id == tenant, Company.owner_member_id == member))).scalar_one_or_none()

    async def company(self, tenant: int, company_id: int) -> Company | None:
        return (await self.s.execute(select(Company).where(
            Company.tenant_id == tenant, Company.id == company_id))).scalar_one_or_none()

    async def company_by_uscc(self, tenant: int, uscc: str) -> Company | None:
        return (await self.s.execute(select(Company).where(
            Company.tenant_id == tenant, Company.uscc == uscc))).scalar_one_or_none()

    async def companies(self, tenant: int, status: str | None, offset: int, limit: int
                        ) -> tuple[Sequence[Company], int]:
        where = [Company.tenant_id == tenant] + ([Company.status == status] if status else [])
        total = await self.s.scalar(select(func.count()).select_from(Company).where(*where)) or 0
        rows = (await self.s.execute(select(Company).where(*where).order_by(Company.id.desc())
                                     .offset(offset).limit(limit))).scalars().all()
        return rows, total

    async def add(self, row: object) -> None:
        self.s.add(row)
        await self.s.flush()

    async def decide(self, tenant: int, company_id: int, to: str, reason: str, actor: str, now: datetime) -> bool:
        """pending → approved/rejected, one conditional UPDATE: True for the call that moved it."""
        res = await self.s.execute(update(Company).where(
            Company.tenant_id == tenant, Company.id == company_id, Company.status == "pending",
        ).values(status=to, reason=reason, decided_by=actor, decided_at=now))
        return bool(getattr(res, "rowcount", 0) == 1)

    async def reapply(self, tenant: int, company_id: int, values: dict[str, object], now: datetime) -> bool:
        """rejected → pending with the new details (conditional)."""
        res = await self.s.execute(update(Company).where(
            Company.tenant_id == tenant, Company.id == company_id, Company.status == "rejected",
        ).values(**values, status="pending", reason="", decided_by="", decided_at=None, created_at=now))
        return bool(getattr(res, "rowcount", 0) == 1)

    async def group_ids(self, tenant: int, company_ids: Sequence[int]) -> dict[int, list[int]]:
        """Each company's customer groups (ascending ids)."""
        out: dict[int, list[int]] = {c: [] for c in company_ids}
        if not company_ids:
            return out
        rows = await self.s.execute(select(CompanyGroup.company_id, CompanyGroup.group_id).where(
            CompanyGroup.tenant_id == tenant, CompanyGroup.company_id.in_(company_ids))
            .order_by(CompanyGroup.company_id, CompanyGroup.group_id))
        for c, g in rows:
            out[int(c)].append(int(g))
        return out

    async def set_groups(self, tenant: int, company_id: int, group_ids: Sequence[int]) -> None:
        """Replace a company's customer groups with `group_ids`."""
        await self.s.execute(delete(CompanyGroup).where(CompanyGroup.tenant_id == tenant,
                                                        CompanyGroup.company_id == company_id))
        self.s.add_all([CompanyGroup(tenant_id=tenant, company_id=company_id, group_id=g)
                        for g in sorted(set(group_ids))])
        await self.s.flush()

    # -- groups, lists, terms -----------------------------------------------------------------

    async def groups(self, tenant: int) -> Sequence[CustomerGroup]:
        return (await self.s.execute(select(CustomerGroup).where(CustomerGroup.tenant_id == tenant)
                                     .order_by(CustomerGroup.id))).scalars().all()

    async def group(self, tenant: int, group_id: int) -> CustomerGroup | None:
        return (await self.s.execute(select(CustomerGroup).where(
            CustomerGroup.tenant_id == tenant, CustomerGroup.id == group_id))).scalar_one_or_none()

    async def lists(self, tenant: int) -> Sequence[PriceListRow]:
        return (await self.s.execute(select(PriceListRow).where(PriceListRow.tenant_id == tenant)
                                     .order_by(PriceListRow.id))).scalars().all()

    async def price_list(self, tenant: int, list_id: int) -> PriceListRow | None:
        return (await self.s.execute(select(PriceListRow).where(
            PriceListRow.tenant_id == tenant, PriceListRow.id == list_id))).scalar_one_or_none()

    async def lists_for(self, tenant: int, company_id: int) -> Sequence[PriceListRow]:
        """The active lists of a company: its own and those of every group it is in."""
        in_groups = select(CompanyGroup.group_id).where(CompanyGroup.tenant_id == tenant,
                                                        CompanyGroup.company_id == company_id)
        return (await self.s.execute(select(PriceListRow).where(
            PriceListRow.tenant_id == tenant, PriceListRow.active.is_(True),
            or_(PriceListRow.company_id == company_id, PriceListRow.group_id.in_(in_groups))))).scalars().all()

    async def prices(self, tenant: int, list_ids: Sequence[int], sku_ids: Sequence[int] | None
                     ) -> Sequence[ListPrice]:
        if not list_ids:
            return []
        where = [ListPrice.tenant_id == tenant, ListPrice.list_id.in_(list_ids)]
        if sku_ids is not None:
            where.append(ListPrice.sku_id.in_(sku_ids))
        return (await self.s.execute(select(ListPrice).where(*where)
                                     .order_by(ListPrice.sku_id, ListPrice.min_qty))).scalars().all()

    async def replace_prices(self, tenant: int, list_id: int, rows: Sequence[ListPrice]) -> None:

        await self.s.execute(delete(ListPrice).where(ListPrice.tenant_id == tenant, ListPrice.list_id == list_id))
        self.s.add_all(rows)
        await self.s.flush()

    async def terms(self, tenant: int, sku_ids: Sequence[int] | None) -> Sequence[SkuTerms]:
        where = [SkuTerms.tenant_id == tenant]
        if sku_ids is not None:
            where.append(SkuTerms.sku_id.in_(sku_ids))
        return (await self.s.execute(select(SkuTerms).where(*where).order_by(SkuTerms.sku_id))).scalars().all()

    async def set_terms(self, tenant: int, sku_id: int, moq: int, case: int) -> None:
        found = (await self.s.execute(select(SkuTerms).where(
            SkuTerms.tenant_id == tenant, SkuTerms.sku_id == sku_id))).scalar_one_or_none()
        if found is None:
            self.s.add(SkuTerms(tenant_id=tenant, sku_id=sku_id, moq=moq, case_pack=case))
        else:
            found.moq, found.case_pack = moq, case
        await self.s.flush()

    # -- SKU codes ---------------------------------------------------------------------------

    async def skus_by_code(self, tenant: int, codes: Sequence[str]) -> dict[str, int]:
        if not codes:
            return {}
        rows = await self.s.execute(select(SkuCode.code, SkuCode.sku_id).where(
            SkuCode.tenant_id == tenant, SkuCode.code.in_(list(codes))))
        return {c: s for c, s in rows.all()}

    async def codes(self, tenant: int, sku_ids: Sequence[int] | None = None) -> dict[int, str]:
        where = [SkuCode.tenant_id == tenant]
        if sku_ids is not None:
            where.append(SkuCode.sku_id.in_(list(sku_ids)))
        rows = await self.s.execute(select(SkuCode.sku_id, SkuCode.code).where(*where))
        return {s: c for s, c in rows.all()}

    async def code_owner(self, tenant: int, code: str) -> int | None:
        return await self.s.scalar(select(SkuCode.sku_id).where(SkuCode.tenant_id == tenant, SkuCode.code == code))

    async def set_code(self, tenant: int, sku_id: int, code: str) -> None:
        found = (await self.s.execute(select(SkuCode).where(
            SkuCode.tenant_id == tenant, SkuCode.sku_id == sku_id))).scalar_one_or_none()
        if found is None:
            self.s.add(SkuCode(tenant_id=tenant, sku_id=sku_id, code=code))
        else:
            found.code = code
        await self.s.flush()

    # -- a company's buyers and invites ----------------------------------------------------------

    async def membership(self, tenant: int, member: int) -> int | None:
        """The company id `member` joined as a buyer, if any."""
        return await self.s.scalar(select(CompanyMember.company_id).where(
            CompanyMember.tenant_id == tenant, CompanyMember.member_id == member))

    async def buyers(self, tenant: int, company_id: int) -> Sequence[CompanyMember]:
        return (await self.s.execute(select(CompanyMember).where(
            CompanyMember.tenant_id == tenant, CompanyMember.company_id == company_id)
            .order_by(CompanyMember.id))).scalars().all()

    async def invites_by_selector(self, tenant: int, selector: str) -> Sequence[Invite]:
        return (await self.s.execute(select(Invite).where(
            Invite.tenant_id == tenant, Invite.selector == selector))).scalars().all()

    async def spend_invite(self, tenant: int, invite_id: int, member: int, now: datetime) -> bool:
        res = await self.s.execute(update(Invite).where(
            Invite.tenant_id == tenant, Invite.id == invite_id, Invite.used_by.is_(None), Invite.expires_at > now,
        ).values(used_by=member, used_at=now))
        return bool(getattr(res, "rowcount", 0) == 1)
