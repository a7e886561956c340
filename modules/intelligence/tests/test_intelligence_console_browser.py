"""The console pages 智能搜索 and 推荐效果 in a real browser (Debian's chromium driven by
Playwright) against the app on a loopback port: the nav entry, the try-out box (initials),
a bad synonym refused in Chinese, a good one saved and found in chat at once; a card
opened from 「猜你喜欢」 in chat shown as a click with its click-through rate; a product marked a
consumable in 复购周期 (a bad cycle refused in Chinese first)."""

from __future__ import annotations

from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served  # noqa: F401  (fixtures)
from sqlalchemy import func, select

from storage.models import Sku
from tests.fakes.console_kit import PASSWORD, make_admin, paid_order, console_page

from intel_kit import add_fashion


def test_search_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    served.run(add_fashion(served))
    context, page = console_page(browser, served.url)

    page.click("nav.side >> text=智能搜索")
    page.wait_for_url("**/console/intelligence/search")
    page.fill("input[name=q]", "lyq")
    page.click("form[method=get] button")
    page.wait_for_url("**/console/intelligence/search?q=lyq")
    assert "共 2 件" in page.inner_text("#tried") and "法式碎花连衣裙" in page.inner_text("#tried")

    page.fill("#synonym-form input[name=word]", "小黑 裙")
    page.fill("#synonym-form input[name=alternatives]", "连衣裙")
    page.click("#synonym-form button[type=submit]")
    assert "只能是一个词" in page.inner_text("#problem")
    page.fill("#synonym-form input[name=word]", "小黑裙")
    page.fill("#synonym-form input[name=alternatives]", "连衣裙 半身裙")
    page.click("#synonym-form button[type=submit]")
    page.wait_for_url("**/console/intelligence/search?ok=saved")
    assert "连衣裙、半身裙" in page.inner_text("#synonyms")
    page.screenshot(path=str(ARTIFACTS / "intelligence_search.png"), full_page=True)
    [found] = chat(served, "oBrowser_intel_search_000001", "搜 小黑裙")
    assert "高腰百褶半身裙" in found and "法式碎花连衣裙" in found, found
    context.close()


def test_recommendation_clicks_in_the_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    ids = served.run(add_fashion(served))
    tenant = served.run(served.svc.tenant("demo")).id

    async def first_sku(product: int) -> int:
        async with served.svc.uows() as uow:
            return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == product)))

    for n in range(2):
        for title in ("法式碎花连衣裙", "高腰百褶半身裙"):
            served.run(paid_order(served.svc.uows, tenant, f"oBuyer_intel_br_{n:011d}",
                                  sku_id=served.run(first_sku(ids[title]))))
    served.settle()
    jobs = {j.name: j for j in served.svc.registry.jobs}
    served.run(jobs["intel.retrain"].run())
    shown, card = chat(served, "oBrowser_intel_rec_0000000001", "猜你喜欢", "1")
    assert shown.startswith("猜你喜欢") and "法式碎花连衣裙" in card, (shown, card)
    items = len([line for line in shown.splitlines() if line[:1].isdigit()])
    served.run(jobs["intel.views"].run())

    context, page = console_page(browser, served.url)
    page.click("nav.side >> text=推荐效果")
    page.wait_for_url("**/console/intelligence/recommendations")
    cells = page.locator("#readout tbody tr").first.locator("td").all_inner_texts()
    assert cells[:5] == ["猜你喜欢", str(items), "1", "1", f"{100 / items:.1f}%"], cells

    page.fill("#cycle-form input[name=product]", str(ids["纯棉短袖T恤"]))
    page.select_option("#cycle-form select[name=kind]", "consumable")
    page.fill("#cycle-form input[name=days]", "0")
    page.click("#cycle-form button[type=submit]")
    assert "复购周期：要在 1–365 天之间" in page.inner_text("#problem")
    page.fill("#cycle-form input[name=days]", "90")
    page.click("#cycle-form button[type=submit]")
    page.wait_for_url("**/console/intelligence/recommendations?ok=saved")
    assert "纯棉短袖T恤" in page.inner_text("#cycles") and "消耗品，90 天" in page.inner_text("#cycles")
    page.screenshot(path=str(ARTIFACTS / "intelligence_recommendations.png"), full_page=True)
    context.close()
