"""The demo tenant `demo`: 4 categories, 20 products with SKUs, stock and prices in fen.

Modules add what they show off in the demo (a group-buy campaign, coupons, a distributor…)
as seeders registered with the module registry (`Registry.add_demo`); `seed_demo` runs
them after the catalog. Every seeder is idempotent: it creates what is missing and moves
its time windows on (a flash sale live now), and never undoes what the merchant changed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from datetime import datetime, timedelta, timezone

from social_mall.errors import MallError
from social_mall.tenants import TenantView, tenant_view
from storage.models import Category, Product, Sku, Tenant
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from social_mall.views import OrderView

log = logging.getLogger(__name__)

#: A module's part of the demo: (unit of work, the demo tenant, now) → creates or refreshes.
DemoSeeder = Callable[[UnitOfWork, TenantView, datetime], Awaitable[None]]

DEMO_CODE = "demo"

# category → [(title, subtitle, [(spec, price_fen, stock)])]
CATALOG: dict[str, list[tuple[str, str, list[tuple[str, int, int]]]]] = {
    "水果生鲜": [
        ("赣南脐橙", "当季现摘 5斤装", [("5斤装", 3990, 200), ("10斤装", 6990, 100)]),
        ("丹东草莓", "99红颜 2斤礼盒", [("2斤礼盒", 8800, 50)]),
        ("海南贵妃芒", "香甜多汁", [("3斤装", 2990, 120), ("5斤装", 4590, 80)]),
        ("阳光玫瑰葡萄", "无籽脆甜", [("2串装", 5990, 60)]),
        ("新疆阿克苏苹果", "冰糖心", [("5斤装", 3500, 150), ("10斤装", 5990, 90)]),
    ],
    "休闲零食": [
        ("每日坚果", "7种混合 30袋", [("30袋", 9900, 100)]),
        ("手撕牛肉干", "内蒙古风干", [("原味 250g", 4900, 80), ("麻辣 250g", 4900, 80)]),
        ("芒果干", "无添加蔗糖", [("500g", 2990, 200)]),
        ("海苔脆", "儿童零食", [("10包", 1990, 300)]),
        ("黑巧克力", "72% 可可", [("100g", 2500, 150)]),
    ],
    "日用百货": [
        ("竹纤维抽纸", "24包 整箱", [("24包", 4590, 200)]),
        ("洗衣凝珠", "持久留香", [("52颗", 3990, 120)]),
        ("不锈钢保温杯", "500ml", [("星空蓝", 8900, 40), ("樱花粉", 8900, 40)]),
        ("纯棉毛巾", "A类 3条装", [("3条装", 3900, 100)]),
        ("电动牙刷", "声波 5档", [("白色", 15900, 30), ("黑色", 15900, 30)]),
    ],
    "茶饮冲调": [
        ("西湖龙井", "明前特级 250g", [("250g", 29800, 20)]),
        ("云南普洱", "熟茶饼 357g", [("357g", 16800, 25)]),
        ("挂耳咖啡", "中深烘 20包", [("20包", 5900, 100)]),
        ("燕麦片", "即食 1kg", [("1kg", 2990, 150)]),
        ("桂花乌龙", "冷泡茶 10包", [("10包", 3600, 90)]),
    ],
}


@dataclass(frozen=True)
class DemoCredentials:
    wechat_app_id: str
    wechat_token: str
    wechat_aes_key: str
    wechat_app_secret: str
    pay_mch_id: str = "1900000109"
    pay_apiv3_key: str = "sandboxApiV3Key0123456789abcdefX"  # 32 ASCII bytes
    mini_app_id: str = ""      # MINI_APP_ID / MINI_APP_SECRET: the demo's mini-program account
    mini_app_secret: str = ""


MINI_CODE = "mini"  # the demo's mini-program account (/api/app/v1/demo/mini/…)


async def seed_demo(uow: UnitOfWork, creds: DemoCredentials, code: str = DEMO_CODE, *,
                    extras: Sequence[DemoSeeder] = (), now: datetime | None = None) -> TenantView:
    """Create the demo tenant and its catalog once (a second run changes neither), then run
    the modules' `extras` (each in a savepoint: one that refuses is logged and skipped)."""
    existing = await uow.tenants.by_code(code)
    tenant = tenant_view(existing) if existing is not None else await _create(uow, creds, code)
    at = now or datetime.now(timezone.utc)
    if creds.mini_app_id:  # every start, like the official account's settings: the environment decides
        from social_mall.channels.service import sync_env_account

        await sync_env_account(uow, tenant.id, kind="mini", code=MINI_CODE, name="小程序",
                               values={"app_id": creds.mini_app_id, "app_secret": creds.mini_app_secret}, now=at)
    for seed in extras:
        try:
            async with uow.session.begin_nested():
                await seed(uow, tenant, at)
        except (MallError, ValueError) as exc:
            log.warning("demo.seed_skipped", extra={"seeder": getattr(seed, "__qualname__", str(seed)),
                                                    "error": type(exc).__name__})
    return tenant


async def _create(uow: UnitOfWork, creds: DemoCredentials, code: str) -> TenantView:
    tenant = await uow.tenants.add(
        Tenant(
            code=code, name="社交商城演示店", wechat_app_id=creds.wechat_app_id,
            wechat_token=creds.wechat_token, wechat_aes_key=creds.wechat_aes_key,
            wechat_app_secret=creds.wechat_app_secret, pay_gateway="sandbox",
            pay_mch_id=creds.pay_mch_id, pay_app_id=creds.wechat_app_id,
            pay_apiv3_key=creds.pay_apiv3_key,
        )
    )
    from social_mall.channels.service import sync_primary

    await sync_primary(uow, tenant.id, datetime.now(timezone.utc))  # its official account, a channel account too
    # three flushes in all (categories, products, SKUs), not three per product
    categories = [Category(tenant_id=tenant.id, name=name, sort=c_sort) for c_sort, name in enumerate(CATALOG)]
    await uow.catalog.add(*categories)
    products = [
        (Product(tenant_id=tenant.id, category_id=category.id, title=title, subtitle=subtitle,
                 description=f"{title}，{subtitle}。社交商城演示商品。", image="", sort=p_sort), skus)
        for category, items in zip(categories, CATALOG.values())
        for p_sort, (title, subtitle, skus) in enumerate(items)
    ]
    await uow.catalog.add(*(product for product, _ in products))
    skus = []
    for product, specs in products:
        product.image = f"/media/products/{product.id}.png"
        skus += [Sku(tenant_id=tenant.id, product_id=product.id, spec=spec, price_fen=price, stock=stock)
                 for spec, price, stock in specs]
    await uow.catalog.add(*skus)
    return tenant_view(tenant)


async def ensure_demo_order(uow: UnitOfWork, tenant: TenantView, *, now: datetime, timeout: timedelta) -> str:
    """A pending order of the demo buyer, so a new user can open the sandbox pay page
    right away. Returns its order number (an existing unpaid one is reused)."""
    from social_mall.members.service import add_address, list_addresses, resolve_member
    from social_mall.orders.service import list_orders, place_order

    member, _ = await resolve_member(uow, tenant.id, "demo", "demo_buyer", nickname="演示买家")
    for order in (await list_orders(uow, tenant.id, member.id, per_page=20)).items:
        if order.status == "pending_payment" and order.expires_at > now:
            return order.order_no
    addresses = await list_addresses(uow, tenant.id, member.id)
    address = addresses[0] if addresses else await add_address(
        uow, tenant.id, member.id, "张三", "13800138000", "上海市浦东新区世纪大道100号"
    )
    products = await uow.catalog.products(tenant.id, category_id=None, keyword="脐橙", offset=0, limit=1)
    sku = (await uow.catalog.skus(tenant.id, products[0][0].id))[0]
    order = await place_order(uow, tenant.id, member.id, [(sku.id, 2)], address_id=address.id,
                              now=now, timeout=timeout, channel="demo", source="demo")
    return order.order_no


async def demo_member(uow: UnitOfWork, tenant: TenantView, key: str, nickname: str) -> tuple[int, int]:
    """A demo member (channel "demo", so nothing is ever pushed to it) with an address:
    (member id, address id)."""
    from social_mall.members.service import add_address, list_addresses, resolve_member

    member, _ = await resolve_member(uow, tenant.id, "demo", key, nickname=nickname)
    addresses = await list_addresses(uow, tenant.id, member.id)
    address = addresses[0] if addresses else await add_address(
        uow, tenant.id, member.id, nickname, "13800138000", "上海市浦东新区世纪大道100号")
    return member.id, address.id


async def pay_demo_order(uow: UnitOfWork, tenant: TenantView, order: OrderView, now: datetime) -> None:
    """Pay a demo member's order through the sandbox, as a verified notify would: the
    payment row, the notification on the books (verdict applied) and order.paid."""
    from social_mall.payments.gateway import Transaction
    from social_mall.payments.service import apply_transaction, open_payment

    await open_payment(uow, order, gateway="sandbox")
    tx = Transaction(f"DEMO-{uuid.uuid4().hex[:12]}", order.order_no, f"DEMO{uuid.uuid4().int % 10**16:016d}",
                     "SUCCESS", order.total_fen, tenant.pay_mch_id, tenant.pay_app_id, "demo", "")
    await apply_transaction(uow, tx, tenant=tenant.id, gateway="sandbox", mchid=tenant.pay_mch_id,
                            appid=tenant.pay_app_id, now=now)
