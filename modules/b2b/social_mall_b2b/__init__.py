"""social_mall's B2B module (企业采购): business accounts beside retail customers, in the
same chat and member system. A member applies in chat (「企业采购」/「申请企业账户」) with the
company's name, 统一社会信用代码 (checked by GB 32100-2015), contact and invoice details;
an admin approves or rejects it in the console (audited, pushed to the applicant). An
approved company's members see and pay its price-list prices (企业价: per-SKU prices with
quantity tiers, or a percentage off retail; sale or override lists, per company or
customer group, with validity dates), and order within minimum quantities and case packs.
Consumers never see or get a B2B price.

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. It prices through the core's
unit-price seam (social_mall/pricing/unit.py). Its tables live on their own Alembic branch
(`migrations/`, label "b2b").
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "b2b"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_b2b.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "B2B wholesale: business accounts, price lists and quantity tiers, minimum order quantities and case packs",
    migrations=HERE / "migrations",
    models="social_mall_b2b.models",
)
