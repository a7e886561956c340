"""Member tags' SQL (social_mall/members/tags.py holds the rules): the tenant's tags with
their member counts, a member's tags, giving a tag once (INSERT … ON CONFLICT DO NOTHING on
the unique (tenant, tag, member)), taking it away, and a rule's tag brought in line with the
members the rule holds now."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, MemberIdentity, MemberTag, MemberTagLink, MemberTagWeChat

CHUNK = 500


class TagRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self) -> Any:
        bind = self.session.bind
        return pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert

    async def tags(self, tenant: int) -> list[tuple[int, str, int]]:
        """(id, name, members holding it) of every tag, by name."""
        held = (select(MemberTagLink.tag_id, func.count().label("n")).where(MemberTagLink.tenant_id == tenant)
                .group_by(MemberTagLink.tag_id).subquery())
        rows = await self.session.execute(
            select(MemberTag.id, MemberTag.name, func.coalesce(held.c.n, 0))
            .outerjoin(held, held.c.tag_id == MemberTag.id)
            .where(MemberTag.tenant_id == tenant).order_by(MemberTag.name))
        return [(int(i), str(n), int(c)) for i, n, c in rows]

    async def count(self, tenant: int) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(MemberTag).where(MemberTag.tenant_id == tenant)) or 0)

    async def by_name(self, tenant: int, name: str) -> int | None:
        found = await self.session.scalar(select(MemberTag.id).where(MemberTag.tenant_id == tenant,
                                                                     MemberTag.name == name))
        return int(found) if found is not None else None

    async def name_of(self, tenant: int, tag_id: int) -> str | None:
        found = await self.session.scalar(select(MemberTag.name).where(MemberTag.tenant_id == tenant,
                                                                       MemberTag.id == tag_id))
        return str(found) if found is not None else None

    async def add_tag(self, tenant: int, name: str, now: datetime) -> int:
        """The tag's id; made unless the tenant has one of that name (two admins at once: one row)."""
        stmt = (self._insert()(MemberTag).values(tenant_id=tenant, name=name, created_at=now)
                .on_conflict_do_nothing(index_elements=["tenant_id", "name"]).returning(MemberTag.id))
        made = (await self.session.execute(stmt)).scalar()
        if made is not None:
            return int(made)
        found = await self.by_name(tenant, name)
        assert found is not None
        return found

    async def rename(self, tenant: int, tag_id: int, name: str) -> bool:
        """False if another tag has that name now (one renamed or made at the same moment:
        the unique (tenant, name) decides, in a savepoint so the transaction goes on)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(update(MemberTag).where(MemberTag.tenant_id == tenant,
                                                                   MemberTag.id == tag_id).values(name=name))
        except IntegrityError:
            return False
        return True

    async def drop_tag(self, tenant: int, tag_id: int) -> int:
        """Delete the tag and its links; the number of members who held it."""
        gone = await self.session.execute(delete(MemberTagLink).where(MemberTagLink.tenant_id == tenant,
                                                                      MemberTagLink.tag_id == tag_id))
        await self.session.execute(delete(MemberTagWeChat).where(MemberTagWeChat.tenant_id == tenant,
                                                                 MemberTagWeChat.tag_id == tag_id))
        await self.session.execute(delete(MemberTag).where(MemberTag.tenant_id == tenant, MemberTag.id == tag_id))
        return int(getattr(gone, "rowcount", 0) or 0)

    async def member_exists(self, tenant: int, member_id: int) -> bool:
        return await self.session.scalar(select(Member.id).where(Member.tenant_id == tenant,
                                                                 Member.id == member_id)) is not None

    async def of_member(self, tenant: int, member_id: int) -> list[tuple[int, str, str]]:
        """(tag id, name, source) of the member's tags, by name."""
        rows = await self.session.execute(
            select(MemberTag.id, MemberTag.name, MemberTagLink.source)
            .join(MemberTagLink, MemberTagLink.tag_id == MemberTag.id)
            .where(MemberTagLink.tenant_id == tenant, MemberTagLink.member_id == member_id)
            .order_by(MemberTag.name))
        return [(int(i), str(n), str(s)) for i, n, s in rows]

    async def link(self, tenant: int, tag_id: int, member_ids: Sequence[int], source: str, now: datetime) -> int:
        """Give the tag to those members who don't hold it; how many got it now."""
        made = 0
        for i in range(0, len(member_ids), CHUNK):
            rows = [{"tenant_id": tenant, "tag_id": tag_id, "member_id": m, "source": source, "created_at": now}
                    for m in member_ids[i:i + CHUNK]]
            stmt = (self._insert()(MemberTagLink).values(rows)
                    .on_conflict_do_nothing(index_elements=["tenant_id", "tag_id", "member_id"])
                    .returning(MemberTagLink.id))
            made += len((await self.session.execute(stmt)).all())
        return made

    async def unlink(self, tenant: int, tag_id: int, member_ids: Iterable[int], *, source: str | None = None) -> int:
        """Take the tag from those members (only links of `source`, if given); how many lost it."""
        ids = sorted(set(member_ids))
        n = 0
        for i in range(0, len(ids), CHUNK):
            stmt = delete(MemberTagLink).where(MemberTagLink.tenant_id == tenant, MemberTagLink.tag_id == tag_id,
                                               MemberTagLink.member_id.in_(ids[i:i + CHUNK]))
            if source is not None:
                stmt = stmt.where(MemberTagLink.source == source)
            n += int(getattr(await self.session.execute(stmt), "rowcount", 0) or 0)
        return n

    async def holders(self, tenant: int, tag_id: int, *, source: str | None = None) -> set[int]:
        q = select(MemberTagLink.member_id).where(MemberTagLink.tenant_id == tenant, MemberTagLink.tag_id == tag_id)
        if source is not None:
            q = q.where(MemberTagLink.source == source)
        return {int(m) for (m,) in await self.session.execute(q)}

    # -- synced to WeChat's user tags ------------------------------------------------------

    async def wechat_links(self, tenant: int, tag_id: int) -> list[tuple[int, int]]:
        """(channel account, WeChat tag id) of each official account the tag is synced to."""
        rows = await self.session.execute(
            select(MemberTagWeChat.account_id, MemberTagWeChat.wechat_tag_id)
            .where(MemberTagWeChat.tenant_id == tenant, MemberTagWeChat.tag_id == tag_id)
            .order_by(MemberTagWeChat.account_id))
        return [(int(a), int(w)) for a, w in rows]

    async def synced_tags(self, tenant: int) -> dict[int, int]:
        """tag id → how many official accounts it is synced to."""
        rows = await self.session.execute(
            select(MemberTagWeChat.tag_id, func.count()).where(MemberTagWeChat.tenant_id == tenant)
            .group_by(MemberTagWeChat.tag_id))
        return {int(t): int(n) for t, n in rows}

    async def set_wechat_link(self, tenant: int, tag_id: int, account_id: int, wechat_tag_id: int,
                              now: datetime) -> None:
        stmt = self._insert()(MemberTagWeChat).values(tenant_id=tenant, tag_id=tag_id, account_id=account_id,
                                                      wechat_tag_id=wechat_tag_id, synced_at=now)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=["tenant_id", "tag_id", "account_id"],
            set_={"wechat_tag_id": wechat_tag_id, "synced_at": now}))

    async def drop_wechat_link(self, tenant: int, tag_id: int, account_id: int) -> None:
        await self.session.execute(delete(MemberTagWeChat).where(
            MemberTagWeChat.tenant_id == tenant, MemberTagWeChat.tag_id == tag_id,
            MemberTagWeChat.account_id == account_id))

    async def openids(self, tenant: int, member_ids: Iterable[int], account: int | None = None) -> list[str]:
        """The official-account openids of those members (of every account of the tenant;
        `account`: only those at that account, 0 the primary)."""
        ids = sorted(set(member_ids))
        at = () if account is None else (MemberIdentity.account_id == account,)
        out: list[str] = []
        for i in range(0, len(ids), CHUNK):
            out += (await self.session.scalars(
                select(MemberIdentity.external_id).where(
                    MemberIdentity.tenant_id == tenant, MemberIdentity.channel == "mp", *at,
                    MemberIdentity.member_id.in_(ids[i:i + CHUNK])).order_by(MemberIdentity.id))).all()
        return out
