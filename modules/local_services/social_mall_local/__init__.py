"""social_mall's local-services module (本地生活): stores and location, store pick-up
(门店自提), same-city delivery (同城配送), express shipping-fee templates (运费模板),
verification codes (核销) for pick-ups, services and multi-use cards, and appointments (预约).

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Importing it costs nothing: its
flows, routes and services load in `setup`. Its tables live on their own Alembic branch
(`migrations/`, label "local_services"), applied by `bot.py migrate` while the package is
installed. How it plugs in: docs/modules.md.
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "local_services"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_local.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "Local services: stores, pick-up, same-city delivery, shipping-fee templates, verification codes, appointments",
    migrations=HERE / "migrations",
    models="social_mall_local.models",
)
