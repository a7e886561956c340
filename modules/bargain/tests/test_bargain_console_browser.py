"""The module's console pages in a real browser (Debian's chromium driven by Playwright)
against the app served on a loopback port: a bad campaign refused with a Chinese problem,
a campaign made on a demo SKU, then listed; a member starts a bargain in chat and the
campaign's page shows it. Screenshots go to test-artifacts/."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.catalog.service import list_products
from storage.models import Sku
from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served, wait_for  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin, console_page

STARTER = "oBrowser_bargain_starter_001"


async def sku_of(svc, keyword: str) -> tuple[int, int]:
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        product = (await list_products(uow, tenant.id, keyword=keyword)).items[0]
        sku = (await uow.session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id))).first()
        return sku.id, sku.price_fen


def test_bargain_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    sku, price = served.run(sku_of(served.svc, "芒果干"))

    context, page = console_page(browser, served.url)

    page.click("nav.side >> text=砍价")
    page.wait_for_url("**/console/bargain")
    page.click("text=新建砍价活动")
    page.wait_for_url("**/console/bargain/new")
    page.fill("input[name=title]", "芒果干砍价")
    page.fill("input[name=sku]", str(sku))
    page.fill("input[name=floor]", f"{price / 100 + 1:.2f}")          # above the price: refused
    page.fill("input[name=helps]", "3")
    page.click("#bargain-form button[type=submit]")
    assert "最低价须大于 0 且低于原价" in page.locator("#problem").inner_text()
    page.fill("input[name=floor]", "1.00")
    page.click("#bargain-form button[type=submit]")
    page.wait_for_url("**/console/bargain/*?notice=saved")
    page.goto(f"{served.url}/console/bargain")
    row = page.locator("#campaigns tr", has_text="芒果干砍价")
    assert "¥1.00" in row.inner_text() and "进行中" in row.inner_text()

    said = chat(served, STARTER, "砍价", "1")
    assert "芒果干砍价" in said[0]
    row.locator("a").click()
    page.wait_for_url("**/console/bargain/*")
    assert "0/3" in page.locator("#bargains").inner_text() and "进行中" in page.locator("#bargains").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"bargain-console-{backend.name}.png"), full_page=True)
    context.close()
