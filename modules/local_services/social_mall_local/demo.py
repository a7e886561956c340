"""Demo data for `bot.py seed-demo`: three stores in Shanghai (GCJ-02 coordinates as
WeChat's location picker gives them), one open past midnight on Fridays and Saturdays.
Idempotent: a tenant that has stores gets none."""

from __future__ import annotations

from datetime import datetime, timezone

from social_mall.tenants import TenantView
from social_mall_local import products as P
from social_mall_local.geo import Point
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import StoreInput, save_store
from storage.uow import UnitOfWork

DAY = [[600, 1320]]                       # 10:00–22:00
LATE = [[600, 1560]]                      # 10:00–02:00 (past midnight)

STORES: tuple[tuple[str, str, str, Point, dict[str, list[list[int]]]], ...] = (
    ("陆家嘴店", "上海市浦东新区世纪大道8号国金中心商场B1", "021-50120001", Point(31_236_060, 121_502_870),
     {str(d): DAY for d in range(1, 8)}),
    ("人民广场店", "上海市黄浦区南京东路800号", "021-63220002", Point(31_235_470, 121_474_790),
     {**{str(d): DAY for d in range(1, 8)}, "5": LATE, "6": LATE}),
    ("徐家汇店", "上海市徐汇区虹桥路1号港汇恒隆广场3楼", "021-64070003", Point(31_195_110, 121_437_460),
     {str(d): DAY for d in range(1, 8)}),
)


async def seed_stores(uow: UnitOfWork, tenant: TenantView) -> None:
    if await LocalRepo(uow.session).count_stores(tenant.id):
        return
    for name, address, phone, point, hours in STORES:
        await save_store(uow, tenant.id, "seed-demo", StoreInput(
            name=name, address=address, phone=phone, point=point, hours=hours, exceptions={}, pictures=(),
            active=True))


#: demo products that may also be picked up or delivered in the city (products the core's
#: own tests don't buy, so the shop's express path stays as it was for the rest)
LOCAL_PRODUCTS = {"桂花乌龙": (P.EXPRESS, P.PICKUP, P.DELIVERY), "燕麦片": (P.PICKUP, P.DELIVERY)}


#: every demo store delivers within 5 km (¥5 up to 3 km, ¥8 up to 5 km, from ¥20), in three
#: daily slots of 10 orders each
TIERS = ((3000, 500), (5000, 800))
SLOTS = ((660, 720), (1080, 1140), (1140, 1200))


async def seed_delivery(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    from social_mall_local import delivery as D
    from social_mall_local.stores import all_stores

    repo = LocalRepo(uow.session)
    if await repo.zones(tenant.id):
        return
    for store in await all_stores(uow, tenant.id):
        await D.save_zone(uow, tenant.id, "seed-demo", D.ZoneInput(store.id, f"{store.name} 5 公里", "radius", 5000, (),
                                                                    TIERS, 2000, True), now)
        for start, end in SLOTS:
            await D.add_slot_templates(uow, tenant.id, "seed-demo", D.SlotInput(store.id, tuple(range(1, 8)), start, end,
                                                                                 10))


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    await seed_stores(uow, tenant)
    await seed_delivery(uow, tenant, now)
    from social_mall.catalog.service import list_products

    for title, methods in LOCAL_PRODUCTS.items():
        found = (await list_products(uow, tenant.id, keyword=title)).items
        if found and await LocalRepo(uow.session).product_rule(tenant.id, found[0].id) is None:
            await P.save_settings(uow, tenant.id, "seed-demo", P.ProductSettings(found[0].id, methods=methods))


#: the showcase's bookable service: a tea class at two stores, one tea master each
SERVICE = ("茶艺体验课", "60 分钟 · 一人一席", "茶饮冲调", 6800)
SERVICE_STORES = ("人民广场店", "陆家嘴店")


async def seed_service(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    """DEMO_SHOWCASE: 「预约」 offers a service (a new product of its own, so no product the
    shop sells by express changes kind): 60 minutes every 30, ¥20 deposit, free cancel up to
    24 h before, a reminder 2 h before. Idempotent: found by its title."""
    from social_mall_local import bookings as B
    from social_mall_local.stores import all_stores
    from storage.models import Product, Sku

    title, subtitle, category_name, price = SERVICE
    if (await uow.catalog.products(tenant.id, category_id=None, keyword=title, offset=0, limit=1))[0]:
        return
    category = next((c for c in await uow.catalog.categories(tenant.id) if c.name == category_name), None)
    if category is None:
        return
    product = Product(tenant_id=tenant.id, category_id=category.id, title=title, subtitle=subtitle,
                      description=f"{title}，{subtitle}，到店体验，预约付定金。", image="", sort=99)
    await uow.catalog.add(product)
    product.image = f"/media/products/{product.id}.png"
    await uow.catalog.add(Sku(tenant_id=tenant.id, product_id=product.id, spec="单人", price_fen=price, stock=10_000))
    await B.save_spec(uow, tenant.id, "seed-demo", B.SpecInput(product.id, duration_min=60, step_min=30,
                                                               deposit_fen=2000, cancel_free_hours=24,
                                                               late_refund_bp=5000, remind_hours=2))
    for store in await all_stores(uow, tenant.id):
        if store.name in SERVICE_STORES:
            await B.add_resource(uow, tenant.id, "seed-demo", store.id, "茶艺师", "staff", (product.id,))
