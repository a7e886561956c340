"""会员标签 in a real browser (chromium through Playwright, the app on a loopback port): the
side panel leads to the tenant's tags with their member counts, a tag's link opens the
members it holds, a second tag ticked narrows the list, a tag is renamed, and deleting one
asks first (cancel keeps it), then takes it from everyone."""

from sqlalchemy import select

from social_mall.members import tags
from social_mall.members.service import resolve_member
from storage.models import MemberTag, MemberTagLink
from tests.e2e.test_console_browser import ARTIFACTS, browser, served  # noqa: F401 - fixtures
from tests.fakes.console_kit import console_page, make_admin

VIP, NORTH, EAST = "浏览器VIP", "浏览器华北", "浏览器华东"


async def seed(served) -> tuple[list[int], int, int]:
    async with served.svc.uows() as uow:
        tenant = (await uow.tenants.by_code("demo")).id
        people = [(await resolve_member(uow, tenant, "mp", f"o_tags_browser_{i}"))[0].id for i in range(3)]
        for m in people:
            await tags.tag_member(uow, tenant, m, VIP, actor="admin:1", now=served.svc.clock())
        await tags.tag_member(uow, tenant, people[2], NORTH, actor="admin:1", now=served.svc.clock())
        ids = {n: i for i, n in await uow.session.execute(select(MemberTag.id, MemberTag.name)
                                                           .where(MemberTag.tenant_id == tenant))}
        await uow.commit()
    return people, ids[VIP], ids[NORTH]


def row(page, tag_id: int):
    return page.locator(f"#tag-list tr[data-tag='{tag_id}']")


def test_tags_page_filter_rename_and_delete_in_the_browser(browser, served, backend):  # noqa: F811
    served.run(make_admin(served.svc.uows, "boss_tagsb"))
    people, vip, north = served.run(seed(served))
    context, page = console_page(browser, served.url, "boss_tagsb")

    page.click("nav.side a[href='/console/tags']")
    page.wait_for_url("**/console/tags")
    assert row(page, vip).locator("td").nth(1).inner_text() == "手动"
    assert row(page, vip).locator("td").nth(2).inner_text() == "3"
    assert row(page, north).locator("td").nth(2).inner_text() == "1"

    # the tag's link: its members; ticking a second tag narrows the list to those holding both
    row(page, vip).locator("td a", has_text=VIP).click()
    page.wait_for_url(f"**/console/members?tag={vip}")
    shown = {int(t) for t in page.locator("table tbody tr td:first-child a").all_inner_texts()}
    assert shown == set(people)
    assert page.locator(f"input[name=tag][value='{vip}']").is_checked()
    page.check(f"input[name=tag][value='{north}']")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"**/console/members?*tag={north}*")
    assert page.locator("table tbody tr td:first-child a").all_inner_texts() == [str(people[2])]

    # rename
    page.goto(f"{served.url}/console/tags")
    row(page, north).locator("input[name=name]").fill(EAST)
    row(page, north).locator("button", has_text="改名").click()
    page.wait_for_url("**/console/tags?ok=saved")
    assert "已保存" in page.inner_text("p.flash")
    assert row(page, north).locator("td").first.inner_text() == EAST

    # delete asks first: cancelling keeps the tag; confirming takes it from everyone
    row(page, vip).locator("a", has_text="删除").click()
    page.wait_for_url(f"**/console/tags/{vip}/delete")
    assert page.inner_text("#tag-name") == VIP and "3" in page.inner_text("section.card")
    page.click("a:has-text('取消')")
    page.wait_for_url("**/console/tags")
    assert row(page, vip).count() == 1
    row(page, vip).locator("a", has_text="删除").click()
    page.click("button:has-text('确认删除')")
    page.wait_for_url("**/console/tags?ok=deleted")
    assert "已删除" in page.inner_text("p.flash") and row(page, vip).count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console_tags_{backend.name}.png"), full_page=True)
    context.close()

    async def links() -> list[int]:
        async with served.svc.uows() as uow:
            return list((await uow.session.execute(select(MemberTagLink.tag_id).where(
                MemberTagLink.member_id.in_(people)))).scalars())

    assert served.run(links()) == [north]
