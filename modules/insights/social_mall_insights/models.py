"""The module's tables (on the core's Base). Every row carries tenant_id; money is integer
fen; times are timezone-aware UTC.

`insights_events` is append-only and, on PostgreSQL, partitioned by month on `at` (the
migration creates it `PARTITION BY RANGE (at)` with a DEFAULT partition; the job
`insights.partitions` creates the coming months ahead: partitions.py). Its primary key on
PostgreSQL is (id, at), as partitioning requires; the model names `id` alone (rows are
only ever inserted with Core statements and read by query, never by identity)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class Event(Base):
    """One thing a customer did. `member_id` 0: not known (an anonymous page view)."""

    __tablename__ = "insights_events"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16), default="")
    source: Mapped[str] = mapped_column(String(64), default="")   # QR scene, campaign, order source
    ref: Mapped[int] = mapped_column(BigInteger, default=0)       # product, sku, order, team… id
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    props: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (
        Index("ix_insights_events_tenant_at", "tenant_id", "at"),
        Index("ix_insights_events_member", "tenant_id", "member_id", "at"),
        Index("ix_insights_events_kind", "tenant_id", "kind", "at"),
    )


class MemberFacts(Base):
    """What the reports need of a member, kept up to date as events are recorded (a
    pre-aggregate: the reports never scan every event for these)."""

    __tablename__ = "insights_members"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column()
    first_channel: Mapped[str] = mapped_column(String(16), default="")
    acq_kind: Mapped[str] = mapped_column(String(16), default="organic")  # referral, groupbuy, store, qr, organic
    acq_source: Mapped[str] = mapped_column(String(64), default="")      # the QR scene
    referrer_id: Mapped[int] = mapped_column(BigInteger, default=0)       # the distributor's member id
    first_order_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_order_at: Mapped[datetime | None] = mapped_column(nullable=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)  # last inbound message (48-hour window)
    city: Mapped[str] = mapped_column(String(16), default="")   # of the last location the member sent with a place name
    # pre-aggregates of the reports: cohort weeks (Mondays, Shanghai) and the net fen paid
    # within 30/90/180/365 days of the first paid order (kept by the order.paid/refunded subscriber)
    first_seen_week: Mapped[date | None] = mapped_column(Date, nullable=True)
    first_order_week: Mapped[date | None] = mapped_column(Date, nullable=True)
    ltv30: Mapped[int] = mapped_column(BigInteger, default=0)
    ltv90: Mapped[int] = mapped_column(BigInteger, default=0)
    ltv180: Mapped[int] = mapped_column(BigInteger, default=0)
    ltv365: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (
        UniqueConstraint("tenant_id", "member_id"),
        Index("ix_insights_members_first_order", "tenant_id", "first_order_at"),
    )


class MemberWeek(Base):
    """A week (its Monday, Shanghai) in which a member paid for an order: the retention
    cohorts count these instead of scanning paid events."""

    __tablename__ = "insights_member_weeks"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    week: Mapped[date] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "week"),)


class Delivered(Base):
    """Outbox deliveries already recorded: a repeated delivery of a domain event adds nothing."""

    __tablename__ = "insights_delivered"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Daily(Base):
    """Daily rollup (a Shanghai day): events and distinct members per channel, acquisition
    kind and event kind; kind "*" counts members with any event (visits)."""

    __tablename__ = "insights_daily"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    members: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "day", "channel", "source", "kind"),)


class Settings(Base):
    """A tenant's insights settings."""

    __tablename__ = "insights_settings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=730)
    template_id: Mapped[str] = mapped_column(String(64), default="")      # campaign template message
    quiet_start: Mapped[int] = mapped_column(Integer, default=22 * 60)   # minutes of the day, Shanghai
    quiet_end: Mapped[int] = mapped_column(Integer, default=8 * 60)
    weekly_cap: Mapped[int] = mapped_column(Integer, default=2)          # pushes per member per 7 days
    # 订阅通知 (WeChat's subscription messages): the template a member allowed in WeChat's pop-up,
    # and the keyword of its text field (a `thing` keyword: at most 20 characters)
    sub_template_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    sub_text_key: Mapped[str] = mapped_column(String(32), default="thing1", server_default="thing1")


class Segment(Base):
    __tablename__ = "insights_segments"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the core member tag this segment gives its members (job insights.segment_tags); None: none
    tag_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)


class Campaign(Base):
    __tablename__ = "insights_campaigns"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    segment_id: Mapped[int] = mapped_column(ForeignKey("insights_segments.id"))
    name: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(String(600))
    url: Mapped[str] = mapped_column(String(300), default="")
    send_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled, sending, sent, stopped
    form_key: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "form_key"),)


class Send(Base):
    """One member of a campaign: how it went (queued → sent / skipped / failed; delivered,
    opened from WeChat's finish event and the tracked link)."""

    __tablename__ = "insights_sends"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("insights_campaigns.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    via: Mapped[str] = mapped_column(String(16), default="")       # kf (customer service) / subscribe / template
    reason: Mapped[str] = mapped_column(String(32), default="")    # why skipped or failed
    msg_id: Mapped[int] = mapped_column(BigInteger, default=0)     # a template message's msgid
    emitted_at: Mapped[datetime | None] = mapped_column(nullable=True)  # handed to the outbox
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None] = mapped_column(nullable=True)
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        Index("ix_insights_sends_member", "tenant_id", "member_id", "sent_at"),
        Index("ix_insights_sends_msg", "tenant_id", "msg_id"),
    )


class SubscribeGrant(Base):
    """A member's 订阅通知 consent to one template: each 「允许」 in WeChat's pop-up
    (subscribe_msg_popup_event) allows one message of it (a one-time subscription: `credits`
    add up); turned off in WeChat's settings (subscribe_msg_change_event, reject) or refused
    by WeChat at a send (43101), none is left."""

    __tablename__ = "insights_subscribe_grants"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    template_id: Mapped[str] = mapped_column(String(64))
    credits: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "template_id"),)


class OptOut(Base):
    """A member who said 「退订」 (or turned pushes off in 「消息设置」)."""

    __tablename__ = "insights_optouts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),)
