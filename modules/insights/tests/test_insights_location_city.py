"""人群's city rule: a saved address in that city, or the city of the last location the
member sent (WeChat's location message names the place: 「广东省深圳市南山区…」 → 深圳). A
location without a place name (WeChat's own report when the chat opens: coordinates only)
says nothing; a later location in another city moves the member."""

from __future__ import annotations

from sqlalchemy import select

from social_mall.members.service import add_address
from social_mall_insights.models import MemberFacts
from tests.fakes.console_kit import login, make_admin

from ins_kit import member_of, record, simulator

SENT_SZ, ADDRESS_SZ, SENT_SH, REPORTED, MOVED = (f"oIns_city_{x}_00000000000001" for x in "abcde")


async def test_a_location_sent_in_chat_puts_the_member_in_its_citys_segment(mall):
    wx = simulator(mall)
    for u in (SENT_SZ, ADDRESS_SZ, SENT_SH, REPORTED, MOVED):
        await wx.event(u, "subscribe")
    await wx.location(SENT_SZ, "22.5431", "113.9298", "广东省深圳市南山区科技园科兴科学园")
    await wx.location(SENT_SH, "31.2304", "121.4737", "上海市黄浦区人民广场")
    await wx.reported_location(REPORTED, "22.5431", "113.9298")          # a report: no place name
    await wx.location(MOVED, "22.5431", "113.9298", "广东省深圳市福田区华强北")
    await record(mall)
    await wx.location(MOVED, "31.2304", "121.4737", "上海市徐汇区漕河泾")   # later: in Shanghai now
    await record(mall)
    tenant = await mall.svc.tenant("demo")
    sz_addr = await member_of(mall, ADDRESS_SZ)
    async with mall.svc.uows() as uow:
        await add_address(uow, tenant.id, sz_addr, "李雷", "13900000000", "广东省深圳市宝安区西乡街道1号")
        await uow.commit()
        cities = dict((await uow.session.execute(select(MemberFacts.member_id, MemberFacts.city).where(
            MemberFacts.tenant_id == tenant.id))).all())
    ids = {u: await member_of(mall, u) for u in (SENT_SZ, SENT_SH, REPORTED, MOVED)}
    assert [cities[ids[u]] for u in (SENT_SZ, SENT_SH, REPORTED, MOVED)] == ["深圳", "上海", "", "上海"]

    await make_admin(mall.svc.uows, "boss_city")
    csrf = await login(mall.client, "boss_city")

    async def count(city: str) -> str:
        return await (await mall.client.post("/console/insights/segments", data={
            "_csrf": csrf, "name": "x", "action": "count", "city": city})).text()

    assert "符合条件：2 人" in await count("深圳")        # SENT_SZ by location, ADDRESS_SZ by address (before: 1)
    assert "符合条件：2 人" in await count("上海市")      # SENT_SH and MOVED
    assert "符合条件：0 人" in await count("广州")
