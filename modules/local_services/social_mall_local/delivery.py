"""Same-city delivery (同城配送) as a service: which store delivers to a point and at what
fee, the member's addresses with coordinates, open slots and taking one (atomically: a
slot never takes more orders than its capacity), giving it back when the order is
cancelled, and the rider hand-off (dispatched, delivered: pushed to the member; delivered
completes the order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from social_mall.errors import IllegalTransitionError, NotFoundError
from social_mall.members.service import list_addresses
from social_mall.orders.service import hand_over, load_order
from social_mall.views import AddressView
from social_mall_local.errors import SlotFullError
from social_mall_local.events import DeliveryMoved
from social_mall_local.geo import SHANGHAI, Point
from social_mall_local.models import AddressPoint, SlotTemplate, Zone
from social_mall_local.repos import LocalRepo
from social_mall_local.rules_delivery import Served, Slot, SlotDef, ZoneRule, serve, slots
from social_mall_local.stores import StoreView, get_store
from storage.uow import UnitOfWork

PLACED, DISPATCHED, DELIVERED, RELEASED = "placed", "dispatched", "delivered", "released"
STATUS_ZH = {PLACED: "待派单", DISPATCHED: "配送中", DELIVERED: "已送达", RELEASED: "已取消"}


def zone_rule(z: Zone) -> ZoneRule:
    return ZoneRule(z.id, z.store_id, z.name, z.kind, z.radius_m,
                    tuple(Point(int(p[0]), int(p[1])) for p in (z.polygon or []) if len(p) == 2),
                    tuple((int(u), int(f)) for u, f in (z.tiers or [])), z.min_order_fen, z.active)


async def served(uow: UnitOfWork, tenant: int, p: Point) -> Served | None:
    zones = [(zone_rule(z), Point(s.lat_e6, s.lng_e6)) for z, s in await LocalRepo(uow.session).active_zones(tenant)]
    return serve(zones, p)


async def has_zones(uow: UnitOfWork, tenant: int) -> bool:
    return bool(await LocalRepo(uow.session).active_zones(tenant))


async def delivery_addresses(uow: UnitOfWork, tenant: int, member: int) -> list[tuple[AddressView, Point]]:
    points = await LocalRepo(uow.session).address_points(tenant, member)
    return [(a, Point(points[a.id].lat_e6, points[a.id].lng_e6))
            for a in await list_addresses(uow, tenant, member) if a.id in points]


async def address_point(uow: UnitOfWork, tenant: int, member: int, address_id: int) -> Point | None:
    found = (await LocalRepo(uow.session).address_points(tenant, member)).get(address_id)
    return Point(found.lat_e6, found.lng_e6) if found is not None else None


async def save_address_point(uow: UnitOfWork, tenant: int, member: int, address_id: int, p: Point) -> None:
    await LocalRepo(uow.session).add(AddressPoint(tenant_id=tenant, address_id=address_id, member_id=member,
                                                  lat_e6=p.lat_e6, lng_e6=p.lng_e6))


def slot_defs(rows: list[SlotTemplate]) -> list[SlotDef]:
    return [SlotDef(r.weekday, r.start_min, r.end_min, r.capacity) for r in rows if r.active]


@dataclass(frozen=True)
class OpenSlot:
    slot: Slot
    left: int


async def open_slots(uow: UnitOfWork, tenant: int, store: StoreView, now: datetime) -> list[OpenSlot]:
    repo = LocalRepo(uow.session)
    offered = slots(slot_defs(await repo.slot_templates(tenant, store.id)), store.hours, now)
    uses = await repo.slot_uses(tenant, store.id, sorted({s.day.isoformat() for s in offered}))
    out = []
    for s in offered:
        use = uses.get((s.day.isoformat(), s.start_min))
        left = s.capacity - (use.taken if use is not None else 0)
        if left > 0:
            out.append(OpenSlot(s, left))
    return out


async def store_slot(uow: UnitOfWork, tenant: int, store: StoreView, key: int, now: datetime) -> Slot | None:
    offered = slots(slot_defs(await LocalRepo(uow.session).slot_templates(tenant, store.id)), store.hours, now)
    return next((s for s in offered if s.key == key), None)


async def take_slot(uow: UnitOfWork, tenant: int, store_id: int, slot: Slot) -> int:
    got = await LocalRepo(uow.session).take_slot(tenant, store_id, slot.day.isoformat(), slot.start_min, slot.end_min,
                                                 slot.capacity)
    if got is None:
        raise SlotFullError()
    return got


async def release(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> bool:
    """An unpaid order was cancelled: its slot place goes back, once."""
    repo = LocalRepo(uow.session)
    ful = await repo.fulfilment(tenant, order_id)
    if ful is None or ful.slot_id is None or not await repo.move_fulfilment(tenant, order_id, PLACED, RELEASED):
        return False
    return await repo.give_slot_back(tenant, ful.slot_id)


async def _moved(uow: UnitOfWork, tenant: int, order_id: int, status: str, rider: str) -> None:
    order = await load_order(uow, tenant, order_id)
    uow.emit(DeliveryMoved(tenant_id=tenant, member_id=order.member_id, order_id=order_id, order_no=order.order_no,
                           status=status, rider=rider))


async def dispatch(uow: UnitOfWork, tenant: int, order_id: int, rider: str, actor: str, now: datetime) -> None:
    """A rider took the parcel (paid orders only)."""
    order = await load_order(uow, tenant, order_id)
    repo = LocalRepo(uow.session)
    ful = await repo.fulfilment(tenant, order_id)
    if ful is None or ful.method != "delivery":
        raise NotFoundError("delivery", order_id)
    if order.status != "paid" or not await repo.move_fulfilment(tenant, order_id, PLACED, DISPATCHED, rider=rider,
                                                              dispatched_at=now):
        raise IllegalTransitionError(order.order_no, ful.status, DISPATCHED)
    uow.audit(tenant, actor, "local.delivery.dispatch", f"order:{order.order_no}", after={"rider": rider})
    await _moved(uow, tenant, order_id, DISPATCHED, rider)


async def delivered(uow: UnitOfWork, tenant: int, order_id: int, actor: str, now: datetime) -> None:
    """The rider handed it over: the order completes."""
    order = await load_order(uow, tenant, order_id)
    repo = LocalRepo(uow.session)
    ful = await repo.fulfilment(tenant, order_id)
    if ful is None or ful.method != "delivery":
        raise NotFoundError("delivery", order_id)
    if not await repo.move_fulfilment(tenant, order_id, DISPATCHED, DELIVERED, delivered_at=now):
        raise IllegalTransitionError(order.order_no, ful.status, DELIVERED)
    await hand_over(uow, tenant, order_id, now=now)
    uow.audit(tenant, actor, "local.delivery.delivered", f"order:{order.order_no}")
    await _moved(uow, tenant, order_id, DELIVERED, ful.rider)


@dataclass(frozen=True)
class DeliveryRow:
    order_id: int
    order_no: str
    store: str
    address: str
    distance_m: int
    fee_fen: int
    slot: str
    status: str
    rider: str


async def deliveries(uow: UnitOfWork, tenant: int, statuses: tuple[str, ...]) -> list[DeliveryRow]:
    rows = await LocalRepo(uow.session).deliveries(tenant, statuses)
    names = {}
    out = []
    for f, o in rows:
        if f.store_id not in names:
            names[f.store_id] = (await get_store(uow, tenant, f.store_id)).name
        slot = ""
        if f.pickup_at is not None:
            at = f.pickup_at.astimezone(SHANGHAI)
            slot = f"{at:%m-%d %H:%M}"
        out.append(DeliveryRow(o.id, o.order_no, names[f.store_id], o.ship_address, f.distance_m or 0, f.fee_fen,
                               slot, f.status, f.rider))
    return out


# -- console: zones, slot templates, the week calendar ---------------------------------------------

@dataclass(frozen=True)
class ZoneInput:
    store_id: int
    name: str
    kind: str
    radius_m: int
    polygon: tuple[Point, ...]
    tiers: tuple[tuple[int, int], ...]
    min_order_fen: int
    active: bool


async def zones(uow: UnitOfWork, tenant: int) -> list[ZoneRule]:
    return [zone_rule(z) for z in await LocalRepo(uow.session).zones(tenant)]


async def save_zone(uow: UnitOfWork, tenant: int, actor: str, data: ZoneInput, now: datetime) -> ZoneRule:
    await get_store(uow, tenant, data.store_id)           # this tenant's store
    row = Zone(tenant_id=tenant, store_id=data.store_id, name=data.name, kind=data.kind, radius_m=data.radius_m,
               polygon=[[p.lat_e6, p.lng_e6] for p in data.polygon], tiers=[list(t) for t in data.tiers],
               min_order_fen=data.min_order_fen, active=data.active, updated_at=now)
    await LocalRepo(uow.session).add(row)
    uow.audit(tenant, actor, "local.zone.save", f"zone:{row.id}",
              after={"store": row.store_id, "kind": row.kind, "radius_m": row.radius_m, "tiers": row.tiers,
                     "min_order_fen": row.min_order_fen})
    return zone_rule(row)


async def set_zone_active(uow: UnitOfWork, tenant: int, zone_id: int, active: bool, actor: str) -> None:
    row = await LocalRepo(uow.session).zone(tenant, zone_id)
    if row is None:
        raise NotFoundError("zone", zone_id)
    row.active = active
    uow.audit(tenant, actor, "local.zone." + ("enable" if active else "disable"), f"zone:{zone_id}")


@dataclass(frozen=True)
class SlotInput:
    store_id: int
    weekdays: tuple[int, ...]
    start_min: int
    end_min: int
    capacity: int


async def add_slot_templates(uow: UnitOfWork, tenant: int, actor: str, data: SlotInput) -> int:
    await get_store(uow, tenant, data.store_id)
    await LocalRepo(uow.session).add_all([
        SlotTemplate(tenant_id=tenant, store_id=data.store_id, weekday=day, start_min=data.start_min,
                     end_min=data.end_min, capacity=data.capacity, active=True) for day in data.weekdays])
    uow.audit(tenant, actor, "local.slots.add", f"store:{data.store_id}",
              after={"weekdays": list(data.weekdays), "start": data.start_min, "end": data.end_min,
                     "capacity": data.capacity})
    return len(data.weekdays)


async def set_slot_active(uow: UnitOfWork, tenant: int, tid: int, active: bool, actor: str) -> None:
    row = await LocalRepo(uow.session).slot_template(tenant, tid)
    if row is None:
        raise NotFoundError("slot", tid)
    row.active = active
    uow.audit(tenant, actor, "local.slots." + ("enable" if active else "disable"), f"slot:{tid}")


@dataclass(frozen=True)
class Cell:
    capacity: int
    taken: int
    closed: bool       # a holiday


@dataclass(frozen=True)
class Week:
    days: tuple[datetime, ...]                              # midnight of each day (Shanghai)
    rows: tuple[tuple[tuple[int, int], tuple[Cell | None, ...]], ...]   # (start, end) → a cell per day


async def week(uow: UnitOfWork, tenant: int, store: StoreView, now: datetime, days: int = 7) -> Week:
    """The store's slots over the next `days` days: taken / capacity per cell."""
    from datetime import timedelta

    from social_mall_local.geo import at_local, local_day

    repo = LocalRepo(uow.session)
    defs = [t for t in await repo.slot_templates(tenant, store.id)]
    first = local_day(now)
    dates = [first + timedelta(days=i) for i in range(days)]
    uses = await repo.slot_uses(tenant, store.id, [d.isoformat() for d in dates])
    times = sorted({(t.start_min, t.end_min) for t in defs})
    rows = []
    for start, end in times:
        cells: list[Cell | None] = []
        for d in dates:
            t = next((x for x in defs if x.weekday == d.isoweekday() and (x.start_min, x.end_min) == (start, end)), None)
            if t is None:
                cells.append(None)
                continue
            closed = d in store.hours.exceptions and not store.hours.exceptions[d]
            use = uses.get((d.isoformat(), start))
            cells.append(Cell(t.capacity, use.taken if use is not None else 0, closed))
        rows.append(((start, end), tuple(cells)))
    return Week(tuple(at_local(d, 0) for d in dates), tuple(rows))


async def slot_template_rows(uow: UnitOfWork, tenant: int) -> list[SlotTemplate]:
    return await LocalRepo(uow.session).slot_templates(tenant)
