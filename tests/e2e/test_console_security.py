"""Console and API security through the real app: sessions, CSRF, roles, tenant scope,
tokens, lockout, write-only credentials, uploads."""

import re

import pytest

from tests.fakes.console_kit import (
    PASSWORD, csrf_of, issue_token, login, make_admin, make_tenant, paid_order,
)


async def test_no_session_redirects_to_login(mall):
    for path in ("/console/", "/console/orders", "/console/orders/1", "/console/settings"):
        resp = await mall.client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/console/login?next=")
    resp = await mall.client.post("/console/categories", data={"name": "x"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")
    forged = mall.client.session.cookie_jar
    forged.update_cookies({"sm_console": "made-up-session-id"})
    resp = await mall.client.get("/console/", allow_redirects=False)
    assert resp.status == 303


async def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(mall):
    await make_admin(mall.svc.uows, "boss")
    page = await (await mall.client.get("/console/login")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    resp = await mall.client.post("/console/login", allow_redirects=False, data={
        "_csrf": token, "username": "boss", "password": PASSWORD, "next": "//evil.example/"})
    assert resp.status == 303 and resp.headers["Location"] == "/console/"   # no open redirect
    cookie = [v for k, v in resp.headers.items() if k == "Set-Cookie" and v.startswith("sm_console=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    home = await mall.client.get("/console/")
    assert home.status == 200 and "今日概览" in await home.text()
    assert "script-src 'none'" in home.headers["Content-Security-Policy"]
    csrf = await csrf_of(mall.client)
    await mall.client.post("/console/logout", data={"_csrf": csrf})
    mall.client.session.cookie_jar.update_cookies({"sm_console": cookie.split(";")[0].split("=", 1)[1]})
    resp = await mall.client.get("/console/", allow_redirects=False)
    assert resp.status == 303                                               # the old id is dead server-side


async def test_login_without_its_csrf_token_is_refused(mall):
    await make_admin(mall.svc.uows, "boss")
    resp = await mall.client.post("/console/login", data={"username": "boss", "password": PASSWORD},
                                  allow_redirects=False)
    assert resp.status == 403


async def test_repeated_wrong_passwords_lock_the_account(mall):
    await make_admin(mall.svc.uows, "boss")
    page = await (await mall.client.get("/console/login")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)

    async def attempt(password):
        return await mall.client.post("/console/login", allow_redirects=False,
                                      data={"_csrf": token, "username": "boss", "password": password})

    for _ in range(5):
        resp = await attempt("wrong-password-1")
        assert resp.status == 401 and "用户名或密码不对" in await resp.text()
    resp = await attempt(PASSWORD)
    assert resp.status == 401 and "已锁定" in await resp.text()
    async with mall.svc.uows() as uow:
        from storage.console_repos import ConsoleRepo

        admin = await ConsoleRepo(uow.session).admin_by_username("boss")
        assert admin.locked_until is not None
        entries, _ = await ConsoleRepo(uow.session).audit(admin.tenant_id, action="admin.locked")
        assert len(entries) == 1
    for _ in range(5):
        await attempt("wrong-password-2")
    resp = await attempt(PASSWORD)
    assert resp.status == 429                                                # the per-username rate limit


async def test_missing_or_wrong_csrf_token_is_403(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    assert (await mall.client.post("/console/categories", data={"name": "新分类"})).status == 403
    assert (await mall.client.post("/console/categories", data={"name": "新分类", "_csrf": "x" * 43})).status == 403
    resp = await mall.client.post("/console/categories", data={"name": "新分类", "_csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    page = await (await mall.client.get("/console/categories")).text()
    assert "新分类" in page


async def test_operator_cannot_reach_finance_actions(mall):
    tenant = await mall.svc.tenant("demo")
    order_id, _ = await paid_order(mall.svc.uows, tenant.id, "o_fin_buyer_000000000000001")
    await make_admin(mall.svc.uows, "op", role="operator")
    csrf = await login(mall.client, "op")
    assert (await mall.client.get("/console/orders")).status == 200
    detail = await (await mall.client.get(f"/console/orders/{order_id}")).text()
    assert "发货" in detail and "退款…" not in detail                      # no refund form shown
    resp = await mall.client.post(f"/console/orders/{order_id}/refund",
                                  data={"_csrf": csrf, "reason": "质量问题", "confirm": "1"})
    assert resp.status == 403
    assert (await mall.client.get("/console/orders/export.csv")).status == 403
    assert (await mall.client.get("/console/settings")).status == 403
    assert (await mall.client.get("/console/admins")).status == 403
    token = await issue_token(mall.client, csrf)
    api = await mall.client.post(f"/api/v1/orders/{order_id}/refund", json={"reason": "质量问题"},
                                 headers={"Authorization": f"Bearer {token}"})
    assert api.status == 403 and (await api.json())["error"]["code"] == "forbidden"
    async with mall.svc.uows() as uow:
        refunds = await uow.payments.refunds_for(tenant.id, order_id)
    assert refunds == []


async def test_tenant_a_admin_gets_404_for_tenant_b_ids_in_console_and_api(mall):
    b = await make_tenant(mall.svc.uows, "shop_b")
    b_order, b_no = await paid_order(mall.svc.uows, b, "o_b_buyer_0000000000000001")
    await make_admin(mall.svc.uows, "boss_a")
    csrf = await login(mall.client, "boss_a")
    assert (await mall.client.get(f"/console/orders/{b_order}")).status == 404
    resp = await mall.client.post(f"/console/orders/{b_order}/ship", data={"_csrf": csrf, "tracking_no": "SF1234"})
    assert resp.status == 404
    resp = await mall.client.post(f"/console/orders/{b_order}/refund",
                                  data={"_csrf": csrf, "reason": "试试", "confirm": "1"})
    assert resp.status == 404
    listing = await (await mall.client.get(f"/console/orders?q={b_no}")).text()
    assert "没有订单" in listing and f">{b_no}</a>" not in listing
    token = await issue_token(mall.client, csrf)
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, body in (("GET", f"/api/v1/orders/{b_order}", None),
                               ("POST", f"/api/v1/orders/{b_order}/ship", {"tracking_no": "SF1234"}),
                               ("POST", f"/api/v1/orders/{b_order}/refund", {"reason": "试试"})):
        resp = await mall.client.request(method, path, json=body, headers=auth)
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] == "not_found"
    async with mall.svc.uows() as uow:
        from social_mall.orders.service import load_order

        assert (await load_order(uow, b, b_order)).status == "paid"


async def test_api_needs_a_valid_token(mall):
    for headers in ({}, {"Authorization": "Bearer smk_not-a-real-token"}, {"Authorization": "Basic YTpi"}):
        resp = await mall.client.get("/api/v1/orders", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    token = await issue_token(mall.client, csrf)
    async with mall.svc.uows() as uow:
        from sqlalchemy import select

        from storage.console_models import ApiToken

        stored = (await uow.session.scalars(select(ApiToken))).all()
    assert len(stored) == 1 and token not in stored[0].token_hash and len(stored[0].token_hash) == 64
    resp = await mall.client.get("/api/v1/products?per_page=5", headers={"Authorization": f"Bearer {token}"})
    body = await resp.json()
    assert resp.status == 200 and body["total"] == 20 and len(body["items"]) == 5
    tokens_page = await (await mall.client.get("/console/tokens")).text()
    token_id = re.search(r'/console/tokens/(\d+)/revoke', tokens_page).group(1)
    await mall.client.post(f"/console/tokens/{token_id}/revoke", data={"_csrf": csrf})
    resp = await mall.client.get("/api/v1/products", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401


async def test_credentials_are_write_only(mall, caplog):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    secret = "S3cretAppSecretValue0123456789"
    resp = await mall.client.post("/console/settings", data={"_csrf": csrf, "wechat_app_secret": secret,
                                                             "pay_apiv3_key": "short"})
    assert resp.status == 400                                               # 32 characters required
    resp = await mall.client.post("/console/settings", data={"_csrf": csrf, "wechat_app_secret": secret})
    page = await resp.text()
    assert resp.status == 200 and "已保存" in page and secret not in page and "已设置" in page
    tenant = await mall.svc.tenant("demo")
    assert tenant.wechat_app_secret == secret                               # the cache was dropped
    audit = await (await mall.client.get("/console/audit?action=settings.")).text()
    assert "wechat_app_secret" in audit and secret not in audit
    assert secret not in caplog.text


async def test_picture_upload_checks_type_and_size_and_serves_it(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    from aiohttp import FormData

    from handlers.health import solid_png

    def form(data: bytes, name: str, ctype: str) -> FormData:
        f = FormData()
        f.add_field("_csrf", csrf)
        f.add_field("image", data, filename=name, content_type=ctype)
        return f

    bad = await mall.client.post("/console/products/1/image",
                                 data=form(b"<svg onload=alert(1)></svg>", "x.png", "image/png"))
    assert bad.status == 400
    big = await mall.client.post("/console/products/1/image",
                                 data=form(b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024 + 10), "x.png", "image/png"))
    assert big.status == 400
    no_csrf = FormData()
    no_csrf.add_field("image", solid_png(10, 10, (1, 2, 3)), filename="a.png", content_type="image/png")
    assert (await mall.client.post("/console/products/1/image", data=no_csrf)).status == 403
    ok = await mall.client.post("/console/products/1/image", data=form(solid_png(10, 10, (1, 2, 3)), "a.png",
                                                                        "image/png"))
    assert ok.status == 200 and "图片已上传" in await ok.text()
    async with mall.svc.uows() as uow:
        tenant = await mall.svc.tenant("demo")
        image = (await uow.catalog.product(tenant.id, 1)).image
    assert re.fullmatch(r"/uploads/\d+/[0-9a-f]{32}\.png", image)
    served = await mall.client.get(image)
    assert served.status == 200 and served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert (await mall.client.get("/uploads/1/../../etc/passwd")).status == 404


async def test_orders_csv_export_streams_every_matching_order(mall):
    tenant = await mall.svc.tenant("demo")
    numbers = [(await paid_order(mall.svc.uows, tenant.id, f"o_csv_buyer_{i:016d}"))[1] for i in range(3)]
    await make_admin(mall.svc.uows, "fin", role="finance")
    await login(mall.client, "fin")
    resp = await mall.client.get("/console/orders/export.csv?status=paid")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    text = (await resp.read()).decode("utf-8-sig")
    rows = text.strip().splitlines()
    assert rows[0].startswith("order_no,status") and len(rows) == 4
    assert all(any(n in r for r in rows) for n in numbers)


async def test_api_creates_a_product_and_ships_an_order_with_a_push(mall):
    tenant = await mall.svc.tenant("demo")
    order_id, order_no = await paid_order(mall.svc.uows, tenant.id, "o_api_ship_00000000000000001")
    await make_admin(mall.svc.uows, "boss")
    token = await issue_token(mall.client, await login(mall.client, "boss"))
    auth = {"Authorization": f"Bearer {token}"}
    bad = await mall.client.post("/api/v1/products", headers=auth, data=b"{not json",
                                 )
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "body"
    created = await mall.client.post("/api/v1/products", headers=auth, json={
        "title": "API 新品", "category_id": 1, "skus": [{"spec": "标准", "price_fen": 1290, "stock": 5}]})
    body = await created.json()
    assert created.status == 201 and body["min_price_fen"] == 1290 and body["skus"][0]["stock"] == 5
    patched = await mall.client.patch(f"/api/v1/skus/{body['skus'][0]['id']}", headers=auth, json={"stock_delta": -2})
    assert (await patched.json())["stock"] == 3
    shipped = await mall.client.post(f"/api/v1/orders/{order_id}/ship", headers=auth, json={"tracking_no": "ZT123456"})
    assert shipped.status == 200 and (await shipped.json())["status"] == "shipped"
    again = await mall.client.post(f"/api/v1/orders/{order_id}/ship", headers=auth, json={"tracking_no": "ZT123456"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "illegal_transition"
    await mall.settle()
    pushes = mall.fake.sent_messages("o_api_ship_00000000000000001")
    assert pushes and "ZT123456" in pushes[-1]["text"]["content"]
    listing = await (await mall.client.get("/api/v1/orders?status=shipped&per_page=1", headers=auth)).json()
    assert listing["total"] == 1 and listing["items"][0]["order_no"] == order_no
