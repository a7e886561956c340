"""The module's tables (on the core's Base): the merchant's search synonyms; purchases, the
nightly recommendation model and members' personalisation setting; dynamic pricing
rules (with the SKU's cost), their audited price changes and A/B tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, false
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
    # where it was bought (social_mall/places.py: "store:3 city:深圳"), for popularity per place
    places: Mapped[str] = mapped_column(String(120), default="", server_default="")
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


class PopularPlace(Base):
    """The nightly model: products by number of buyers in one place (a store, a city):
    the cold start of a member with no history whose place is known."""

    __tablename__ = "intel_popular_places"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    place: Mapped[str] = mapped_column(String(60), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(Integer)


class ModelVersion(Base):
    """When the tenant's model was last trained (serving reloads when it moves)."""

    __tablename__ = "intel_models"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cycle(Base):
    """The nightly model: a consumable's repurchase cycle estimated from purchases
    (recommend.cycles); a product without a row is a durable unless the merchant marked it."""

    __tablename__ = "intel_cycles"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    days: Mapped[float] = mapped_column(Float)


class CycleMark(Base):
    """The merchant's word on a product: a consumable with its cycle in days, or a durable
    (overrides the estimate)."""

    __tablename__ = "intel_cycle_marks"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    consumable: Mapped[bool] = mapped_column(Boolean)
    days: Mapped[int] = mapped_column(Integer, default=0)   # 0 for a durable
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


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


class ViewHour(Base):
    """Product views in one hour (chat cards and H5 pages, members and anonymous visitors):
    dynamic pricing's demand. Counted from the core's activity sink (views.py), flushed in
    batches: `views` grows by an upsert."""

    __tablename__ = "intel_view_hours"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    views: Mapped[int] = mapped_column(BigInteger)


class MemberView(Base):
    """A member viewed a product (`views` times, last at `last_at`): the browsing half of
    the recommendation model's histories (recommend.VIEW_WEIGHT)."""

    __tablename__ = "intel_member_views"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    views: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)


class Click(Base):
    """A product opened from a recommendation (its listing's tracking token
    `rec.<placement>`): click-through per placement against intel_impressions."""

    __tablename__ = "intel_clicks"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)      # 0: an anonymous H5 page view
    product_id: Mapped[int] = mapped_column(BigInteger)
    placement: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_intel_clicks_at", "tenant_id", "at"),)


class PriceRule(Base):
    """Dynamic pricing of one SKU (console 动态定价): guard rails (floor = the SKU's cost
    (the core's skus.cost_fen) × (1 + minimum margin), ceiling, largest change per step and
    per day) and the signals the rule follows (`params`: rules_pricing.RuleConfig's fields).
    `cost_fen`: the cost typed when the rule was saved (written to the SKU then; counts only
    for a SKU without one). `cost_moved`: False for a rule saved before costs moved to
    SKUs, until the pricing job has given its cost to its SKU (once: pricing.move_costs)."""

    __tablename__ = "intel_price_rules"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    cost_fen: Mapped[int] = mapped_column(BigInteger)
    min_margin_bp: Mapped[int] = mapped_column(Integer)
    ceiling_fen: Mapped[int] = mapped_column(BigInteger)
    base_fen: Mapped[int] = mapped_column(BigInteger)        # the list price the rule moves from
    max_step_bp: Mapped[int] = mapped_column(Integer)
    max_day_bp: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, object]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cost_moved: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    __table_args__ = (UniqueConstraint("tenant_id", "sku_id"),)


class PriceChange(Base):
    """One automatic price change (or its rollback): which rule, why, before/after, when.
    (tenant, sku, bucket) is unique: a rule moves a SKU at most once per step, however
    many workers run the job (a rollback's bucket is minus the change's id)."""

    __tablename__ = "intel_price_changes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sku_id: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    before_fen: Mapped[int] = mapped_column(BigInteger)
    after_fen: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    rolled_back_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("tenant_id", "sku_id", "bucket"),
                      Index("ix_intel_price_changes_at", "tenant_id", "at"))


class PriceTest(Base):
    """An A/B test of the tenant's pricing rules. `unit` "sku": the rules run on `share_bp`
    of their SKUs (a hash of salt and SKU id), the rest keep their price; "day": on that
    share of Shanghai days (a hash of salt and the date), on the others each rule's SKU
    goes back to its base price (time blocks: the same SKUs in both arms)."""

    __tablename__ = "intel_price_tests"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    share_bp: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8), default="sku")
    salt: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
