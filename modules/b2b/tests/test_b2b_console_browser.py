"""The module's console pages in a real browser (Debian's chromium driven by Playwright)
against the app served on a loopback port: an application made in chat approved, a
customer group, a price list with tiers and a SKU's code, minimum and case pack (a bad
form refused first), a quote answered; the chat then shows the business price and the
quote. Screenshots go to test-artifacts/."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.catalog.service import list_products
from storage.models import Sku
from tests.e2e.test_console_browser import ARTIFACTS, browser, chat, served, wait_for  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin, console_page

from b2b_kit import GOOD_USCC

BUYER = "oBrowser_b2b_buyer_000000001"


async def mango_sku(svc) -> int:
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        product = (await list_products(uow, tenant.id, keyword="芒果干")).items[0]
        return await uow.session.scalar(select(Sku.id).where(Sku.product_id == product.id))


def test_b2b_console_in_a_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    sku = served.run(mango_sku(served.svc))
    said = chat(served, BUYER, "企业采购", "上海味之源餐饮管理有限公司", GOOD_USCC, "张三 13800138000", "同上", "提交")
    assert "已提交企业账户申请" in said[-1]

    context, page = console_page(browser, served.url)

    # the application: approved from the list
    page.click("nav.side >> text=企业采购")
    page.wait_for_url("**/console/b2b/companies")
    row = page.locator("#companies tr", has_text="上海味之源餐饮管理有限公司")
    assert GOOD_USCC in row.inner_text() and "待审核" in row.inner_text()
    row.locator("button.approve").click()
    page.wait_for_url("**/console/b2b/companies?ok=saved")
    assert "已通过" in page.locator("#companies tr", has_text="上海味之源餐饮管理有限公司").inner_text()
    served.settle()
    pushed = wait_for(lambda: [m for m in served.fake.sent_messages(BUYER) if m.get("msgtype") == "text"])
    assert any("已审核通过" in m["text"]["content"] for m in pushed)

    # a group, the company in it, a price list with tiers (a bad one refused first), terms
    page.click("#b2b-tabs >> text=价格表与起订量")
    page.fill("#group-form input[name=name]", "餐饮客户")
    page.click("#group-form button[type=submit]")
    page.wait_for_url("**/console/b2b/prices?ok=saved")
    page.goto(f"{served.url}/console/b2b/companies")
    page.locator("#companies tr", has_text="上海味之源").locator("select[name=group_id]").select_option(label="餐饮客户")
    page.locator("#companies tr", has_text="上海味之源").locator("button:has-text('保存')").click()
    page.wait_for_url("**/console/b2b/companies?ok=saved")
    page.goto(f"{served.url}/console/b2b/prices")
    page.fill("#list-form input[name=name]", "餐饮批发价")
    page.select_option("#list-form select[name=group_id]", label="餐饮客户")
    page.fill("#list-form textarea[name=tiers]", f"{sku} 1 25\n{sku} 10 abc")
    page.click("#list-form button[type=submit]")
    assert "阶梯价格式不对" in page.inner_text("#b2b-error")
    page.fill("#list-form textarea[name=tiers]", f"{sku} 1 25\n{sku} 10 22\n{sku} 50 19.90")
    page.click("#list-form button[type=submit]")
    page.wait_for_url("**/console/b2b/prices?ok=saved")
    lists = page.inner_text("#price-lists")
    assert "餐饮批发价" in lists and "分组：餐饮客户" in lists and "50 件起 ¥19.90" in lists
    page.fill("#terms-form input[name=sku_id]", str(sku))
    page.fill("#terms-form input[name=code]", "a1023")
    page.fill("#terms-form input[name=moq]", "12")
    page.fill("#terms-form input[name=case_pack]", "12")
    page.click("#terms-form button[type=submit]")
    page.wait_for_url("**/console/b2b/prices?ok=saved")
    assert "A1023" in page.inner_text("#terms")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"b2b_prices_{backend.name}.png"), full_page=True)

    card = chat(served, BUYER, "搜索 芒果干")[0]
    assert "企业价 ¥22.00" in card

    # a quote asked in chat, answered in the console, pushed
    assert "已提交询价" in chat(served, BUYER, "询价 A1023 x 240")[0]
    page.goto(f"{served.url}/console/b2b/quotes")
    form = page.locator("#quotes form")
    form.locator(f"input[name=price_{sku}]").fill("18.50")
    form.locator("input[name=expires_on]").fill("2099-12-31")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/console/b2b/quotes?ok=saved")
    assert "已报价" in page.inner_text("#quotes") and "¥4440.00" in page.inner_text("#quotes")
    page.screenshot(path=str(ARTIFACTS / f"b2b_quotes_{backend.name}.png"), full_page=True)
    served.settle()
    wait_for(lambda: any("已报价：合计 ¥4440.00" in m["text"]["content"]
                         for m in served.fake.sent_messages(BUYER) if m.get("msgtype") == "text"))

    # credit terms set in the console; an order paid 「月结」 in chat; a statement
    # (issued as the job would next month) shown with its CSV and repaid in the console
    placed = chat(served, BUYER, "搜索 芒果干", "x24", "王小明 13912345678 上海市黄浦区南京东路1号", "确认")[-1]
    assert "下单成功" in placed and "「月结」" not in placed                  # no credit terms yet
    company = served.run(company_id(served.svc))
    page.click("#b2b-tabs >> text=账期与对账单")
    page.wait_for_url("**/console/b2b/credit")
    page.locator(f"#credit-{company} input[name=limit]").fill("10000")
    page.locator(f"#credit-{company} button:has-text('保存')").click()
    page.wait_for_url("**/console/b2b/credit?ok=saved")
    assert "¥10000.00" in page.inner_text(f"#credit-{company} .limit")
    paid = chat(served, BUYER, "月结")[0]
    assert "已记入企业账期" in paid, paid
    served.run(issue_next_month(served.svc))
    page.reload()
    owed = page.inner_text(f"#credit-{company} .outstanding").strip().lstrip("¥")
    statements = page.inner_text("#statements")
    assert f"¥{owed}" in statements and "待还" in statements
    assert page.locator("#statements a:has-text('下载 CSV')").count() == 1
    page.locator(f"#credit-{company} input[name=amount]").fill(owed)
    page.locator(f"#credit-{company} input[name=ref]").fill("CMB20300101-1")
    page.locator(f"#credit-{company} button:has-text('确认到账')").click()
    page.wait_for_url("**/console/b2b/credit?ok=saved")
    assert "已还清" in page.inner_text("#statements") and page.locator("#credit-reconciled").count() == 1
    page.screenshot(path=str(ARTIFACTS / f"b2b_credit_{backend.name}.png"), full_page=True)
    context.close()


async def company_id(svc) -> int:
    from social_mall_b2b.models import Company

    async with svc.uows() as uow:
        return await uow.session.scalar(select(Company.id))


async def issue_next_month(svc) -> None:
    from datetime import timedelta

    from social_mall_b2b import statements

    tenant = await svc.tenant("demo")
    now = svc.clock() + timedelta(days=32)
    async with svc.uows() as uow:
        assert await statements.issue_due(uow, tenant.id, now.replace(day=2)) or \
            await statements.issue_due(uow, tenant.id, now)
        await uow.commit()
