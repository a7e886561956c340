"""Done when: a campaign to a segment reaches exactly its members (the fake WeChat API
records them): a customer-service message inside the 48-hour window, the template message
outside it (or when WeChat says 45015), nobody during quiet hours, nobody over the weekly
cap, nobody who said 「退订」; TEMPLATESENDJOBFINISH marks delivery, the tracked link counts
the open, and the report counts the order placed after it. WeChat's 45009 is retried."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import func, select

from social_mall.plugins import Delivery
from social_mall_insights import campaigns as K
from social_mall_insights.models import Campaign, Segment, Send
from tests.fakes.console_kit import login, make_admin

from ins_kit import (
    ADDRESS, Clock, app_with_clock, member_of, pay, record, say, shanghai, simulator,
)

A, B, C, D, E, F = (f"oIns_camp_{x}_00000000000001" for x in "abcdef")
TEXT = "周末水果节：脐橙第二件半价"


async def form_key(mall, path: str) -> str:
    page = await (await mall.client.get(path)).text()
    return re.search(r'name="form_key" value="([0-9a-f]+)"', page).group(1)


async def setup_people(mall, clock, wx) -> None:
    """B followed through the poster on Monday; A, C, E, F on Thursday (C then says 退订);
    D followed with no poster (not in the segment). WeChat refuses F's customer-service
    messages (45015) though F wrote within 48 hours."""
    await wx.event(B, "subscribe", "qrscene_poster_7")
    clock.advance(days=3)
    for u in (A, C, E, F):
        await wx.event(u, "subscribe", "qrscene_poster_7")
    await wx.event(D, "subscribe")
    assert "已退订活动推送" in await say(wx, C, "退订")
    assert "已退订" in await say(wx, C, "消息设置")
    mall.fake.outside_48h.add(F)
    await record(mall)


async def test_a_segment_campaign_reaches_exactly_its_members_respecting_quiet_hours_caps_and_opt_outs(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 2, 10, 0))                   # a Monday morning
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    wx = simulator(mall)
    await setup_people(mall, clock, wx)
    tenant = await mall.svc.tenant("demo")
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")

    saved = await mall.client.post("/console/insights/settings", data={
        "_csrf": csrf, "retention_days": "400", "template_id": "TPL_promo_1", "quiet_start": "22:00",
        "quiet_end": "08:00", "weekly_cap": "1"})
    assert saved.status == 200
    counted = await (await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "action": "count"})).text()
    assert "符合条件：5 人" in counted
    await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "action": "save"})
    e_member = await member_of(mall, E)
    async with mall.svc.uows() as uow:
        seg_id = (await uow.session.execute(select(func.max(Segment.id)))).scalar()
        # E already got a push this week (the cap is 1)
        old, _ = await K.create(uow, tenant.id, "test", segment_id=seg_id, name="旧推送", text="旧", url="",
                                send_at=clock() - timedelta(days=1), form_key="old1",
                                now=clock())
        await uow.session.execute(Campaign.__table__.update().where(Campaign.id == old).values(status="sent"))
        uow.session.add(Send(tenant_id=tenant.id, campaign_id=old, member_id=e_member, status="sent",
                             via="kf", reason="", msg_id=0, delivered=True, sent_at=clock() - timedelta(days=1)))
        await uow.commit()

    clock.advance(hours=13)                                        # Thursday 23:00: quiet hours
    key = await form_key(mall, "/console/insights/campaigns")
    form = {"_csrf": csrf, "form_key": key, "name": "水果节", "segment": str(seg_id), "text": TEXT,
            "url": "https://shop.example.com/fruit"}
    preview = await (await mall.client.post("/console/insights/campaigns", data={**form, "action": "preview"})).text()
    assert "将发送给 <b>5</b> 人" in preview and TEXT in preview
    made = await mall.client.post("/console/insights/campaigns", data={**form, "action": "create"},
                                  allow_redirects=False)
    assert made.status == 303
    cid = int(made.headers["Location"].rsplit("/", 1)[1].split("?")[0])
    again = await mall.client.post("/console/insights/campaigns", data={**form, "action": "create"},
                                   allow_redirects=False)           # a resubmit makes nothing new
    assert again.headers["Location"] == made.headers["Location"]

    job = next(j for j in mall.svc.registry.jobs if j.name == "insights.campaigns")
    assert await job.run() == 0                                     # quiet hours: nothing handed over
    await mall.settle()
    assert mall.fake.templates_sent == [] and not any(TEXT in json.dumps(m, ensure_ascii=False)
                                                      for m in mall.fake.sent_messages())

    clock.advance(hours=9, minutes=30)                             # Friday 08:30
    assert await job.run() == 5
    await mall.settle()
    kf = [m["touser"] for m in mall.fake.sent_messages() if TEXT in m.get("text", {}).get("content", "")]
    tpl = [m["touser"] for m in mall.fake.templates_sent if m["template_id"] == "TPL_promo_1"]
    assert kf == [A]                                               # inside the 48-hour window
    assert sorted(tpl) == sorted([B, F])                           # B: outside it; F: WeChat said 45015
    assert all(TEXT in m["data"]["first"]["value"] and m["url"].startswith(str(mall.client.make_url("/i/c/demo/")))
               for m in mall.fake.templates_sent)

    # delivery of B's template message, as WeChat reports it
    msg_b = next(m["msgid"] for m in mall.fake.templates_sent if m["touser"] == B)
    xml = wx._envelope(B, "event", f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msg_b}</MsgID>"
                                   "<Status><![CDATA[success]]></Status>", 1749000000)
    assert (await wx.post(*wx.signed_request(xml, user=B))).body == "success"

    # A opens the link, then buys in chat
    link = re.search(r"(http\S+/i/c/demo/\S+)", next(
        m["text"]["content"] for m in mall.fake.sent_messages(A) if TEXT in m["text"]["content"])).group(1)
    opened = await mall.client.get(link[link.index("/i/c/"):], allow_redirects=False)
    assert opened.status == 302 and opened.headers["Location"] == "https://shop.example.com/fruit"
    assert (await mall.client.get(link[link.index("/i/c/"):] + "x", allow_redirects=False)).status == 404
    await say(wx, A, "分类")
    await say(wx, A, "1")
    await wx.text(A, "1")
    asked = await say(wx, A, "1×2")
    if "请发来收货地址" in asked:
        asked = await say(wx, A, ADDRESS)
    await pay(mall, await say(wx, A, "确认"))
    await record(mall)

    assert await job.run() == 0                                     # nothing left to hand over
    report = json.loads(await (await mall.client.get(f"/console/insights/campaigns/{cid}?format=json")).text())
    assert report["status"] == "sent"
    assert (report["targeted"], report["sent"], report["via_kf"], report["via_template"]) == (5, 3, 1, 2)
    assert report["skipped"] == {"optout": 1, "cap": 1}
    assert (report["delivered"], report["opened"], report["buyers"], report["orders"]) == (2, 1, 1, 1)
    assert report["revenue_fen"] > 0
    page = await (await mall.client.get(f"/console/insights/campaigns/{cid}")).text()
    assert 'id="campaign-report"' in page
    # nobody outside the segment, nobody who opted out, nobody capped got anything
    for u in (C, D, E):
        assert not any(TEXT in json.dumps(m, ensure_ascii=False) for m in mall.fake.sent_messages(u))
        assert not [m for m in mall.fake.templates_sent if m["touser"] == u]


async def test_wechat_rate_limit_puts_the_send_back_and_the_retry_sends_once(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 5, 10, 0))
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    wx = simulator(mall)
    await wx.event(A, "subscribe", "qrscene_poster_7")
    await record(mall)
    tenant = await mall.svc.tenant("demo")
    from social_mall_insights import segments as S

    async with mall.svc.uows() as uow:
        seg = await S.save(uow, tenant.id, "海报", S.Rules(acq=("qr",)), clock())
        cid, _ = await K.create(uow, tenant.id, "test", segment_id=seg, name="x", text=TEXT, url="", send_at=clock(),
                                form_key="k1", now=clock())
        assert await K.run_due(uow, clock()) == 1
        await uow.commit()
        send = (await uow.session.execute(select(Send))).scalar_one()
    mall.fake.fail_next("/cgi-bin/message/custom/send", 45009)
    d = Delivery(1, tenant.id, K.TOPIC, {"campaign_id": cid, "send_id": send.id, "member_id": send.member_id}, 1)
    try:
        await K.deliver(mall.svc, d)
        raise AssertionError("45009 must raise for a retry")
    except K.Later:
        pass
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Send, send.id)).status == "queued"
    assert not any(TEXT in m["text"]["content"] for m in mall.fake.sent_messages(A))
    await K.deliver(mall.svc, d)
    await K.deliver(mall.svc, d)                                    # a repeated delivery sends nothing more
    assert sum(TEXT in m["text"]["content"] for m in mall.fake.sent_messages(A)) == 1
    async with mall.svc.uows() as uow:
        row = await uow.session.get(Send, send.id)
        assert (row.status, row.via) == ("sent", "kf")
