"""The module's tables (on the core's Base: foreign keys to tenants, members and orders,
and the test suite's truncation, know them). Every row carries tenant_id; coordinates are
GCJ-02 in integer micro-degrees (lat_e6 = 39.908722° → 39908722); money is integer fen;
times are timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


# -- stores -------------------------------------------------------------------------------

class Store(Base):
    __tablename__ = "local_stores"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20), default="")
    lat_e6: Mapped[int] = mapped_column(Integer)
    lng_e6: Mapped[int] = mapped_column(Integer)
    # {"1": [[540, 1260]], …, "7": []}: ISO weekday → [open, close] in minutes of the day;
    # close past 1440 runs past midnight (18:00–02:00 is [1080, 1560])
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {"2025-10-01": []} closed that day, or other hours [[600, 1080]]
    exceptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pictures: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the nearest-store lookup: a bounding box on (lat, lng) within the tenant
    __table_args__ = (Index("ix_local_stores_geo", "tenant_id", "lat_e6", "lng_e6"),)


class MemberStore(Base):
    """The store a member picked (「附近门店」 → a number): offered first at pick-up."""

    __tablename__ = "local_member_stores"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),)


# -- products: how they are fulfilled -------------------------------------------------------------

class ProductRule(Base):
    """How a product is fulfilled (no row: express only, as in the core). `kind`: goods
    (shipped, picked up or delivered), service (a ticket per unit, used once), card (a
    ticket per unit with `uses` uses, 次卡), booking (an appointment, see bookings)."""

    __tablename__ = "local_product_rules"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(12), default="goods")
    methods: Mapped[str] = mapped_column(String(60), default="express")   # "express,pickup,delivery"
    uses: Mapped[int] = mapped_column(Integer, default=1)
    valid_days: Mapped[int] = mapped_column(Integer, default=30)
    refund_unused: Mapped[bool] = mapped_column(Boolean, default=False)  # expiry refunds the unused part
    ship_template_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)


class OrderFulfilment(Base):
    """What a module method holds for an order: the store, the pick-up time, the delivery
    point, slot and fee, and the rider hand-off status."""

    __tablename__ = "local_order_fulfilments"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    method: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    pickup_at: Mapped[datetime | None] = mapped_column(default=None)
    lat_e6: Mapped[int | None] = mapped_column(Integer, default=None)
    lng_e6: Mapped[int | None] = mapped_column(Integer, default=None)
    distance_m: Mapped[int | None] = mapped_column(Integer, default=None)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    slot_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="placed")  # placed | dispatched | delivered | released
    rider: Mapped[str] = mapped_column(String(40), default="")
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"), Index("ix_local_fulfil_store", "tenant_id", "store_id"))


# -- verification codes (核销) ---------------------------------------------------------------------

class Ticket(Base):
    """A code a member shows at the store: a pick-up, a service, a multi-use card, a booking's
    check-in. `uses_left` only moves by conditional UPDATE (never below zero)."""

    __tablename__ = "local_tickets"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    code: Mapped[str] = mapped_column(String(12))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    seq: Mapped[int] = mapped_column(Integer)                 # n-th ticket of the order: issuing twice can't
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    kind: Mapped[str] = mapped_column(String(12))             # pickup | service | card | booking
    title: Mapped[str] = mapped_column(String(120))
    uses_total: Mapped[int] = mapped_column(Integer)
    uses_left: Mapped[int] = mapped_column(Integer)
    value_fen: Mapped[int] = mapped_column(BigInteger)          # its share of what was paid (refunds)
    refund_unused: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | used | expired | refunded
    valid_until: Mapped[datetime] = mapped_column()
    booking_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        UniqueConstraint("tenant_id", "order_id", "seq"),
        CheckConstraint("uses_left >= 0 AND uses_left <= uses_total", name="ck_local_tickets_uses"),
        Index("ix_local_tickets_member", "tenant_id", "member_id", "status"),
        Index("ix_local_tickets_due", "status", "valid_until"),
    )


class Verification(Base):
    """Every verification: who (a staff member or an admin), where, when, how many uses and
    what was left; reversed by an admin within the window (audited)."""

    __tablename__ = "local_verifications"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    ticket_id: Mapped[int] = mapped_column(ForeignKey("local_tickets.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    staff_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), default=None)
    actor: Mapped[str] = mapped_column(String(64))
    uses: Mapped[int] = mapped_column(Integer)
    uses_left: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(default=None)
    reversed_by: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (Index("ix_local_verifications_tenant_at", "tenant_id", "at"),)


class Staff(Base):
    """A member bound to a store with a role (核销员: verifier)."""

    __tablename__ = "local_staff"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    role: Mapped[str] = mapped_column(String(16), default="verifier")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id", "store_id"),)


class BindCode(Base):
    """A one-time code from the console that binds whoever sends it as staff of a store.
    Only its SHA-256 is kept; it expires and burns after a few wrong tries."""

    __tablename__ = "local_bind_codes"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    digest: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(8))               # the first characters, for the console list
    role: Mapped[str] = mapped_column(String(16), default="verifier")
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "digest"),)


class Attempt(Base):
    """Failed tries of a code typed into chat, per subject ("staff:<member>", "bind:<member>")
    and time window: the guessing limit, and the log of failures."""

    __tablename__ = "local_attempts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    subject: Mapped[str] = mapped_column(String(40))
    window: Mapped[int] = mapped_column(BigInteger)           # epoch seconds // window length
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_reason: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "subject", "window"),)


# -- express shipping-fee templates (运费模板) -------------------------------------------------------

class ShipTemplate(Base):
    """By piece or by weight (grams), free from an amount, regions not served. A product
    names its template (ProductRule.ship_template_id); others use the tenant's default."""

    __tablename__ = "local_ship_templates"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(8), default="piece")      # piece | weight
    free_over_fen: Mapped[int] = mapped_column(BigInteger, default=0)    # 0: never free
    unserved: Mapped[list[str]] = mapped_column(JSON, default=list)   # province names
    # [{"regions": ["上海", "江苏"] or ["*"], "first": 1, "first_fen": 800, "extra": 1, "extra_fen": 200}, …]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- same-city delivery (同城配送) -----------------------------------------------------------------

class Zone(Base):
    """Where a store delivers: a radius around it or a polygon; fee tiers by distance
    ([[up_to_m, fee_fen], …]); a minimum order."""

    __tablename__ = "local_zones"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8), default="radius")     # radius | polygon
    radius_m: Mapped[int] = mapped_column(Integer, default=0)
    polygon: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    tiers: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    min_order_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlotTemplate(Base):
    """A delivery time slot on a weekday (start and end in minutes of the day) with its
    capacity; a store's holiday exceptions close that day's slots."""

    __tablename__ = "local_slot_templates"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_min: Mapped[int] = mapped_column(Integer)
    end_min: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SlotUse(Base):
    """How many orders a slot on a day has taken: `taken` moves by conditional UPDATE
    (taken < capacity), so a slot never takes more than its capacity."""

    __tablename__ = "local_slot_uses"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    day: Mapped[str] = mapped_column(String(10))           # Shanghai date, ISO
    start_min: Mapped[int] = mapped_column(Integer)
    end_min: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("tenant_id", "store_id", "day", "start_min"),
                      CheckConstraint("taken >= 0 AND taken <= capacity", name="ck_local_slot_uses_taken"))


class AddressPoint(Base):
    """The coordinates of a saved address (the member sent its location)."""

    __tablename__ = "local_address_points"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    lat_e6: Mapped[int] = mapped_column(Integer)
    lng_e6: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("tenant_id", "address_id"),)


# -- appointments (预约) -----------------------------------------------------------------------------

class ServiceSpec(Base):
    """A bookable service (a product of kind "booking"): how long it takes, what is paid
    when booking (deposit_fen 0: the full price), the cancel rule (free until
    cancel_free_hours before; later late_refund_bp of what was paid comes back, 0: none),
    when the reminder goes out."""

    __tablename__ = "local_service_specs"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    duration_min: Mapped[int] = mapped_column(Integer, default=60)
    step_min: Mapped[int] = mapped_column(Integer, default=30)
    deposit_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    cancel_free_hours: Mapped[int] = mapped_column(Integer, default=24)
    late_refund_bp: Mapped[int] = mapped_column(Integer, default=0)
    remind_hours: Mapped[int] = mapped_column(Integer, default=2)
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)


class Resource(Base):
    """A member of staff or a room at a store that renders services."""

    __tablename__ = "local_resources"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8), default="staff")      # staff | room
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ResourceService(Base):
    __tablename__ = "local_resource_services"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    resource_id: Mapped[int] = mapped_column(ForeignKey("local_resources.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    __table_args__ = (UniqueConstraint("tenant_id", "resource_id", "product_id"),)


class Booking(Base):
    __tablename__ = "local_bookings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("local_stores.id"))
    resource_id: Mapped[int] = mapped_column(ForeignKey("local_resources.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default="held")  # held|booked|checked_in|cancelled|no_show
    deposit: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),
                      Index("ix_local_bookings_member", "tenant_id", "member_id", "status"),
                      Index("ix_local_bookings_due", "status", "starts_at"))


class ResourceCell(Base):
    """A resource's time, in 15-minute cells (epoch minutes // 15), held by one booking:
    the unique key is what makes a double booking impossible."""

    __tablename__ = "local_resource_cells"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    resource_id: Mapped[int] = mapped_column(ForeignKey("local_resources.id"))
    cell: Mapped[int] = mapped_column(BigInteger)
    booking_id: Mapped[int] = mapped_column(ForeignKey("local_bookings.id"), index=True)
    __table_args__ = (UniqueConstraint("resource_id", "cell"),)


class LocalSettings(Base):
    """The tenant's settings of this module: the WeChat template message used for a
    reminder when the member is outside the 48-hour customer-service window."""

    __tablename__ = "local_settings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    reminder_template_id: Mapped[str] = mapped_column(String(64), default="")
