"""The group-buy campaign form's 团长奖励 in a real browser (Debian's chromium driven by
Playwright) against the app on a loopback port: a share above 50 % refused with the field
named, then a fixed reward saved and shown on the campaign's page."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.groupbuy import service as gb
from storage.models import Product
from tests.e2e.test_console_browser import ARTIFACTS, browser, served  # noqa: F401  (fixtures)
from tests.fakes.console_kit import PASSWORD, make_admin, console_page


async def _product(svc) -> int:
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        return await uow.session.scalar(select(Product.id).where(Product.tenant_id == tenant.id,
                                                                 Product.title == "丹东草莓"))


async def _campaign(svc, campaign_id: int):
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        return await gb.load_campaign(uow, tenant.id, campaign_id)


def test_leader_reward_on_the_campaign_form(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss"))
    product_id = served.run(_product(served.svc))
    context, page = console_page(browser, served.url)

    page.goto(f"{served.url}/console/groupbuy/new?product_id={product_id}")
    page.locator("input[name^=price_]").first.fill("20.00")
    page.check("input[name=leader_reward_kind][value=percent]")
    page.fill("input[name=leader_reward]", "60")
    page.click("form[action='/console/groupbuy'] button[type=submit]")
    assert "团长奖励" in page.locator("#form-error").inner_text()
    assert page.locator("input[name=leader_reward_kind][value=percent]").is_checked()   # the form kept
    page.check("input[name=leader_reward_kind][value=fixed]")
    page.fill("input[name=leader_reward]", "5")
    page.click("form[action='/console/groupbuy'] button[type=submit]")
    page.wait_for_url("**/console/groupbuy/*?ok=created")
    assert "团长奖励：¥5.00/团" in page.content()
    campaign_id = int(page.url.split("/console/groupbuy/")[1].split("?")[0])
    c = served.run(_campaign(served.svc, campaign_id))
    assert (c.leader_reward_fen, c.leader_reward_bp) == (500, 0)
    page.screenshot(path=str(ARTIFACTS / f"groupbuy-leader-reward-{backend.name}.png"), full_page=True)
    context.close()
