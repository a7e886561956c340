"""The contended path: a member's attempt on an item.

    attempt → session open? (item cached 1 s) → rate limit per member → one in flight
            → (new members barred?) → admission (one atomic step: stock + limit)
            → admitted: the order at the seckill price, written with the other admitted
              orders of the moment in one transaction (`Desk.orders`: the core's batched
              order write, orders/desk.py, then the lot's guard in a few statements; the
              database guards stock and limit again) → confirm the reservation
            → refused: SoldOutError / OverLimitError at once, no database work.

A lot the database refuses as a whole (stock or a limit reached there, a member twice in
the lot, stock moved) is rolled back and each of its orders written alone through
place_order with the seckill pricer (`guard` in the order's transaction), as before the
lot. An order that fails to write gives its reservation back at once; a worker that dies in
between leaves a reservation that expires in ADMIT_HOLD_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from social_mall.admission import PoolTruth, Verdict
from social_mall.desk import BatchFailed
from social_mall.desk import Desk as Lots
from social_mall.errors import MallError
from social_mall.fulfilment import Choice
from social_mall.members.service import list_addresses
from social_mall.orders.desk import PlaceRequest, place_lot
from social_mall.orders.entrance import entrance
from social_mall.orders.service import place_order
from social_mall.pricing.rules import PriceLine, PricingContext, price
from social_mall.pricing.service import NONE, PricingInput
from social_mall.views import OrderView
from storage.uow import UnitOfWork
from social_mall_seckill import service
from social_mall_seckill.errors import (
    BusyAgainError, BusyError, EndedError, NewMemberError, NoAddressError, NotStartedError, OverLimitError,
    SoldOutError, TooFastError,
)
from social_mall_seckill.prices import BUYING, FREE_EXPRESS, Buying
from social_mall_seckill.rules import ADMIT_HOLD_SECONDS, BUSY_SECONDS, PAY_GRACE, Phase, pay_by, pool

if TYPE_CHECKING:
    from handlers.context import Services

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

META_SECONDS = 1.0
SETTINGS_SECONDS = 5.0

class _Shared(Generic[K, V]):
    """Values read at most once per `ttl` seconds per key, whatever the crowd: a miss loads
    once and every caller meanwhile awaits that load; a stale value is served while one
    refresh runs (a crowd never stampedes the database when an entry expires)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def forget(self, match: Callable[[K], bool]) -> None:
        for key in [k for k in self._values if match(k)]:
            del self._values[key]

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, load))
        if hit is not None:
            return hit[1]             # stale while the refresh runs
        return await asyncio.shield(pending)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await load()
            self._values[key] = (time.monotonic() + self.ttl, value)
            return value
        finally:
            self._loading.pop(key, None)


@dataclass(frozen=True)
class Win:
    """An admitted request: the order to write."""

    b: Buying
    product_id: int
    address_id: int
    channel: str
    now: datetime
    timeout: timedelta
    # the channel account the attempt came through, taken in the member's task (the lot is
    # written in the desk's): the order is paid at the merchant linked to it
    account: int | None = field(default_factory=entrance)


def _request(w: Win) -> PlaceRequest:
    b = w.b
    # what place_order + the pricer write for it: the seckill price with no promotion
    # (a fixed line), free express, no coupon or points
    quoted = price([PriceLine(b.sku_id, w.product_id, 0, b.price_fen, b.qty, fixed=True)], 0, PricingContext())
    return PlaceRequest(b.tenant, b.member, ((b.sku_id, b.qty),), w.address_id, w.now, w.timeout,
                        channel=w.channel, source=f"seckill:{b.item_id}", unit_prices=((b.sku_id, b.price_fen),),
                        pricing=PricingInput(NONE, 0), fulfilment=(FREE_EXPRESS, Choice(FREE_EXPRESS.key)),
                        breakdown=quoted, account_id=w.account)


async def write_lot(uow: UnitOfWork, wins: Sequence[Win]) -> list[OrderView | MallError]:
    """The lot's orders through the core's batched write, then their guard: uncommitted;
    BatchFailed (the lot goes one by one) when the database refuses any."""
    placed = await place_lot(uow, [_request(w) for w in wins])
    by_tenant: dict[int, list[service.Won]] = {}
    for w, got in zip(wins, placed):
        if isinstance(got, OrderView):
            by_tenant.setdefault(w.b.tenant, []).append(
                service.Won(w.b.member, w.b.item_id, w.b.qty, got.id, w.b.token, w.b.pay_by))
    for tenant, won in by_tenant.items():
        if not await service.guard_many(uow, tenant, won):
            raise BatchFailed("the database refused part of the lot")
    return placed


async def write_alone(uow: UnitOfWork, w: Win) -> OrderView:
    """One order through place_order with the seckill pricer, as before the lot."""
    mark = BUYING.set(w.b)
    try:
        return await place_order(
            uow, w.b.tenant, w.b.member, [(w.b.sku_id, w.b.qty)], address_id=w.address_id, now=w.now,
            timeout=w.timeout, channel=w.channel, source=f"seckill:{w.b.item_id}", pricing=PricingInput(NONE, 0),
            fulfilment=(FREE_EXPRESS, Choice(FREE_EXPRESS.key)), account_id=w.account)
    finally:
        BUYING.reset(mark)


class Desk:
    """One worker's front desk for seckill attempts: the composition root's services and
    this worker's short-lived copies of items and settings (made by module.setup)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._meta: _Shared[tuple[int, int], tuple[service.SessionView, service.ItemView]] = _Shared(META_SECONDS)
        self._settings: _Shared[int, service.Settings] = _Shared(SETTINGS_SECONDS)
        self._orders: Lots[Win, OrderView] | None = None
        # the message's task → (tenant, member, item, qty) → the order this attempt wrote:
        # the chat runner runs a step again, in the same task, when another message of the
        # member moved the conversation meanwhile; the step's attempt then answers with the
        # order it wrote instead of trying again (and hearing 「限购」). Gone with the task.
        self.won: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[tuple[int, int, int, int], OrderView]] = \
            weakref.WeakKeyDictionary()

    @property
    def orders(self) -> Lots[Win, OrderView]:
        """The admitted requests' orders, written in lots (social_mall/desk.py); made on
        first use (the services' database is open by then)."""
        if self._orders is None:
            self._orders = Lots("seckill.orders", self.svc.uows, write_lot, write_alone)
        return self._orders

    def forget(self, tenant: int) -> None:
        """Drop the cached items and settings of a tenant (after a console edit)."""
        self._meta.forget(lambda k: k[0] == tenant)
        self._settings.forget(lambda k: k == tenant)

    async def item_meta(self, tenant: int, item_id: int) -> tuple[service.SessionView, service.ItemView]:
        """The item and its session, read at most once a second (a crowd's attempts share
        it; its stock figures decide nothing)."""
        async def load() -> tuple[service.SessionView, service.ItemView]:
            async with self.svc.uows() as uow:
                return await service.item(uow, tenant, item_id)
        return await self._meta.get((tenant, item_id), load)

    async def tenant_settings(self, tenant: int) -> service.Settings:
        async def load() -> service.Settings:
            async with self.svc.uows() as uow:
                return await service.settings(uow, tenant)
        return await self._settings.get(tenant, load)

    async def buy(self, tenant: int, member: int, item_id: int, qty: int, *, address_id: int | None, channel: str,
                  now: datetime) -> OrderView:
        return await buy(self, tenant, member, item_id, qty, address_id=address_id, channel=channel, now=now)


def loader(svc: Services, tenant: int, item_id: int):  # type: ignore[no-untyped-def]
    async def load() -> PoolTruth:
        async with svc.uows() as uow:
            return await service.truth(uow, tenant, item_id)
    return load


async def buy(desk: Desk, tenant: int, member: int, item_id: int, qty: int, *, address_id: int | None, channel: str,
              now: datetime) -> OrderView:
    """Try to buy `qty` of the item for `member`, shipping to a saved address (None: the
    member's default, looked up only once admitted; none saved: NoAddressError, the
    reservation given back): the order (pending payment, the seckill price, the session's
    payment window) or a SeckillError."""
    svc = desk.svc
    key = (tenant, member, item_id, qty)
    task = asyncio.current_task()
    recent = desk.won.get(task, {}).get(key) if task is not None else None
    if recent is not None:
        return recent
    s, it = await desk.item_meta(tenant, item_id)
    p = s.phase(now)
    if p == Phase.UPCOMING or not s.enabled:
        raise NotStartedError(it.title, s.starts_at)
    if p == Phase.ENDED:
        raise EndedError(it.title)
    if qty > it.limit:
        raise OverLimitError(it.title, it.limit)
    st = await desk.tenant_settings(tenant)
    if await svc.kv.incr(f"seckill:rate:{tenant}:{member}", 60) > st.attempts_per_minute:
        raise TooFastError()
    busy = f"seckill:busy:{tenant}:{member}"
    if not await svc.kv.set_nx(busy, "1", BUSY_SECONDS):
        raise BusyError()
    try:
        if st.new_member_minutes:
            async with svc.uows() as uow:
                joined = await service.member_joined(uow, tenant, member)
            if joined is None or joined > now - timedelta(minutes=st.new_member_minutes):
                raise NewMemberError(st.new_member_minutes)
        name = pool(item_id)
        admit = await svc.admission.reserve(tenant, name, member, qty, now=now, hold_seconds=ADMIT_HOLD_SECONDS,
                                            loader=loader(svc, tenant, item_id))
        if admit.verdict == Verdict.SOLD_OUT:
            raise SoldOutError(it.title)
        if admit.verdict == Verdict.OVER_LIMIT:
            raise OverLimitError(it.title, it.limit)
        if not admit.admitted:
            raise BusyAgainError()
        deadline = pay_by(now, s.pay_minutes)
        b = Buying(tenant, member, item_id, it.sku_id, it.price_fen, qty, it.title, admit.token, deadline)
        try:
            if address_id is None:   # the member's default: looked up by the admitted only
                async with svc.uows() as uow:
                    saved = await list_addresses(uow, tenant, member)
                if not saved:
                    raise NoAddressError()
                address_id = saved[0].id
            order = await desk.orders.submit(Win(b, it.product_id, address_id, channel, now,
                                                 timedelta(minutes=s.pay_minutes) + PAY_GRACE))
        except SoldOutError:
            # memory admitted what the database no longer had (a reservation lost with a
            # Redis restart, a confirm that could not reach it): rebuild it from the truth
            await svc.admission.release(tenant, name, admit.token)
            await svc.admission.rebuild(tenant, name, loader(svc, tenant, item_id), force=True)
            raise
        except BaseException:
            await svc.admission.release(tenant, name, admit.token)
            raise
        try:
            await svc.admission.confirm(tenant, name, admit.token, member, qty, hold_until=deadline + PAY_GRACE)
        except Exception:  # noqa: BLE001 - memory unreachable: the order stands; a rebuild reads it from the database
            log.warning("seckill.confirm_failed", extra={"tenant": tenant, "order_id": order.id})
        svc.outbox.kick()
        if task is not None:
            desk.won.setdefault(task, {})[key] = order
        return order
    finally:
        try:
            await svc.kv.delete(busy)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("seckill.busy_not_cleared", extra={"tenant": tenant})
