"""The cohort heat-map and the LTV chart in a real browser (Debian's chromium driven by
Playwright) against the app on a loopback port, over recorded history. Screenshots go to
test-artifacts/."""

from __future__ import annotations

from tests.e2e.test_console_browser import ARTIFACTS, browser, served  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin

from ins_kit import seed_history


def test_cohorts_heat_map_and_ltv_chart_render_in_a_browser(browser, served, backend):  # noqa: F811
    svc = served.svc
    served.run(make_admin(svc.uows, "boss"))
    tenant = served.run(svc.tenant("demo"))
    made = served.run(seed_history(svc.uows, tenant.id, svc.clock()))
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/console/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.url}/console/**")

    page.click("nav.side >> text=数据洞察")
    page.wait_for_selector("#funnel")
    page.click("#insights-tabs >> text=留存")
    page.wait_for_selector("table#cohorts")
    rows = page.locator("table#cohorts tbody tr")
    assert rows.count() >= 10
    # the 33 members whose first order is in the last 12 weeks, each in one cohort
    assert sum(int(t) for t in page.locator("table#cohorts tbody tr td:nth-child(2)").all_inner_texts()) == 33
    # week-1 repurchases exist: some cell past the size column is coloured above h0
    hot = page.locator("table#cohorts td.h:not(.h0):not(.na)")
    assert hot.count() >= 3
    # the stylesheet applied (CSP allows it): a coloured cell has a non-white background
    bg = hot.first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"), bg
    page.screenshot(path=str(ARTIFACTS / f"insights_cohorts_{backend.name}.png"), full_page=True)

    page.click("#insights-tabs >> text=LTV")
    chart = page.wait_for_selector("svg#ltv-chart")
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    assert page.locator("svg#ltv-chart polyline").count() >= 1
    assert page.locator("svg#ltv-chart circle").count() >= 4
    legend = page.locator("svg#ltv-chart text").all_text_contents()
    assert "全部" in legend and "分销推荐" in legend and "拼团" in legend
    total = page.locator("table#ltv tr.total").first.inner_text()
    assert "40" in total
    page.screenshot(path=str(ARTIFACTS / f"insights_ltv_{backend.name}.png"), full_page=True)

    page.click("#insights-tabs >> text=来源归因")
    assert "拼团活动 #5" in page.locator("#attr-groupbuy").inner_text()
    assert made["paid_fen"] > 0
    context.close()
