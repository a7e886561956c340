"""Loyalty and promotions tables: per-tenant settings and levels, member accounts (growth,
level, the points balance kept equal to the ledger's sum, sign-in streak), the append-only
points ledger, coupon templates and claimed coupons, flash prices, full-reduction tiers,
each order's discount breakdown, member merges and bind codes.

Every row carries tenant_id; money is integer fen. `loyalty_accounts.points` moves only by
an atomic increment in the transaction that appends the ledger row explaining it
(`points + :delta >= 0` in the UPDATE: two checkouts can never overspend).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage import cache
from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class LoyaltySettings(Base):
    __tablename__ = "loyalty_settings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    earn_points_per_yuan: Mapped[int] = mapped_column(Integer, default=1)
    growth_per_yuan: Mapped[int] = mapped_column(Integer, default=1)
    redeem_points_per_yuan: Mapped[int] = mapped_column(Integer, default=100)
    redeem_cap_bp: Mapped[int] = mapped_column(Integer, default=5000)
    points_valid_days: Mapped[int] = mapped_column(Integer, default=365)
    signin_points: Mapped[int] = mapped_column(Integer, default=5)
    streak_days: Mapped[int] = mapped_column(Integer, default=7)
    streak_bonus: Mapped[int] = mapped_column(Integer, default=20)
    refund_points: Mapped[str] = mapped_column(String(8), default="share", server_default="share")
    refund_coupon: Mapped[str] = mapped_column(String(8), default="full", server_default="full")


class LoyaltyLevel(Base):
    __tablename__ = "loyalty_levels"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(20))
    min_growth: Mapped[int] = mapped_column(BigInteger)
    discount_bp: Mapped[int] = mapped_column(Integer, default=10_000)
    benefits: Mapped[str] = mapped_column(String(200), default="")


class LoyaltyAccount(Base):
    __tablename__ = "loyalty_accounts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    level: Mapped[str] = mapped_column(String(20), default="")
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    last_signin: Mapped[str] = mapped_column(String(10), default="")   # YYYY-MM-DD, Shanghai
    streak: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),)


class PointsEntry(Base):
    """Append-only: a row is never updated or deleted (a merge re-points member_id only)."""

    __tablename__ = "loyalty_points"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    delta: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))
    ref: Mapped[str] = mapped_column(String(64))          # idempotency key
    note: Mapped[str] = mapped_column(String(80), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    lot_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "ref"), Index("ix_loyalty_points_expires", "expires_at"))


class CouponTemplate(Base):
    __tablename__ = "loyalty_coupon_templates"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))               # amount | percent | shipping
    threshold_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    off_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    off_bp: Mapped[int] = mapped_column(Integer, default=0)
    cap_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    scope: Mapped[str] = mapped_column(String(12), default="all")
    scope_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime | None] = mapped_column(default=None)
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    valid_days: Mapped[int] = mapped_column(Integer, default=0)
    per_member: Mapped[int] = mapped_column(Integer, default=1)
    total_qty: Mapped[int] = mapped_column(Integer, default=0)
    claimed_qty: Mapped[int] = mapped_column(Integer, default=0)
    claimable: Mapped[bool] = mapped_column(Boolean, default=True)   # listed in 领券
    issue_on: Mapped[str] = mapped_column(String(32), default="")    # member.joined | birthday | groupbuy.succeeded
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Coupon(Base):
    __tablename__ = "loyalty_coupons"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    template_id: Mapped[int] = mapped_column(ForeignKey("loyalty_coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)            # n-th of this template for this member
    status: Mapped[str] = mapped_column(String(12), default="available")
    source: Mapped[str] = mapped_column(String(40), default="claim")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    valid_from: Mapped[datetime] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("tenant_id", "template_id", "member_id", "seq"),)


class FlashPrice(Base):
    __tablename__ = "loyalty_flash_prices"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()


cache.watch(FlashPrice)  # product lists show flash prices from the catalog read cache


class FullReductionTier(Base):
    __tablename__ = "loyalty_full_reductions"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    threshold_fen: Mapped[int] = mapped_column(BigInteger)
    off_fen: Mapped[int] = mapped_column(BigInteger)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)


class OrderDiscount(Base):
    """The pipeline's breakdown for one order and what loyalty did with it since."""

    __tablename__ = "order_discounts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_coupons.id"), default=None)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    line_refunds: Mapped[list[int]] = mapped_column(JSON, default=list)   # per line (+ shipping last)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderLoyalty(Base):
    """What a paid order earned and what refunds have given back so far (cumulative)."""

    __tablename__ = "loyalty_order_state"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_points: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_growth: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    returned_points: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_growth: Mapped[int] = mapped_column(BigInteger, default=0)
    refs: Mapped[list[str]] = mapped_column(JSON, default=list)   # refund deliveries applied


class MemberMerge(Base):
    __tablename__ = "loyalty_member_merges"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    from_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    into_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    via: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "from_member_id"),)


class BindCode(Base):
    """One issued bind code (social_mall/codes.py): its selector in clear (not unique: it
    only narrows the lookup) and the SHA-256 of the whole code, never the code itself."""

    __tablename__ = "loyalty_bind_codes"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    selector: Mapped[str] = mapped_column(String(4))
    code_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (Index("ix_loyalty_bind_codes_lookup", "tenant_id", "selector"),)


class BirthdayGift(Base):
    """One row per member per year the birthday coupons were given: the unique key is what
    makes the birthday job give them once, however many workers run it at the same time."""

    __tablename__ = "loyalty_birthday_gifts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    year: Mapped[int] = mapped_column(Integer)
    coupons: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "year"),)
