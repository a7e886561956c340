"""Group-buy (拼团) tables: campaigns and their SKU group prices, teams (with the seat
counters every join and payment moves by conditional UPDATE), seats (one per member and
team while active: a partial unique index), and the per-tenant WeCom group settings.

Counters on `groupbuy_teams`: `held` (seats taken, paid or not; `held <= size` is the
guard of every join), `paid` (seats confirmed by payment) and `virtual` (seats filled by
simulated completion). `version` grows with every change (cheap optimistic checks).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from storage import cache
from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class GroupbuyCampaign(Base):
    __tablename__ = "groupbuy_campaigns"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    title: Mapped[str] = mapped_column(String(80))
    team_size: Mapped[int] = mapped_column(Integer)
    lifetime_hours: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    max_teams_per_member: Mapped[int] = mapped_column(Integer, default=0)
    max_qty: Mapped[int] = mapped_column(Integer, default=5)
    leader_discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    max_extend_hours: Mapped[int] = mapped_column(Integer, default=24)
    # 团长奖励: paid to the leader of each successful team through the referral ledger:
    # a fixed amount (fen) or a share of the team's paid goods (basis points); 0/0: none
    leader_reward_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    leader_reward_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupbuySku(Base):
    __tablename__ = "groupbuy_skus"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    campaign_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_campaigns.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    group_price_fen: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("campaign_id", "sku_id"),)


cache.watch(GroupbuyCampaign, GroupbuySku)  # joins read campaigns through the read cache


class GroupbuyTeam(Base):
    __tablename__ = "groupbuy_teams"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    campaign_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_campaigns.id"), index=True)
    leader_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    virtual: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="forming")
    chat_id: Mapped[str] = mapped_column(String(64), default="")   # WeCom group it was opened in
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (Index("ix_groupbuy_teams_status_expires", "status", "expires_at"),)


class GroupbuySeat(Base):
    __tablename__ = "groupbuy_seats"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    team_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_teams.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_campaigns.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True, default=None)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    qty: Mapped[int] = mapped_column(Integer)
    leader: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="held")
    channel: Mapped[str] = mapped_column(String(16), default="mp")
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (
        # no member twice in one team (a released seat does not count)
        Index("uq_groupbuy_seats_team_member_active", "team_id", "member_id", unique=True,
              postgresql_where=text("status <> 'released'"), sqlite_where=text("status <> 'released'")),
    )


class GroupbuyWecom(Base):
    """A tenant's WeCom group-bot channel: callback token/AES key (receive id ""), and
    the group-robot webhook URL the announcements go to."""

    __tablename__ = "groupbuy_wecom"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    token: Mapped[str] = mapped_column(String(64))
    aes_key: Mapped[str] = mapped_column(String(64))
    receive_id: Mapped[str] = mapped_column(String(64), default="")
    webhook_url: Mapped[str] = mapped_column(String(300), default="")
    bot_name: Mapped[str] = mapped_column(String(40), default="机器人")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
