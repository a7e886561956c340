"""The member JSON API of the mini-program (/api/app/v1/), end to end against the fake
WeChat: wx.login code → jscode2session → session token → catalog → cart → address →
checkout (idempotent) → orders; tenant isolation and other members' orders."""

from __future__ import annotations

from social_mall.demo import DemoCredentials, seed_demo
from tests.conftest import DEMO_CREDS, TEST_AES_KEY

BASE = "/api/app/v1/demo"


async def _mini(mall) -> None:
    """The demo's mini-program as the environment configures it (MINI_APP_ID / MINI_APP_SECRET
    → bot.demo_credentials → seed_demo on start): its `mini` channel account."""
    from dataclasses import replace

    async with mall.svc.uows() as uow:
        await seed_demo(uow, replace(DEMO_CREDS, mini_app_id=mall.fake.mini_app_id,
                                     mini_app_secret=mall.fake.mini_app_secret))
        await uow.commit()
    mall.svc.forget_tenants()


async def login(mall, openid: str, tenant: str = "demo", unionid: str | None = None) -> dict:
    code = mall.fake.mint_js_code(openid, unionid=unionid)
    resp = await mall.client.post(f"/api/app/v1/{tenant}/session", json={"code": code})
    assert resp.status == 200, await resp.text()
    return await resp.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_code_to_session_and_refusals(mall, caplog):
    caplog.set_level("DEBUG")
    await _mini(mall)
    caplog.clear()  # the account's row was written above (the SQL log shows its secret): from here on, ours
    code = mall.fake.mint_js_code("mini_open_1")
    first = await mall.client.post(f"{BASE}/session", json={"code": code})
    body = await first.json()
    assert first.status == 200 and body["token"] and "session_key" not in body
    call = mall.fake.calls_to("/sns/jscode2session")[-1]
    assert call.query["appid"] == mall.fake.mini_app_id and call.query["grant_type"] == "authorization_code"
    again = await mall.client.post(f"{BASE}/session", json={"code": code})  # 40163: code used
    assert again.status == 401 and "40163" in (await again.json())["error"]["message"]
    bad = await mall.client.post(f"{BASE}/session", json={"code": "nope"})  # 40029
    assert bad.status == 401 and "40029" in (await bad.json())["error"]["message"]
    none = await mall.client.get(f"{BASE}/cart")
    assert none.status == 401
    forged = await mall.client.get(f"{BASE}/cart", headers=auth("forged"))
    assert forged.status == 401
    ours = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records
                      if not r.name.startswith("aiohttp.access"))  # not the fake WeChat's own access log
    key = mall.fake.session_keys[0]
    assert "app.session.new" in ours and key not in ours and key not in str(body) and body["token"] not in ours
    assert mall.fake.mini_app_secret not in ours


async def test_browse_cart_checkout_once_and_isolation(mall):
    await _mini(mall)
    s = await login(mall, "mini_open_2")
    h = auth(s["token"])
    cats = await (await mall.client.get(f"{BASE}/categories", headers=h)).json()
    assert cats["items"]
    listing = await (await mall.client.get(f"{BASE}/products", headers=h)).json()
    assert listing["total"] >= 1
    pid = listing["items"][0]["product_id"] if "product_id" in listing["items"][0] else listing["items"][0]["id"]
    detail = await (await mall.client.get(f"{BASE}/products/{pid}", headers=h)).json()
    sku = detail["skus"][0]
    sku_id = sku.get("sku_id", sku.get("id"))
    added = await mall.client.post(f"{BASE}/cart/items", json={"sku_id": sku_id, "qty": 2}, headers=h)
    assert added.status == 200 and (await added.json())["lines"]
    changed = await mall.client.put(f"{BASE}/cart/items/{sku_id}", json={"qty": 1}, headers=h)
    assert changed.status == 200 and (await changed.json())["lines"][0]["qty"] == 1
    addr = await mall.client.post(f"{BASE}/addresses", json={"name": "张三", "phone": "13800000000",
                                                            "detail": "上海市黄浦区人民大道1号"}, headers=h)
    assert addr.status == 201, await addr.text()
    address_id = (await addr.json())["id"]
    tap = {**h, "Idempotency-Key": "tap-1"}
    one = await mall.client.post(f"{BASE}/orders", json={"address_id": address_id}, headers=tap)
    assert one.status == 201, await one.text()
    two = await mall.client.post(f"{BASE}/orders", json={"address_id": address_id}, headers=tap)
    order = await one.json()
    assert (await two.json())["id"] == order["id"]
    mine = await (await mall.client.get(f"{BASE}/orders", headers=h)).json()
    assert mine["total"] == 1 and mine["items"][0]["order_no"] == order["order_no"]

    other = await login(mall, "mini_open_3")  # another member: 404, and nothing cancelled
    oh = auth(other["token"])
    assert (await mall.client.get(f"{BASE}/orders/{order['id']}", headers=oh)).status == 404
    assert (await mall.client.post(f"{BASE}/orders/{order['id']}/cancel", headers=oh)).status == 404
    still = await (await mall.client.get(f"{BASE}/orders/{order['id']}", headers=h)).json()
    assert still["status"] == order["status"]

    async with mall.svc.uows() as uow:  # tenant B (its own mini-program): A's token reads nothing of it
        await seed_demo(uow, DemoCredentials(wechat_app_id="wx_shopb_00000000001", wechat_token="tok_b",
                                             wechat_aes_key=TEST_AES_KEY, wechat_app_secret="secret_b",
                                             mini_app_id="wx_shopb_mini_00001", mini_app_secret="mini_b"),
                        code="shopb")
        await uow.commit()
    mall.svc.forget_tenants()
    assert (await mall.client.get("/api/app/v1/shopb/orders", headers=h)).status == 401
    assert (await mall.client.get("/api/app/v1/shopb/cart", headers=h)).status == 401

    cancelled = await mall.client.post(f"{BASE}/orders/{order['id']}/cancel", headers=h)
    assert cancelled.status == 200 and (await cancelled.json())["status"] != order["status"]


async def test_same_unionid_is_the_official_account_member(mall):
    await _mini(mall)
    from social_mall.members.service import resolve_member

    async with mall.svc.uows() as uow:
        demo = await mall.svc.tenant("demo")
        oa, _ = await resolve_member(uow, demo.id, "mp", "oa_open_9", unionid="union_9")
        await uow.commit()
    s = await login(mall, "mini_open_9", unionid="union_9")
    assert s["member_id"] == oa.id


async def _placed_order(mall, h: dict[str, str]) -> dict:
    listing = await (await mall.client.get(f"{BASE}/products", params={"q": "龙井"}, headers=h)).json()
    card = listing["items"][0]
    detail = await (await mall.client.get(f"{BASE}/products/{card.get('product_id', card.get('id'))}",
                                          headers=h)).json()
    sku = detail["skus"][0]
    await mall.client.post(f"{BASE}/cart/items", json={"sku_id": sku.get("sku_id", sku.get("id")), "qty": 1},
                           headers=h)
    addr = await (await mall.client.post(f"{BASE}/addresses", json={
        "name": "李四", "phone": "13900000000", "detail": "杭州市西湖区龙井路1号"}, headers=h)).json()
    quote = await mall.client.post(f"{BASE}/checkout/quote", json={"coupon_id": -1}, headers=h)
    q = await quote.json()
    assert quote.status == 200 and q["total_fen"] == q["goods_fen"] + q["shipping_fen"] - q["discount_fen"] > 0
    choice = {"address_id": addr["id"], "coupon_id": q["coupon_id"], "points": q["points_used"]}
    stale = await mall.client.post(f"{BASE}/orders", json={**choice, "expect_total_fen": q["total_fen"] + 1},
                                   headers={**h, "Idempotency-Key": "k0"})
    assert stale.status == 409 and (await stale.json())["error"]["code"] == "price_changed"
    assert (await (await mall.client.get(f"{BASE}/orders", headers=h)).json())["total"] == 0  # nothing placed
    placed = await mall.client.post(f"{BASE}/orders", json={**choice, "expect_total_fen": q["total_fen"]},
                                    headers={**h, "Idempotency-Key": "k1"})
    assert placed.status == 201, await placed.text()
    order = await placed.json()
    assert order["total_fen"] == q["total_fen"]
    return order


async def test_sandbox_pay_end_to_end_and_chat_sees_the_order(mall):
    """Embedded default (sandbox gateway): pay params → confirm → the real signed notify →
    paid; the member also follows the official account (same unionid): 我的订单 lists it."""
    from handlers.mp_simulator import MPSimulator
    from social_mall.members.service import resolve_member
    from tests.conftest import TEST_APP_ID, TEST_TOKEN

    await _mini(mall)
    s = await login(mall, "mini_open_p", unionid="union_p")
    h = auth(s["token"])
    order = await _placed_order(mall, h)
    params = await mall.client.post(f"{BASE}/orders/{order['id']}/pay", headers=h)
    body = await params.json()
    assert params.status == 200 and body["sandbox"] is True
    other = await login(mall, "mini_open_q")
    assert (await mall.client.post(body["confirm"], headers=auth(other["token"]))).status == 404
    paid = await mall.client.post(body["confirm"], headers=h)
    assert paid.status == 200, await paid.text()
    assert (await paid.json())["status"] == "paid"
    again = await mall.client.post(f"{BASE}/orders/{order['id']}/pay", headers=h)
    assert again.status == 409

    async with mall.svc.uows() as uow:  # the official account knows the same unionid
        demo = await mall.svc.tenant("demo")
        oa, _ = await resolve_member(uow, demo.id, "mp", "oa_open_p", unionid="union_p")
        await uow.commit()
    assert oa.id == s["member_id"]
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    answer = await wx.text("oa_open_p", "我的订单")
    assert answer.status == 200 and "第 1/1 页" in answer.text, answer.text
    assert "1. " in answer.text and "已付款" in answer.text and "西湖龙井" in answer.text


async def test_real_gateway_jsapi_params_use_the_mini_app(mall, aiohttp_server, tmp_path):
    """A tenant with a real WeChat Pay account: the JSAPI order carries the mini-program's
    app id and the member's mini openid; the real notify pays the order."""
    from tests.fakes.wechat_pay import attach_real_pay

    await _mini(mall)
    wxpay = await attach_real_pay(mall, aiohttp_server, tmp_path)
    s = await login(mall, "mini_open_r")
    h = auth(s["token"])
    order = await _placed_order(mall, h)
    refused = await mall.client.post(f"{BASE}/orders/{order['id']}/pay", headers=h)  # mini app not bound yet
    assert refused.status == 502 and not wxpay.orders.get(order["order_no"])
    wxpay.bound_appids.add(mall.fake.mini_app_id)
    resp = await mall.client.post(f"{BASE}/orders/{order['id']}/pay", headers=h)
    assert resp.status == 200, await resp.text()
    params = (await resp.json())["params"]
    assert params["appId"] == mall.fake.mini_app_id and params["package"].startswith("prepay_id=")
    fo = wxpay.order_by_prepay(params["package"].removeprefix("prepay_id="))
    assert fo.appid == mall.fake.mini_app_id and fo.openid == "mini_open_r"
    assert await wxpay.pay(fo.out_trade_no) == 204
    detail = await (await mall.client.get(f"{BASE}/orders/{order['id']}", headers=h)).json()
    assert detail["status"] == "paid"


async def test_member_center_and_openapi_document(mall):
    from handlers.api_app import routes

    await _mini(mall)
    s = await login(mall, "mini_open_m")
    me = await mall.client.get(f"{BASE}/me", headers=auth(s["token"]))
    body = await me.json()
    assert me.status == 200 and body["member_id"] == s["member_id"]
    assert {"level", "points", "coupons", "growth"} <= set(body)
    doc = await (await mall.client.get("/api/app/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.resource.canonical) for r in mall.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/app/v1/{")
              and r.method != "HEAD"}
    assert served == documented
    assert {p for _, p in served if "{account}" in p} == {p.replace("{tenant}", "{tenant}/{account}", 1)
                                                          for _, p in served if "{account}" not in p}
    assert {(r.method, r.path) for r in routes if "{account" not in r.path} \
        <= served  # the core's own, each also on the account prefix (the line above)


async def test_rate_limit_per_token(mall):
    from handlers import api_app

    await _mini(mall)
    now = mall.svc.clock()
    mall.svc.clock = lambda: now  # one rate window throughout (no minute boundary mid-test)
    s = await login(mall, "mini_open_rl")
    h = auth(s["token"])
    for _ in range(api_app.RATE_PER_MINUTE):
        assert (await mall.client.get(f"{BASE}/cart", headers=h)).status == 200
    limited = await mall.client.get(f"{BASE}/cart", headers=h)
    assert limited.status == 429 and limited.headers["Retry-After"]
    other = await login(mall, "mini_open_rl2")  # another token is not limited by this one
    assert (await mall.client.get(f"{BASE}/cart", headers=auth(other["token"]))).status == 200


async def test_double_tap_places_once(mall):
    """Two taps at once with one Idempotency-Key: one order; the other answer is the same
    order or 409 in_progress, never a second order."""
    import asyncio

    await _mini(mall)
    s = await login(mall, "mini_open_dt")
    h = auth(s["token"])
    listing = await (await mall.client.get(f"{BASE}/products", headers=h)).json()
    card = listing["items"][0]
    detail = await (await mall.client.get(f"{BASE}/products/{card.get('product_id', card.get('id'))}",
                                          headers=h)).json()
    sku = detail["skus"][0]
    sku_id = sku.get("sku_id", sku.get("id"))
    addr = await (await mall.client.post(f"{BASE}/addresses", json={
        "name": "王五", "phone": "13700000000", "detail": "北京市东城区长安街1号"}, headers=h)).json()
    body = {"address_id": addr["id"], "items": [{"sku_id": sku_id, "qty": 1}]}
    tap = {**h, "Idempotency-Key": "double-tap"}
    a, b = await asyncio.gather(*(mall.client.post(f"{BASE}/orders", json=body, headers=tap) for _ in range(2)))
    # the placing one first; the other is under way (409) or, if it came after, the same order (200)
    answers = sorted([(a.status, await a.json()), (b.status, await b.json())], key=lambda x: x[0] != 201)
    assert answers[0][0] == 201
    assert answers[1][0] == 409 and answers[1][1]["error"]["code"] == "in_progress" or \
        answers[1][1]["id"] == answers[0][1]["id"]
    mine = await (await mall.client.get(f"{BASE}/orders", headers=h)).json()
    assert mine["total"] == 1
    again = await mall.client.post(f"{BASE}/orders", json=body, headers=tap)
    assert again.status == 200 and (await again.json())["id"] == answers[0][1]["id"]


async def test_one_api_on_the_default_and_the_named_mini_program(mall):
    """The tenant-level prefix is the tenant's default mini-program (the environment's row);
    `/{account}` names another: each logs in with its own app id, a token opens only its own
    mini-program's paths, and another tenant's paths refuse it with nothing changed."""
    from sqlalchemy import text

    from social_mall.channels import service as channels

    await _mini(mall)
    tenant = await mall.svc.tenant("demo")
    mall.fake.mini_apps["wx_second_mini_0001"] = "second_mini_secret"
    async with mall.svc.uows() as uow:
        await channels.save_account(uow, tenant.id, None, kind="mini", code="mini2",
                                    values={"name": "第二个小程序", "app_id": "wx_second_mini_0001",
                                            "app_secret": "second_mini_secret"},
                                    pay_account_id=None, enabled=True, actor="test", now=mall.svc.clock())
        await seed_demo(uow, DemoCredentials(wechat_app_id="wx_shopb_00000000001", wechat_token="tok_b",
                                             wechat_aes_key=TEST_AES_KEY, wechat_app_secret="secret_b",
                                             mini_app_id="wx_shopb_mini_00001", mini_app_secret="mini_b"),
                        code="shopb")
        await uow.commit()
    mall.svc.forget_tenants()

    first = await login(mall, "mini_open_both")  # the default: the demo's `mini` row
    assert mall.fake.calls_to("/sns/jscode2session")[-1].query["appid"] == mall.fake.mini_app_id
    h = auth(first["token"])
    for path in (f"{BASE}/me", f"{BASE}/mini/me"):  # the same mini-program, named or not
        assert (await mall.client.get(path, headers=h)).status == 200
    assert (await mall.client.get(f"{BASE}/mini2/me", headers=h)).status == 401
    code = mall.fake.mint_js_code("mini2_open_both")
    second = await (await mall.client.post(f"{BASE}/mini2/session", json={"code": code})).json()
    assert mall.fake.calls_to("/sns/jscode2session")[-1].query["appid"] == "wx_second_mini_0001"
    h2 = auth(second["token"])
    assert (await mall.client.get(f"{BASE}/mini2/cart", headers=h2)).status == 200
    assert (await mall.client.get(f"{BASE}/cart", headers=h2)).status == 401
    assert (await mall.client.get(f"{BASE}/main/me", headers=h2)).status == 404   # an official account
    assert (await mall.client.get(f"{BASE}/nope/me", headers=h2)).status == 404

    shopb = await mall.svc.tenant("shopb")

    async def counts() -> tuple[int, ...]:
        async with mall.svc.uows() as uow:
            return tuple([(await uow.session.execute(text(f"SELECT count(*) FROM {t} WHERE tenant_id = :t"),
                                                     {"t": shopb.id})).scalar_one()
                          for t in ("members", "cart_items", "addresses", "orders")])

    before = await counts()
    for path in ("/api/app/v1/shopb/cart/items", "/api/app/v1/shopb/mini/cart/items"):
        refused = await mall.client.post(path, json={"sku_id": 1, "qty": 1}, headers=h)
        assert refused.status == 401
    refused = await mall.client.post("/api/app/v1/shopb/addresses", headers=h, json={
        "name": "张三", "phone": "13800000000", "detail": "上海市黄浦区人民大道1号"})
    assert refused.status == 401
    assert await counts() == before
    mine = await (await mall.client.get(f"{BASE}/cart", headers=h)).json()
    assert mine["lines"] == []


async def test_group_buy_seats_taken_in_a_mini_program_are_paid_at_its_merchant(mall, aiohttp_server, tmp_path):
    """The app API's group-buy routes place orders through the core's group-buy services
    (opening: place_order; joining: the join desk): they record the mini-program too."""
    from datetime import datetime, timezone

    from social_mall.channels import service as channels
    from tests.channels_kit import MCH2, open_native, opened, second_merchant
    from tests.fakes.groupbuy_kit import make_campaign

    await _mini(mall)
    tenant = await mall.svc.tenant("demo")
    fake2, merchant = await second_merchant(mall, aiohttp_server, tmp_path, tenant, mchid=MCH2,
                                            appid="wx_second_mini_0001")
    mall.fake.mini_apps["wx_second_mini_0001"] = "second_mini_secret"
    async with mall.svc.uows() as uow:
        acct = await channels.save_account(uow, tenant.id, None, kind="mini", code="mini2",
                                           values={"name": "第二个小程序", "app_id": "wx_second_mini_0001",
                                                   "app_secret": "second_mini_secret"},
                                           pay_account_id=merchant, enabled=True, actor="test", now=mall.svc.clock())
        c = await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=3)
        await uow.commit()
    mall.svc.forget_tenants()
    orders = []
    for i, path in enumerate((f"/groupbuy/campaigns/{c.id}/teams", "/groupbuy/teams/{team}/join")):
        code = mall.fake.mint_js_code(f"mini2_gb_member_{i}")
        session = await (await mall.client.post(f"{BASE}/mini2/session", json={"code": code})).json()
        h = auth(session["token"])
        addr = await mall.client.post(f"{BASE}/mini2/addresses", headers=h, json={
            "name": "张三", "phone": "13800000000", "detail": "上海市黄浦区人民大道1号"})
        assert addr.status in (200, 201), await addr.text()
        body = {"sku_id": c.prices[0].sku_id, "qty": 1, "address_id": (await addr.json())["id"]}
        url = f"{BASE}/mini2" + path.format(team=orders[0][1] if orders else 0)
        resp = await mall.client.post(url, headers={**h, "Idempotency-Key": f"gb-{i}"}, json=body)
        assert resp.status == 201, await resp.text()
        got = await resp.json()
        orders.append((got["order"]["order_no"], got["team"]["id"]))
    for order_no, _ in orders:
        assert await open_native(mall, order_no) == (acct.id, merchant)
        assert opened(fake2, order_no) == [MCH2]
