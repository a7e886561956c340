"""The seckill price through the core's unit-price seam (social_mall/pricing/unit.py).

The price applies only to the order an admitted request writes: `buying.buy` sets the
admission it holds (`BUYING`, a context variable: this request's task only) around
`place_order`, so the pricer prices that SKU at the seckill price for that member, with no
promotion on top (no member level, flash price, 满减, coupon or points), and nothing for
anyone else (a product card, another member's checkout, the same member's ordinary
checkout: the retail price as always). `placed` counts the order against the item's stock
and the member's limit in the database, in the order's transaction (refusing rolls the
order back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from social_mall.fulfilment import Choice, Destination, Express
from social_mall.pricing.rules import PriceLine
from social_mall.pricing.unit import UnitPrice, Wanted
from social_mall.views import AddressView, OrderView
from social_mall_seckill import service
from social_mall_seckill.errors import SoldOutError
from storage.uow import UnitOfWork

LABEL = "秒杀价"


@dataclass(frozen=True)
class Buying:
    tenant: int
    member: int
    item_id: int
    sku_id: int
    price_fen: int
    qty: int
    title: str
    token: str
    pay_by: datetime


BUYING: ContextVar[Buying | None] = ContextVar("seckill_buying", default=None)


def _mine(tenant: int, member: int) -> Buying | None:
    b = BUYING.get()
    return b if b is not None and b.tenant == tenant and b.member == member else None


class SeckillPricer:
    key = "seckill"

    async def prices(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted],
                     now: datetime) -> Mapping[int, UnitPrice]:
        b = _mine(tenant, member)
        if b is None:
            return {}
        return {w.sku_id: UnitPrice(b.price_fen, LABEL) for w in lines if w.sku_id == b.sku_id}

    async def check(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted], now: datetime) -> None:
        return None

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> None:
        b = _mine(tenant, order.member_id)
        if b is None:
            return
        line = next((ln for ln in order.lines if ln.sku_id == b.sku_id), None)
        if line is None or line.price_fen != b.price_fen or line.qty != b.qty:
            raise SoldOutError(b.title)   # never a seckill order at another price or quantity
        await service.guard(uow, tenant, b.member, b.item_id, b.qty, order_id=order.id, token=b.token,
                            pay_by=b.pay_by, title=b.title)

    async def max_qty(self, uow: UnitOfWork, tenant: int, member: int) -> int:
        return 0

    async def passive(self, uow: UnitOfWork, tenant: int, member: int) -> bool:
        """Nothing to say outside this member's admitted write (the core's order desk may
        then write the member's ordinary order)."""
        return _mine(tenant, member) is None


PRICER = SeckillPricer()


class FreeExpress(Express):
    """Express at no fee (秒杀包邮): the order's total is the seckill price and nothing else."""

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine],
                    choice: Choice, address: AddressView | None, now: datetime) -> Destination:
        if address is None:
            return Destination(0)
        return Destination(0, address.name, address.phone, address.detail)


FREE_EXPRESS = FreeExpress()
