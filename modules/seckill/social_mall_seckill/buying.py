"""The contended path: a member's attempt on an item.

    attempt → session open? (item cached 1 s) → rate limit per member → one in flight
            → (new members barred?) → admission (one atomic step: stock + limit)
            → admitted: place_order at the seckill price in its own transaction
              (the database guards stock and limit again) → confirm the reservation
            → refused: SoldOutError / OverLimitError at once, no database work.

An order that fails to write gives its reservation back at once; a worker that dies in
between leaves a reservation that expires in ADMIT_HOLD_SECONDS.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from social_mall.admission import PoolTruth, Verdict
from social_mall.fulfilment import Choice
from social_mall.members.service import list_addresses
from social_mall.orders.service import place_order
from social_mall.pricing.service import NONE, PricingInput
from social_mall.views import OrderView
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

META_SECONDS = 1.0
SETTINGS_SECONDS = 5.0

class Desk:
    """One worker's front desk for seckill attempts: the composition root's services and
    this worker's short-lived copies of items and settings (made by module.setup)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._meta: dict[tuple[int, int], tuple[float, service.SessionView, service.ItemView]] = {}
        self._settings: dict[int, tuple[float, service.Settings]] = {}

    def forget(self, tenant: int) -> None:
        """Drop the cached items and settings of a tenant (after a console edit)."""
        for key in [k for k in self._meta if k[0] == tenant]:
            del self._meta[key]
        self._settings.pop(tenant, None)

    async def item_meta(self, tenant: int, item_id: int) -> tuple[service.SessionView, service.ItemView]:
        """The item and its session, read at most once a second (a crowd's attempts share
        it; its stock figures decide nothing)."""
        hit = self._meta.get((tenant, item_id))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        async with self.svc.uows() as uow:
            s, it = await service.item(uow, tenant, item_id)
        self._meta[(tenant, item_id)] = (time.monotonic() + META_SECONDS, s, it)
        return s, it

    async def tenant_settings(self, tenant: int) -> service.Settings:
        hit = self._settings.get(tenant)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.svc.uows() as uow:
            found = await service.settings(uow, tenant)
        self._settings[tenant] = (time.monotonic() + SETTINGS_SECONDS, found)
        return found

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
        mark = BUYING.set(b)
        try:
            async with svc.uows() as uow:
                if address_id is None:   # the member's default: looked up by the admitted only
                    saved = await list_addresses(uow, tenant, member)
                    if not saved:
                        raise NoAddressError()
                    address_id = saved[0].id
                order = await place_order(
                    uow, tenant, member, [(it.sku_id, qty)], address_id=address_id, now=now,
                    timeout=timedelta(minutes=s.pay_minutes) + PAY_GRACE, channel=channel,
                    source=f"seckill:{item_id}", pricing=PricingInput(NONE, 0),
                    fulfilment=(FREE_EXPRESS, Choice(FREE_EXPRESS.key)))
                await uow.commit()
        except SoldOutError:
            # memory admitted what the database no longer had (a reservation lost with a
            # Redis restart, a confirm that could not reach it): rebuild it from the truth
            await svc.admission.release(tenant, name, admit.token)
            await svc.admission.rebuild(tenant, name, loader(svc, tenant, item_id), force=True)
            raise
        except BaseException:
            await svc.admission.release(tenant, name, admit.token)
            raise
        finally:
            BUYING.reset(mark)
        try:
            await svc.admission.confirm(tenant, name, admit.token, member, qty, hold_until=deadline + PAY_GRACE)
        except Exception:  # noqa: BLE001 - memory unreachable: the order stands; a rebuild reads it from the database
            log.warning("seckill.confirm_failed", extra={"tenant": tenant, "order_id": order.id})
        svc.outbox.kick()
        return order
    finally:
        try:
            await svc.kv.delete(busy)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("seckill.busy_not_cleared", extra={"tenant": tenant})
