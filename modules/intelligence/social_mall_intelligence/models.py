"""The module's tables (on the core's Base): the merchant's search synonyms; purchases, the
nightly recommendation model and members' personalisation setting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class Synonym(Base):
    """「搜 word 也找 alternatives」: one way, per tenant."""

    __tablename__ = "intel_synonyms"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    word: Mapped[str] = mapped_column(String(20))
    alternatives: Mapped[str] = mapped_column(String(200))   # words separated by one space
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "word"),)


class Interaction(Base):
    """A member bought a product (from order.paid; one row per order and product)."""

    __tablename__ = "intel_interactions"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id", "product_id"),
                      Index("ix_intel_interactions_member", "tenant_id", "member_id"))


class Neighbour(Base):
    """The nightly model: a product's most similar products (score in millionths)."""

    __tablename__ = "intel_neighbours"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    related_id: Mapped[int] = mapped_column(BigInteger)
    score_e6: Mapped[int] = mapped_column(BigInteger)


class Popular(Base):
    """The nightly model: products by number of buyers (cold start, not personalised)."""

    __tablename__ = "intel_popular"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger)
    category_id: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(Integer)


class ModelVersion(Base):
    """When the tenant's model was last trained (serving reloads when it moves)."""

    __tablename__ = "intel_models"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberPrefs(Base):
    """PIPL Art. 24: a member may switch personalised recommendations off."""

    __tablename__ = "intel_member_prefs"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    personalised: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Impression(Base):
    """A product shown to a member by a recommendation (`source`: for_me, related)."""

    __tablename__ = "intel_impressions"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    shown_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_intel_impressions_member", "tenant_id", "member_id", "product_id"),
                      Index("ix_intel_impressions_shown", "tenant_id", "shown_at"))


class Attribution(Base):
    """A paid order's product that a recommendation had shown the member within the window:
    the revenue (fen) it brought, once per order and product."""

    __tablename__ = "intel_attributions"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    order_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    revenue_fen: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id", "product_id"),
                      Index("ix_intel_attributions_at", "tenant_id", "at"))
