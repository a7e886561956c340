"""The module's checkout questions (the core's checkout hands over here when the member
picks one of its methods, and gets the choice back with `checkout.confirm_with`):

pick-up: a store (the member's own first) → for goods, a pick-up time → confirmation.
same-city delivery: a saved address that has coordinates, or a location sent now plus
「姓名 手机号 门牌号」 (saved with its coordinates) → the zone is checked (outside every
zone: a clear answer, send another) → a time slot with places left → confirmation.

State data: the checkout's source (what is bought: checkout.source_of), stores (listed
store ids), store (picked), times (listed pick-up times, epoch minutes), addrs (listed
address ids), lat/lng/label (a location sent), address (picked), slots (listed slot
starts, epoch minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import re

from flows import checkout
from flows.engine import Ctx, Data, Flow, Intent, Outcome, Say, Step, StepFn, Turn, Value
from social_mall.errors import InvalidAddressError
from social_mall.members.rules import PHONE
from social_mall.members.service import add_address
from social_mall_local import delivery as D
from social_mall_local import fulfil
from social_mall_local.errors import BadLocationError, BelowMinimumError, OutsideZoneError
from social_mall_local.flow_stores import point_of
from social_mall_local.geo import Point, distance_text
from social_mall_local.stores import active_store

NAME = fulfil.CHECKOUT_FLOW


class St(StrEnum):
    IDLE = "idle"
    PICKUP_STORE = "pickup_store"
    PICKUP_TIME = "pickup_time"
    DELIVERY_ADDRESS = "delivery_address"
    DELIVERY_CONTACT = "delivery_contact"
    DELIVERY_SLOT = "delivery_slot"


DOOR_MAX = 60


def source(data: Data) -> dict[str, Value]:
    return checkout.source_of(data)


@dataclass(frozen=True)
class PickupTimes:
    store_id: int
    data: Mapping[str, Value]

    async def run(self, ctx: Ctx) -> Outcome:
        store = await active_store(ctx.uow, ctx.tenant_id, self.store_id)
        lines, _ = await checkout._lines(ctx, self.data)
        from social_mall.pricing import service as pricing

        priced = await pricing.price_lines(ctx.uow, ctx.tenant_id, [(ln.sku_id, ln.price_fen, ln.qty) for ln in lines])
        if not fulfil.needs_time(await fulfil.line_settings(ctx.uow, ctx.tenant_id, priced)):
            step = checkout.confirm_with(self.data, method=fulfil.PICKUP.key, detail={"store": store.id})
            assert step.command is not None
            out = await step.command.run(ctx)
            return Outcome(out.replies, {**step.data, **out.data}, to=step.to, flow=checkout.NAME)
        times = fulfil.pickup_times(store, ctx.now)
        if not times:
            return Outcome((Say("chat/local/checkout/pickup_no_time.txt", {"store": store}),), to=St.PICKUP_STORE)
        say = Say("chat/local/checkout/pickup_times.txt",
                  {"store": store, "times": [fulfil.time_text(t, ctx.now) for t in times]})
        return Outcome((say,), {"store": store.id, "times": [int(t.timestamp()) // 60 for t in times]})


def pick_store(turn: Turn) -> Step:
    store = turn.pick("stores")
    if store is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("stores"))}))
    return Step(St.PICKUP_TIME, data={**source(turn.data), "stores": turn.ids("stores")},
                command=PickupTimes(store, source(turn.data)))


def pick_time(turn: Turn) -> Step:
    at, store = turn.pick("times"), turn.num("store")
    if store is None:
        return turn.stay(Say("chat/local/checkout/pick_store_first.txt"))
    if at is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("times"))}))
    return checkout.confirm_with(turn.data, method=fulfil.PICKUP.key, detail={"store": store, "at": at})


# -- same-city delivery -------------------------------------------------------------------------

async def _slots_for(ctx: Ctx, address_id: int, data: Mapping[str, Value]) -> Outcome:
    point = await D.address_point(ctx.uow, ctx.tenant_id, ctx.member.id, address_id)
    if point is None:
        raise OutsideZoneError()
    where = await D.served(ctx.uow, ctx.tenant_id, point)
    if where is None:
        raise OutsideZoneError()
    lines, _ = await checkout._lines(ctx, data)
    goods = sum(ln.line_fen for ln in lines)
    if goods < where.zone.min_order_fen:
        raise BelowMinimumError(where.zone.min_order_fen, goods)
    store = await active_store(ctx.uow, ctx.tenant_id, where.zone.store_id)
    found = await D.open_slots(ctx.uow, ctx.tenant_id, store, ctx.now)
    if not found:
        return Outcome((Say("chat/local/checkout/delivery_no_slot.txt", {"store": store}),), to=St.DELIVERY_ADDRESS)
    texts = [fulfil.slot_text(o.slot.starts, o.slot.end_min - o.slot.start_min, ctx.now) for o in found]
    say = Say("chat/local/checkout/delivery_slots.txt", {
        "store": store, "distance": distance_text(where.distance_m), "fee_fen": where.fee_fen,
        "min_fen": where.zone.min_order_fen, "slots": list(zip(texts, [o.left for o in found], strict=True))})
    return Outcome((say,), {"address": address_id, "slots": [o.slot.key for o in found]}, to=St.DELIVERY_SLOT)


@dataclass(frozen=True)
class DeliverySlots:
    address_id: int
    data: Mapping[str, Value]

    async def run(self, ctx: Ctx) -> Outcome:
        return await _slots_for(ctx, self.address_id, self.data)


@dataclass(frozen=True)
class CheckPoint:
    lat_e6: int
    lng_e6: int
    label: str

    async def run(self, ctx: Ctx) -> Outcome:
        if await D.served(ctx.uow, ctx.tenant_id, Point(self.lat_e6, self.lng_e6)) is None:
            raise OutsideZoneError()
        return Outcome((Say("chat/local/checkout/ask_contact.txt", {"label": self.label}),))


@dataclass(frozen=True)
class SaveLocationAddress:
    lat_e6: int
    lng_e6: int
    label: str
    name: str
    phone: str
    door: str
    data: Mapping[str, Value]

    async def run(self, ctx: Ctx) -> Outcome:
        detail = f"{self.label} {self.door}".strip()
        if len(detail) < 5:  # a location without a name: its coordinates make the address
            detail = f"{detail} 位置 {Point(self.lat_e6, self.lng_e6)}".strip()
        address = await add_address(ctx.uow, ctx.tenant_id, ctx.member.id, self.name, self.phone, detail)
        await D.save_address_point(ctx.uow, ctx.tenant_id, ctx.member.id, address.id, Point(self.lat_e6, self.lng_e6))
        return await _slots_for(ctx, address.id, self.data)


def pick_delivery_address(turn: Turn) -> Step:
    address = turn.pick("addrs")
    if address is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("addrs"))}))
    return Step(St.DELIVERY_SLOT, data={**source(turn.data), "addrs": turn.ids("addrs")},
                command=DeliverySlots(address, source(turn.data)))


def delivery_location(turn: Turn) -> Step:
    point = point_of(turn)
    if point is None:
        raise BadLocationError()
    label = turn.said.args[2] if len(turn.said.args) > 2 else ""
    return Step(St.DELIVERY_CONTACT, data={**source(turn.data), "addrs": turn.ids("addrs"), "lat": point.lat_e6,
                                           "lng": point.lng_e6, "label": label},
                command=CheckPoint(point.lat_e6, point.lng_e6, label))


def delivery_contact(turn: Turn) -> Step:
    """「王小明 13912345678 3号楼502」: name, phone, the door (optional)."""
    parts = turn.said.text.split(maxsplit=2)
    if len(parts) < 2:
        raise InvalidAddressError("name")
    name, phone = parts[0], re.sub(r"[\s-]", "", parts[1])
    door = parts[2].strip() if len(parts) > 2 else ""
    if not 1 <= len(name) <= checkout.MAX_NAME:
        raise InvalidAddressError("name")
    if not PHONE.match(phone):
        raise InvalidAddressError("phone")
    if len(door) > DOOR_MAX:
        raise InvalidAddressError("detail")
    lat, lng = turn.num("lat"), turn.num("lng")
    if lat is None or lng is None:
        raise BadLocationError()
    return Step(St.DELIVERY_SLOT, data=source(turn.data),
                command=SaveLocationAddress(lat, lng, turn.text("label"), name, phone, door, source(turn.data)))


def pick_slot(turn: Turn) -> Step:
    slot, address = turn.pick("slots"), turn.num("address")
    if address is None:
        return turn.stay(Say("chat/local/checkout/pick_address_first.txt"))
    if slot is None:
        return turn.stay(Say("chat/bad_number.txt", {"n": turn.said.n, "count": len(turn.ids("slots"))}))
    return checkout.confirm_with(turn.data, method=fulfil.DELIVERY.key, detail={"slot": slot, "addr": address},
                                 address_id=address)


TABLE: Mapping[tuple[str, str], StepFn] = {
    (St.PICKUP_STORE, Intent.NUMBER): pick_store,
    (St.PICKUP_TIME, Intent.NUMBER): pick_time,
    (St.DELIVERY_ADDRESS, Intent.NUMBER): pick_delivery_address,
    (St.DELIVERY_ADDRESS, Intent.LOCATION): delivery_location,
    (St.DELIVERY_CONTACT, Intent.LOCATION): delivery_location,
    (St.DELIVERY_CONTACT, Intent.TEXT): delivery_contact,
    (St.DELIVERY_SLOT, Intent.NUMBER): pick_slot,
    (St.DELIVERY_SLOT, Intent.LOCATION): delivery_location,
}

FLOW = Flow(
    name=NAME,
    start=St.IDLE,
    table=TABLE,
    hints={
        St.PICKUP_STORE: "chat/local/hints/pickup_store.txt",
        St.PICKUP_TIME: "chat/local/hints/pickup_time.txt",
        St.DELIVERY_ADDRESS: "chat/local/hints/delivery_address.txt",
        St.DELIVERY_CONTACT: "chat/local/hints/delivery_contact.txt",
        St.DELIVERY_SLOT: "chat/local/hints/delivery_slot.txt",
    },
    free_text=frozenset({St.DELIVERY_CONTACT}),
)
