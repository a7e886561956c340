"""SQL for channel accounts (storage/channel_models.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from storage.channel_models import ChannelAccount
from storage.models import Member, MemberIdentity, Order, Tenant
from sqlalchemy.ext.asyncio import AsyncSession


class ChannelRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self, tenant: int) -> Sequence[ChannelAccount]:
        stmt = select(ChannelAccount).where(ChannelAccount.tenant_id == tenant).order_by(
            ChannelAccount.is_primary.desc(), ChannelAccount.id)
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).all()

    async def get(self, tenant: int, account_id: int) -> ChannelAccount | None:
        stmt = select(ChannelAccount).where(ChannelAccount.tenant_id == tenant, ChannelAccount.id == account_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def by_code(self, tenant: int, code: str) -> ChannelAccount | None:
        stmt = select(ChannelAccount).where(ChannelAccount.tenant_id == tenant, ChannelAccount.code == code)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def primary(self, tenant: int) -> ChannelAccount | None:
        stmt = select(ChannelAccount).where(ChannelAccount.tenant_id == tenant, ChannelAccount.is_primary.is_(True))
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def first_enabled(self, tenant: int, kind: str) -> ChannelAccount | None:
        """The tenant's default account of a kind: its first enabled one."""
        stmt = (select(ChannelAccount).where(ChannelAccount.tenant_id == tenant, ChannelAccount.kind == kind,
                                             ChannelAccount.enabled.is_(True))
                .order_by(ChannelAccount.id).limit(1))
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def has_app_id(self, tenant: int, app_id: str) -> bool:
        """Is `app_id` one of the tenant's channel accounts (enabled or not)?"""
        stmt = select(ChannelAccount.id).where(ChannelAccount.tenant_id == tenant, ChannelAccount.app_id == app_id,
                                               ChannelAccount.app_id != "").limit(1)
        return await self.session.scalar(stmt) is not None

    async def add(self, row: ChannelAccount) -> ChannelAccount:
        self.session.add(row)
        await self.session.flush()
        return row

    async def set_fields(self, row: ChannelAccount, now: datetime, **values: Any) -> None:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        await self.session.flush()

    async def copy_to_tenant(self, tenant: int, row: ChannelAccount) -> None:
        await self.session.execute(
            update(Tenant).where(Tenant.id == tenant).values(
                wechat_app_id=row.app_id, wechat_app_secret=row.app_secret, wechat_token=row.token,
                wechat_aes_key=row.aes_key).execution_options(synchronize_session=False))

    async def tenant_row(self, tenant: int) -> Tenant | None:
        return await self.session.get(Tenant, tenant, populate_existing=True)

    async def unionid_of(self, tenant: int, member_id: int) -> str | None:
        return await self.session.scalar(select(Member.unionid).where(Member.tenant_id == tenant,
                                                                      Member.id == member_id))

    async def set_unionid(self, tenant: int, member_id: int, unionid: str) -> None:
        await self.session.execute(update(Member).where(Member.tenant_id == tenant, Member.id == member_id)
                                   .values(unionid=unionid).execution_options(synchronize_session=False))

    async def other_with_unionid(self, tenant: int, member_id: int, unionid: str) -> int | None:
        stmt = (select(Member.id).where(Member.tenant_id == tenant, Member.unionid == unionid, Member.id != member_id)
                .order_by(Member.id).limit(1))
        return await self.session.scalar(stmt)

    async def order_accounts(self, tenant: int, order_id: int) -> tuple[int | None, int | None]:
        row = (await self.session.execute(select(Order.channel_account_id, Order.pay_account_id).where(
            Order.tenant_id == tenant, Order.id == order_id))).first()
        return (None, None) if row is None else (row[0], row[1])

    async def identities(self, tenant: int, member_id: int, channel: str) -> list[str]:
        """The member's external ids on `channel`, the newest first."""
        stmt = (select(MemberIdentity.external_id).where(
            MemberIdentity.tenant_id == tenant, MemberIdentity.member_id == member_id,
            MemberIdentity.channel == channel).order_by(MemberIdentity.id.desc()).limit(10))
        return list((await self.session.scalars(stmt)).all())
