"""Browsing in chat reads the catalog once per cache period, and a console edit shows in
the very next message (the committing unit of work clears the cache)."""

from sqlalchemy import select

from handlers.mp_simulator import MPSimulator
from social_mall.console import catalog as console_catalog
from social_mall.console.auth import AdminView
from storage.models import Category, Sku
from storage.repos import CatalogRepo
from tests.conftest import TEST_APP_ID, TEST_TOKEN

ADMIN = AdminView(1, None, "root", "owner")


def counting(monkeypatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(CatalogRepo, name)

    async def wrapper(self, *a, **kw):
        calls.append(1)
        return await real(self, *a, **kw)

    monkeypatch.setattr(CatalogRepo, name, wrapper)
    return calls


async def test_browsing_reads_the_catalog_once_and_sees_console_edits_at_once(mall, monkeypatch):
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    category_reads = counting(monkeypatch, "categories")
    product_reads = counting(monkeypatch, "products")
    users = [f"oCacheUser_{i:016d}" for i in range(3)]
    for user in users:
        assert "水果生鲜" in (await wx.text(user, "分类")).text
        assert "赣南脐橙" in (await wx.text(user, "1")).text
    assert len(category_reads) == 1     # one read serves every member's 分类 and page title
    assert len(product_reads) == 1      # and one read the category's first page

    async with mall.svc.uows() as uow:
        fruit = await uow.session.scalar(select(Category).where(Category.name == "水果生鲜"))
        await console_catalog.update_category(uow, fruit.tenant_id, ADMIN, fruit.id, "当季鲜果", fruit.sort)
        await uow.commit()
    listing = (await wx.text(users[0], "分类")).text
    assert "当季鲜果" in listing and "水果生鲜" not in listing
    assert len(category_reads) == 2


async def test_orders_moving_stock_keep_the_cache(mall, monkeypatch):
    """Stock reservations don't touch what lists show: they must not empty the cache."""
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    reads = counting(monkeypatch, "categories")
    await wx.text("oCacheStock_0000000000001", "分类")
    async with mall.svc.uows() as uow:
        sku = await uow.session.scalar(select(Sku).limit(1))
        assert await uow.catalog.reserve(sku.tenant_id, sku.id, 1)
        await uow.commit()
    await wx.text("oCacheStock_0000000000002", "分类")
    assert len(reads) == 1


async def test_a_new_flash_price_shows_at_once_and_starts_on_the_second(mall):
    """Lists read the flash schedule through the cache: adding a flash price clears it,
    and one read serves the sale's start and end without another query."""
    from datetime import datetime, timedelta, timezone

    from social_mall.loyalty import service as loyalty
    from social_mall.pricing.service import product_flash_prices
    from storage.models import Product

    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    user = "oCacheFlash_000000000000001"
    await wx.text(user, "分类")
    assert "限时" not in (await wx.text(user, "1")).text
    now = datetime.now(timezone.utc)
    async with mall.svc.uows() as uow:
        orange = await uow.session.scalar(select(Product).where(Product.title == "赣南脐橙"))
        sku = await uow.session.scalar(select(Sku).where(Sku.product_id == orange.id).order_by(Sku.id))
        await loyalty.add_flash_price(uow, orange.tenant_id, sku.id, sku.price_fen - 100,
                                      starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1))
        await loyalty.add_flash_price(uow, orange.tenant_id, sku.id, sku.price_fen - 200,
                                      starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=3))
        await uow.commit()
    await wx.text(user, "分类")
    assert "限时" in (await wx.text(user, "1")).text

    loads = mall.svc.cache.loads
    async with mall.svc.uows() as uow:
        at = {h: await product_flash_prices(uow, orange.tenant_id, [orange.id], now + timedelta(hours=h))
              for h in (0, 2.5, 4)}
    assert at[0][orange.id].price_fen == sku.price_fen - 100
    assert at[2.5][orange.id].price_fen == sku.price_fen - 200   # the later sale, from the same read
    assert at[4] == {}
    assert mall.svc.cache.loads == loads


async def test_a_reused_list_page_still_changes_on_a_flash_sales_first_and_last_second(mall, monkeypatch):
    """The runner renders a list page once per (page, live flash prices): the same page
    at the same prices is not rendered again, and the reply changes exactly when a sale
    starts and ends, though the catalog cache (page and schedule) is read only once."""
    from datetime import datetime, timedelta, timezone

    from social_mall.loyalty import service as loyalty
    from storage.models import Product

    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    user = "oCacheRender_00000000000001"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start, end = now + timedelta(hours=1), now + timedelta(hours=2)
    async with mall.svc.uows() as uow:
        orange = await uow.session.scalar(select(Product).where(Product.title == "赣南脐橙"))
        sku = await uow.session.scalar(select(Sku).where(Sku.product_id == orange.id).order_by(Sku.id))
        await loyalty.add_flash_price(uow, orange.tenant_id, sku.id, 1, starts_at=start, ends_at=end)
        await uow.commit()

    template = mall.svc.templates.get_template("chat/shop/products.txt")
    renders: list[int] = []
    real_render = template.render
    monkeypatch.setattr(template, "render", lambda *a, **kw: renders.append(1) or real_render(*a, **kw))
    runner = mall.svc.runner

    async def page_at(at: datetime) -> str:
        monkeypatch.setattr(runner, "clock", lambda: at)
        await wx.text(user, "分类")
        return (await wx.text(user, "1")).text

    before = await page_at(now)
    loads = mall.svc.cache.loads
    assert "限时" not in before
    assert await page_at(start - timedelta(microseconds=1)) == before
    assert len(renders) == 1                                   # the same page, rendered once
    assert "【限时】¥0.01起" in await page_at(start)            # the sale's first second
    assert "【限时】¥0.01起" in await page_at(end - timedelta(microseconds=1))
    assert await page_at(end) == before                         # and its end
    assert len(renders) == 2
    assert mall.svc.cache.loads == loads
