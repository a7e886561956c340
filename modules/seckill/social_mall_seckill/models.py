"""The module's tables (on the core's Base). Every row carries tenant_id; money is integer
fen (BIGINT); times are timezone-aware UTC.

The database is the truth the admission step converges on: an item's `sold` (orders
written and not cancelled) never passes its `stock` (a conditional UPDATE and a CHECK), a
member's `seckill_claims.qty` never passes the item's limit (one row per item and member,
raised by a conditional upsert), and `seckill_orders` holds each order's reservation token
so the admission state can be rebuilt from here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class SeckillSession(Base):
    """A time slot (场次): its items sell from `starts_at` to `ends_at`."""

    __tablename__ = "seckill_sessions"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    title: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    pay_minutes: Mapped[int] = mapped_column(default=5)      # the order's payment window
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)  # reminders queued (once)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ck_seckill_sessions_times"),
        CheckConstraint("pay_minutes BETWEEN 1 AND 30", name="ck_seckill_sessions_pay_minutes"),
    )


class SeckillItem(Base):
    """A SKU sold in a session at `price_fen`, `stock` in all (its own quota, taken from the
    SKU's stock too when an order is written), at most `limit_per_member` each."""

    __tablename__ = "seckill_items"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    session_id: Mapped[int] = mapped_column(ForeignKey("seckill_sessions.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    limit_per_member: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (
        UniqueConstraint("session_id", "sku_id"),
        CheckConstraint("price_fen > 0", name="ck_seckill_items_price"),
        CheckConstraint("sold >= 0 AND sold <= stock", name="ck_seckill_items_sold"),
        CheckConstraint("limit_per_member >= 1", name="ck_seckill_items_limit"),
    )


class SeckillClaim(Base):
    """How many of an item a member holds in live orders (the per-member limit's anchor)."""

    __tablename__ = "seckill_claims"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    item_id: Mapped[int] = mapped_column(ForeignKey("seckill_items.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    qty: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("item_id", "member_id"), CheckConstraint("qty >= 0", name="ck_seckill_claims_qty"))


class SeckillOrder(Base):
    """An order written for an item: its reservation token, quantity and payment deadline;
    status placed → paid, or placed → released (cancelled: stock and claim given back once)."""

    __tablename__ = "seckill_orders"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    item_id: Mapped[int] = mapped_column(ForeignKey("seckill_items.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    qty: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default="placed", index=True)
    pay_by: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SeckillReminder(Base):
    """「提醒我」: push the member when the session starts (once)."""

    __tablename__ = "seckill_reminders"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    session_id: Mapped[int] = mapped_column(ForeignKey("seckill_sessions.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)


class SeckillSettings(Base):
    """A tenant's anti-abuse settings: members created less than `new_member_minutes` ago
    may not buy (0: anyone may), and at most `attempts_per_minute` buy attempts per member;
    `announce`: post each session's start to the WeCom group robot when one is set."""

    __tablename__ = "seckill_settings"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    new_member_minutes: Mapped[int] = mapped_column(Integer, default=0)
    attempts_per_minute: Mapped[int] = mapped_column(Integer, default=20)
    announce: Mapped[bool] = mapped_column(Boolean, default=True)
