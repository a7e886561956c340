"""social_mall's after-sale module (售后): a member asks for a refund or a return of some
lines of an order in chat (「申请售后」: lines and quantities, a numbered reason, photos as
image messages), sends the return's tracking number in chat and is told of every step; the
merchant works a queue in the console (approve or reject with a reason, receive the goods,
optionally back to sellable stock, refund). Refunds go through the core's refund path
(`request_refund`: audited, idempotent, never more than paid) for what the chosen units
really paid after promotions, coupons and points. Timers: an unanswered request is approved
after N days; a return not sent back within N days closes.

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Its tables live on their own Alembic
branch (`migrations/`, label "after_sale")."""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "after_sale"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_after_sale.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "After-sale: refund and return requests in chat, the console queue, partial refunds per line, timers",
    migrations=HERE / "migrations",
    models="social_mall_after_sale.models",
)
