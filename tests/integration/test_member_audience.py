"""members.audience (both backends): every member with an identity on the channel, once
each; a loyalty level; the buyers of a category (paid orders only); another tenant's members
never; channel_ids for recorded members."""

from __future__ import annotations

from sqlalchemy import delete, select

from social_mall.members.audience import audience, channel_ids
from social_mall.members.service import resolve_member
from storage.loyalty_models import LoyaltyAccount
from storage.models import Product, Sku
from tests.fakes.console_kit import make_tenant, paid_order


async def test_the_audience_of_a_segment(backend, engine, uows, demo):
    async with uows() as uow:
        a, _ = await resolve_member(uow, demo.id, "mp", "oAud_member_a_000000000001")
        b, _ = await resolve_member(uow, demo.id, "mp", "oAud_member_b_000000000001")
        await resolve_member(uow, demo.id, "wecom", "wecom_user_only")
        await uow.commit()
        sku = await uow.session.scalar(select(Sku.id).where(Sku.tenant_id == demo.id).order_by(Sku.id).limit(1))
        category = await uow.session.scalar(select(Product.category_id).join(Sku, Sku.product_id == Product.id)
                                            .where(Sku.id == sku))
    await paid_order(uows, demo.id, "oAud_member_a_000000000001", sku_id=sku)
    other = await make_tenant(uows, "elsewhere")
    await paid_order(uows, other, "oAud_member_z_000000000001")
    async with uows() as uow:
        everyone = await audience(uow, demo.id, "mp")
        assert everyone == [(a.id, "oAud_member_a_000000000001"), (b.id, "oAud_member_b_000000000001")]
        assert await audience(uow, demo.id, "mp", bought_category=category) == [(a.id, "oAud_member_a_000000000001")]
        assert await audience(uow, demo.id, "mp", bought_category=category + 10_000) == []
        assert await audience(uow, demo.id, "mp", level="黄金") == []
        await uow.session.execute(delete(LoyaltyAccount).where(LoyaltyAccount.member_id == b.id))
        uow.session.add(LoyaltyAccount(tenant_id=demo.id, member_id=b.id, level="黄金"))
        await uow.session.flush()
        assert await audience(uow, demo.id, "mp", level="黄金") == [(b.id, "oAud_member_b_000000000001")]
        assert await channel_ids(uow, demo.id, "mp", [b.id, a.id, a.id, 999_999]) == everyone


async def test_the_buyers_of_a_product_and_the_members_with_an_address_in_a_city(backend, engine, uows, demo):
    from storage.models import Address

    async with uows() as uow:
        a, _ = await resolve_member(uow, demo.id, "mp", "oAud_member_p_000000000001")
        b, _ = await resolve_member(uow, demo.id, "mp", "oAud_member_q_000000000001")
        uow.session.add(Address(tenant_id=demo.id, member_id=b.id, name="王小明", phone="13912345678",
                                detail="四川省成都市武侯区天府大道1号"))
        uow.session.add(Address(tenant_id=demo.id, member_id=a.id, name="李雷", phone="13912345679",
                                detail="上海市黄浦区南京东路100%号_"))
        await uow.commit()
        sku, product = (await uow.session.execute(select(Sku.id, Sku.product_id).where(Sku.tenant_id == demo.id)
                                                  .order_by(Sku.id).limit(1))).one()
    await paid_order(uows, demo.id, "oAud_member_p_000000000001", sku_id=sku)
    async with uows() as uow:
        assert await audience(uow, demo.id, "mp", bought_product=product) == [(a.id, "oAud_member_p_000000000001")]
        assert await audience(uow, demo.id, "mp", bought_product=product + 10_000) == []
        assert await audience(uow, demo.id, "mp", address_contains="成都") == [(b.id, "oAud_member_q_000000000001")]
        assert await audience(uow, demo.id, "mp", address_contains="%") == [(a.id, "oAud_member_p_000000000001")]
        assert await audience(uow, demo.id, "mp", address_contains="拉萨") == []
