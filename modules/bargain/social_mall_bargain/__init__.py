"""social_mall's bargain module (砍价): a merchant sets up bargain campaigns on a product's
SKU in the console (floor price, helps needed, validity, stock, helps a friend may give a
day, how long a helper must have followed the account); a member starts a bargain in chat
(「砍价」), shares its card or QR code, and every friend's help (the card's QR scene or
「帮砍 <code>」) cuts a precomputed random amount, the floor reached exactly at the N-th
help; the member buys at the price reached at any time (「砍价购买」), one order per
bargain; an expired bargain ends.

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Its tables live on their own
Alembic branch (`migrations/`, label "bargain"). How the cuts are drawn: rules.py and
docs/bargain.md.
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "bargain"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_bargain.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "砍价: bargains with friends, the price cut to a floor in N helps, bought at the price reached",
    migrations=HERE / "migrations",
    models="social_mall_bargain.models",
)
