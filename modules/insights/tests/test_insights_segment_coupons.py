"""An administrator gives a coupon template to a whole segment from 人群: each member of it
gets one (audited, told), nobody outside it; a double submit gives nothing more; a total too
small for the segment gives nobody anything (refused in Chinese). Signed WeChat events, the
console over HTTP."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from social_mall.loyalty import service as loyalty
from social_mall.pricing.rules import CouponKind
from storage.loyalty_models import Coupon
from storage.models import AuditEntry
from tests.fakes.console_kit import login, make_admin

from ins_kit import member_of, record, simulator

FANS = ("oIns_segcoup_fan_00000001", "oIns_segcoup_fan_00000002")
OTHER = "oIns_segcoup_other_000001"


async def held(mall, members: list[int]) -> dict[int, int]:
    async with mall.svc.uows() as uow:
        got = dict((await uow.session.execute(select(Coupon.member_id, func.count()).where(
            Coupon.member_id.in_(members)).group_by(Coupon.member_id))).all())
    return {m: int(got.get(m, 0)) for m in members}


async def audits(mall, action: str) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action)) or 0)


async def test_a_segment_gets_one_coupon_each_once(mall):
    wx = simulator(mall)
    for user in FANS:
        await wx.event(user, "subscribe", "qrscene_poster_c")
    await wx.event(OTHER, "subscribe")
    await record(mall)
    fans = [await member_of(mall, u) for u in FANS]
    other = await member_of(mall, OTHER)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        gift = await loyalty.create_template(uow, tenant, name="海报粉丝券", kind=CouponKind.AMOUNT, off_fen=500,
                                             valid_days=30, per_member=1, total_qty=3, claimable=False)
        await uow.commit()
    await make_admin(mall.svc.uows, "segboss")
    csrf = await login(mall.client, "segboss")
    await mall.client.post("/console/insights/segments", data={
        "_csrf": csrf, "name": "海报粉丝", "acq": "qr", "action": "save"})

    def form_of(page: str) -> tuple[str, str]:
        action, key = re.search(r'action="(/console/insights/segments/\d+/coupons)".*?name="form_key" value="(\w+)"',
                                page, re.S).groups()
        return action, key

    page = await (await mall.client.get("/console/insights/segments")).text()
    assert "海报粉丝券" in page
    action, key = form_of(page)
    before = await held(mall, [*fans, other])
    form = {"_csrf": csrf, "form_key": key, "template": str(gift)}
    first = await mall.client.post(action, data=form, allow_redirects=False)
    again = await mall.client.post(action, data=form, allow_redirects=False)          # a double click
    assert (first.status, again.status) == (303, 303)
    after = await held(mall, [*fans, other])
    assert after == {**before, fans[0]: before[fans[0]] + 1, fans[1]: before[fans[1]] + 1}
    assert await audits(mall, "coupon.issue") == 2 and await audits(mall, "segment.coupons") == 1
    await mall.settle()
    for user in FANS:
        told = [m["text"]["content"] for m in mall.fake.sent_messages(user) if m.get("msgtype") == "text"]
        assert any("海报粉丝券" in t for t in told), told

    # one coupon left of the total, two members: nobody gets one, said in Chinese
    page = await (await mall.client.get("/console/insights/segments")).text()
    action, key2 = form_of(page)
    assert key2 != key
    short = await mall.client.post(action, data={**form, "form_key": key2}, allow_redirects=False)
    assert short.status == 409 and "一张也没有发出" in await short.text()
    assert await held(mall, [*fans, other]) == after
    assert await audits(mall, "coupon.issue") == 2 and await audits(mall, "segment.coupons") == 1
