"""WeChat's address picker on the JSAPI pay page in a real browser (Debian's chromium via
Playwright): the buyer ordered in chat, opens the pay link inside "WeChat" (its user agent),
goes through snsapi_base OAuth (a loopback stand-in for WeChat's authorize page), and the
page's wx.config is checked by the fake WeChat API the way the WeChat client checks it
(the JS-SDK file is served by a stub whose wx.config asks the fake; openAddress hands back
an address from the "address book"). One tap: the page shows the new address and the
order ships to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.pay_kit import WECHAT_UA, load
from tests.fakes.wechat_pay import attach_real_pay

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUYER = "oUser_picker_browser_000001"

# What https://res.wx.qq.com/open/js/jweixin-1.6.0.js becomes in this browser: wx.config asks
# the fake WeChat API whether the signature holds; openAddress answers like the address book.
JSSDK_STUB = """
window.__wx = {config: null, picked: 0};
window.wx = (function () {
  var ready = [], failed = [], ok = null;
  function settle() { (ok ? ready : failed).forEach(function (f) { f({errMsg: window.__wx.config}); }); }
  return {
    config: function (c) {
      fetch(%r + "/fake/jsconfig", {method: "POST", body: JSON.stringify({appId: c.appId,
            timestamp: c.timestamp, nonceStr: c.nonceStr, signature: c.signature,
            url: location.href.split("#")[0], jsApiList: c.jsApiList})})
        .then(function (r) { return r.json(); })
        .then(function (d) { window.__wx.config = d.errMsg; ok = d.errMsg === "config:ok"; settle(); });
    },
    ready: function (f) { if (ok === true) { f(); } else { ready.push(f); } },
    error: function (f) { if (ok === false) { f({errMsg: window.__wx.config}); } else { failed.push(f); } },
    openAddress: function (o) {
      if (ok !== true) { if (o.fail) { o.fail({errMsg: "openAddress:permission denied"}); } return; }
      window.__wx.picked += 1;
      o.success({errMsg: "openAddress:ok", userName: "李四", telNumber: "13900139000",
                 provinceName: "上海市", cityName: "上海市", countryName: "浦东新区",
                 detailInfo: "世纪大道200号", postalCode: "200120", nationalCode: "310115"});
    }
  };
})();
"""


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def test_one_tap_in_wechats_address_picker_ships_the_unpaid_order_there(mall, wxpay, backend, aiohttp_server):
    from aiohttp import web
    from playwright.async_api import async_playwright

    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)
    await wx.event(BUYER, "subscribe")
    await wx.text(BUYER, "搜索 龙井")
    await wx.text(BUYER, "购买")
    await wx.text(BUYER, "王小明 13912345678 广东省深圳市南山区科技园1号")
    placed = (await wx.text(BUYER, "确认")).text
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    tenant = await mall.svc.tenant("demo")

    async def wechat_authorize(request):
        q = request.query
        raise web.HTTPFound(f"{q['redirect_uri']}?code={mall.fake.mint_code(BUYER)}&state={q['state']}")

    oauth_app = web.Application()
    oauth_app.router.add_get("/connect/oauth2/authorize", wechat_authorize)
    oauth_server = await aiohttp_server(oauth_app)
    mall.svc.settings.wechat_oauth_base = str(oauth_server.make_url("")).rstrip("/")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(user_agent=WECHAT_UA, viewport={"width": 414, "height": 896})
            await context.route("https://res.wx.qq.com/**", lambda route: route.fulfill(
                status=200, content_type="application/javascript", body=JSSDK_STUB % mall.fake.base_url))
            page = await context.new_page()
            await page.goto(pay_url)
            assert page.url.split("#")[0] == pay_url
            assert "王小明" in await page.inner_text("#ship")
            await page.wait_for_selector("#pick-address", state="visible", timeout=20_000)
            assert await page.evaluate("window.__wx.config") == "config:ok"
            await page.click("#pick-address")
            await page.wait_for_function("document.getElementById('ship').textContent.indexOf('李四') >= 0",
                                         timeout=20_000)
            assert await page.inner_text("#ship") == "李四，上海市浦东新区世纪大道200号"
            assert "收货地址已更新" in await page.inner_text("#address-msg")
            assert await page.evaluate("window.__wx.picked") == 1
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"pay_address_picker_{backend.name}.png"), full_page=True)
        finally:
            await browser.close()

    order = await load(mall, tenant, order_no)
    assert (order.ship_name, order.ship_phone, order.ship_address, order.status) == (
        "李四", "13900139000", "上海市浦东新区世纪大道200号", "pending_payment")
    assert len(mall.fake.calls_to("/cgi-bin/ticket/getticket")) == 1
