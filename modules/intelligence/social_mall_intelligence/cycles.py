"""Repurchase cycles in the console (推荐效果 → 复购周期): the nightly estimates
(recommend.cycles, stored by the retrain) beside the merchant's marks: a product is a
consumable with its cycle in days, a durable, or back to the estimate (the mark removed).
Serving reads the marks with the member's purchases (recommendations.last_bought)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from social_mall.console.errors import InvalidInputError
from social_mall_intelligence.models import Cycle, CycleMark
from social_mall_intelligence.recommendations import dialect_insert
from storage.models import Product
from storage.uow import UnitOfWork

MAX_CYCLE_DAYS = 365   # the longest cycle the merchant may set


async def marks(uow: UnitOfWork, tenant: int) -> dict[int, CycleMark]:
    """The merchant's consumable/durable marks."""
    return {m.product_id: m for m in (await uow.session.scalars(
        select(CycleMark).where(CycleMark.tenant_id == tenant))).all()}


async def set_mark(uow: UnitOfWork, tenant: int, actor: str, product: int, kind: str, days: int,
                   now: datetime) -> None:
    """kind: consumable (with its cycle, 1–MAX_CYCLE_DAYS days), durable, or auto (the
    estimate again: the mark removed). Audited."""
    if await uow.session.scalar(select(Product.id).where(Product.tenant_id == tenant, Product.id == product)) is None:
        raise InvalidInputError("product", "unknown")
    if kind not in ("consumable", "durable", "auto"):
        raise InvalidInputError("kind", "unknown")
    if kind == "consumable" and not 1 <= days <= MAX_CYCLE_DAYS:
        raise InvalidInputError("days", "range")
    row = await uow.session.get(CycleMark, (tenant, product), populate_existing=True)
    before: dict[str, object] | None = {"consumable": row.consumable, "days": row.days} if row is not None else None
    after: dict[str, object] | None = None
    if kind == "auto":
        await uow.session.execute(delete(CycleMark).where(CycleMark.tenant_id == tenant,
                                                          CycleMark.product_id == product))
    else:   # an upsert: two people saving the same product at once both succeed, the later wins
        after = {"consumable": kind == "consumable", "days": days if kind == "consumable" else 0}
        values = {**after, "updated_by": actor[:64], "updated_at": now}
        await uow.session.execute(dialect_insert(uow)(CycleMark).values(tenant_id=tenant, product_id=product, **values)
                                  .on_conflict_do_update(index_elements=["tenant_id", "product_id"], set_=values))
    uow.audit(tenant, actor, "intel.cycle.mark", f"product:{product}", before=before, after=after)
    await uow.session.flush()


@dataclass(frozen=True)
class CycleRow:
    product_id: int
    title: str
    estimated: float | None   # days (the nightly estimate), None: a durable by the data
    mark: CycleMark | None


async def cycle_rows(uow: UnitOfWork, tenant: int, limit: int = 200) -> list[CycleRow]:
    """The console's list: every marked product and every estimated consumable."""
    est = {p: d for p, d in (await uow.session.execute(
        select(Cycle.product_id, Cycle.days).where(Cycle.tenant_id == tenant))).all()}
    marked = await marks(uow, tenant)
    ids = sorted(set(est) | set(marked))[:limit]
    titles = {p: t for p, t in (await uow.session.execute(
        select(Product.id, Product.title).where(Product.tenant_id == tenant, Product.id.in_(ids)))).all()} if ids else {}
    return [CycleRow(p, titles.get(p, f"#{p}"), est.get(p), marked.get(p)) for p in ids if p in titles]
