"""Group-buy SQL. Every seat counter and status change is one conditional UPDATE whose
rowcount says who won: `hold` (held < size), `confirm` (paid < size), `move` (status
still the expected one). Construct from `uow.session`: `GroupbuyRepo(uow.session)`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import among
from storage.groupbuy_models import GroupbuyCampaign, GroupbuySeat, GroupbuySku, GroupbuyTeam, GroupbuyWecom
from storage.models import Order

ACTIVE = ("held", "paid")


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class GroupbuyRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Any) -> list[Any]:
        return list((await self.session.scalars(stmt)).all())

    # campaigns ---------------------------------------------------------------------
    async def add_campaign(self, row: GroupbuyCampaign, prices: Sequence[GroupbuySku]) -> GroupbuyCampaign:
        self.session.add(row)
        await self.session.flush()
        for p in prices:
            p.campaign_id, p.tenant_id = row.id, row.tenant_id
            self.session.add(p)
        await self.session.flush()
        return row

    async def campaign(self, tenant: int, campaign_id: int) -> GroupbuyCampaign | None:
        return await self.session.scalar(
            select(GroupbuyCampaign).where(GroupbuyCampaign.tenant_id == tenant, GroupbuyCampaign.id == campaign_id))

    async def live_campaigns(self, tenant: int, now: datetime, limit: int = 20) -> list[GroupbuyCampaign]:
        return await self._all(
            select(GroupbuyCampaign)
            .where(GroupbuyCampaign.tenant_id == tenant, GroupbuyCampaign.active.is_(True),
                   GroupbuyCampaign.starts_at <= now, GroupbuyCampaign.ends_at > now)
            .order_by(GroupbuyCampaign.id).limit(limit))

    async def campaign_titled(self, tenant: int, title: str) -> GroupbuyCampaign | None:
        """The tenant's first campaign with this exact title (the demo finds its own by it)."""
        return await self.session.scalar(
            select(GroupbuyCampaign).where(GroupbuyCampaign.tenant_id == tenant, GroupbuyCampaign.title == title)
            .order_by(GroupbuyCampaign.id).limit(1))

    async def set_campaign_window(self, tenant: int, campaign_id: int, starts_at: datetime,
                                  ends_at: datetime) -> bool:
        stmt = (update(GroupbuyCampaign)
                .where(GroupbuyCampaign.tenant_id == tenant, GroupbuyCampaign.id == campaign_id)
                .values(starts_at=starts_at, ends_at=ends_at))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def set_campaign_active(self, tenant: int, campaign_id: int, active: bool) -> bool:
        stmt = (update(GroupbuyCampaign)
                .where(GroupbuyCampaign.tenant_id == tenant, GroupbuyCampaign.id == campaign_id)
                .values(active=active))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def prices(self, tenant: int, campaign_id: int) -> list[GroupbuySku]:
        return await self._all(
            select(GroupbuySku).where(GroupbuySku.tenant_id == tenant, GroupbuySku.campaign_id == campaign_id)
            .order_by(GroupbuySku.sku_id))

    # teams ---------------------------------------------------------------------------
    async def add_team(self, row: GroupbuyTeam) -> GroupbuyTeam:
        self.session.add(row)
        await self.session.flush()
        return row

    async def team(self, tenant: int, team_id: int) -> GroupbuyTeam | None:
        return await self.session.scalar(
            select(GroupbuyTeam).where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id)
            .execution_options(populate_existing=True))

    async def open_teams(self, tenant: int, campaign_id: int, now: datetime, limit: int = 5) -> list[GroupbuyTeam]:
        """Forming teams with a seat left, the fullest (closest to success) first."""
        return await self._all(
            select(GroupbuyTeam)
            .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.campaign_id == campaign_id,
                   GroupbuyTeam.status == "forming", GroupbuyTeam.held < GroupbuyTeam.size,
                   GroupbuyTeam.expires_at > now)
            .order_by((GroupbuyTeam.size - GroupbuyTeam.held), GroupbuyTeam.expires_at).limit(limit))

    async def open_teams_in_chat(self, tenant: int, chat_id: str, now: datetime, limit: int = 9) -> list[GroupbuyTeam]:
        return await self._all(
            select(GroupbuyTeam)
            .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.chat_id == chat_id,
                   GroupbuyTeam.status == "forming", GroupbuyTeam.held < GroupbuyTeam.size,
                   GroupbuyTeam.expires_at > now)
            .order_by(GroupbuyTeam.id).limit(limit))

    async def teams_led_by(self, tenant: int, member_id: int, limit: int = 10) -> list[GroupbuyTeam]:
        return await self._all(
            select(GroupbuyTeam).where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.leader_member_id == member_id)
            .order_by(GroupbuyTeam.id.desc()).limit(limit))

    async def lock_teams(self, tenant: int, team_ids: Sequence[int]) -> dict[int, GroupbuyTeam]:
        """Teams locked until commit (FOR UPDATE, in id order, so two batches never wait on
        each other crosswise; SQLite's BEGIN IMMEDIATE already serializes writers)."""
        rows = await self._all(
            select(GroupbuyTeam).where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id.in_(team_ids))
            .order_by(GroupbuyTeam.id).with_for_update().execution_options(populate_existing=True))
        return {t.id: t for t in rows}

    async def active_members(self, tenant: int, team_ids: Sequence[int],
                             member_ids: Sequence[int]) -> set[tuple[int, int]]:
        """(team, member) pairs among these that already hold an active seat."""
        stmt = (select(GroupbuySeat.team_id, GroupbuySeat.member_id)
                .where(GroupbuySeat.tenant_id == tenant, among(self.session, GroupbuySeat.team_id, team_ids),
                       among(self.session, GroupbuySeat.member_id, member_ids), GroupbuySeat.status.in_(ACTIVE)))
        return {(int(t), int(m)) for t, m in (await self.session.execute(stmt)).all()}

    async def seat_holds(self, tenant: int, team_id: int) -> list[tuple[int, int, str, datetime | None]]:
        """The team's active seats as (seat id, member, status, its order's payment deadline)
        (what the admission step's seats are rebuilt from)."""
        stmt = (select(GroupbuySeat.id, GroupbuySeat.member_id, GroupbuySeat.status, Order.expires_at)
                .outerjoin(Order, Order.id == GroupbuySeat.order_id)
                .where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.team_id == team_id,
                       GroupbuySeat.status.in_(ACTIVE))
                .order_by(GroupbuySeat.id))
        return [(int(i), int(m), str(st), at) for i, m, st, at in (await self.session.execute(stmt)).all()]

    async def member_team_counts(self, tenant: int, campaign_id: int, member_ids: Sequence[int]) -> dict[int, int]:
        """`member_team_count` for several members in one query."""
        stmt = (select(GroupbuySeat.member_id, func.count()).select_from(GroupbuySeat)
                .join(GroupbuyTeam, GroupbuyTeam.id == GroupbuySeat.team_id)
                .where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.campaign_id == campaign_id,
                       GroupbuySeat.member_id.in_(member_ids), GroupbuySeat.status.in_(ACTIVE),
                       GroupbuyTeam.status == "forming")
                .group_by(GroupbuySeat.member_id))
        return {int(m): int(n) for m, n in (await self.session.execute(stmt)).all()}

    async def add_seats(self, rows: Sequence[GroupbuySeat]) -> None:
        """Several seats in one INSERT; a duplicate (member, team) raises IntegrityError."""
        self.session.add_all(rows)
        await self.session.flush()

    async def hold(self, tenant: int, team_id: int, now: datetime) -> tuple[int, int, int] | None:
        """Take a seat: the one guard against over-filling (held < size, still forming).
        (held, paid, virtual) after the change for the one winner, None when full or closed."""
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id,
                       GroupbuyTeam.status == "forming", GroupbuyTeam.held < GroupbuyTeam.size,
                       GroupbuyTeam.expires_at > now)
                .values(held=GroupbuyTeam.held + 1, version=GroupbuyTeam.version + 1)
                .returning(GroupbuyTeam.held, GroupbuyTeam.paid, GroupbuyTeam.virtual))
        row = (await self.session.execute(stmt)).first()
        return (int(row[0]), int(row[1]), int(row[2])) if row is not None else None

    async def unhold(self, tenant: int, team_id: int) -> bool:
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id, GroupbuyTeam.held > 0)
                .values(held=GroupbuyTeam.held - 1, version=GroupbuyTeam.version + 1))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def confirm(self, tenant: int, team_id: int) -> bool:
        """A paid seat counts (paid < held, whatever the team's status: a late payment of a
        failed team is counted too, then refunded)."""
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id,
                       GroupbuyTeam.paid < GroupbuyTeam.held)
                .values(paid=GroupbuyTeam.paid + 1, version=GroupbuyTeam.version + 1))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def move(self, tenant: int, team_id: int, src: str, dst: str, **values: object) -> bool:
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id, GroupbuyTeam.status == src)
                .values(status=dst, version=GroupbuyTeam.version + 1, **values))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def succeed_if_complete(self, tenant: int, team_id: int, now: datetime) -> bool:
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id,
                       GroupbuyTeam.status == "forming",
                       GroupbuyTeam.paid + GroupbuyTeam.virtual >= GroupbuyTeam.size)
                .values(status="succeeded", closed_at=now, version=GroupbuyTeam.version + 1))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def extend(self, tenant: int, team_id: int, old: datetime, new: datetime) -> bool:
        stmt = (update(GroupbuyTeam)
                .where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.id == team_id,
                       GroupbuyTeam.status == "forming", GroupbuyTeam.expires_at == old)
                .values(expires_at=new, version=GroupbuyTeam.version + 1))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def expired_forming(self, now: datetime, limit: int) -> list[tuple[int, int]]:
        stmt = (select(GroupbuyTeam.tenant_id, GroupbuyTeam.id)
                .where(GroupbuyTeam.status == "forming", GroupbuyTeam.expires_at <= now)
                .order_by(GroupbuyTeam.expires_at).limit(limit))
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def with_status(self, status: str, limit: int) -> list[tuple[int, int]]:
        stmt = (select(GroupbuyTeam.tenant_id, GroupbuyTeam.id)
                .where(GroupbuyTeam.status == status).order_by(GroupbuyTeam.id).limit(limit))
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def overfilled(self) -> int:
        """Teams with more active seats than their size (must always be 0)."""
        active = (select(GroupbuySeat.team_id, func.count().label("n"))
                  .where(GroupbuySeat.status != "released").group_by(GroupbuySeat.team_id).subquery())
        stmt = (select(func.count()).select_from(GroupbuyTeam)
                .join(active, active.c.team_id == GroupbuyTeam.id)
                .where((active.c.n > GroupbuyTeam.size) | (GroupbuyTeam.held > GroupbuyTeam.size)))
        return int(await self.session.scalar(stmt) or 0)

    # seats -----------------------------------------------------------------------------
    async def add_seat(self, row: GroupbuySeat) -> GroupbuySeat | None:
        """None when the member already has an active seat in this team (the partial
        unique index; the transaction is then unusable: the caller raises and rolls back)."""
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError:
            return None
        return row

    async def set_seat_order(self, seat_id: int, order_id: int) -> None:
        await self.session.execute(update(GroupbuySeat).where(GroupbuySeat.id == seat_id).values(order_id=order_id))

    async def seat_for_order(self, tenant: int, order_id: int) -> GroupbuySeat | None:
        return await self.session.scalar(
            select(GroupbuySeat).where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.order_id == order_id)
            .execution_options(populate_existing=True))

    async def seats(self, tenant: int, team_id: int, *, statuses: Sequence[str] = ()) -> list[GroupbuySeat]:
        stmt = select(GroupbuySeat).where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.team_id == team_id)
        if statuses:
            stmt = stmt.where(GroupbuySeat.status.in_(list(statuses)))
        return await self._all(stmt.order_by(GroupbuySeat.id).execution_options(populate_existing=True))

    async def active_seat(self, tenant: int, team_id: int, member_id: int) -> GroupbuySeat | None:
        return await self.session.scalar(
            select(GroupbuySeat).where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.team_id == team_id,
                                       GroupbuySeat.member_id == member_id, GroupbuySeat.status.in_(ACTIVE)))

    async def member_team_count(self, tenant: int, campaign_id: int, member_id: int) -> int:
        """Forming teams of this campaign the member holds a seat in."""
        stmt = (select(func.count()).select_from(GroupbuySeat)
                .join(GroupbuyTeam, GroupbuyTeam.id == GroupbuySeat.team_id)
                .where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.campaign_id == campaign_id,
                       GroupbuySeat.member_id == member_id, GroupbuySeat.status.in_(ACTIVE),
                       GroupbuyTeam.status == "forming"))
        return int(await self.session.scalar(stmt) or 0)

    async def move_seat(self, seat_id: int, src: str, dst: str, **values: object) -> bool:
        stmt = (update(GroupbuySeat).where(GroupbuySeat.id == seat_id, GroupbuySeat.status == src)
                .values(status=dst, **values))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def move_seat_from(self, seat_id: int, srcs: Sequence[str], dst: str, **values: object) -> bool:
        """One conditional move from any of `srcs` (whichever the seat is in when it runs)."""
        stmt = (update(GroupbuySeat).where(GroupbuySeat.id == seat_id, GroupbuySeat.status.in_(list(srcs)))
                .values(status=dst, **values))
        return _rowcount(await self.session.execute(stmt)) == 1

    async def count_seats(self, tenant: int, team_id: int, statuses: Sequence[str]) -> int:
        stmt = (select(func.count()).select_from(GroupbuySeat)
                .where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.team_id == team_id,
                       GroupbuySeat.status.in_(list(statuses))))
        return int(await self.session.scalar(stmt) or 0)

    async def unpaid_orders_of(self, tenant: int, member_id: int) -> list[tuple[int, int]]:
        """(team id, order id) of held seats whose order is the member's and still unpaid,
        by the order's owner (a merge moves orders at once, seats a moment later)."""
        stmt = (select(GroupbuySeat.team_id, GroupbuySeat.order_id)
                .join(Order, Order.id == GroupbuySeat.order_id)
                .where(Order.tenant_id == tenant, Order.member_id == member_id,
                       Order.status == "pending_payment", GroupbuySeat.status == "held")
                .order_by(GroupbuySeat.id))
        return [(int(t), int(o)) for t, o in (await self.session.execute(stmt)).all() if o is not None]

    async def move_member(self, tenant: int, keep: int, gone: int) -> tuple[int, int]:
        """A merge: `gone`'s teams and seats become `keep`'s. A seat stays where it is when
        `keep` holds an active seat of the same team already (one member, one seat: the
        partial unique index). Idempotent. Returns (teams, seats) moved."""
        teams = _rowcount(await self.session.execute(
            update(GroupbuyTeam).where(GroupbuyTeam.tenant_id == tenant, GroupbuyTeam.leader_member_id == gone)
            .values(leader_member_id=keep, version=GroupbuyTeam.version + 1)
            .execution_options(synchronize_session=False)))
        kept_teams = select(GroupbuySeat.team_id).where(
            GroupbuySeat.tenant_id == tenant, GroupbuySeat.member_id == keep, GroupbuySeat.status != "released")
        seats = _rowcount(await self.session.execute(
            update(GroupbuySeat)
            .where(GroupbuySeat.tenant_id == tenant, GroupbuySeat.member_id == gone,
                   or_(GroupbuySeat.status == "released",
                       and_(GroupbuySeat.status != "released", GroupbuySeat.team_id.not_in(kept_teams))))
            .values(member_id=keep)
            .execution_options(synchronize_session=False)))
        return teams, seats

    # WeCom channel settings ------------------------------------------------------------
    async def wecom(self, tenant: int) -> GroupbuyWecom | None:
        return await self.session.scalar(select(GroupbuyWecom).where(GroupbuyWecom.tenant_id == tenant))

    async def save_wecom(self, row: GroupbuyWecom) -> GroupbuyWecom:
        existing = await self.wecom(row.tenant_id)
        if existing is None:
            self.session.add(row)
            await self.session.flush()
            return row
        for col in ("token", "aes_key", "receive_id", "webhook_url", "bot_name", "updated_at"):
            setattr(existing, col, getattr(row, col))
        await self.session.flush()
        return existing
