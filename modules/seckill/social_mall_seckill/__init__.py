"""social_mall's seckill module (秒杀): sessions at set times (10:00, 14:00, 20:00…) selling
items at a seckill price from a stock of their own, with a per-member limit and a payment
window of minutes. Chat 「秒杀」 shows the current and next sessions with countdowns;
「提醒我」 asks for a push at the start; at the start a member picks an item and a quantity
and gets a pay link, with the core's admission step (social_mall/admission.py) in front:
losers hear 「已抢光」 at once, with no database work.

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. It prices through the core's
unit-price seam (the seckill price, no promotion on top). Its tables live on their own
Alembic branch (`migrations/`, label "seckill").
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "seckill"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_seckill.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "秒杀: timed sessions, seckill price and stock, per-member limits, a short payment window",
    migrations=HERE / "migrations",
    models="social_mall_seckill.models",
)
