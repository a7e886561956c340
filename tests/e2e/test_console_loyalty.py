"""The console's 会员积分 page: the loyalty configuration saved without Python, audited
(before and after of the fields changed), the settings permission and CSRF; bad input
answers 400 with the field named and changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.loyalty import service as loyalty
from storage.models import AuditEntry
from tests.fakes.console_kit import login, make_admin


async def cfg(mall):
    async with mall.svc.uows() as uow:
        return await loyalty.config(uow, 1)


async def audits(mall) -> list[AuditEntry]:
    async with mall.svc.uows() as uow:
        return list((await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "loyalty.configure").order_by(AuditEntry.id))).all())


async def test_an_owner_sets_the_refund_rules_and_earning_and_bad_input_changes_nothing(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    page = await mall.client.get("/console/loyalty")
    html = await page.text()
    assert page.status == 200 and 'name="refund_points"' in html and "按退款比例退回" in html
    assert 'href="/console/loyalty"' in html                                   # in the side panel
    before = await cfg(mall)
    assert (before.refund_points, before.refund_coupon) == ("share", "full")

    resp = await mall.client.post("/console/loyalty", allow_redirects=False, data={
        "_csrf": csrf, "earn_points_per_yuan": "2", "refund_points": "never", "refund_coupon": "never"})
    assert resp.status == 303 and resp.headers["Location"] == "/console/loyalty?ok=saved"
    after = await cfg(mall)
    assert (after.earn_points_per_yuan, after.refund_points, after.refund_coupon) == (2, "never", "never")
    assert after.redeem_points_per_yuan == before.redeem_points_per_yuan      # blank fields keep their value
    [entry] = await audits(mall)
    assert entry.before == {"earn_points_per_yuan": 1, "refund_coupon": "full", "refund_points": "share"}
    assert entry.after == {"earn_points_per_yuan": 2, "refund_coupon": "never", "refund_points": "never"}

    for bad in ({"redeem_cap_bp": "20000"}, {"earn_points_per_yuan": "１"}, {"refund_points": "all"},
                {"streak_days": "-1"}):
        resp = await mall.client.post("/console/loyalty", data={"_csrf": csrf, "signin_points": "9", **bad})
        assert resp.status == 400, bad
        assert "超出范围" in await resp.text() or "须为整数" in await resp.text()
    assert await cfg(mall) == after and len(await audits(mall)) == 1         # nothing changed

    resp = await mall.client.post("/console/loyalty", data={"signin_points": "9"}, allow_redirects=False)
    assert resp.status in (403, 400) and await cfg(mall) == after              # no CSRF token: refused


async def test_a_clerk_without_the_settings_permission_cannot_open_it(mall):
    await make_admin(mall.svc.uows, "clerk", role="operator")
    await login(mall.client, "clerk")
    resp = await mall.client.get("/console/loyalty", allow_redirects=False)
    assert resp.status == 403
