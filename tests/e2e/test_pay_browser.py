"""The JSAPI pay page in a real browser (Debian's chromium via Playwright) against the app on
a loopback port and the fake WeChat Pay platform: the page goes through snsapi_base OAuth
(WeChat's authorize page is played by a loopback stand-in that mints a code at the fake
WeChat API and redirects back), the user clicks pay, a stubbed WeixinJSBridge hands the signed parameters to the fake
platform (which checks paySign like the WeChat client, then POSTs the signed, encrypted
notify to our notify URL), and the page shows 支付成功 once the order is paid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.pay_kit import WECHAT_UA, load, new_order
from tests.fakes.wechat_pay import attach_real_pay

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

BRIDGE_STUB = """
window.__bridgeCalls = [];
window.WeixinJSBridge = {
  invoke: function (name, params, cb) {
    window.__bridgeCalls.push(name);
    fetch(%r + "/fake/jsbridge", {method: "POST", body: JSON.stringify(params)})
      .then(function (r) { return r.json(); })
      .then(function (d) { cb(d); })
      .catch(function () { cb({err_msg: name === "getBrandWCPayRequest" ? "get_brand_wcpay_request:fail" : "fail"}); });
  }
};
"""


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def test_jsapi_pay_page_in_a_real_browser(mall, wxpay, tmp_path, backend, aiohttp_server):
    from aiohttp import web
    from playwright.async_api import async_playwright

    tenant, order = await new_order(mall)
    base = mall.svc.public_base_url
    pay_url = mall.svc.pay_url(tenant.code, order.order_no)
    assert pay_url.startswith(base) and base.startswith("http://127.0.0.1:")
    openid = "o_browser_payer_00000000001"

    authorized = []

    async def wechat_authorize(request):
        # WeChat's authorize page: bounce back to redirect_uri with a fresh code and the state
        q = request.query
        assert q["scope"] == "snsapi_base" and q["appid"] == tenant.wechat_app_id
        authorized.append(q["state"])
        raise web.HTTPFound(f"{q['redirect_uri']}?code={mall.fake.mint_code(openid)}&state={q['state']}")

    oauth_app = web.Application()
    oauth_app.router.add_get("/connect/oauth2/authorize", wechat_authorize)
    oauth_server = await aiohttp_server(oauth_app)
    mall.svc.settings.wechat_oauth_base = str(oauth_server.make_url("")).rstrip("/")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(user_agent=WECHAT_UA, viewport={"width": 414, "height": 896})
            await context.add_init_script(BRIDGE_STUB % wxpay.base_url)
            page = await context.new_page()
            await page.goto(pay_url)
            assert page.url.split("#")[0] == pay_url  # back on the pay page after OAuth
            await page.wait_for_selector("#pay")
            assert "¥" in await page.inner_text("#total")
            assert (await load(mall, tenant, order.order_no)).status == "pending_payment"
            await page.click("#pay")
            await page.wait_for_selector("#paid", state="visible", timeout=20_000)
            assert "支付成功" in await page.inner_text("#status")
            assert await page.evaluate("window.__bridgeCalls") == ["getBrandWCPayRequest"]
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"pay_jsapi_{backend.name}.png"), full_page=True)
        finally:
            await browser.close()

    paid = await load(mall, tenant, order.order_no)
    assert (paid.status, paid.paid_fen) == ("paid", order.total_fen)
    assert wxpay.orders[order.order_no].openid == openid
    assert [n[2] for n in wxpay.notifies] == [204]
    assert len(authorized) == 1
