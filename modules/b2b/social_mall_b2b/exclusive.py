"""Products sold to business accounts only (企业专供), through the core's visibility seam
(social_mall/catalog/visibility.py): the merchant marks a product in the console (价格表与起订量
→ 企业专供商品, audited); the buyers and owner of an approved company see and buy it as any
other; everyone else (consumers, applicants under review, visitors) never meets it: not in
lists, searches, suggestions, recommendations, the card or the H5 page (not found), and the
cart and every order refuse it with 「企业采购专供」, nothing written.

`hidden` reads the tenant's exclusive products kept per worker (kept.py; none at all:
done) and, when there are some, whether the member is a business member at all (kept per
worker: accounts.business_member; a consumer costs no query) and only then its company."""

from __future__ import annotations

from sqlalchemy import delete, select

from social_mall.errors import NotFoundError
from social_mall_b2b.accounts import approved_company, business_member
from social_mall_b2b.kept import kept
from social_mall_b2b.models import ExclusiveProduct
from storage.models import Product
from storage.uow import UnitOfWork


async def exclusive_ids(uow: UnitOfWork, tenant: int, *, fresh: bool = False) -> frozenset[int]:
    """The tenant's products sold to business accounts only, kept per worker (`kept`: the
    module watches the table, so a mark committed here is seen at once, elsewhere within
    the read cache's ttl, like a catalog edit); `fresh`: from the database."""
    async def load() -> frozenset[int]:
        rows = await uow.session.scalars(select(ExclusiveProduct.product_id)
                                         .where(ExclusiveProduct.tenant_id == tenant))
        return frozenset(rows.all())

    return await load() if fresh else await kept(uow, ("b2b.exclusive", tenant), load)


class ExclusiveVisibility:
    """What the module registers (registry.add_product_visibility)."""

    async def hidden(self, uow: UnitOfWork, tenant: int, member: int | None) -> frozenset[int]:
        ids = await exclusive_ids(uow, tenant)
        if not ids or (member is not None and await business_member(uow, tenant, member)
                       and await approved_company(uow, tenant, member) is not None):
            return frozenset()
        return ids


VISIBILITY = ExclusiveVisibility()


async def set_exclusive(uow: UnitOfWork, tenant: int, product_id: int, on: bool, actor: str) -> bool:
    """Mark (or unmark) a product of this tenant as sold to business accounts only; audited.
    True when it changed. A product of another tenant reads as not found."""
    found = await uow.session.scalar(select(Product.id).where(Product.tenant_id == tenant, Product.id == product_id))
    if found is None:
        raise NotFoundError("product", product_id)
    now_on = product_id in await exclusive_ids(uow, tenant, fresh=True)
    if now_on == on:
        return False
    if on:
        uow.session.add(ExclusiveProduct(tenant_id=tenant, product_id=product_id))
    else:
        await uow.session.execute(delete(ExclusiveProduct).where(ExclusiveProduct.tenant_id == tenant,
                                                                 ExclusiveProduct.product_id == product_id))
    await uow.session.flush()
    uow.audit(tenant, actor, "b2b.exclusive_on" if on else "b2b.exclusive_off", f"product:{product_id}",
              before={"exclusive": now_on}, after={"exclusive": on})
    return True


async def listed(uow: UnitOfWork, tenant: int) -> list[tuple[int, str]]:
    """The exclusive products (id, title), for the console."""
    rows = await uow.session.execute(
        select(Product.id, Product.title).join(ExclusiveProduct, ExclusiveProduct.product_id == Product.id)
        .where(ExclusiveProduct.tenant_id == tenant, Product.tenant_id == tenant).order_by(Product.id))
    return [(i, t) for i, t in rows.all()]
