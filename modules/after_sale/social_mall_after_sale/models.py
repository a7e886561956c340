"""The module's tables (on the core's Base: foreign keys to tenants, members and orders,
and the test suite's truncation, know them). Every row carries tenant_id; money is
integer fen (BIGINT); times are timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class AfterSale(Base):
    """One request (售后单): the member's lines and quantities of one order, the kind
    (refund only, or return and refund), where it stands, and the money it refunded."""

    __tablename__ = "aftersale_requests"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    order_no: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))          # rules.Kind
    status: Mapped[str] = mapped_column(String(16))        # rules.St
    reason_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    refund_fen: Mapped[int] = mapped_column(BigInteger, default=0)   # what the units paid (set at refund)
    out_refund_no: Mapped[str] = mapped_column(String(64), default="")
    reject_reason: Mapped[str] = mapped_column(String(80), default="")
    return_tracking: Mapped[str] = mapped_column(String(40), default="")
    resellable: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_at: Mapped[datetime | None] = mapped_column(default=None)   # the timer of the current state
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        Index("ix_aftersale_requests_due", "status", "deadline_at"),
        Index("ix_aftersale_requests_member", "tenant_id", "member_id"),
        Index("ix_aftersale_requests_order", "tenant_id", "order_id"),
        CheckConstraint("refund_fen >= 0", name="ck_aftersale_requests_refund"),
    )


class AfterSaleLine(Base):
    """A line of a request: which SKU of the order, how many units, what they refunded."""

    __tablename__ = "aftersale_lines"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    request_id: Mapped[int] = mapped_column(ForeignKey("aftersale_requests.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(120))
    spec: Mapped[str] = mapped_column(String(60), default="")
    qty: Mapped[int] = mapped_column(Integer)
    refund_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (CheckConstraint("qty > 0", name="ck_aftersale_lines_qty"),)


class AfterSaleUnits(Base):
    """Per order line: how many units open or refunded requests hold (`claimed`) and how
    many were refunded, for how much. One conditional UPDATE claims units
    (`claimed + n <= qty`), so two requests can never hold more than the line has, and
    refunds follow the line's cumulative share: the units of a line refunded one request at
    a time sum to exactly what the line paid."""

    __tablename__ = "aftersale_units"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    sku_id: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", "sku_id"),
        CheckConstraint("claimed >= 0 AND claimed <= qty", name="ck_aftersale_units_claimed"),
        CheckConstraint("refunded_qty >= 0 AND refunded_qty <= qty", name="ck_aftersale_units_refunded"),
    )


class AfterSalePhoto(Base):
    """A photo the member sent with the request: WeChat keeps a sent image 3 days, so its
    bytes are fetched through the media API after submission and kept here."""

    __tablename__ = "aftersale_photos"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    request_id: Mapped[int] = mapped_column(ForeignKey("aftersale_requests.id"), index=True)
    media_id: Mapped[str] = mapped_column(String(128))
    pic_url: Mapped[str] = mapped_column(String(512), default="")
    content_type: Mapped[str] = mapped_column(String(40), default="")
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AfterSaleLog(Base):
    """The request's timeline: every move, who made it, why."""

    __tablename__ = "aftersale_log"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    request_id: Mapped[int] = mapped_column(ForeignKey("aftersale_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    src: Mapped[str] = mapped_column(String(16), default="")
    dst: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(120), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AfterSaleSettings(Base):
    """A tenant's timers (days): the merchant answers within `answer_days` or the request
    is approved; the member sends a return back within `return_days` or it closes."""

    __tablename__ = "aftersale_settings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    answer_days: Mapped[int] = mapped_column(Integer, default=3)
    return_days: Mapped[int] = mapped_column(Integer, default=7)


# -- reviews (评价) ------------------------------------------------------------------------------

class Review(Base):
    """A member's review of a product they bought (one per order and product): stars, text
    (sensitive words masked), photos; the merchant's reply; hidden by a moderator with a
    reason. Never written for a member who didn't write one."""

    __tablename__ = "aftersale_reviews"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    product_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(120))
    stars: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(500), default="")
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_reason: Mapped[str] = mapped_column(String(80), default="")
    reply: Mapped[str] = mapped_column(String(300), default="")
    replied_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", "product_id"),
        Index("ix_aftersale_reviews_product", "tenant_id", "product_id", "hidden", "id"),
        CheckConstraint("stars >= 1 AND stars <= 5", name="ck_aftersale_reviews_stars"),
    )


class ReviewPhoto(Base):
    __tablename__ = "aftersale_review_photos"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    review_id: Mapped[int] = mapped_column(ForeignKey("aftersale_reviews.id"), index=True)
    media_id: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(40), default="")
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    fetched_at: Mapped[datetime | None] = mapped_column(default=None)


class SensitiveWord(Base):
    """The merchant's list of words masked in reviews."""

    __tablename__ = "aftersale_sensitive_words"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    word: Mapped[str] = mapped_column(String(40))
    __table_args__ = (UniqueConstraint("tenant_id", "word"),)
