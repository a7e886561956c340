"""The console page 智能搜索 in a real browser (Debian's chromium driven by Playwright)
against the app on a loopback port: the nav entry, the try-out box (initials), a bad
synonym refused in Chinese, a good one saved and found in chat at once."""

from __future__ import annotations

from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin

from intel_kit import add_fashion


def test_search_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    served.run(add_fashion(served))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/console/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")

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
