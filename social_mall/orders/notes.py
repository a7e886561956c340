"""Order notes from modules: lines a module adds under an order wherever the core shows it
— the chat's order detail (「我的订单」 → a number), the H5 pay/order page and the console's
order page — e.g. the VAT inside a tax-inclusive total, per rate.

A module registers `note(uow, tenant, order) → str` with `registry.add_order_note(note)`
("" for none; may hold several lines; plain text, escaped on HTML pages). The composition
root hands the enabled modules' notes to every unit of work (`uow.order_notes`), so a
switched-off module adds nothing and the pages read exactly as before. A note runs on every
order page shown: keep it to a query or two, and say nothing for orders it has no say on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from social_mall.views import OrderView
    from storage.uow import UnitOfWork

OrderNote = Callable[["UnitOfWork", int, "OrderView"], Awaitable[str]]


async def order_notes(uow: UnitOfWork, tenant: int, order: OrderView) -> tuple[str, ...]:
    """The registered notes for `order`, in registration order (empty ones left out)."""
    out: list[str] = []
    for note in uow.order_notes:
        text = (await note(uow, tenant, order)).strip()
        if text:
            out.append(text)
    return tuple(out)
