"""来源归因 counts who brought members and revenue: by acquisition kind, by QR scene, by the
referral distributor a member was bound to, and by group-buy campaign (a team's scene → its
campaign from the team's open event). History recorded through the module's subscribers as
the outbox delivers it (40 members over 11 weeks, one partial refund); read through the
console's JSON and CSV."""

from __future__ import annotations

import json

from social_mall.plugins import Delivery
from social_mall_insights.subscribers import record as rec
from tests.fakes.console_kit import login, make_admin

from ins_kit import now, seed_history

DISTRIBUTOR = 777


async def test_attribution_by_kind_scene_distributor_and_groupbuy_campaign(mall):
    tenant = (await mall.svc.tenant("demo")).id
    at = now()
    made = await seed_history(mall.svc.uows, tenant, at, members=40, base_id=610_000)
    referred = [m for i, m in enumerate(made["members"]) if i % 3 == 0]      # came through ref_dist7
    async with mall.svc.uows() as uow:
        await rec(uow, [Delivery(9_600_000 + k, tenant, "referral.bound", {
            "member_id": m, "distributor_member_id": DISTRIBUTOR, "source": "ref_dist7"}, 1)
            for k, m in enumerate(referred)], at)
        await uow.commit()
    await make_admin(mall.svc.uows, "boss_attr")
    await login(mall.client, "boss_attr")
    got = json.loads(await (await mall.client.get("/console/insights/attribution?format=json")).text())

    def by_key(group: str) -> dict[str, tuple[int, int, int]]:
        return {x["key"]: (x["members"], x["buyers"], x["revenue_fen"]) for x in got[group]}

    kinds = by_key("kinds")
    assert {k: v[0] for k, v in kinds.items() if k in ("referral", "groupbuy")} == {"referral": 14, "groupbuy": 13}
    assert kinds["referral"][1] == 14 and kinds["groupbuy"][1] == 13           # every one of them bought
    ours = sum(v[2] for k, v in kinds.items() if k in ("referral", "groupbuy")) + kinds["organic"][2]
    scenes = by_key("scenes")
    assert scenes["ref_dist7"] == kinds["referral"]
    assert scenes["gb_100"][0] + scenes["gb_101"][0] == 13
    assert by_key("distributors") == {str(DISTRIBUTOR): kinds["referral"]}
    (campaign,) = got["groupbuy"]
    assert campaign["key"] == "5" and (campaign["members"], campaign["buyers"], campaign["revenue_fen"]) == (
        13, 13, scenes["gb_100"][2] + scenes["gb_101"][2])
    assert kinds["groupbuy"][2] == campaign["revenue_fen"]
    # the seeded members' net revenue is all there (the demo shop's own members are organic too)
    assert ours >= made["paid_fen"] - made["refunded_fen"]
    csv = (await (await mall.client.get("/console/insights/attribution?format=csv")).text()).lstrip("\ufeff")
    assert f"distributors,{DISTRIBUTOR},会员 #{DISTRIBUTOR},14,14,{kinds['referral'][2]}" in csv.splitlines()
