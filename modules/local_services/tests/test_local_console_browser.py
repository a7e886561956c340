"""The module's console pages in a real browser (Debian's chromium driven by Playwright)
against the app served on a loopback port: stores (a bad form refused, a good one saved
and found by a location sent in chat), delivery zones, slots on a week calendar, tickets
(found by code, verified) and the verification log (reversed). Screenshots go to
test-artifacts/."""

from __future__ import annotations

import uuid
from datetime import timedelta

import aiohttp

from handlers.mp_simulator import MPSimulator
from social_mall.catalog.service import list_products
from social_mall.fulfilment import Choice
from social_mall.members.service import resolve_member
from social_mall.orders.service import place_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment
from social_mall_local import products as P
from social_mall_local.fulfil import PICKUP
from social_mall_local.tickets import order_tickets
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.e2e.test_console_browser import ARTIFACTS, browser, served, wait_for  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin, console_page


def location(served, user, lat, lng):
    async def go():
        async with aiohttp.ClientSession() as session:
            wx = MPSimulator(session, f"{served.url}/wechat/mp/demo", token=TEST_TOKEN, app_id=TEST_APP_ID,
                             aes_key=TEST_AES_KEY)
            await wx.event(user, "subscribe")
            return (await wx.location(user, lat, lng, "这里")).text

    return served.run(go())


async def paid_service_ticket(svc) -> str:
    """A paid 到店服务 (纯棉毛巾 as a 3-use card) at 人民广场店: its ticket code."""
    tenant = await svc.tenant("demo")
    now = svc.clock()
    async with svc.uows() as uow:
        product = (await list_products(uow, tenant.id, keyword="纯棉毛巾")).items[0]
        await P.save_settings(uow, tenant.id, "test", P.ProductSettings(product.id, kind=P.CARD, uses=3))
        sku = (await uow.catalog.skus(tenant.id, product.id))[0]
        from sqlalchemy import select

        from social_mall_local.models import Store

        store = await uow.session.scalar(select(Store.id).where(Store.name == "人民广场店"))
        member, _ = await resolve_member(uow, tenant.id, "mp", "oBrowser_card_buyer_0000001")
        order = await place_order(uow, tenant.id, member.id, [(sku.id, 1)], address_id=None, now=now,
                                  timeout=timedelta(minutes=30), fulfilment=(PICKUP, Choice("pickup", {"store": store})))
        await open_payment(uow, order, gateway="sandbox")
        tx = Transaction(f"EV-{uuid.uuid4().hex[:8]}", order.order_no, "4200000001", "SUCCESS", order.total_fen,
                         tenant.pay_mch_id, tenant.pay_app_id, "oBrowser_card_buyer_0000001", "")
        await apply_transaction(uow, tx, tenant=tenant.id, gateway="sandbox", mchid=tenant.pay_mch_id,
                                appid=tenant.pay_app_id, now=now)
        await uow.commit()
    for _ in range(20):
        await svc.outbox.drain()
        if not await svc.outbox.run_once():
            break
    async with svc.uows() as uow:
        (ticket,) = await order_tickets(uow, tenant.id, order.id)
    return ticket.code


def test_local_services_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    code = served.run(paid_service_ticket(served.svc))
    context, page = console_page(browser, served.url)

    # stores: the nav entry, the demo stores, a bad form refused, a good one saved
    page.click("nav.side >> text=本地服务")
    page.wait_for_url("**/console/local/stores")
    assert [t.strip() for t in page.locator("#stores tbody td:nth-child(2)").all_inner_texts()] == \
        ["陆家嘴店", "人民广场店", "徐家汇店"]
    page.click("text=新建门店")
    page.fill("input[name=name]", "静安寺店")
    page.fill("input[name=address]", "上海市静安区南京西路1618号")
    page.fill("input[name=lat]", "91.5")
    page.fill("input[name=lng]", "121.445600")
    for day in range(1, 8):   # open round the clock: the chat's answer must not depend on the hour the suite runs
        page.fill(f"input[name=hours_{day}]", "00:00-24:00")
    page.click("#store-form button[type=submit]")
    assert "坐标格式" in page.inner_text("p.error")
    page.fill("input[name=lat]", "31.223400")
    page.click("#store-form button[type=submit]")
    page.wait_for_url("**/console/local/stores/*?ok=saved")
    assert "已保存" in page.inner_text(".flash")
    assert page.input_value("input[name=hours_6]") == "00:00-24:00"   # past-midnight ranges: test_local_rules
    answer = location(served, "oBrowser_near_jingan_000001", "31.223500", "121.445500")
    assert "静安寺店" in answer.splitlines()[1]

    # a delivery zone for it
    page.goto(f"{served.url}/console/local/zones")
    page.select_option("#zone-form select[name=store_id]", label="静安寺店")
    page.fill("#zone-form input[name=name]", "静安 3 公里")
    page.fill("#zone-form input[name=radius_m]", "3000")
    page.fill("#zone-form textarea[name=tiers]", "2000 4.00\n3000 6.00")
    page.click("#zone-form button[type=submit]")
    page.wait_for_url("**/console/local/zones?ok=saved")
    row = page.locator("#zones tr", has_text="静安 3 公里").inner_text()
    assert "半径 3000 米" in row and "2000 米内 ¥4.00" in row

    # slots: a week calendar
    page.goto(f"{served.url}/console/local/slots")
    page.select_option("select[name=store_id]", label="静安寺店")
    page.click("form.filters button")
    for d in range(1, 8):
        page.check(f"input[name=day_{d}]")
    page.fill("input[name=start]", "18:00")
    page.fill("input[name=end]", "19:00")
    page.fill("input[name=capacity]", "5")
    page.click("#slot-form button[type=submit]")
    page.wait_for_url("**/console/local/slots?store_id=*")
    cells = page.locator("#week tbody tr", has_text="18:00–19:00").locator("td").all_inner_texts()
    assert cells == ["0/5"] * 7
    assert page.locator("#week thead th").count() == 8
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"local_slots_week_{backend.name}.png"), full_page=True)

    # tickets: found by the code as a member reads it, verified in the console
    page.goto(f"{served.url}/console/local/tickets")
    page.fill("input[name=code]", f"{code[:4]} {code[4:8]} {code[8:]}")
    page.click("form.filters button")
    page.click(f"#tickets >> text={code[:4]} {code[4:8]} {code[8:]}")
    assert page.inner_text("#uses") == "3/3"
    page.click("#verify")
    page.wait_for_url("**/console/local/tickets/*")
    assert "核销成功" in page.inner_text("#notice") and page.inner_text("#uses") == "2/3"
    assert "admin:boss" in page.inner_text("#ticket-log")
    served.settle()
    pushed = wait_for(lambda: served.fake.sent_messages("oBrowser_card_buyer_0000001"))
    assert any("核销" in m["text"]["content"] for m in pushed if m.get("msgtype") == "text")

    # the verification log: reversed by the admin
    page.goto(f"{served.url}/console/local/verifications")
    assert "admin:boss" in page.inner_text("#verifications")
    page.click("#verifications button:has-text('撤销')")
    page.wait_for_url("**/console/local/verifications?notice=*")
    assert "已撤销" in page.inner_text("#notice")
    assert "已撤销" in page.inner_text("#verifications")
    page.goto(f"{served.url}/console/local/tickets")
    assert "3/3" in page.inner_text("#tickets")
    page.screenshot(path=str(ARTIFACTS / f"local_tickets_{backend.name}.png"), full_page=True)
    context.close()
