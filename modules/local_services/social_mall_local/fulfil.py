"""The module's fulfilment methods at checkout (social_mall/fulfilment.py's seam):

* `pickup` (门店自提 / 到店使用): pick a store (the member's own first), and for goods a
  pick-up time within the store's hours; free; the order's tickets carry that store.
* `express` replaced: the core's address steps, refused for products that may not ship,
  priced by the shipping-fee templates (shipping.py) when the tenant has any.
* `delivery` (同城配送): delivery.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from flows.checkout import ExpressCheckout
from flows.engine import Ctx, Data, Outcome, Say
from social_mall.errors import NoFulfilmentError
from social_mall.fulfilment import Choice, Destination
from social_mall.pricing.rules import PriceLine
from social_mall.members.service import list_addresses
from social_mall.views import AddressView, OrderView
from social_mall_local import delivery as D
from social_mall_local import products as P
from social_mall_local import shipping
from social_mall_local.errors import (
    BelowMinimumError, LocalError, NoPointError, OutsideZoneError, SlotGoneError,
)
from social_mall_local.geo import SHANGHAI, Point, at_local, distance_text, local_day
from social_mall_local.rules_delivery import Served
from social_mall_local.models import OrderFulfilment
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import StoreView, active_store, all_stores, member_store
from storage.uow import UnitOfWork

CHECKOUT_FLOW = "local_checkout"
PICKUP_LEAD = timedelta(minutes=30)   # the earliest pick-up: half an hour after ordering
PICKUP_DAYS = 3                       # times offered: today and the next two days
PICKUP_SLOTS = 8                      # at most this many times listed
STORES_LISTED = 9


class PickupTimeError(LocalError):
    """The pick-up time is not one the store offers (past, closed, too far ahead)."""

    code = "local_pickup_time"


class NotForPickupError(LocalError):
    code = "local_not_for_pickup"


async def line_settings(uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> list[P.ProductSettings]:
    rules = await P.settings_for(uow, tenant, [ln.product_id for ln in lines])
    return [rules[ln.product_id] for ln in lines]


def needs_time(settings: Sequence[P.ProductSettings]) -> bool:
    return any(s.kind == P.GOODS for s in settings)


async def stores_for_member(uow: UnitOfWork, tenant: int, member: int) -> list[StoreView]:
    mine = await member_store(uow, tenant, member)
    others = [s for s in await all_stores(uow, tenant) if s.active and (mine is None or s.id != mine.id)]
    return ([mine] if mine else []) + others[:STORES_LISTED - (1 if mine else 0)]


def pickup_times(store: StoreView, now: datetime) -> list[datetime]:
    """Hourly pick-up times the store is open at, from PICKUP_LEAD on, over PICKUP_DAYS."""
    first = now + PICKUP_LEAD
    out: list[datetime] = []
    for d in range(PICKUP_DAYS):
        day = local_day(now) + timedelta(days=d)
        for hour in range(24):
            at = at_local(day, hour * 60)
            if at >= first and store.hours.open_at(at) and store.hours.open_at(at + timedelta(minutes=59)):
                out.append(at)
                if len(out) >= PICKUP_SLOTS:
                    return out
    return out


def valid_pickup_time(store: StoreView, at: datetime, now: datetime) -> bool:
    """A time pickup_times offered (a few minutes' grace for the member's confirmation)."""
    local = at.astimezone(SHANGHAI)
    return (local.minute == 0 and now + PICKUP_LEAD - timedelta(minutes=15) <= at
            and local.date() < local_day(now) + timedelta(days=PICKUP_DAYS)
            and store.hours.open_at(at) and store.hours.open_at(at + timedelta(minutes=59)))


def time_text(at: datetime, now: datetime) -> str:
    local, today = at.astimezone(SHANGHAI), local_day(now)
    day = {0: "今天", 1: "明天", 2: "后天"}.get((local.date() - today).days, local.strftime("%m-%d"))
    end = (at + timedelta(hours=1)).astimezone(SHANGHAI)
    return f"{day} {local:%H:%M}-{end:%H:%M}"


class Pickup:
    key = P.PICKUP
    label = "门店自提 / 到店使用"

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        settings = await line_settings(uow, tenant, lines)
        return bool(settings) and all(P.PICKUP in s.allowed for s in settings)

    async def begin(self, ctx: Ctx, source: Data) -> Outcome:
        stores = await stores_for_member(ctx.uow, ctx.tenant_id, ctx.member.id)
        if not stores:
            raise NotForPickupError()
        say = Say("chat/local/checkout/pickup_stores.txt", {"stores": stores, "now": ctx.now})
        return Outcome((say,), {**source, "stores": [s.id for s in stores]}, to="pickup_store", flow=CHECKOUT_FLOW)

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine], choice: Choice,
                    address: AddressView | None, now: datetime) -> Destination:
        if not await self.offered(uow, tenant, lines):
            raise NotForPickupError()
        store_id = choice.detail.get("store")
        if not isinstance(store_id, int):
            raise NotForPickupError()
        store = await active_store(uow, tenant, store_id)
        label = f"门店自提：{store.name}（{store.address}）"
        if needs_time(await line_settings(uow, tenant, lines)):
            at = pickup_at(choice)
            if at is None or not valid_pickup_time(store, at, now):
                raise PickupTimeError()
            label += f"，{time_text(at, now)}"
        return Destination(0, "", "", f"门店自提：{store.name}（{store.address}）"[:200], label)

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, choice: Choice, dest: Destination,
                     now: datetime) -> None:
        store_id = choice.detail.get("store")
        assert isinstance(store_id, int)
        await LocalRepo(uow.session).add(OrderFulfilment(
            tenant_id=tenant, order_id=order.id, member_id=order.member_id, method=self.key, store_id=store_id,
            pickup_at=pickup_at(choice), fee_fen=0, status="placed", created_at=now))


def pickup_at(choice: Choice) -> datetime | None:
    minute = choice.detail.get("at")
    if not isinstance(minute, int):
        return None
    return datetime.fromtimestamp(minute * 60, SHANGHAI)


class Express(ExpressCheckout):
    """The core's express, refused for lines that may not ship (a pick-up-only product, a
    service); templates price it (shipping.py) once the tenant has one."""

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        return all(P.EXPRESS in s.allowed for s in await line_settings(uow, tenant, lines))

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine], choice: Choice,
                    address: AddressView | None, now: datetime) -> Destination:
        if not await self.offered(uow, tenant, lines):
            raise NoFulfilmentError()
        flat = await super().quote(uow, tenant, member, lines, choice, address, now)
        fee = await shipping.express_fee(uow, tenant, lines, address.detail) if address is not None else None
        return flat if fee is None else replace(flat, fee_fen=fee)


class Delivery:
    """同城配送: an address with coordinates (a saved one, or a location sent now), the
    store whose zone serves it, the distance tier's fee, a minimum order, a time slot
    taken atomically when the order is placed."""

    key = P.DELIVERY
    label = "同城配送"

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        settings = await line_settings(uow, tenant, lines)
        return bool(settings) and all(P.DELIVERY in s.allowed for s in settings) and await D.has_zones(uow, tenant)

    async def begin(self, ctx: Ctx, source: Data) -> Outcome:
        addrs = [a for a, _ in await D.delivery_addresses(ctx.uow, ctx.tenant_id, ctx.member.id)]
        say = Say("chat/local/checkout/delivery_address.txt", {"addrs": addrs})
        return Outcome((say,), {**source, "addrs": [a.id for a in addrs]}, to="delivery_address", flow=CHECKOUT_FLOW)

    async def _where(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine],
                     address: AddressView | None) -> tuple[Served, StoreView, Point]:
        if address is None:
            raise NoPointError()
        point = await D.address_point(uow, tenant, member, address.id)
        if point is None:
            raise NoPointError()
        where = await D.served(uow, tenant, point)
        if where is None:
            raise OutsideZoneError()
        goods = sum(ln.base_fen for ln in lines)
        if goods < where.zone.min_order_fen:
            raise BelowMinimumError(where.zone.min_order_fen, goods)
        return where, await active_store(uow, tenant, where.zone.store_id), point

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine], choice: Choice,
                    address: AddressView | None, now: datetime) -> Destination:
        if not await self.offered(uow, tenant, lines):
            raise NoFulfilmentError()
        where, store, _ = await self._where(uow, tenant, member, lines, address)
        key = choice.detail.get("slot")
        slot = await D.store_slot(uow, tenant, store, key, now) if isinstance(key, int) else None
        if slot is None:
            raise SlotGoneError()
        assert address is not None
        label = (f"同城配送：{store.name}发出，距离 {distance_text(where.distance_m)}，"
                 f"送达时段 {slot_text(slot.starts, slot.end_min - slot.start_min, now)}")
        return Destination(where.fee_fen, address.name, address.phone, address.detail, label)

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, choice: Choice, dest: Destination,
                     now: datetime) -> None:
        addr_id = choice.detail.get("addr")
        address = next((a for a in await list_addresses(uow, tenant, order.member_id) if a.id == addr_id), None)
        priced = [PriceLine(ln.sku_id, 0, 0, ln.price_fen, ln.qty) for ln in order.lines]
        where, store, point = await self._where(uow, tenant, order.member_id, priced, address)
        key = choice.detail.get("slot")
        slot = await D.store_slot(uow, tenant, store, key, now) if isinstance(key, int) else None
        if slot is None:
            raise SlotGoneError()
        use_id = await D.take_slot(uow, tenant, store.id, slot)
        await LocalRepo(uow.session).add(OrderFulfilment(
            tenant_id=tenant, order_id=order.id, member_id=order.member_id, method=self.key, store_id=store.id,
            pickup_at=slot.starts, lat_e6=point.lat_e6, lng_e6=point.lng_e6, distance_m=where.distance_m,
            fee_fen=where.fee_fen, slot_id=use_id, status=D.PLACED, created_at=now))


def slot_text(starts: datetime, minutes: int, now: datetime) -> str:
    local, today = starts.astimezone(SHANGHAI), local_day(now)
    day = {0: "今天", 1: "明天", 2: "后天"}.get((local.date() - today).days, local.strftime("%m-%d"))
    end = (starts + timedelta(minutes=minutes)).astimezone(SHANGHAI)
    return f"{day} {local:%H:%M}-{end:%H:%M}"


PICKUP = Pickup()
EXPRESS = Express()
DELIVERY = Delivery()
