"""「该补货了」 as groups of members for segments (the core's `MemberGroups` seam,
`reg.add_member_groups`): members with a consumable due again, i.e. the products 猜你喜欢
would put first for them marked 「该补货了」 (the nightly cycles and the merchant's marks,
recommend.due), in any category (group 0) or in one. A module that builds segments and
sends campaigns (insights' 精准推送) then reminds them with its own rate limits, quiet
hours, weekly cap and 退订; this module sends nothing itself.

Never a member who switched personalisation off (PIPL Art. 24: a reminder inferred from
their purchases is a personalised recommendation)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from social_mall.members.audience import MemberGroups
from social_mall_intelligence import recommend as R
from social_mall_intelligence.models import Cycle, CycleMark, Interaction, MemberPrefs
from social_mall_intelligence.recommendations import _day
from storage.models import Category, Product
from storage.uow import UnitOfWork

ANY = 0   # the group of members with any consumable due


async def _consumables(uow: UnitOfWork, tenant: int) -> tuple[dict[int, float], set[int]]:
    """(product → cycle in days, the products whose cycle the merchant declared)."""
    cycle = {int(p): float(d) for p, d in (await uow.session.execute(
        select(Cycle.product_id, Cycle.days).where(Cycle.tenant_id == tenant))).all()}
    declared: set[int] = set()
    for p, consumable, days in (await uow.session.execute(select(CycleMark.product_id, CycleMark.consumable,
                                                                 CycleMark.days).where(CycleMark.tenant_id == tenant))).all():
        if consumable and days:
            cycle[int(p)] = float(days)
            declared.add(int(p))
        else:
            cycle.pop(int(p), None)
    return cycle, declared


async def options(uow: UnitOfWork, tenant: int) -> list[tuple[int, str]]:
    """Any consumable, then each category that has consumables (by name)."""
    cycle, _ = await _consumables(uow, tenant)
    if not cycle:
        return [(ANY, "任意常购品")]
    rows = await uow.session.execute(
        select(Category.id, Category.name).join(Product, Product.category_id == Category.id)
        .where(Category.tenant_id == tenant, Product.id.in_(list(cycle))).distinct().order_by(Category.name))
    return [(ANY, "任意常购品")] + [(int(i), f"{n}类常购品") for i, n in rows.all()][:300]


async def due_members(uow: UnitOfWork, tenant: int, now: datetime, category: int = ANY) -> set[int]:
    """Members with a consumable (of `category`; ANY: any) due again now."""
    cycle, declared = await _consumables(uow, tenant)
    if category != ANY and cycle:
        in_cat = set((await uow.session.scalars(select(Product.id).where(
            Product.tenant_id == tenant, Product.category_id == category, Product.id.in_(list(cycle))))).all())
        cycle = {p: d for p, d in cycle.items() if p in in_cat}
    if not cycle:
        return set()
    last: dict[int, dict[int, float]] = {}
    for m, p, at in (await uow.session.execute(
            select(Interaction.member_id, Interaction.product_id, func.max(Interaction.at))
            .where(Interaction.tenant_id == tenant, Interaction.product_id.in_(list(cycle)))
            .group_by(Interaction.member_id, Interaction.product_id))).all():
        last.setdefault(int(m), {})[int(p)] = _day(at)
    off = set((await uow.session.scalars(select(MemberPrefs.member_id).where(
        MemberPrefs.tenant_id == tenant, MemberPrefs.personalised.is_(False)))).all())
    today = _day(now)
    return {m for m, bought in last.items()
            if m not in off and R.due(bought, cycle, today, declared=declared)[0]}


def groups(now: Callable[[], datetime]) -> MemberGroups:
    """The registry's member groups, reading the app's clock when asked."""
    async def members(uow: UnitOfWork, tenant: int, category: int) -> set[int]:
        return await due_members(uow, tenant, now(), category)

    return MemberGroups("restock", "该补货了", options, members)
