"""Fulfilment methods: how an order reaches the buyer, and what that costs.

The core knows one method, express delivery to a saved address (`EXPRESS`, the flat fee
of orders.rules.shipping_fee). Modules register others with
`registry.add_fulfilment(method)` (store pick-up, same-city delivery…), or replace
"express" itself (shipping-fee templates). Checkout offers the methods whose `offered`
says yes for the lines, the buyer picks one, the method's own chat flow asks for its
details, and `place_order(..., fulfilment=(method, choice))` prices the order with the
method's `quote` (the fee goes through the pricing pipeline once, as shipping) and calls
`placed` in the same unit of work (a delivery slot taken, a store recorded), so a
refusal there rolls the whole order back.

An order remembers its method's key (`orders.fulfilment`). Only "express" orders take a
tracking number (`ship_order`); an order handed over in person or by a rider is completed
with `orders.service.hand_over`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from social_mall.orders.rules import shipping_fee
from social_mall.pricing.rules import PriceLine
from social_mall.views import AddressView, OrderView
from storage.uow import UnitOfWork

EXPRESS = "express"

#: What a choice may carry: ids and short texts from the conversation, never prices.
Detail = Mapping[str, str | int]


@dataclass(frozen=True)
class Choice:
    """The buyer's pick: the method's key, its details, and the saved address when the
    method delivers to one."""

    method: str = EXPRESS
    detail: Detail = field(default_factory=dict)
    address_id: int | None = None


@dataclass(frozen=True)
class Destination:
    """A method's quote: the fee, the name/phone/address copied onto the order, and a
    line the confirmation shows (e.g. "门店自提：国贸店，10月1日 10:00–11:00")."""

    fee_fen: int
    name: str = ""
    phone: str = ""
    address: str = ""
    label: str = ""


class FulfilmentMethod(Protocol):
    key: str     # stored on the order; "express" is the core's
    label: str   # zh_CN, listed at checkout

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        """May these lines be fulfilled this way?"""
        ...

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine],
                    choice: Choice, address: AddressView | None, now: datetime) -> Destination:
        """The fee and destination, or a MallError saying why not (outside every zone,
        a region not served, a full slot…)."""
        ...

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, choice: Choice,
                     dest: Destination, now: datetime) -> None:
        """The order was written (same unit of work): take what the method holds for it."""
        ...


class Express:
    """The core's express delivery: a saved address, the flat fee (满99包邮)."""

    key = EXPRESS
    label = "快递配送"

    async def offered(self, uow: UnitOfWork, tenant: int, lines: Sequence[PriceLine]) -> bool:
        return True

    async def quote(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[PriceLine],
                    choice: Choice, address: AddressView | None, now: datetime) -> Destination:
        fee = shipping_fee(sum(line.base_fen for line in lines))
        if address is None:
            return Destination(fee)
        return Destination(fee, address.name, address.phone, address.detail)

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, choice: Choice,
                     dest: Destination, now: datetime) -> None:
        return None


EXPRESS_METHOD = Express()
