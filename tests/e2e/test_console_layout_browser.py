"""Console papercuts, checked in a real browser (chromium through Playwright) against the
app on a loopback port: the favicon, the side panel on a long page, 「全部分类」 in
category order, and product thumbnails."""

from pathlib import Path

from tests.e2e.test_console_browser import ARTIFACTS, browser, served  # noqa: F401 - fixtures
from tests.fakes.console_kit import PASSWORD, make_admin

from social_mall.demo import CATALOG


def logged_in(browser, served):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    context = browser.new_context(viewport={"width": 1280, "height": 700}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/console/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    return context, page


def test_console_papercuts(browser, served, backend):  # noqa: F811
    context, page = logged_in(browser, served)

    # the browser's own request for the icon is answered with a picture
    icon = page.request.get(f"{served.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
    assert len(icon.body()) > 0

    # 全部分类: the demo's 20 products, category by category, each category in its order
    page.goto(f"{served.url}/console/products")
    titles = page.locator("table tbody tr td:nth-child(3) a").all_inner_texts()
    expected = [title for products in CATALOG.values() for title, _, _ in products]
    assert titles == expected

    # every row shows the product's picture, and it loads
    thumbs = page.locator("table tbody img.thumb-s")
    assert thumbs.count() == len(expected)
    assert page.evaluate("[...document.querySelectorAll('img.thumb-s')].every(i => i.complete && i.naturalWidth > 0)")

    # a page longer than the window: the side panel runs down to the end of the page
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 700 * 1.5
    bottom = page.evaluate("(() => { const r = document.querySelector('nav.side').getBoundingClientRect();"
                           " return r.bottom + window.scrollY; })()")
    assert bottom >= height - 1, (bottom, height)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    links = page.evaluate("(() => { const r = document.querySelector('nav.side a').getBoundingClientRect();"
                          " return r.bottom; })()")
    assert 0 < links < 700        # the links stay in sight after scrolling down
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console_products_{backend.name}.png"), full_page=True)
    context.close()
