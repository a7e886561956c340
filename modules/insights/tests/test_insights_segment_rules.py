"""A segment whose rule names a member tag that is then deleted holds nobody and says so:
the console marks it 「规则已失效」, a campaign or a coupon to it is refused (nothing made,
nothing given), a campaign already scheduled to it stops without sending, its auto-tag is
left as it was (not taken from everyone), and a tag made later — which on SQLite may get the
deleted tag's id — is never matched. A rule naming a tag that does not exist is refused when
saved. Signed WeChat events, the console over HTTP."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from social_mall.loyalty import service as loyalty
from social_mall.pricing.rules import CouponKind
from social_mall_insights.models import Campaign, Segment, Send
from storage.loyalty_models import Coupon
from storage.models import AuditEntry, MemberTag, MemberTagLink
from tests.fakes.console_kit import login, make_admin

from ins_kit import Clock, app_with_clock, job, member_of, record, shanghai, simulator

A, B, C = (f"oIns_segrule_{x}_0000000000001" for x in "abc")
TEXT = "会员日：全场九折"


async def tag_of(mall, name: str) -> int | None:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(MemberTag.id).where(MemberTag.name == name))


async def holders(mall, tag_id: int) -> set[int]:
    async with mall.svc.uows() as uow:
        return {int(m) for (m,) in await uow.session.execute(
            select(MemberTagLink.member_id).where(MemberTagLink.tag_id == tag_id))}


async def counts(mall) -> tuple[int, int, int, int, int]:
    """segments, campaigns, sends, coupons, segment.coupons audit entries"""
    async with mall.svc.uows() as uow:
        def n(q):
            return uow.session.scalar(select(func.count()).select_from(q))
        return (int(await n(Segment)), int(await n(Campaign)), int(await n(Send)), int(await n(Coupon)),
                int(await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
                    AuditEntry.action == "segment.coupons")) or 0))


async def test_a_segment_on_a_deleted_tag_holds_nobody_says_so_and_is_refused_for_pushes_and_coupons(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 2, 10, 0))                   # a Monday morning, outside quiet hours
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    wx = simulator(mall)
    for u in (A, B, C):
        await wx.event(u, "subscribe")
    await record(mall)
    a, b, c = [await member_of(mall, u) for u in (A, B, C)]
    tenant = (await mall.svc.tenant("demo")).id
    await make_admin(mall.svc.uows, "boss_segrule")
    csrf = await login(mall.client, "boss_segrule")
    for m in (a, b):                                             # VIP given by hand on the member page
        done = await mall.client.post(f"/console/members/{m}/tags", data={"_csrf": csrf, "tag": "VIP"},
                                      allow_redirects=False)
        assert done.status == 303
    vip = await tag_of(mall, "VIP")
    saved = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "VIP 粉丝", "tag": str(vip), "auto_tag": "VIP 推送", "action": "save"},
        allow_redirects=False)
    assert saved.status == 303, await saved.text()
    pushed = await tag_of(mall, "VIP 推送")
    assert await holders(mall, pushed) == {a, b}
    async with mall.svc.uows() as uow:
        seg_id = int(await uow.session.scalar(select(func.max(Segment.id))))
        gift = await loyalty.create_template(uow, tenant, name="会员日券", kind=CouponKind.AMOUNT, off_fen=500,
                                             valid_days=30, per_member=1, total_qty=100, claimable=False)
        await uow.commit()
    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "标签：VIP" in page and "规则已失效" not in page
    # a campaign scheduled for Wednesday 10:00 to the segment
    key = re.search(r'name="form_key" value="([0-9a-f]+)"',
                    await (await mall.client.get("/console/insights/campaigns")).text()).group(1)
    made = await mall.client.post("/console/insights/campaigns", data={
        "_csrf": csrf, "form_key": key, "name": "会员日", "segment": str(seg_id), "text": TEXT, "url": "",
        "send_at": "2025-06-04 10:00", "action": "create"}, allow_redirects=False)
    assert made.status == 303
    cid = int(made.headers["Location"].rsplit("/", 1)[1].split("?")[0])

    # the tag is deleted (behind its confirmation) and a new one made; on SQLite it may get VIP's id
    gone = await mall.client.post(f"/console/tags/{vip}/delete", data={"_csrf": csrf, "confirm": "1"},
                                  allow_redirects=False)
    assert gone.status == 303
    await mall.settle()
    done = await mall.client.post(f"/console/members/{c}/tags", data={"_csrf": csrf, "tag": "新客"},
                                  allow_redirects=False)
    assert done.status == 303
    async with mall.svc.uows() as uow:
        rules = (await uow.session.get(Segment, seg_id, populate_existing=True)).rules
    assert rules["tag"] == 0 and rules["tag_gone"] == "VIP"

    page = await (await mall.client.get("/console/insights/segments")).text()
    row = page.split("VIP 粉丝", 1)[1].split("</tr>", 1)[0]
    assert "标签：VIP（已删除）" in row and "规则已失效：标签「VIP」已删除" in row
    assert '<td class="num">—</td>' in row                          # no count: it holds nobody

    before = await counts(mall)
    # a new campaign to it: refused at the preview and at the send, nothing made
    key = re.search(r'name="form_key" value="([0-9a-f]+)"',
                    await (await mall.client.get("/console/insights/campaigns")).text()).group(1)
    form = {"_csrf": csrf, "form_key": key, "name": "会员日 2", "segment": str(seg_id), "text": TEXT, "url": ""}
    for action in ("preview", "create"):
        refused = await mall.client.post("/console/insights/campaigns", data={**form, "action": action},
                                         allow_redirects=False)
        assert refused.status == 400
        assert "人群「VIP 粉丝」的规则已失效（标签「VIP」已删除）" in await refused.text()
    # a coupon to it: refused, nobody given one
    page = await (await mall.client.get("/console/insights/segments")).text()
    action, fkey = re.search(rf'action="(/console/insights/segments/{seg_id}/coupons)".*?name="form_key" '
                             r'value="(\w+)"', page, re.S).groups()
    refused = await mall.client.post(action, data={"_csrf": csrf, "form_key": fkey, "template": str(gift)},
                                     allow_redirects=False)
    assert refused.status == 409 and "规则已失效" in await refused.text()
    # the hourly upkeep leaves its auto-tag as it was (it does not take it from A and B)
    assert await job(mall, "insights.segment_tags") == 0
    assert await holders(mall, pushed) == {a, b}
    # the scheduled campaign, due, stops: nobody is sent anything
    clock.advance(days=2, minutes=1)
    assert await job(mall, "insights.campaigns") == 0
    await mall.settle()
    assert await counts(mall) == before
    assert not any(TEXT in json.dumps(m, ensure_ascii=False) for m in mall.fake.sent_messages())
    assert not any(TEXT in json.dumps(m, ensure_ascii=False) for m in mall.fake.templates_sent)
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Campaign, cid, populate_existing=True)).status == "stopped"
    assert "已停止：人群规则失效" in await (await mall.client.get(f"/console/insights/campaigns/{cid}")).text()


async def test_a_rule_on_a_tag_that_does_not_exist_is_refused_and_nothing_saved(mall):
    wx = simulator(mall)
    await wx.event(A, "subscribe")
    await record(mall)
    await make_admin(mall.svc.uows, "boss_segrule2")
    csrf = await login(mall.client, "boss_segrule2")
    before = await counts(mall)
    for action in ("count", "save"):
        refused = await mall.client.post("/console/insights/segments", data={
            "_csrf": csrf, "name": "幽灵标签", "tag": "987654", "action": action}, allow_redirects=False)
        assert refused.status == 400
        assert "标签 #987654 不存在（已删除）：请从列表中重新选择" in await refused.text()
    refused = await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "无主", "group": "club:8", "action": "save"}, allow_redirects=False)
    assert refused.status == 400 and "所属「club:8」已不存在" in await refused.text()
    assert await counts(mall) == before
