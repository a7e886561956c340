"""PIPL Art. 24 on the console's member page: the 个性化推荐 section says whether the member
gets personalised recommendations; staff who may edit members switch it at the member's
request (audited, honoured by the next 猜你喜欢); a role that may not, a forged or foreign
member id, change nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from social_mall_intelligence.models import MemberPrefs
from storage.models import AuditEntry, MemberIdentity
from social_mall.members.service import resolve_member
from tests.fakes.console_kit import login, make_admin, make_tenant

from intel_kit import say, simulator

USER = "oUser_intel_prefs_0000000001"


async def state(mall) -> tuple[list[tuple[int, bool]], int]:
    async with mall.svc.uows() as uow:
        prefs = [(int(m), bool(p)) for m, p in (await uow.session.execute(
            select(MemberPrefs.member_id, MemberPrefs.personalised))).all()]
        audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                          .where(AuditEntry.action == "intel.personalised"))
    return prefs, int(audits or 0)


async def test_staff_switch_personalisation_at_a_members_request(mall):
    wx = simulator(mall)
    assert (await say(wx, USER, "猜你喜欢")).startswith("猜你喜欢")
    async with mall.svc.uows() as uow:
        member = int(await uow.session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.external_id == USER)))

    await make_admin(mall.svc.uows, "prefs_fin", "finance")          # may look at members, not edit them
    csrf = await login(mall.client, "prefs_fin")
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    assert "个性化推荐" in page and "开启：猜你喜欢" in page and "应会员要求关闭" not in page
    before = await state(mall)
    resp = await mall.client.post(f"/console/intelligence/members/{member}/personalised",
                                  data={"_csrf": csrf, "on": "0"}, allow_redirects=False)
    assert resp.status == 403 and await state(mall) == before

    other = await make_tenant(mall.svc.uows, "prefs_other")         # another shop's member on the same platform
    async with mall.svc.uows() as uow:
        foreign, _ = await resolve_member(uow, other, "mp", "oUser_intel_prefs_other_0001")
        await uow.commit()
    await make_admin(mall.svc.uows, "prefs_boss")
    csrf = await login(mall.client, "prefs_boss")
    before = await state(mall)
    for bad in ("99999999", str(foreign.id)):
        resp = await mall.client.post(f"/console/intelligence/members/{bad}/personalised",
                                      data={"_csrf": csrf, "on": "0"}, allow_redirects=False)
        assert resp.status == 404, bad
    assert await state(mall) == before
    resp = await mall.client.post(f"/console/intelligence/members/{member}/personalised",
                                  data={"_csrf": csrf, "on": "0"}, allow_redirects=False)
    assert resp.status == 303
    assert await state(mall) == ([(member, False)], 1)
    page = await (await mall.client.get(f"/console/members/{member}")).text()
    assert "已关闭" in page and "应会员要求开启" in page
    assert (await say(wx, USER, "猜你喜欢")).startswith("全店热销（个性化推荐已关闭）")
    await mall.client.post(f"/console/intelligence/members/{member}/personalised", data={"_csrf": csrf, "on": "0"})
    assert await state(mall) == ([(member, False)], 1)                   # the same again: nothing new
    await say(wx, USER, "开启个性化推荐")                                   # the member's own switch
    assert await state(mall) == ([(member, True)], 1)
