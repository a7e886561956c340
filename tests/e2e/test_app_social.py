"""Group-buy and referral through the member JSON API (/api/app/v1/), end to end over HTTP
against the fake WeChat (jscode2session) and the fake WeChat Pay (JSAPI order, signed notify):
open a team and join it (seats, per-member limit, expiry, a double tap), both orders paid by the
pay notify, the team succeeds; a distributor applies, shares, earns a commission on a buyer's
paid order, sees it in the ledger and withdraws once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from social_mall.orders.rules import shipping_fee
from social_mall.referral import service as referral
from tests.e2e.test_app_api import BASE, _mini, auth, login
from tests.fakes.groupbuy_kit import make_campaign
from tests.fakes.wechat_pay import attach_real_pay


async def _member(mall, openid: str) -> tuple[dict[str, str], int]:
    h = auth((await login(mall, openid))["token"])
    addr = await mall.client.post(f"{BASE}/addresses", headers=h, json={
        "name": "王小明", "phone": "13912345678", "detail": "广东省深圳市南山区科技园1号"})
    assert addr.status == 201, await addr.text()
    return h, (await addr.json())["id"]


async def _pay(mall, wxpay, h: dict[str, str], order_id: int) -> None:
    resp = await mall.client.post(f"{BASE}/orders/{order_id}/pay", headers=h)
    assert resp.status == 200, await resp.text()
    params = (await resp.json())["params"]
    assert params["appId"] == mall.fake.mini_app_id
    fo = wxpay.order_by_prepay(params["package"].removeprefix("prepay_id="))
    assert await wxpay.pay(fo.out_trade_no) == 204   # the signed notify into /pay/notify/demo
    await mall.settle()


async def test_open_and_join_a_team_in_the_app_and_both_seats_paid_by_notify(mall, aiohttp_server, tmp_path):
    await _mini(mall)
    wxpay = await attach_real_pay(mall, aiohttp_server, tmp_path)
    wxpay.bound_appids.add(mall.fake.mini_app_id)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        c = await make_campaign(uow, tenant.id, title="丹东草莓", size=2, max_teams=1,
                                start=datetime.now(timezone.utc), group_fen=6600)
        await uow.commit()
    sku = c.prices[0].sku_id
    leader, leader_addr = await _member(mall, "mini_gb_leader")
    live = await (await mall.client.get(f"{BASE}/groupbuy/campaigns", headers=leader)).json()
    assert [x["id"] for x in live["items"]] == [c.id]

    seat = {"sku_id": sku, "qty": 1, "address_id": leader_addr}
    tap = {**leader, "Idempotency-Key": "open-1"}
    opened = await mall.client.post(f"{BASE}/groupbuy/campaigns/{c.id}/teams", json=seat, headers=tap)
    assert opened.status == 201, await opened.text()
    first = await opened.json()
    team_id, lead_order = first["team"]["id"], first["order"]
    assert lead_order["total_fen"] == 6600 + shipping_fee(6600) and lead_order["status"] == "pending_payment"
    again = await mall.client.post(f"{BASE}/groupbuy/campaigns/{c.id}/teams", json=seat, headers=tap)
    assert again.status == 200 and (await again.json())["order"]["id"] == lead_order["id"]   # a double tap
    limited = await mall.client.post(f"{BASE}/groupbuy/campaigns/{c.id}/teams", json=seat,
                                     headers={**leader, "Idempotency-Key": "open-2"})
    assert limited.status == 409 and (await limited.json())["error"]["code"] == "groupbuy_team_limit"

    joiner, joiner_addr = await _member(mall, "mini_gb_joiner")
    shown = await (await mall.client.get(f"{BASE}/groupbuy/teams/{team_id}", headers=joiner)).json()
    assert shown["seats_left"] == 1 and shown["joined"] is False and shown["team"]["status"] == "forming"
    too_many = {"sku_id": sku, "qty": 99, "address_id": joiner_addr}
    assert (await mall.client.post(f"{BASE}/groupbuy/teams/{team_id}/join", json=too_many,
                                   headers=joiner)).status == 409           # the quantity limit
    join = {"sku_id": sku, "qty": 1, "address_id": joiner_addr}
    joined = await mall.client.post(f"{BASE}/groupbuy/teams/{team_id}/join", json=join, headers=joiner)
    assert joined.status == 201, await joined.text()
    join_order = (await joined.json())["order"]
    twice = await mall.client.post(f"{BASE}/groupbuy/teams/{team_id}/join", json=join, headers=joiner)
    assert twice.status == 200 and (await twice.json())["order"]["id"] == join_order["id"]
    late, late_addr = await _member(mall, "mini_gb_late")
    full = await mall.client.post(f"{BASE}/groupbuy/teams/{team_id}/join", headers=late,
                                  json={"sku_id": sku, "qty": 1, "address_id": late_addr})
    assert full.status == 409 and (await full.json())["error"]["code"] == "groupbuy_team_full"

    await _pay(mall, wxpay, leader, lead_order["id"])
    await _pay(mall, wxpay, joiner, join_order["id"])
    done = await (await mall.client.get(f"{BASE}/groupbuy/teams/{team_id}", headers=leader)).json()
    assert done["team"]["status"] == "succeeded" and done["team"]["paid"] == 2 and done["joined"] is True
    for h, o in ((leader, lead_order), (joiner, join_order)):
        assert (await (await mall.client.get(f"{BASE}/orders/{o['id']}", headers=h)).json())["status"] == "paid"

    # expiry: a team of the late member, past its lifetime, takes no one
    late_team = await mall.client.post(f"{BASE}/groupbuy/campaigns/{c.id}/teams", headers={
        **late, "Idempotency-Key": "late-1"}, json={"sku_id": sku, "qty": 1, "address_id": late_addr})
    assert late_team.status == 201
    now = mall.svc.clock()
    mall.svc.clock = lambda: now + timedelta(hours=25)
    other, other_addr = await _member(mall, "mini_gb_other")
    closed = await mall.client.post(f"{BASE}/groupbuy/teams/{(await late_team.json())['team']['id']}/join",
                                    headers=other, json={"sku_id": sku, "qty": 1, "address_id": other_addr})
    assert closed.status == 409 and (await closed.json())["error"]["code"] == "groupbuy_team_closed"
    assert (await (await mall.client.get(f"{BASE}/orders", headers=other)).json())["total"] == 0


async def test_distributor_applies_shares_earns_and_withdraws_once_in_the_app(mall):
    from social_mall.jobs import complete_shipped_orders  # noqa: F401 - the sweeper the shop runs
    from social_mall.orders.service import complete_order, ship_order

    await _mini(mall)
    tenant = await mall.svc.tenant("demo")
    dist, _ = await _member(mall, "mini_ref_dist")
    assert (await (await mall.client.get(f"{BASE}/referral/me", headers=dist)).json()) == {"status": "none"}
    refused = await mall.client.get(f"{BASE}/referral/share", headers=dist)
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "referral_not_distributor"
    applied = await (await mall.client.post(f"{BASE}/referral/apply", headers=dist)).json()
    assert applied["status"] == "approved" and applied["code"]
    shared = await (await mall.client.get(f"{BASE}/referral/share", headers=dist)).json()
    assert shared["link"].endswith(f"/r/demo/{applied['code']}") and shared["qr"].endswith(".png")

    buyer, buyer_addr = await _member(mall, "mini_ref_buyer")
    async with mall.svc.uows() as uow:
        buyer_id = (await (await mall.client.get(f"{BASE}/me", headers=buyer)).json())["member_id"]
        await referral.bind_member(uow, tenant.id, buyer_id, applied["code"], source="link", now=mall.svc.clock())
        await uow.commit()
    listing = await (await mall.client.get(f"{BASE}/products", params={"q": "脐橙"}, headers=buyer)).json()
    detail = await (await mall.client.get(f"{BASE}/products/{listing['items'][0]['id']}", headers=buyer)).json()
    placed = await mall.client.post(f"{BASE}/orders", headers={**buyer, "Idempotency-Key": "b1"}, json={
        "address_id": buyer_addr, "items": [{"sku_id": detail["skus"][0]["id"], "qty": 2}]})
    order = await placed.json()
    pay = await (await mall.client.post(f"{BASE}/orders/{order['id']}/pay", headers=buyer)).json()
    assert (await mall.client.post(pay["confirm"], headers=buyer)).status == 200   # the sandbox's signed notify
    for _ in range(3):
        await mall.settle()
    ledger = await (await mall.client.get(f"{BASE}/referral/commissions", headers=dist)).json()
    assert ledger["total"] == 1 and ledger["items"][0]["order_no"] == order["order_no"]
    earned = ledger["items"][0]["amount_fen"]
    assert earned > 0 and ledger["items"][0]["status"] == "frozen"

    start = mall.svc.clock()
    async with mall.svc.uows() as uow:
        await ship_order(uow, tenant.id, order["id"], tracking_no="SF1", now=start)
        await complete_order(uow, tenant.id, order["id"], now=start)
        await uow.commit()
    await mall.settle()
    mall.svc.clock = lambda: start + timedelta(days=7, minutes=1)
    unfreeze = next(j for j in mall.svc.registry.jobs if j.name == "referral.unfreeze")
    assert await unfreeze.run() == 1
    me = await (await mall.client.get(f"{BASE}/referral/me", headers=dist)).json()
    assert me["available_fen"] == earned and me["frozen_fen"] == 0

    over = await mall.client.post(f"{BASE}/referral/withdrawals", json={"amount_fen": earned + 1},
                                  headers={**dist, "Idempotency-Key": "w0"})
    assert over.status == 409
    tap = {**dist, "Idempotency-Key": "w1"}
    w1 = await mall.client.post(f"{BASE}/referral/withdrawals", json={"amount_fen": earned}, headers=tap)
    assert w1.status == 201, await w1.text()
    w2 = await mall.client.post(f"{BASE}/referral/withdrawals", json={"amount_fen": earned}, headers=tap)
    assert w2.status == 200 and (await w2.json())["id"] == (await w1.json())["id"]
    after = await (await mall.client.get(f"{BASE}/referral/me", headers=dist)).json()
    assert after["available_fen"] == 0
    async with mall.svc.uows() as uow:
        d = await referral.distributor_by_code(uow, tenant.id, applied["code"])
        assert len(await referral.list_withdrawals(uow, tenant.id)) == 1
        assert (await referral.reconcile(uow, tenant.id, d.id)).ok
