"""Segments on member tags and on other modules' groups (the core's MemberGroups seam,
filled here by a stand-in: the insights module never knows whose groups they are), and a
segment that tags its members: the job gives the tag to exactly the segment's members,
takes it from those who left, and never takes a tag given by hand."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.members import tags as core_tags
from social_mall.members.audience import MemberGroups
from social_mall_insights.models import Segment
from storage.models import MemberTag, MemberTagLink
from tests.fakes.console_kit import login, make_admin

from ins_kit import job, member_of, record, simulator

A, B, C, D = (f"oIns_tags_{x}_000000000000001" for x in "abcd")


async def holders(mall, tag_id: int) -> dict[int, str]:
    async with mall.svc.uows() as uow:
        rows = await uow.session.execute(select(MemberTagLink.member_id, MemberTagLink.source)
                                         .where(MemberTagLink.tag_id == tag_id))
        return {int(m): s for m, s in rows}


async def test_segments_on_tags_and_groups_and_a_segment_that_tags_its_members(mall):
    wx = simulator(mall)
    for u in (A, B, C):
        await wx.event(u, "subscribe", "qrscene_poster_9")
    await wx.event(D, "subscribe")
    await record(mall)
    a, b, c, d = [await member_of(mall, u) for u in (A, B, C, D)]
    tenant = await mall.svc.tenant("demo")
    club = {7: {a, d}}

    async def options(uow, t):
        return [(7, "花园俱乐部")] if t == tenant.id else []

    async def members(uow, t, gid):
        return set(club.get(gid, set())) if t == tenant.id else set()

    mall.svc.registry.add_member_groups(MemberGroups("club", "俱乐部", options, members))
    async with mall.svc.uows() as uow:
        vip = await core_tags.create_tag(uow, tenant.id, "VIP", actor="admin:1", now=mall.svc.clock())
        for m in (b, c, d):
            await core_tags.tag_member(uow, tenant.id, m, "VIP", actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")

    async def count(**rules: str) -> str:
        return await (await mall.client.post("/console/insights/segments", data={
            "_csrf": csrf, "name": "x", "action": "count", **rules})).text()

    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "VIP（3 人）" in page and "俱乐部：花园俱乐部" in page
    assert "符合条件：3 人" in await count(tag=str(vip))
    assert "符合条件：2 人" in await count(tag=str(vip), acq="qr", group="")            # b, c by QR; not d
    assert "符合条件：1 人" in await count(tag=str(vip), group="club:7")                 # d
    assert "符合条件：2 人" in await count(group="club:7")                               # a and d
    assert "符合条件：1 人" in await count(group="club:7", acq="qr")                      # a
    assert "所属「club:8」已不存在" in await count(group="club:8")                  # no such group: refused
    bad = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "x", "action": "count", "group": "club"})
    assert bad.status == 400 and "请从列表中选择" in await bad.text()

    # a segment (QR followers) that tags its members 「海报粉」; D holds it by hand
    async with mall.svc.uows() as uow:
        await core_tags.tag_member(uow, tenant.id, d, "海报粉", actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    saved = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "auto_tag": " 海报粉 ", "action": "save"},
        allow_redirects=False)
    assert saved.status == 303, await saved.text()
    async with mall.svc.uows() as uow:
        seg = await uow.session.scalar(select(Segment).order_by(Segment.id.desc()).limit(1))
        poster = await uow.session.scalar(select(MemberTag.id).where(MemberTag.name == "海报粉"))
    assert seg.tag_id == poster
    src = f"segment:{seg.id}"
    assert await holders(mall, poster) == {a: src, b: src, c: src, d: "manual"}   # tagged on saving
    assert "海报粉" in await (await mall.client.get("/console/insights/segments")).text()

    # B's tag taken by hand comes back on the job's next run (B still matches); the job is idempotent
    async with mall.svc.uows() as uow:
        assert await core_tags.untag_member(uow, tenant.id, b, poster, actor="admin:1")
        await uow.commit()
    assert await job(mall, "insights.segment_tags") == 1
    assert await job(mall, "insights.segment_tags") == 0
    # C leaves the segment (a rule on VIP holders bought by QR, then VIP taken from C)
    await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "VIP 海报", "acq": "qr", "tag": str(vip), "auto_tag": "VIP 海报", "action": "save"})
    async with mall.svc.uows() as uow:
        vip_poster = await core_tags.create_tag(uow, tenant.id, "VIP 海报", actor="admin:1", now=mall.svc.clock())
        assert await core_tags.untag_member(uow, tenant.id, c, vip, actor="admin:1")
        await uow.commit()
    assert {m for m in await holders(mall, vip_poster)} == {b, c}
    await job(mall, "insights.segment_tags")
    assert await holders(mall, vip_poster) == {b: f"segment:{seg.id + 1}"}
    assert await holders(mall, poster) == {a: src, b: src, c: src, d: "manual"}


async def test_a_segments_tag_shows_as_a_rule_tag_and_deleting_it_stops_the_upkeep(mall):
    wx = simulator(mall)
    for u in (A, B):
        await wx.event(u, "subscribe", "qrscene_poster_9")
    await record(mall)
    a, b = [await member_of(mall, u) for u in (A, B)]
    await make_admin(mall.svc.uows, "boss_rule_tag")
    csrf = await login(mall.client, "boss_rule_tag")
    saved = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "auto_tag": "海报粉", "action": "save"}, allow_redirects=False)
    assert saved.status == 303
    async with mall.svc.uows() as uow:
        seg = await uow.session.scalar(select(Segment).order_by(Segment.id.desc()).limit(1))
    tag_id = seg.tag_id
    assert set(await holders(mall, tag_id)) == {a, b}
    page = await (await mall.client.get("/console/tags")).text()
    assert "规则<span class=\"muted\">（分群「海报粉丝」）</span>" in page
    assert "分群「海报粉丝」" in await (await mall.client.get(f"/console/tags/{tag_id}/delete")).text()

    done = await mall.client.post(f"/console/tags/{tag_id}/delete", data={"_csrf": csrf, "confirm": "1"},
                                  allow_redirects=False)
    assert done.status == 303
    await mall.settle()
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Segment, seg.id, populate_existing=True)).tag_id is None
        # a tag made later (on SQLite it may even get the deleted tag's id) is not the segment's
        again = await core_tags.create_tag(uow, (await mall.svc.tenant("demo")).id, "海报粉", actor="admin:1",
                                           now=mall.svc.clock())
        await uow.commit()
    assert await job(mall, "insights.segment_tags") == 0
    assert await holders(mall, again) == {}
    assert "规则" not in (await (await mall.client.get("/console/tags")).text()).split("<tbody>")[1]


async def test_a_segment_whose_rule_names_a_deleted_tag_says_it_holds_nobody(mall):
    """Deleting a tag a segment's rule asks for leaves a segment that matches no one: the
    人群 page says so beside it (before: 「标签：#N」 and a count of 0, no reason)."""
    wx = simulator(mall)
    for u in (A, B):
        await wx.event(u, "subscribe")
    await record(mall)
    tenant = await mall.svc.tenant("demo")
    ids = [await member_of(mall, u) for u in (A, B)]
    async with mall.svc.uows() as uow:
        vip = await core_tags.create_tag(uow, tenant.id, "老客", actor="admin:1", now=mall.svc.clock())
        for m in ids:
            await core_tags.tag_member(uow, tenant.id, m, "老客", actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    await make_admin(mall.svc.uows, "boss_gone_tag")
    csrf = await login(mall.client, "boss_gone_tag")
    saved = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "老客人群", "tag": str(vip), "action": "save"}, allow_redirects=False)
    assert saved.status == 303, await saved.text()
    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "标签：老客" in page and "已删除" not in page

    done = await mall.client.post(f"/console/tags/{vip}/delete", data={"_csrf": csrf, "confirm": "1"},
                                  allow_redirects=False)
    assert done.status == 303
    await mall.settle()
    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "标签：老客（已删除）" in page and "规则已失效：标签「老客」已删除" in page
