"""The console page 动态定价 in a real browser (Debian's chromium driven by Playwright)
against the app on a loopback port: the nav entry, a refused form, a rule saved, the
job's change listed and rolled back with one click, the preview, an A/B test started;
the chat shows the rule's price while it holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from social_mall_intelligence import pricing as P
from storage.models import Sku
from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin

from intel_kit import add_fashion


async def _sku(served) -> int:
    async with served.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.spec == "米色 / M")))


def test_pricing_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    served.run(add_fashion(served))
    sku = served.run(_sku(served))
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/console/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")

    page.click("nav.side >> text=动态定价")
    page.wait_for_url("**/console/intelligence/pricing")
    assert "还没有定价规则" in page.inner_text("#rules")
    form = page.locator("#rule-form")
    form.locator("input[name=sku_id]").fill(str(sku))
    form.locator("input[name=cost]").fill("120")
    form.locator("button[type=submit]").click()
    assert "定价信号：必填" in page.inner_text("#problem")
    form = page.locator("#rule-form")
    assert form.locator("input[name=cost]").input_value() == "120"          # the form keeps what was typed
    form.locator("input[name=evening]").check()
    form.locator("input[name=evening_off_pct]").fill("10")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/console/intelligence/pricing?ok=saved")
    rules = page.inner_text("#rules")
    assert "针织开衫" in rules and "¥132.00 / ¥199.00" in rules and "运行中" in rules, rules

    evening = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=12, minute=30)
    [step] = served.run(P.run_all(served.svc.uows, evening))
    assert step.after_fen == 18_905
    [card] = chat(served, "oBrowser_intel_price_000001", "搜 针织开衫")
    assert "189.05" in card, card
    page.reload()
    assert "¥189.05" in page.inner_text("#changes") and "晚间折扣" in page.inner_text("#changes")
    page.click("#changes button:has-text('回滚')")
    page.wait_for_url("**/console/intelligence/pricing?ok=rolled_back")
    assert "已回滚，规则已暂停" in page.inner_text("#done")
    assert "已回滚" in page.inner_text("#changes") and "已暂停" in page.inner_text("#rules")
    assert "¥199.00" in page.inner_text("#rules tbody tr >> nth=0 >> td.price")

    page.click("#rules a:has-text('预演')")
    page.wait_for_url("**/preview")
    assert "价格弹性" in page.inner_text("#elasticity")
    page.screenshot(path=str(ARTIFACTS / "intelligence_pricing_preview.png"), full_page=True)
    page.go_back()
    page.fill("#test-form input[name=name]", "晚间九折")
    page.click("#test-form button[type=submit]")
    page.wait_for_url("**/console/intelligence/pricing?ok=test_started")
    assert "晚间九折（50%）" in page.inner_text("#tests")
    page.screenshot(path=str(ARTIFACTS / "intelligence_pricing.png"), full_page=True)
    context.close()
