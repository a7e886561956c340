"""Appointments (预约) as a service.

Booking places an order for the service (the full price, or the deposit), with the
module's "booking" fulfilment method: its `placed` takes a resource (staff or room) that
can render the service at that store for every 15-minute cell of the slot, trying the
resources in turn, each in a savepoint (the cell's unique key refuses a double booking),
so of many members booking the last place at once exactly the capacity get one; the rest
are told the slot is full and nothing of theirs is written. Payment turns the hold into a
booking and issues its check-in code (verified at the store: checked in); an unpaid order
cancelled by the sweeper frees the cells. Cancel and reschedule follow the service's
rules (rules_booking.py); the refund goes through the core's refund path. Jobs remind
members (a customer-service message within WeChat's 48-hour window, else a template
message) and mark no-shows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from social_mall.errors import MallError, NotFoundError
from social_mall.fulfilment import Choice, Destination
from social_mall.orders.service import hand_over, load_order, place_order
from social_mall.payments.service import request_refund
from social_mall.pricing.rules import PriceLine
from social_mall.views import AddressView, OrderView
from social_mall_local.errors import LocalError, SlotFullError, SlotGoneError
from social_mall_local.events import BookingChanged, BookingReminder
from social_mall_local.geo import SHANGHAI, local_day
from social_mall_local.models import Booking, OrderFulfilment, ServiceSpec
from social_mall_local.repos import LocalRepo
from social_mall_local.rules_booking import (
    CHECK_IN_GRACE, NO_SHOW_AFTER, bookable, can_reschedule, cancel_terms, cells, open_days,
)
from social_mall_local.stores import StoreView, active_store, member_store, stores_by_ids
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

METHOD = "booking"
SYSTEM = "system:local_services"
ACTIVE = ("held", "booked")
STATUS_ZH = {"held": "待支付", "booked": "已预约", "checked_in": "已到店", "cancelled": "已取消", "no_show": "未到店"}


class BookingRefusedError(LocalError):
    """`reason`: not_yours | too_late (cancel/reschedule past the rules) | closed (not active)."""

    code = "local_booking_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ServiceView:
    product_id: int
    sku_id: int
    title: str
    price_fen: int
    duration_min: int
    step_min: int
    deposit_fen: int
    cancel_free_hours: int
    late_refund_bp: int
    remind_hours: int

    @property
    def pay_fen(self) -> int:
        return self.deposit_fen if 0 < self.deposit_fen < self.price_fen else self.price_fen


async def services(uow: UnitOfWork, tenant: int) -> list[ServiceView]:
    out = []
    for p, spec in await LocalRepo(uow.session).booking_products(tenant):
        skus = [s for s in await uow.catalog.skus(tenant, p.id) if s.on_shelf]
        if skus:
            out.append(_service(p.id, p.title, skus[0].id, skus[0].price_fen, spec))
    return out


def _service(product_id: int, title: str, sku_id: int, price: int, spec: ServiceSpec) -> ServiceView:
    return ServiceView(product_id, sku_id, title, price, spec.duration_min, spec.step_min, spec.deposit_fen,
                       spec.cancel_free_hours, spec.late_refund_bp, spec.remind_hours)


async def service(uow: UnitOfWork, tenant: int, product_id: int) -> ServiceView:
    found = next((s for s in await services(uow, tenant) if s.product_id == product_id), None)
    if found is None:
        raise NotFoundError("product", product_id)
    return found


async def stores_for(uow: UnitOfWork, tenant: int, member: int, product_id: int) -> list[StoreView]:
    ids = sorted({r.store_id for r in await LocalRepo(uow.session).resources_for(tenant, product_id)})
    found = [s for s in (await stores_by_ids(uow, tenant, ids)).values() if s.active]
    mine = await member_store(uow, tenant, member)
    return sorted(found, key=lambda s: (mine is None or s.id != mine.id, s.id))


def days_for(svc: ServiceView, store: StoreView, now: datetime) -> list[date]:
    return open_days(store.hours, svc.duration_min, svc.step_min, now)


@dataclass(frozen=True)
class FreeSlot:
    starts: datetime
    ends: datetime
    free: int


async def free_slots(uow: UnitOfWork, tenant: int, svc: ServiceView, store: StoreView, day: date, now: datetime
                     ) -> list[FreeSlot]:
    """The day's starts with at least one resource free for the whole service."""
    repo = LocalRepo(uow.session)
    resources = [r.id for r in await repo.resources_for(tenant, svc.product_id, store.id)]
    starts = bookable(store.hours, day, svc.duration_min, svc.step_min, now)
    if not starts or not resources:
        return []
    span = timedelta(minutes=svc.duration_min)
    first, last = cells(starts[0], starts[0] + span)[0], cells(starts[-1], starts[-1] + span)[-1] + 1
    held = await repo.held_cells(resources, first, last)
    out = []
    for t in starts:
        need = cells(t, t + span)
        free = sum(1 for r in resources if not any((r, c) in held for c in need))
        if free:
            out.append(FreeSlot(t, t + span, free))
    return out


def offered_start(svc: ServiceView, store: StoreView, at: datetime, now: datetime) -> bool:
    """Is `at` a start the store offers now? (A start past midnight belongs to the range
    that opened the day before.)"""
    day = local_day(at)
    return any(at in bookable(store.hours, d, svc.duration_min, svc.step_min, now)
               for d in (day, day - timedelta(days=1)))


# -- the fulfilment method: what place_order calls -------------------------------------------------

class BookingMethod:
    """The booking flow's fulfilment method (never offered at the cart's checkout)."""

    key = METHOD
    label = "预约到店"

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        return False

    async def _slot(self, uow: UnitOfWork, tenant: int, choice: Choice, now: datetime
                    ) -> tuple[ServiceView, StoreView, datetime]:
        product, store_id, start = (choice.detail.get(k) for k in ("product", "store", "start"))
        if not (isinstance(product, int) and isinstance(store_id, int) and isinstance(start, int)):
            raise SlotGoneError()
        svc = await service(uow, tenant, product)
        store = await active_store(uow, tenant, store_id)
        at = datetime.fromtimestamp(start * 60, SHANGHAI)
        if not offered_start(svc, store, at, now):
            raise SlotGoneError()   # not a start this store offers (closed, past, too soon)
        return svc, store, at

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine], choice: Choice,
                    address: AddressView | None, now: datetime) -> Destination:
        svc, store, at = await self._slot(uow, tenant, choice, now)
        return Destination(0, "", "", f"到店服务：{store.name}（{store.address}）"[:200],
                           f"预约：{store.name} {at.astimezone(SHANGHAI):%m-%d %H:%M}")

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, choice: Choice, dest: Destination,
                     now: datetime) -> None:
        svc, store, at = await self._slot(uow, tenant, choice, now)
        repo = LocalRepo(uow.session)
        ends = at + timedelta(minutes=svc.duration_min)
        candidates = await repo.resources_for(tenant, svc.product_id, store.id)
        if not candidates:
            raise SlotFullError()
        booking = await repo.add(Booking(
            tenant_id=tenant, member_id=order.member_id, product_id=svc.product_id, store_id=store.id,
            resource_id=candidates[0].id, order_id=order.id, starts_at=at, ends_at=ends, status="held",
            deposit=svc.pay_fen < svc.price_fen, created_at=now))
        for resource in candidates:
            if await repo.hold_cells(tenant, resource.id, booking.id, cells(at, ends)):
                booking.resource_id = resource.id
                await repo.add(booking)
                break
        else:
            raise SlotFullError()   # every resource is taken: the order rolls back with it
        await repo.add(OrderFulfilment(tenant_id=tenant, order_id=order.id, member_id=order.member_id, method=METHOD,
                                       store_id=store.id, pickup_at=at, fee_fen=0, status="placed", created_at=now))


BOOKING = BookingMethod()


async def book(uow: UnitOfWork, tenant: int, member: int, product_id: int, store_id: int, start: datetime, *,
               now: datetime, timeout: timedelta, channel: str = "mp") -> OrderView:
    """Hold the slot and place the order (the deposit, or the full price)."""
    svc = await service(uow, tenant, product_id)
    choice = Choice(METHOD, {"product": product_id, "store": store_id, "start": int(start.timestamp()) // 60})
    unit = {svc.sku_id: svc.pay_fen} if svc.pay_fen != svc.price_fen else None
    return await place_order(uow, tenant, member, [(svc.sku_id, 1)], address_id=None, now=now, timeout=timeout,
                             channel=channel, source=f"booking:{product_id}", unit_prices=unit,
                             fulfilment=(BOOKING, choice))


# -- life of a booking ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BookingView:
    id: int
    product_id: int
    title: str
    store_id: int
    store_name: str
    resource_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    order_id: int
    deposit: bool


async def _view(uow: UnitOfWork, tenant: int, b: Booking) -> BookingView:
    product = await LocalRepo(uow.session).product(tenant, b.product_id)
    store = (await stores_by_ids(uow, tenant, [b.store_id])).get(b.store_id)
    return BookingView(b.id, b.product_id, product.title if product else "", b.store_id, store.name if store else "",
                       b.resource_id, b.starts_at, b.ends_at, b.status, b.order_id, b.deposit)


async def member_bookings(uow: UnitOfWork, tenant: int, member: int) -> list[BookingView]:
    rows = await LocalRepo(uow.session).member_bookings(tenant, member, ACTIVE, 10)
    return [await _view(uow, tenant, b) for b in rows]


async def own_booking(uow: UnitOfWork, tenant: int, member: int, booking_id: int) -> BookingView:
    b = await LocalRepo(uow.session).booking(tenant, booking_id)
    if b is None or b.member_id != member:
        raise NotFoundError("booking", booking_id)
    return await _view(uow, tenant, b)


async def on_paid(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> bool:
    repo = LocalRepo(uow.session)
    b = await repo.booking_of_order(tenant, order_id)
    return b is not None and await repo.move_booking(tenant, b.id, ("held",), "booked")


async def on_cancelled(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> bool:
    """The unpaid order was cancelled: the hold ends, the resource is free again (once)."""
    repo = LocalRepo(uow.session)
    b = await repo.booking_of_order(tenant, order_id)
    if b is None or not await repo.move_booking(tenant, b.id, ("held",), "cancelled", closed_at=now):
        return False
    await repo.free_cells(tenant, b.id)
    return True


@dataclass(frozen=True)
class Cancelled:
    booking: BookingView
    refund_fen: int
    free: bool


async def cancel(uow: UnitOfWork, tenant: int, member: int, booking_id: int, now: datetime) -> Cancelled:
    """The member cancels a paid booking: per the service's rule, the refund (through the
    core's refund path), the resource freed, the check-in code closed."""
    b = await own_booking(uow, tenant, member, booking_id)
    spec = await LocalRepo(uow.session).service_spec(tenant, b.product_id)
    order = await load_order(uow, tenant, b.order_id)
    terms = cancel_terms(order.paid_fen - order.refunded_fen, b.starts_at, now,
                         spec.cancel_free_hours if spec else 24, spec.late_refund_bp if spec else 0)
    if not terms.allowed:
        raise BookingRefusedError("too_late")
    repo = LocalRepo(uow.session)
    if not await repo.move_booking(tenant, b.id, ("booked",), "cancelled", closed_at=now):
        raise BookingRefusedError("closed")
    await repo.free_cells(tenant, b.id)
    await repo.close_order_tickets(tenant, b.order_id, "refunded" if terms.refund_fen else "expired", now)
    if terms.refund_fen > 0:
        await request_refund(uow, tenant, b.order_id, amount_fen=terms.refund_fen, reason="取消预约",
                             actor=f"member:{member}", now=now)
    else:
        await hand_over(uow, tenant, b.order_id, now=now)   # kept by the rule: the order is closed
    uow.emit(BookingChanged(tenant_id=tenant, member_id=member, booking_id=b.id, title=b.title, status="cancelled",
                            starts_at=b.starts_at.isoformat(), refund_fen=terms.refund_fen))
    return Cancelled(b, terms.refund_fen, terms.free)


async def may_reschedule(uow: UnitOfWork, tenant: int, member: int, booking_id: int, now: datetime) -> BookingView:
    """The member's booking if it may still move (else BookingRefusedError: say so before
    listing dates)."""
    b = await own_booking(uow, tenant, member, booking_id)
    if b.status != "booked":
        raise BookingRefusedError("closed")
    spec = await LocalRepo(uow.session).service_spec(tenant, b.product_id)
    if spec is None or not can_reschedule(b.starts_at, now, spec.cancel_free_hours):
        raise BookingRefusedError("too_late")
    return b


async def reschedule(uow: UnitOfWork, tenant: int, member: int, booking_id: int, start: datetime,
                     now: datetime) -> BookingView:
    """Move a paid booking to another start (until the free-cancel deadline): a resource
    for the new slot is taken first (the same rules as booking), then the old one is freed."""
    b = await own_booking(uow, tenant, member, booking_id)
    if b.status != "booked":
        raise BookingRefusedError("closed")
    repo = LocalRepo(uow.session)
    spec = await repo.service_spec(tenant, b.product_id)
    if spec is None or not can_reschedule(b.starts_at, now, spec.cancel_free_hours):
        raise BookingRefusedError("too_late")
    svc = await service(uow, tenant, b.product_id)
    store = await active_store(uow, tenant, b.store_id)
    if not offered_start(svc, store, start, now):
        raise SlotGoneError()
    ends = start + timedelta(minutes=svc.duration_min)
    row = await repo.booking(tenant, b.id)
    assert row is not None
    old_resource = row.resource_id
    await repo.free_cells(tenant, b.id)   # its own cells may overlap the new slot's
    for resource in await repo.resources_for(tenant, svc.product_id, store.id):
        if await repo.hold_cells(tenant, resource.id, b.id, cells(start, ends)):
            row.resource_id = resource.id
            break
    else:
        raise SlotFullError()  # rolls back: the old cells come back with it
    row.starts_at, row.ends_at, row.reminded_at = start, ends, None
    for t in await repo.tickets_of_order(tenant, b.order_id):
        t.valid_until = ends + CHECK_IN_GRACE
    await repo.add(row)
    log.info("local.booking.rescheduled", extra={"tenant": tenant, "booking": b.id, "from_resource": old_resource})
    view = await _view(uow, tenant, row)
    uow.emit(BookingChanged(tenant_id=tenant, member_id=member, booking_id=b.id, title=view.title,
                            status="rescheduled", starts_at=start.isoformat()))
    return view


async def check_in(uow: UnitOfWork, tenant: int, booking_id: int | None, now: datetime) -> bool:
    """The check-in code was verified at the store."""
    if booking_id is None:
        return False
    return await LocalRepo(uow.session).move_booking(tenant, booking_id, ("booked",), "checked_in", closed_at=now)


# -- jobs ---------------------------------------------------------------------------------------------

async def due_reminders(uows: UowFactory, now: datetime, batch: int = 200) -> int:
    """Bookings starting within their service's remind_hours: mark reminded (once, a
    conditional UPDATE) and emit the reminder (pushed by the module's subscriber)."""
    async with uows() as uow:
        due = [(b.tenant_id, b.id) for b, spec in await LocalRepo(uow.session).due_reminders(now, batch)
               if b.starts_at - timedelta(hours=spec.remind_hours) <= now]
    sent = 0
    for tenant, booking_id in due:
        async with uows() as uow:
            repo = LocalRepo(uow.session)
            if not await repo.mark_reminded(tenant, booking_id, now):
                continue
            row = await repo.booking(tenant, booking_id)
            assert row is not None
            view = await _view(uow, tenant, row)
            uow.emit(BookingReminder(tenant_id=tenant, member_id=row.member_id, booking_id=booking_id, title=view.title,
                                     store_name=view.store_name, starts_at=row.starts_at.isoformat()))
            await uow.commit()
            sent += 1
    return sent


async def mark_no_shows(uows: UowFactory, now: datetime, batch: int = 200) -> int:
    """Booked and not checked in NO_SHOW_AFTER past the end: a no-show (no refund; the
    check-in code expires, the order is closed)."""
    async with uows() as uow:
        due = await LocalRepo(uow.session).overdue_bookings(now - NO_SHOW_AFTER, batch)
    done = 0
    for tenant, booking_id in due:
        async with uows() as uow:
            repo = LocalRepo(uow.session)
            if not await repo.move_booking(tenant, booking_id, ("booked",), "no_show", closed_at=now):
                continue
            row = await repo.booking(tenant, booking_id)
            assert row is not None
            await repo.close_order_tickets(tenant, row.order_id, "expired", now)
            try:
                await hand_over(uow, tenant, row.order_id, now=now)
            except MallError:
                log.warning("local.no_show.order_open", extra={"tenant": tenant, "booking": booking_id})
            await uow.commit()
            done += 1
    return done


# -- console --------------------------------------------------------------------------------------------

async def upcoming(uow: UnitOfWork, tenant: int, now: datetime) -> list[BookingView]:
    return [await _view(uow, tenant, b) for b in await LocalRepo(uow.session).booking_page(tenant, now - timedelta(days=1))]


@dataclass(frozen=True)
class SpecInput:
    product_id: int
    duration_min: int
    step_min: int
    deposit_fen: int
    cancel_free_hours: int
    late_refund_bp: int
    remind_hours: int


async def save_spec(uow: UnitOfWork, tenant: int, actor: str, data: SpecInput) -> None:
    """A bookable service's terms (and the product becomes of kind "booking")."""
    from social_mall_local import products as P

    repo = LocalRepo(uow.session)
    if await repo.product(tenant, data.product_id) is None:
        raise NotFoundError("product", data.product_id)
    row = await repo.service_spec(tenant, data.product_id) or ServiceSpec(tenant_id=tenant, product_id=data.product_id)
    row.duration_min, row.step_min, row.deposit_fen = data.duration_min, data.step_min, data.deposit_fen
    row.cancel_free_hours, row.late_refund_bp, row.remind_hours = (data.cancel_free_hours, data.late_refund_bp,
                                                                    data.remind_hours)
    await repo.add(row)
    rule = await repo.product_rule(tenant, data.product_id)
    if rule is None or rule.kind != P.BOOKING:
        await P.save_settings(uow, tenant, actor, P.ProductSettings(data.product_id, kind=P.BOOKING))
    uow.audit(tenant, actor, "local.service.save", f"product:{data.product_id}", after=dict(data.__dict__))


async def add_resource(uow: UnitOfWork, tenant: int, actor: str, store_id: int, name: str, kind: str,
                       product_ids: Sequence[int]) -> int:
    from social_mall_local.models import Resource, ResourceService
    from social_mall_local.stores import get_store

    await get_store(uow, tenant, store_id)
    repo = LocalRepo(uow.session)
    for pid in product_ids:
        if await repo.product(tenant, pid) is None:
            raise NotFoundError("product", pid)
    row = await repo.add(Resource(tenant_id=tenant, store_id=store_id, name=name, kind=kind, active=True))
    for pid in product_ids:
        await repo.add(ResourceService(tenant_id=tenant, resource_id=row.id, product_id=pid))
    uow.audit(tenant, actor, "local.resource.add", f"resource:{row.id}",
              after={"store": store_id, "name": name, "kind": kind, "products": list(product_ids)})
    return int(row.id)


async def set_resource_active(uow: UnitOfWork, tenant: int, rid: int, active: bool, actor: str) -> None:
    row = await LocalRepo(uow.session).resource(tenant, rid)
    if row is None:
        raise NotFoundError("resource", rid)
    row.active = active
    uow.audit(tenant, actor, "local.resource." + ("enable" if active else "disable"), f"resource:{rid}")


async def save_reminder_template(uow: UnitOfWork, tenant: int, actor: str, template_id: str) -> None:
    from social_mall_local.models import LocalSettings

    repo = LocalRepo(uow.session)
    row = await repo.settings(tenant) or LocalSettings(tenant_id=tenant)
    before = row.reminder_template_id
    row.reminder_template_id = template_id
    await repo.add(row)
    uow.audit(tenant, actor, "local.settings.save", "local_settings", before={"reminder_template_id": before or ""},
              after={"reminder_template_id": template_id})


@dataclass(frozen=True)
class ResourceRow:
    id: int
    store_id: int
    name: str
    kind: str
    active: bool
    product_ids: tuple[int, ...]


async def resource_rows(uow: UnitOfWork, tenant: int) -> list[ResourceRow]:
    repo = LocalRepo(uow.session)
    links = await repo.resource_products(tenant)
    return [ResourceRow(r.id, r.store_id, r.name, r.kind, r.active, tuple(links.get(r.id, [])))
            for r in await repo.resources(tenant)]


async def reminder_template(uow: UnitOfWork, tenant: int) -> str:
    row = await LocalRepo(uow.session).settings(tenant)
    return row.reminder_template_id if row is not None else ""


async def spec_rows(uow: UnitOfWork, tenant: int) -> list[tuple[int, str, ServiceSpec | None]]:
    """Every product with its service terms (None: not bookable)."""
    repo = LocalRepo(uow.session)
    out = []
    for product, _ in await repo.rule_page(tenant, 0, 500):
        out.append((product.id, product.title, await repo.service_spec(tenant, product.id)))
    return out
