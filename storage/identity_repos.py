"""SQL of the identity-linking tables. Construct from a unit of work's session:
`LinkRepo(uow.session)`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.identity_models import MemberLinkToken

NO_SYNC = {"synchronize_session": False}


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class LinkRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: MemberLinkToken) -> MemberLinkToken:
        self.session.add(row)
        await self.session.flush()
        return row

    async def by_hash(self, tenant: int, token_hash: str) -> MemberLinkToken | None:
        stmt = select(MemberLinkToken).where(MemberLinkToken.tenant_id == tenant,
                                             MemberLinkToken.token_hash == token_hash)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def spend(self, tenant: int, token_hash: str, now: datetime, *, by_channel: str) -> bool:
        """Use a live link: one conditional UPDATE, so of two clicks exactly one wins."""
        stmt = (update(MemberLinkToken)
                .where(MemberLinkToken.tenant_id == tenant, MemberLinkToken.token_hash == token_hash,
                       MemberLinkToken.used_at.is_(None), MemberLinkToken.expires_at > now)
                .values(used_at=now, used_by_channel=by_channel))
        return _rowcount(await self.session.execute(stmt.execution_options(**NO_SYNC))) == 1

    async def set_result(self, row_id: int, result: str) -> None:
        await self.session.execute(update(MemberLinkToken).where(MemberLinkToken.id == row_id)
                                   .values(result=result).execution_options(**NO_SYNC))

    async def drop_unused(self, tenant: int, channel: str, external_id: str) -> None:
        """Forget the identity's earlier links that were never used (a new one replaces them)."""
        await self.session.execute(
            delete(MemberLinkToken)
            .where(MemberLinkToken.tenant_id == tenant, MemberLinkToken.channel == channel,
                   MemberLinkToken.external_id == external_id, MemberLinkToken.used_at.is_(None))
            .execution_options(**NO_SYNC))
