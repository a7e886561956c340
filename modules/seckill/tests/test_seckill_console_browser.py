"""The console page in a real browser (Debian's chromium driven by Playwright) against the
app served on a loopback port: a session created (Beijing time), an item with a bad price
refused first, then added; the chat shows the session with its countdown. Screenshot in
test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from storage.models import Sku
from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served, wait_for  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin, console_page

SHANGHAI = timezone(timedelta(hours=8))
MEMBER = "oBrowser_seckill_member_00001"


async def first_sku(svc) -> tuple[int, int]:
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant.id).order_by(Sku.id))
        return sku.id, sku.price_fen


def test_seckill_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    sku, retail = served.run(first_sku(served.svc))
    start = (datetime.now(SHANGHAI) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)

    context, page = console_page(browser, served.url)

    page.click("nav.side >> text=秒杀")
    page.wait_for_url("**/console/seckill")
    page.fill("#new-session input[name=title]", "浏览器场")
    page.fill("#new-session input[name=starts_at]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#new-session input[name=ends_at]", (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#new-session button[type=submit]")
    page.wait_for_url("**/console/seckill?ok=saved")
    section = page.locator("section", has_text="浏览器场")
    section.locator("form.add-item input[name=sku_id]").fill(str(sku))
    section.locator("form.add-item input[name=price]").fill(f"{retail // 100 + 1}")   # not below retail
    section.locator("form.add-item input[name=stock]").fill("20")
    section.locator("form.add-item button[type=submit]").click()
    assert "秒杀价须低于原价" in page.inner_text("#seckill-error")
    section = page.locator("section", has_text="浏览器场")
    assert "还没有商品" in section.inner_text()
    section.locator("form.add-item input[name=sku_id]").fill(str(sku))
    section.locator("form.add-item input[name=price]").fill("1.99")
    section.locator("form.add-item input[name=stock]").fill("20")
    section.locator("form.add-item button[type=submit]").click()
    page.wait_for_url("**/console/seckill?ok=saved")
    text = page.locator("section", has_text="浏览器场").inner_text()
    assert "¥1.99" in text and "未开始" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"seckill_console_{backend.name}.png"), full_page=True)
    context.close()

    board = chat(served, MEMBER, "秒杀")[0]
    assert "浏览器场" in board and "秒杀价 ¥1.99" in board and "距开始" in board
