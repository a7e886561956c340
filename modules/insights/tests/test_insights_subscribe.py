"""订阅通知 in campaigns: outside the 48-hour window a member who tapped 「允许」 in WeChat's
pop-up (subscribe_msg_popup_event, signed into the real endpoint) gets one subscription
message per consent; one who turned it off (subscribe_msg_change_event) or has none gets the
template message; WeChat's 43101 (a consent we thought was there) falls back to the template
and leaves none. A failed subscribe_msg_sent_event takes the delivery back."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from social_mall_insights import campaigns as K
from social_mall_insights.models import Segment, Settings, SubscribeGrant
from tests.fakes.console_kit import login, make_admin

from ins_kit import Clock, app_with_clock, member_of, record, shanghai, simulator

B, G, H, I = (f"oIns_sub_{x}_000000000000001" for x in "bghi")
SUB, OTHER, TPL = "SUB_promo_1", "SUB_other_9", "TPL_promo_1"
TEXT = "周末水果节：脐橙第二件半价，草莓买二送一，满99包邮"   # over 20 characters: cut for a `thing`


def popup(wx, user: str, created: int, *items: tuple[str, str]) -> str:
    listed = "".join(f"<List><TemplateId><![CDATA[{t}]]></TemplateId><SubscribeStatusString><![CDATA[{s}]]>"
                     f"</SubscribeStatusString><PopupScene>2</PopupScene></List>" for t, s in items)
    return wx._envelope(user, "event", "<Event><![CDATA[subscribe_msg_popup_event]]></Event>"
                                       f"<SubscribeMsgPopupEvent>{listed}</SubscribeMsgPopupEvent>", created)


def changed(wx, user: str, created: int, template: str, status: str) -> str:
    return wx._envelope(user, "event", "<Event><![CDATA[subscribe_msg_change_event]]></Event>"
                                       f"<SubscribeMsgChangeEvent><List><TemplateId><![CDATA[{template}]]></TemplateId>"
                                       f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString></List>"
                                       "</SubscribeMsgChangeEvent>", created)


def sent_event(wx, user: str, created: int, template: str, code: str) -> str:
    return wx._envelope(user, "event", "<Event><![CDATA[subscribe_msg_sent_event]]></Event>"
                                       f"<SubscribeMsgSentEvent><List><TemplateId><![CDATA[{template}]]></TemplateId>"
                                       f"<MsgID>1700827132819554304</MsgID><ErrorCode>{code}</ErrorCode>"
                                       "<ErrorStatus><![CDATA[failed]]></ErrorStatus></List></SubscribeMsgSentEvent>",
                       created)


async def grants(mall) -> dict[tuple[int, str], int]:
    async with mall.svc.uows() as uow:
        rows = await uow.session.execute(select(SubscribeGrant.member_id, SubscribeGrant.template_id,
                                                SubscribeGrant.credits))
        return {(int(m), str(t)): int(c) for m, t, c in rows}


async def test_allowed_members_get_a_subscription_message_once_the_others_the_template(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 2, 10, 0))                   # a Monday morning
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    wx = simulator(mall)
    for u in (B, G, H, I):
        await wx.event(u, "subscribe", "qrscene_poster_8")
    await record(mall)
    b, g, h, i = [await member_of(mall, u) for u in (B, G, H, I)]

    # pop-ups: B allows SUB (and refuses another template), G allows then turns it off in
    # WeChat's settings, I's consent is recorded here but WeChat has none (it will say 43101)
    mall.fake.allow_subscribe(B, SUB)
    mall.fake.allow_subscribe(G, SUB)
    for xml, user in ((popup(wx, B, 1748830000, (SUB, "accept"), (OTHER, "reject")), B),
                      (popup(wx, G, 1748830001, (SUB, "accept")), G),
                      (changed(wx, G, 1748830002, SUB, "reject"), G),
                      (popup(wx, I, 1748830003, (SUB, "accept")), I)):
        assert (await wx.post(*wx.signed_request(xml, user=user))).body == "success"
    # WeChat's retry of B's pop-up (same message) counts once
    assert (await wx.post(*wx.signed_request(popup(wx, B, 1748830000, (SUB, "accept")), user=B))).body == "success"
    assert await grants(mall) == {(b, SUB): 1, (g, SUB): 0, (i, SUB): 1}

    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    settings = {"_csrf": csrf, "retention_days": "400", "template_id": TPL, "quiet_start": "22:00",
                "quiet_end": "08:00", "weekly_cap": "2", "sub_template_id": SUB, "sub_text_key": "thing1"}
    bad = await mall.client.post("/console/insights/settings", data={**settings, "sub_text_key": "内容"})
    assert bad.status == 400 and "订阅通知内容字段" in await bad.text()
    async with mall.svc.uows() as uow:
        assert await K.prefs(uow, (await mall.svc.tenant("demo")).id) == K.Prefs()   # the refusal saved nothing
    assert (await mall.client.post("/console/insights/settings", data=settings)).status == 200
    async with mall.svc.uows() as uow:
        row = (await uow.session.execute(select(Settings))).scalar_one()
        assert (row.sub_template_id, row.sub_text_key) == (SUB, "thing1")

    await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "action": "save"})
    async with mall.svc.uows() as uow:
        seg_id = (await uow.session.execute(select(func.max(Segment.id)))).scalar()

    clock.advance(days=3)                                          # Thursday: outside the 48-hour window
    page = await (await mall.client.get("/console/insights/campaigns")).text()
    assert "允许过订阅通知的收到订阅通知" in page
    key = __import__("re").search(r'name="form_key" value="([0-9a-f]+)"', page).group(1)
    made = await mall.client.post("/console/insights/campaigns", allow_redirects=False, data={
        "_csrf": csrf, "form_key": key, "name": "水果节", "segment": str(seg_id), "text": TEXT,
        "url": "https://shop.example.com/fruit", "action": "create"})
    assert made.status == 303
    cid = int(made.headers["Location"].rsplit("/", 1)[1].split("?")[0])
    job = next(j for j in mall.svc.registry.jobs if j.name == "insights.campaigns")
    assert await job.run() == 4
    await mall.settle()

    assert [m["touser"] for m in mall.fake.subscribes_sent] == [B]
    sent = mall.fake.subscribes_sent[0]
    assert sent["template_id"] == SUB and sent["page"].startswith(str(mall.client.make_url("/i/c/demo/")))
    assert sent["data"] == {"thing1": {"value": TEXT[:19] + "…"}}
    assert sorted(m["touser"] for m in mall.fake.templates_sent) == sorted([G, H, I])
    assert await grants(mall) == {(b, SUB): 0, (g, SUB): 0, (i, SUB): 0}   # B spent it; WeChat said I has none
    report = json.loads(await (await mall.client.get(f"/console/insights/campaigns/{cid}?format=json")).text())
    assert (report["sent"], report["via_subscribe"], report["via_template"], report["delivered"]) == (4, 1, 3, 1)
    assert "订阅通知 1" in await (await mall.client.get(f"/console/insights/campaigns/{cid}")).text()

    # WeChat reports that B's message did not arrive after all
    xml = sent_event(wx, B, 1749100000, SUB, "20001")
    assert (await wx.post(*wx.signed_request(xml, user=B))).body == "success"
    report = json.loads(await (await mall.client.get(f"/console/insights/campaigns/{cid}?format=json")).text())
    assert report["delivered"] == 0


async def test_a_pop_up_of_someone_unknown_or_refusing_records_nothing(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(shanghai(2025, 6, 2, 10, 0))
    mall = await app_with_clock(backend, tmp_path, fake_wechat, aiohttp_client, clock)
    wx = simulator(mall)
    await wx.event(B, "subscribe")
    await record(mall)
    b = await member_of(mall, B)
    stranger = "oIns_sub_x_000000000000009"                        # never wrote: no member, nothing kept
    for xml, user in ((popup(wx, stranger, 1748830010, (SUB, "accept")), stranger),
                      (popup(wx, B, 1748830011, (SUB, "reject")), B),
                      (changed(wx, B, 1748830012, SUB, "accept"), B)):
        assert (await wx.post(*wx.signed_request(xml, user=user))).body == "success"
    assert await grants(mall) == {}
    # a pop-up event with a forged signature is refused and records nothing
    query, body = wx.signed_request(popup(wx, B, 1748830013, (SUB, "accept")), user=B)
    forged = {**query, "signature": "0" * 40, "msg_signature": "0" * 40}
    assert (await wx.post(forged, body)).status in (401, 403)
    assert await grants(mall) == {}
    assert await member_of(mall, B) == b
