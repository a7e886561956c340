"""The console in a real browser (Debian's chromium driven by Playwright) against the app
served on a loopback port: log in, create a product and find it in chat (a signed request
to the real endpoint), ship an order (the buyer gets the push at the fake WeChat API),
refund another (through the confirmation step and the sandbox gateway), screenshot the
dashboard into test-artifacts/."""

import time
from pathlib import Path

import aiohttp
import pytest

from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings
from tests.fakes.console_kit import PASSWORD, ServedMall, make_admin, paid_order

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(request):
    from playwright.sync_api import sync_playwright

    from tests.conftest import BACKENDS

    # the session-scoped database fixtures call asyncio.run(): build them before
    # Playwright's own loop starts in this thread
    request.getfixturevalue("sqlite_template")
    if "pg" in BACKENDS:
        request.getfixturevalue("pg_schema")

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def served(backend, tmp_path):
    mall = ServedMall(lambda fake_url: app_settings(backend, tmp_path, fake_url))
    mall.start(truncate_pg=backend.name == "pg")
    yield mall
    mall.stop()


def wait_for(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def chat(served, user, *texts):
    async def go():
        async with aiohttp.ClientSession() as session:
            wx = MPSimulator(session, f"{served.url}/wechat/mp/demo", token=TEST_TOKEN, app_id=TEST_APP_ID,
                             aes_key=TEST_AES_KEY)
            await wx.event(user, "subscribe")
            return [(await wx.text(user, t)).text for t in texts]

    return served.run(go())


def test_admin_runs_the_shop_in_a_browser(browser, served, backend):
    served.run(make_admin(served.svc.uows, "boss"))
    tenant = served.run(served.svc.tenant("demo"))
    ship_id, ship_no = served.run(paid_order(served.svc.uows, tenant.id, "oBuyer_ship_000000000000001"))
    refund_id, refund_no = served.run(paid_order(served.svc.uows, tenant.id, "oBuyer_refund_0000000000001"))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)

    # no session: the console sends us to the login page
    page.goto(f"{served.url}/console/orders")
    assert "/console/login" in page.url
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/orders")

    # create a product; it is on the shelf in chat at once
    page.goto(f"{served.url}/console/products/new")
    page.fill("input[name=title]", "云南小粒咖啡豆")
    page.fill("input[name=subtitle]", "中度烘焙 500g")
    page.select_option("select[name=category_id]", label="茶饮冲调")
    page.fill("input[name=sku_spec]", "500g")
    page.fill("input[name=sku_price]", "88.00")
    page.fill("input[name=sku_stock]", "30")
    page.click("form[action='/console/products'] button[type=submit]")
    page.wait_for_url("**/console/products/*?ok=created")
    assert "已创建" in page.inner_text(".flash")
    [found] = chat(served, "oBrowser_shopper_00000000001", "搜索 咖啡豆")
    assert "云南小粒咖啡豆" in found

    # ship an order: the buyer is told through the customer-service API
    page.goto(f"{served.url}/console/orders/{ship_id}")
    page.fill("input[name=tracking_no]", "SF1234567890")
    page.click("form[action$='/ship'] button")
    page.wait_for_url(f"**/console/orders/{ship_id}?ok=shipped")
    assert page.inner_text("#order-status") == "已发货"
    served.settle()
    pushes = wait_for(lambda: served.fake.sent_messages("oBuyer_ship_000000000000001"))
    assert "SF1234567890" in pushes[-1]["text"]["content"] and ship_no in pushes[-1]["text"]["content"]

    # refund another: a confirmation page first, then the sandbox gateway through the outbox
    page.goto(f"{served.url}/console/orders/{refund_id}")
    page.fill("input[name=reason]", "缺货退款")
    page.click("form[action$='/refund'] button")
    assert "确认退款" in page.inner_text("h1")
    total = page.inner_text("#refund-amount")
    page.click("button.danger")
    page.wait_for_url(f"**/console/orders/{refund_id}?ok=refund_requested")
    served.settle()

    def refunded():
        page.goto(f"{served.url}/console/orders/{refund_id}")
        return page.inner_text("#order-status") == "已退款"

    wait_for(refunded)
    assert total in page.inner_text("main")
    audit = page.goto(f"{served.url}/console/audit?action=refund.")
    assert audit.status == 200 and "refund.request" in page.inner_text("table")

    # the dashboard, saved for people to look at
    page.goto(f"{served.url}/console/")
    assert int(page.inner_text("#orders-today")) >= 2
    assert page.locator("svg.chart").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console_dashboard_{backend.name}.png"), full_page=True)
    context.close()
