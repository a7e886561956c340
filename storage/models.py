"""SQLAlchemy 2 models. Every business row carries tenant_id; money is integer fen;
times are timezone-aware UTC (SQLite stores them naive, `UTCDateTime` restores the zone)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = _id()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    wechat_app_id: Mapped[str] = mapped_column(String(64), default="")
    wechat_token: Mapped[str] = mapped_column(String(64), default="")
    wechat_aes_key: Mapped[str] = mapped_column(String(64), default="")
    wechat_app_secret: Mapped[str] = mapped_column(String(128), default="")
    pay_gateway: Mapped[str] = mapped_column(String(16), default="sandbox")
    pay_mch_id: Mapped[str] = mapped_column(String(32), default="")
    pay_app_id: Mapped[str] = mapped_column(String(64), default="")
    pay_apiv3_key: Mapped[str] = mapped_column(String(64), default="")
    # The most one order may cost (fen): checkout refuses more (social_mall.orders.rules).
    max_order_fen: Mapped[int] = mapped_column(BigInteger, default=100_000_000, server_default="100000000")
    # shipped orders are confirmed received this many days after shipping (None: the deployment's default)
    auto_complete_days: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    nickname: Mapped[str] = mapped_column(String(64), default="")
    unionid: Mapped[str | None] = mapped_column(String(64), default=None)
    entry_source: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Birthday (month + day, the year optional); set once by the member, changed by admins.
    birth_month: Mapped[int | None] = mapped_column(Integer, default=None)
    birth_day: Mapped[int | None] = mapped_column(Integer, default=None)
    birth_year: Mapped[int | None] = mapped_column(Integer, default=None)
    __table_args__ = (
        Index("ix_members_tenant_unionid", "tenant_id", "unionid"),
        Index("ix_members_birthday", "tenant_id", "birth_month", "birth_day"),
    )


class MemberIdentity(Base):
    __tablename__ = "member_identities"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    # the tenant's channel account the id belongs to (an openid is per official account; 0: the primary)
    account_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0,
                                            server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "external_id"),)


class MemberTag(Base):
    """A tenant's member tag (标签): a name admins pick on the member page, and that rules
    (a module's segment) may give and take away."""

    __tablename__ = "member_tags"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class MemberTagLink(Base):
    """A member holds a tag, given by hand (source "manual") or by a rule (its key, e.g.
    "segment:12"). One row per (tag, member): a rule never takes away a tag given by hand."""

    __tablename__ = "member_tag_links"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    tag_id: Mapped[int] = mapped_column(ForeignKey("member_tags.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    source: Mapped[str] = mapped_column(String(40), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "tag_id", "member_id"),
                      Index("ix_member_tag_links_member", "tenant_id", "member_id"))


class MemberTagWeChat(Base):
    """A member tag synced to one official account's user tags (用户标签): WeChat's tag id
    there. Recorded only once the account's tag holds every member who held ours then."""

    __tablename__ = "member_tag_wechat"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    tag_id: Mapped[int] = mapped_column(ForeignKey("member_tags.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    wechat_tag_id: Mapped[int] = mapped_column(Integer)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "tag_id", "account_id"),)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    sort: Mapped[int] = mapped_column(default=0)


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(80))
    subtitle: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(String(200), default="")
    on_shelf: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sku(Base):
    __tablename__ = "skus"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    spec: Mapped[str] = mapped_column(String(80), default="")  # "红色 / L"
    price_fen: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(BigInteger, default=0)
    on_shelf: Mapped[bool] = mapped_column(Boolean, default=True)
    # what one unit costs the merchant (成本价, fen); None: not entered. The console's and
    # the admin API's only: margins, and the floor of automatic price rules
    cost_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)


class CartItem(Base):
    __tablename__ = "cart_items"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    qty: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "sku_id"),)


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="mp")
    goods_fen: Mapped[int] = mapped_column(BigInteger)
    shipping_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    ship_name: Mapped[str] = mapped_column(String(40), default="")
    ship_phone: Mapped[str] = mapped_column(String(20), default="")
    ship_address: Mapped[str] = mapped_column(String(200), default="")
    remark: Mapped[str] = mapped_column(String(200), default="")
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(80), default="")
    cancel_reason: Mapped[str] = mapped_column(String(40), default="")
    # how the order reaches the buyer: "express" or a module's method (social_mall/fulfilment.py)
    fulfilment: Mapped[str] = mapped_column(String(16), default="express", server_default="express")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    receipt_reminded_at: Mapped[datetime | None] = mapped_column(default=None)   # "confirmed tomorrow" sent
    # the channel account it was placed through and the merchant that takes its payment
    # (storage/channel_models.py; None: the tenant's primary account and default merchant)
    channel_account_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    pay_account_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # the inbound message that placed it (the chat step's de-duplication key; None: placed
    # otherwise): a redelivered message finds its order instead of placing another
    idem_key: Mapped[str | None] = mapped_column(String(96), default=None)
    __table_args__ = (Index("ix_orders_status_expires", "status", "expires_at"),
                      Index("uq_orders_tenant_id_idem_key", "tenant_id", "idem_key", unique=True))


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    title: Mapped[str] = mapped_column(String(80))
    spec: Mapped[str] = mapped_column(String(80), default="")
    price_fen: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(Integer)
    line_fen: Mapped[int] = mapped_column(BigInteger)
    # units of this line put back into sellable stock before shipping (a cancel, a refund):
    # never more than qty, so two paths returning the same units restock them once
    restocked_qty: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    gateway: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="created")
    transaction_id: Mapped[str] = mapped_column(String(64), default="")
    payer: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)


class PayNotification(Base):
    """Every payment callback received, with its verdict: the money audit trail."""

    __tablename__ = "pay_notifications"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), default=None)
    gateway: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64), default="")
    out_trade_no: Mapped[str] = mapped_column(String(32), default="")
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    verdict: Mapped[str] = mapped_column(String(16))  # applied | duplicate | rejected
    reason: Mapped[str] = mapped_column(String(80), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(16), default="processing")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxEvent(Base):
    """Domain events written in the same transaction as the change: one row per event. A
    topic with one subscriber names it; with several, the row's subscriber is `*` (every
    subscriber of the topic, handed the event in turn at delivery). A subscriber that fails
    a `*` row (or isn't reached) gets a row of its own, which keeps the event's first row
    as `origin_id`: its deliveries carry that id, as the others' did."""

    __tablename__ = "outbox"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    topic: Mapped[str] = mapped_column(String(64))
    event_uid: Mapped[str] = mapped_column(String(32), index=True)  # shared by one event's rows
    subscriber: Mapped[str] = mapped_column(String(80))   # a name, "*" (all of the topic's), "-" (none)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|done|dead
    origin_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Admin(Base):
    """A console user. tenant_id None: the platform super-admin, who creates tenants."""

    __tablename__ = "admins"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), default=None, index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="owner")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # moves on at every password reset, role change or disabling: console sessions carry
    # the version they were opened with and end when it no longer matches
    cred_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
