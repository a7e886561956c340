"""Console read queries for the group-buy and referral modules' admin pages (lists the
modules' own repos don't offer). Every query is scoped to a tenant. Construct from
`uow.session`: `ConsoleModulesRepo(uow.session)`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.groupbuy_models import GroupbuyCampaign, GroupbuyTeam
from storage.referral_models import Commission


class ConsoleModulesRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Any) -> list[Any]:
        return list((await self.session.scalars(stmt)).all())

    async def campaigns(self, tenant: int, *, offset: int, limit: int) -> tuple[list[GroupbuyCampaign], int]:
        where = GroupbuyCampaign.tenant_id == tenant
        total = int(await self.session.scalar(select(func.count()).select_from(GroupbuyCampaign).where(where)) or 0)
        rows = await self._all(select(GroupbuyCampaign).where(where).order_by(GroupbuyCampaign.id.desc())
                               .offset(offset).limit(limit))
        return rows, total

    async def teams_of(self, tenant: int, campaign_id: int, *, offset: int, limit: int
                       ) -> tuple[list[GroupbuyTeam], int]:
        where = (GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.campaign_id == campaign_id)
        total = int(await self.session.scalar(select(func.count()).select_from(GroupbuyTeam).where(*where)) or 0)
        rows = await self._all(select(GroupbuyTeam).where(*where).order_by(GroupbuyTeam.id.desc())
                               .offset(offset).limit(limit))
        return rows, total

    async def commissions(self, tenant: int, *, status: str | None, offset: int, limit: int
                          ) -> tuple[list[Commission], int]:
        where = [Commission.tenant_id == tenant]
        if status:
            where.append(Commission.status == status)
        total = int(await self.session.scalar(select(func.count()).select_from(Commission).where(*where)) or 0)
        rows = await self._all(select(Commission).where(*where).order_by(Commission.id.desc())
                               .offset(offset).limit(limit))
        return rows, total

    async def commissions_after(self, tenant: int, after: int, limit: int, *, status: str | None
                                ) -> list[Commission]:
        stmt = select(Commission).where(Commission.tenant_id == tenant, Commission.id > after)
        if status:
            stmt = stmt.where(Commission.status == status)
        return await self._all(stmt.order_by(Commission.id).limit(limit))
