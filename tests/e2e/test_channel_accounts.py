"""Several official accounts of one tenant (issue 25): a second account has its own URL,
token and app id, its chat sells from the tenant's one catalog, its orders remember it and
are paid through the merchant it names (a real APIv3 notify to that merchant's URL);
another account's credentials never open it; unionid merges one person's members."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from handlers.mp_simulator import MPSimulator
from social_mall.channels import service as channels
from social_mall.orders.service import find_order
from tests.channels_kit import (
    APP2, MCH2, SECRET2, TOKEN2, open_native, opened, second_account, second_entrance, second_merchant,
)
from tests.conftest import TEST_TOKEN
from tests.fakes.groupbuy_kit import make_campaign
from tests.fakes.pay_kit import XRW
from tests.fakes.wechat_pay import attach_real_pay


async def buy(wx: MPSimulator, user: str) -> str:
    await wx.event(user, "subscribe")
    for text in ("分类", "1", "1", "1 x2", "王小明 13912345678 广东省深圳市南山区科技园1号"):
        assert (await wx.text(user, text)).status == 200
    placed = (await wx.text(user, "确认")).text
    return re.search(r"订单号：(\d+)", placed).group(1)


async def test_second_official_account_sells_and_is_paid_through_its_merchant(mall, aiohttp_server, tmp_path):
    default = await attach_real_pay(mall, aiohttp_server, tmp_path)  # the tenant's default merchant
    tenant = await mall.svc.tenant("demo")
    fake_b, merchant_b = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid="1900000222", appid=APP2)
    account_id = await second_account(mall, tenant, merchant_b)
    mall.fake.more_apps[APP2] = SECRET2

    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    order_no = await buy(wx2, "oUser_second_account_00000001")
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    assert (order.channel_account_id, order.pay_account_id) == (account_id, merchant_b)

    token = mall.svc.pay_token("demo", order_no)
    resp = await mall.client.post(f"/h5/pay/demo/{order_no}/native?t={token}", headers=XRW)
    assert resp.status == 200, await resp.text()
    created = [c for c in fake_b.calls if c.path == "/v3/pay/transactions/native"]
    assert len(created) == 1 and created[0].body["mchid"] == "1900000222" and created[0].body["appid"] == APP2
    assert created[0].body["notify_url"].endswith(f"/pay/notify/demo/{merchant_b}")
    assert not [c for c in default.calls if c.path.startswith("/v3/pay/transactions")]  # not the default merchant
    assert await fake_b.pay(order_no) == 204
    await mall.settle()
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
    assert (order.status, order.paid_fen) == ("paid", order.total_fen)
    # the 「支付成功」 push went through the second account (a token for its app id)
    pushes = mall.fake.sent_messages("oUser_second_account_00000001")
    assert len(pushes) == 1 and "支付成功" in pushes[0]["text"]["content"]
    asked = [c.query.get("appid") or (c.json or {}).get("appid") for c in mall.fake.calls
             if c.path in ("/cgi-bin/token", "/cgi-bin/stable_token")]
    assert asked == [APP2]

    # an order of the primary account still goes to the default merchant
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    first_no = await buy(wx1, "oUser_primary_account_0000001")
    async with mall.svc.uows() as uow:
        first = await find_order(uow, tenant.id, first_no)
    assert (first.channel_account_id, first.pay_account_id) == (0, 0)
    resp = await mall.client.post(f"/h5/pay/demo/{first_no}/native?t={mall.svc.pay_token('demo', first_no)}",
                                  headers=XRW)
    assert resp.status == 200
    assert [c.body["mchid"] for c in default.calls if c.path == "/v3/pay/transactions/native"] == [default.mchid]
    assert await default.pay(first_no) == 204
    await mall.settle()


async def test_another_accounts_token_never_opens_an_account(mall):
    tenant = await mall.svc.tenant("demo")
    await second_account(mall, tenant, None)
    # the primary account's token on the second account's URL, and the other way round
    forged = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                         token=TEST_TOKEN, app_id=APP2)
    assert (await forged.text("oUser_forger_000000000000001", "分类")).status == 403
    forged1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                          token=TOKEN2, app_id=tenant.wechat_app_id)
    assert (await forged1.text("oUser_forger_000000000000002", "分类")).status == 403
    unknown = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/nope")),
                          token=TOKEN2, app_id=APP2)
    assert (await unknown.text("oUser_forger_000000000000003", "分类")).status == 404
    other = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/no_such_shop/shop2")),
                        token=TOKEN2, app_id=APP2)
    assert (await other.text("oUser_forger_000000000000004", "分类")).status == 404
    async with mall.svc.uows() as uow:
        from social_mall.members.service import member_of
        for n in range(1, 5):
            assert await member_of(uow, tenant.id, "mp", f"oUser_forger_00000000000000{n}") is None


async def test_unionid_merges_the_members_of_two_accounts(mall):
    from social_mall.members.service import member_of, resolve_member

    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        a, _ = await resolve_member(uow, tenant.id, "mp", "oUser_union_first_0000000001")
        b, _ = await resolve_member(uow, tenant.id, "mini", "oMini_union_second_000000001")
        assert await channels.link_unionid(uow, tenant.id, a.id, "uUnion0001", now=mall.svc.clock()) == a.id
        kept = await channels.link_unionid(uow, tenant.id, b.id, "uUnion0001", now=mall.svc.clock())
        await uow.commit()
    assert kept == min(a.id, b.id)
    async with mall.svc.uows() as uow:
        assert await member_of(uow, tenant.id, "mp", "oUser_union_first_0000000001") == kept
        assert await member_of(uow, tenant.id, "mini", "oMini_union_second_000000001") == kept
        # a member holding another unionid is left alone
        c, _ = await resolve_member(uow, tenant.id, "mini", "oMini_union_third_0000000001")
        await channels.link_unionid(uow, tenant.id, c.id, "uUnion0002", now=mall.svc.clock())
        assert await channels.link_unionid(uow, tenant.id, c.id, "uUnion0001", now=mall.svc.clock()) == c.id


MINI_APP, MINI_SECRET = "wx3333333333333333", "mini_secret_000000000000000000"


async def test_mini_program_login_is_the_official_account_member_by_unionid(mall):
    """wx.login code → code2session (fake WeChat) → session token; the unionid makes the
    mini-program user the member who bought on the official account: one member, their orders."""
    from social_mall.members.service import member_of

    tenant = await mall.svc.tenant("demo")
    mall.fake.mini_apps[MINI_APP] = MINI_SECRET
    async with mall.svc.uows() as uow:
        await channels.save_account(uow, tenant.id, None, kind="mini", code="mini",
                                    values={"name": "小程序", "app_id": MINI_APP, "app_secret": MINI_SECRET},
                                    pay_account_id=None, enabled=True, actor="test", now=mall.svc.clock())
        await uow.commit()
    mall.svc.forget_tenants()
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    mp_user = "oUser_unionid_buyer_00000001"
    order_no = await buy(wx1, mp_user)
    async with mall.svc.uows() as uow:
        mp_member = await member_of(uow, tenant.id, "mp", mp_user)
        await channels.link_unionid(uow, tenant.id, mp_member, "uUnionBuyer01", now=mall.svc.clock())
        await uow.commit()

    code = mall.fake.mint_code("oMini_unionid_buyer_0000001", unionid="uUnionBuyer01")
    resp = await mall.client.post("/api/app/v1/demo/mini/session", json={"code": code})
    assert resp.status == 200, await resp.text()
    session = await resp.json()
    assert session["member_id"] == mp_member
    auth = {"Authorization": f"Bearer {session['token']}"}
    me = await (await mall.client.get("/api/app/v1/demo/mini/me", headers=auth)).json()
    assert me["member_id"] == mp_member
    listed = await (await mall.client.get("/api/app/v1/demo/mini/orders", headers=auth)).json()
    assert [o["order_no"] for o in listed["items"]] == [order_no]
    # the code is one-shot; a forged token, another tenant's or account's URL: nothing
    assert (await mall.client.post("/api/app/v1/demo/mini/session", json={"code": code})).status == 401
    assert (await mall.client.get("/api/app/v1/demo/mini/me", headers={"Authorization": "Bearer forged"})).status == 401
    assert (await mall.client.get("/api/app/v1/demo/main/me", headers=auth)).status == 404
    assert (await mall.client.get("/api/app/v1/nope/mini/me", headers=auth)).status == 404


async def test_two_official_accounts_and_a_mini_program_sell_to_one_member_each_through_its_merchant(
        mall, aiohttp_server, tmp_path):
    """Issue 25's 'done when': one catalog, one member (merged by unionid), three entrances,
    each order paid by a real notify through the merchant its entrance names."""
    from social_mall.members.service import member_of

    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    fake_b, merchant_b = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid="1900000222", appid=APP2)
    fake_c, merchant_c = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid="1900000333",
                                               appid=MINI_APP)
    await second_account(mall, tenant, merchant_b)
    mall.fake.mini_apps[MINI_APP] = MINI_SECRET
    async with mall.svc.uows() as uow:
        await channels.save_account(uow, tenant.id, None, kind="mini", code="mini",
                                    values={"name": "小程序", "app_id": MINI_APP, "app_secret": MINI_SECRET},
                                    pay_account_id=merchant_c, enabled=True, actor="test", now=mall.svc.clock())
        await uow.commit()
    mall.svc.forget_tenants()

    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    no1 = await buy(wx1, "oUser_one_person_on_first_01")
    no2 = await buy(wx2, "oUser_one_person_on_second1")
    async with mall.svc.uows() as uow:
        m1 = await member_of(uow, tenant.id, "mp", "oUser_one_person_on_first_01")
        m2 = await member_of(uow, tenant.id, "mp", "oUser_one_person_on_second1")
        await channels.link_unionid(uow, tenant.id, m1, "uOnePerson01", now=mall.svc.clock())
        kept = await channels.link_unionid(uow, tenant.id, m2, "uOnePerson01", now=mall.svc.clock())
        await uow.commit()
    code = mall.fake.mint_code("oMini_one_person_000000001", unionid="uOnePerson01")
    session = await (await mall.client.post("/api/app/v1/demo/mini/session", json={"code": code})).json()
    assert session["member_id"] == kept == min(m1, m2)
    auth = {"Authorization": f"Bearer {session['token']}"}
    async with mall.svc.uows() as uow:
        products = await uow.catalog.products(tenant.id, category_id=None, keyword="脐橙", offset=0, limit=1)
        sku = (await uow.catalog.skus(tenant.id, products[0][0].id))[0]
    addr = await (await mall.client.post("/api/app/v1/demo/mini/addresses", headers=auth, json={
        "name": "王小明", "phone": "13912345678", "detail": "广东省深圳市南山区科技园1号"})).json()
    resp = await mall.client.post("/api/app/v1/demo/mini/orders", headers={**auth, "Idempotency-Key": "t1"},
                                  json={"items": [{"sku_id": sku.id, "qty": 1}], "address_id": addr["id"]})
    assert resp.status == 201, await resp.text()
    placed = await resp.json()
    no3 = placed["order_no"]
    params = (await (await mall.client.post(f"/api/app/v1/demo/mini/orders/{placed['id']}/pay",
                                            headers=auth)).json())["params"]
    assert params["appId"] == MINI_APP and params["signType"] == "RSA"
    jsapi = [c for c in fake_c.calls if c.path == "/v3/pay/transactions/jsapi"]
    assert len(jsapi) == 1 and jsapi[0].body["payer"] == {"openid": "oMini_one_person_000000001"}

    for no, fake in ((no1, default), (no2, fake_b)):
        t = mall.svc.pay_token("demo", no)
        assert (await mall.client.post(f"/h5/pay/demo/{no}/native?t={t}", headers=XRW)).status == 200
        assert await fake.pay(no) == 204
    assert await fake_c.pay(no3) == 204
    await mall.settle()
    async with mall.svc.uows() as uow:
        orders = [await find_order(uow, tenant.id, no) for no in (no1, no2, no3)]
    assert [(o.status, o.member_id) for o in orders] == [("paid", kept)] * 3
    assert [o.pay_account_id for o in orders] == [0, merchant_b, merchant_c]
    # each merchant saw only its own order
    assert {c.body["out_trade_no"] for c in fake_b.calls if c.path.startswith("/v3/pay/transactions/")
            and c.body} == {no2}
    assert {c.body["out_trade_no"] for c in fake_c.calls if c.path.startswith("/v3/pay/transactions/")
            and c.body} == {no3}
    listed = await (await mall.client.get("/api/app/v1/demo/mini/orders", headers=auth)).json()
    assert sorted(o["order_no"] for o in listed["items"]) == sorted((no1, no2, no3))


async def test_app_api_openapi_document_lists_its_routes(mall):
    doc = await (await mall.client.get("/api/app/v1/openapi.json")).json()
    served = {r.resource.canonical for r in mall.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/app/v1/{")}
    assert served == set(doc["paths"])


async def test_a_group_buy_opened_and_joined_through_a_second_account_is_paid_at_its_merchant(
        mall, aiohttp_server, tmp_path):
    """Both ways a seat's order is written: the leader's through place_order in the step's
    transaction, the friend's through the join desk (its own task, on PostgreSQL)."""

    address = "王小明 13912345678 深圳市南山区科技园1号"
    wx2, fake2, account, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=3)
        await uow.commit()
    leader, friend = "oGB_two_leader_00000000001", "oGB_two_friend_00000000001"
    await wx2.event(leader, "subscribe")
    await wx2.text(leader, "拼团")
    await wx2.text(leader, "1")
    await wx2.text(leader, "开团")
    await wx2.text(leader, "确认")
    placed = (await wx2.text(leader, address)).text
    assert "开团成功" in placed, placed
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await wx2.event(friend, "subscribe", f"qrscene_gb_{team_id}")
    await wx2.text(friend, "参团")
    await wx2.text(friend, "确认")
    joined = (await wx2.text(friend, address)).text
    assert "参团成功" in joined, joined
    for text in (placed, joined):
        order_no = re.search(r"订单号：(\d+)", text).group(1)
        assert await open_native(mall, order_no) == (account, merchant)
        assert opened(fake2, order_no) == [MCH2]


async def test_reconciliation_reads_every_merchants_bill_and_reports_each(mall, aiohttp_server, tmp_path):
    """A day is reconciled at each enabled merchant, its bill against the orders paid to it:
    a wrong amount in the second merchant's bill is found there (and only there)."""
    from sqlalchemy import select

    from handlers.pay_jobs import CST, reconcile_day
    from storage.pay_models import PayReconciliation

    default = await attach_real_pay(mall, aiohttp_server, tmp_path)
    wx2, fake2, _, merchant = await second_entrance(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    paid = []
    for wx, fake, user in ((wx1, default, "oUser_recon_primary_00001"), (wx2, fake2, "oUser_recon_second_000001")):
        order_no = await buy(wx, user)
        await open_native(mall, order_no)
        assert await fake.pay(order_no) == 204
        paid.append(order_no)
    await mall.settle()
    day = mall.svc.clock().astimezone(CST).date()
    assert await reconcile_day(mall.svc, tenant.id, day) == ("ok", [])

    fake2.orders[paid[1]].amount += 1   # the second merchant's bill differs from us
    status, mismatches = await reconcile_day(mall.svc, tenant.id, day)
    assert status == "mismatch"
    assert [(m["kind"], m["ref"], m["mchid"]) for m in mismatches] == [("amount_mismatch", paid[1], MCH2)]
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(PayReconciliation).order_by(PayReconciliation.id))).all()
    assert [(r.pay_account_id, r.bill_date, r.status, r.checked) for r in rows] == [
        (await default_merchant_id(mall, tenant.id), day.isoformat(), "ok", 1),
        (merchant, day.isoformat(), "mismatch", 1)]
    bills = [c for f in (default, fake2) for c in f.calls if c.path.startswith("/v3/bill/tradebill")]
    assert len(bills) == 4   # each merchant's own bill, twice


async def default_merchant_id(mall, tenant_id: int) -> int:
    from storage.pay_repos import PayAccountRepo

    async with mall.svc.uows() as uow:
        return (await PayAccountRepo(uow.session).for_tenant(tenant_id)).id


async def test_pushes_go_through_the_account_the_members_openid_belongs_to(mall, aiohttp_server, tmp_path):
    """An openid is valid only with its own account's token (the fake refuses another's,
    40003): a member of the second account hears a group-buy's pushes through it; a member
    merged across both accounts hears about an order through the account it was placed on,
    and anything else through the primary one."""
    from handlers.push import push_to_member
    from social_mall.members.service import member_of

    wx2, fake2, account, _ = await second_entrance(mall, aiohttp_server, tmp_path)
    tenant = await mall.svc.tenant("demo")
    wx1 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=tenant.wechat_app_id, aes_key=tenant.wechat_aes_key)
    address = "王小明 13912345678 深圳市南山区科技园1号"
    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=2)
        await uow.commit()
    leader, friend = "oGB_push_two_leader_000001", "oGB_push_two_friend_000001"
    for user in (leader, friend):
        mall.fake.openid_apps[user] = APP2
    await wx2.event(leader, "subscribe")
    for text in ("拼团", "1", "开团", "确认"):
        await wx2.text(leader, text)
    placed = (await wx2.text(leader, address)).text
    team_id = int(re.search(r"团(\d+)", placed).group(1))
    await wx2.event(friend, "subscribe", f"qrscene_gb_{team_id}")
    for text in ("参团", "确认"):
        await wx2.text(friend, text)
    joined = (await wx2.text(friend, address)).text
    for text in (placed, joined):
        order_no = re.search(r"订单号：(\d+)", text).group(1)
        await open_native(mall, order_no)
        assert await fake2.pay(order_no) == 204
    await mall.settle()
    for user in (leader, friend):
        told = [m["text"]["content"] for m in mall.fake.sent_messages(user) if m["msgtype"] == "text"]
        assert any("拼团成功" in t for t in told), told
    assert {app for app, to in mall.fake.delivered_via if to in (leader, friend)} == {APP2}

    # one person followed both accounts (merged by unionid), bought through the second
    first, second = "oUser_push_both_primary_01", "oUser_push_both_second_001"
    mall.fake.openid_apps.update({first: tenant.wechat_app_id, second: APP2})
    await wx1.event(first, "subscribe")
    order_no = await buy(wx2, second)
    async with mall.svc.uows() as uow:
        a, b = await member_of(uow, tenant.id, "mp", first), await member_of(uow, tenant.id, "mp", second)
        await channels.link_unionid(uow, tenant.id, a, "uPushBoth01", now=mall.svc.clock())
        kept = await channels.link_unionid(uow, tenant.id, b, "uPushBoth01", now=mall.svc.clock())
        order = await find_order(uow, tenant.id, order_no)
        await uow.commit()
    await mall.settle()
    mall.fake.delivered_via.clear()
    ctx = {"order_id": order.id, "order_no": order_no, "paid_fen": order.total_fen, "related": []}
    assert await push_to_member(mall.svc, tenant.id, kept, "chat/push/order_paid.txt", ctx)
    assert await push_to_member(mall.svc, tenant.id, kept, "chat/push/order_paid.txt",
                                {k: v for k, v in ctx.items() if k != "order_id"})
    assert mall.fake.delivered_via == [(APP2, second), (tenant.wechat_app_id, first)]


async def test_jsapi_pay_of_a_second_accounts_order_names_the_payers_app_id(mall, aiohttp_server, tmp_path):
    """The payer's openid comes from the pay page's OAuth (the shop's own official account);
    the order's merchant is registered under another app id with the shop's bound to it: the
    JSAPI order and the page's parameters name the payer's app id (WeChat Pay refuses an
    openid of another app)."""
    from tests.fakes.pay_kit import WECHAT_UA, oauth_login

    tenant = await mall.svc.tenant("demo")
    fake2, merchant = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid=MCH2,
                                            appid="wx_merchant_b_own_app")
    fake2.bound_appids.add(tenant.wechat_app_id)
    await second_account(mall, tenant, merchant)
    mall.fake.more_apps[APP2] = SECRET2
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")),
                      token=TOKEN2, app_id=APP2)
    payer = "oUser_second_jsapi_payer_0001"
    fake2.openid_apps[payer] = tenant.wechat_app_id
    order_no = await buy(wx2, "oUser_second_jsapi_buyer_0001")
    token = mall.svc.pay_token("demo", order_no)
    await oauth_login(mall, f"/h5/pay/demo/{order_no}?t={token}", payer)
    resp = await mall.client.post(f"/h5/pay/demo/{order_no}/jsapi?t={token}",
                                  headers={**XRW, "User-Agent": WECHAT_UA})
    assert resp.status == 200, await resp.text()
    params = (await resp.json())["params"]
    [made] = [c for c in fake2.calls if c.path == "/v3/pay/transactions/jsapi"]
    assert (made.body["appid"], made.body["payer"]["openid"]) == (tenant.wechat_app_id, payer)
    assert params["appId"] == tenant.wechat_app_id
