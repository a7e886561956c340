"""The bargain module's tables (on the core's Base; every row carries tenant_id; money in
integer fen; times UTC).

- `bargain_campaigns`: a merchant's campaign on one SKU: floor price, helps needed, how
  long a bargain lasts, stock (bargains that may still be bought: taken at the order,
  given back when it is cancelled unpaid), helps a friend may give a day, how long a
  helper must have followed the account, and the campaign's window.
- `bargains`: one member's bargain: the price it started from, the precomputed cuts
  (JSON list of fen, their seed), the price now and the helps so far. A help moves
  `helps` k → k+1 and `price_fen` by cuts[k] in one conditional UPDATE (`helps = k`), so
  concurrent helps never over-cut; CHECKs keep price ≥ floor and helps ≤ needed.
- `bargain_helps`: one row per friend and bargain (unique: a friend helps a bargain once).
- `bargain_help_days`: helps a friend gave on a Shanghai day (a conditional increment
  `n < K` caps helps a day however many bargains are helped at once).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class BargainCampaign(Base):
    __tablename__ = "bargain_campaigns"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    title: Mapped[str] = mapped_column(String(80))
    floor_fen: Mapped[int] = mapped_column(BigInteger)
    helps_needed: Mapped[int] = mapped_column(Integer)
    min_cut_fen: Mapped[int] = mapped_column(BigInteger, default=1)
    hours: Mapped[int] = mapped_column(Integer, default=24)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    daily_helps: Mapped[int] = mapped_column(Integer, default=3)
    helper_min_age_hours: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        CheckConstraint("stock >= 0", name="ck_bargain_campaigns_stock_not_negative"),
        CheckConstraint("helps_needed >= 1 AND floor_fen >= 1 AND min_cut_fen >= 1", name="ck_bargain_campaigns_terms_positive"),
    )


class Bargain(Base):
    __tablename__ = "bargains"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    campaign_id: Mapped[int] = mapped_column(ForeignKey("bargain_campaigns.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    start_fen: Mapped[int] = mapped_column(BigInteger)
    floor_fen: Mapped[int] = mapped_column(BigInteger)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    helps: Mapped[int] = mapped_column(Integer, default=0)
    helps_needed: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    cuts: Mapped[str] = mapped_column(Text)          # JSON list of fen, one per help, summing to start − floor
    status: Mapped[str] = mapped_column(String(12), default="open")  # open reached ordered bought expired
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("ix_bargains_due", "status", "expires_at"),
        Index("ix_bargains_order", "tenant_id", "order_id"),
        CheckConstraint("price_fen >= floor_fen AND helps >= 0 AND helps <= helps_needed", name="ck_bargains_within_terms"),
    )


class BargainHelp(Base):
    __tablename__ = "bargain_helps"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    bargain_id: Mapped[int] = mapped_column(ForeignKey("bargains.id"), index=True)
    helper_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    seq: Mapped[int] = mapped_column(Integer)         # 1..N: which cut it took
    cut_fen: Mapped[int] = mapped_column(BigInteger)
    price_after_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("bargain_id", "helper_member_id"),
        UniqueConstraint("bargain_id", "seq"),
    )


class BargainHelpDay(Base):
    __tablename__ = "bargain_help_days"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    day: Mapped[date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "day"),)
