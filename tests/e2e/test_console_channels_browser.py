"""渠道与商户 end to end in a real browser (chromium through Playwright, app on a loopback
port, fake WeChat API and fake WeChat Pay beside it): an owner adds a pay merchant by
pasting its keys and tests it, adds a second official account linked to that merchant and
tests it (WeChat's refusal in Chinese first, then success), builds the account's menu and
publishes it to the fake menu/create; the new account's URL answers a signed message."""

import aiohttp

from handlers.mp_simulator import MPSimulator
from social_mall.payments import wxpay_v3
from tests.e2e.test_console_browser import ARTIFACTS, browser, served  # noqa: F401 - fixtures
from tests.fakes.console_kit import PASSWORD, make_admin, console_page
from tests.fakes.wechat_pay import FakeWeChatPay

APP2, SECRET2, TOKEN2 = "wx3333333333333333", "third_secret_00000000000000000", "ThirdAccountToken3"


def test_an_owner_sets_up_a_second_account_its_merchant_and_menu_in_the_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    keys = wxpay_v3.generate_keypair()
    pay = FakeWeChatPay(mchid="1900000333", appid=APP2, apiv3_key="C" * 32, merchant_serial=keys.serial,
                        merchant_public_pem=keys.public_pem)
    pay.base_url = served.run(served._serve(pay.app()))
    served.svc.settings.pay_api_base = pay.base_url

    context, page = console_page(browser, served.url)

    # the side panel leads to the page; the demo's primary account is listed
    page.click("nav.side a[href='/console/channels']")
    page.wait_for_url("**/console/channels")
    assert "主账号" in page.inner_text("#accounts")

    # a merchant, keys pasted; its connection test downloads the platform certificates
    page.click("a[href='/console/merchants/new']")
    page.fill("input[name=name]", "三号商户")
    page.fill("input[name=mch_id]", pay.mchid)
    page.fill("input[name=app_id]", APP2)
    page.fill("input[name=serial_no]", keys.serial)
    page.fill("input[name=platform_key_id]", pay.platform.serial)
    page.fill("input[name=apiv3_key]", "C" * 32)
    page.fill("textarea[name=private_key]", keys.private_pem.decode())
    page.fill("textarea[name=platform_key]", pay.platform.public_pem.decode())
    page.click("form[action='/console/merchants/new'] button[type=submit]")
    page.wait_for_url("**/console/channels?ok=created")
    row = page.locator("#merchants tr[data-mchid='1900000333']")
    assert "默认" in row.inner_text()
    row.locator("form[action$='/test'] button").click()
    page.wait_for_load_state()
    assert "连接成功" in page.inner_text("#verdict")

    # a second official account linked to it
    page.click("a[href='/console/channels/new?kind=mp']")
    page.fill("input[name=code]", "shop3")
    page.fill("input[name=name]", "三号公众号")
    page.fill("input[name=app_id]", APP2)
    page.fill("input[name=app_secret]", SECRET2)
    page.fill("input[name=token]", TOKEN2)
    page.select_option("select[name=pay_account_id]", label="三号商户（1900000333）")
    page.click("form[action='/console/channels/new'] button[type=submit]")
    page.wait_for_url("**/console/channels?ok=created")
    acct = page.locator("#accounts tr[data-code='shop3']")
    assert "三号商户" in acct.inner_text() and "/wechat/mp/demo/shop3" in acct.inner_text()
    acct.locator("form[action$='/test'] button").click()
    page.wait_for_load_state()
    assert "AppID 无效" in page.inner_text("#verdict") and "40013" in page.inner_text("#verdict")
    served.fake.more_apps[APP2] = SECRET2
    page.locator("#accounts tr[data-code='shop3'] form[action$='/test'] button").click()
    page.wait_for_load_state()
    assert "连接成功" in page.inner_text("#verdict")
    page.goto(f"{served.url}/console/channels")
    assert SECRET2 not in page.content() and TOKEN2 not in page.content()

    # its menu: a keyword button and a web page under a second one, published
    page.locator("#accounts tr[data-code='shop3'] a", has_text="菜单").click()
    page.fill("input[name=b0_name]", "购物车")
    page.select_option("select[name=b0_type]", "click")
    page.fill("input[name=b0_key]", "CART")
    page.fill("input[name=b1_name]", "关于")
    page.fill("input[name=b1_s0_name]", "门店")
    page.select_option("select[name=b1_s0_type]", "view")
    page.fill("input[name=b1_s0_url]", "https://shop.example.com/stores")
    page.click("form[action$='/menu'] button[type=submit]")
    page.wait_for_url("**/menu?ok=saved")
    page.click("form[action$='/menu/publish'] button")
    page.wait_for_load_state()
    assert "菜单已发布" in page.inner_text("#verdict")
    assert served.fake.menus[APP2] == {"button": [
        {"type": "click", "name": "购物车", "key": "CART"},
        {"name": "关于", "sub_button": [{"type": "view", "name": "门店", "url": "https://shop.example.com/stores"}]}]}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console_channel_menu_{backend.name}.png"), full_page=True)

    # the new account's own URL answers its signed messages
    async def chat() -> int:
        async with aiohttp.ClientSession() as session:
            wx = MPSimulator(session, f"{served.url}/wechat/mp/demo/shop3", token=TOKEN2, app_id=APP2)
            return (await wx.text("oBrowser_channel_user_0001", "帮助")).status

    assert served.run(chat()) == 200
    context.close()
