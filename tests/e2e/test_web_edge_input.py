"""Item 13 of issue 17 (the web edge): input that is not what a browser or integration
would normally send is a 4xx and changes nothing, on both backends, never a 500.

* secrets compared with hmac.compare_digest on non-ASCII str (which raises): the H5 pay
  token `t=`, the payer and OAuth-session cookies, the bind form's MAC;
* form bodies that aren't UTF-8 (or name an unknown or odd charset, or hold NUL, which
  PostgreSQL text cannot store while SQLite can): the console login, the CSRF check behind
  every console form, the bind page;
* JSON strings with a lone surrogate (`"\\ud800"`) or NUL, and JSON nested past the parser;
* stock raised past the cap by repeated deltas (console and API)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import func, select

from storage.console_repos import ConsoleRepo
from storage.models import Category, Product, Refund, Sku
from tests.fakes.console_kit import CSRF_RE, PASSWORD, issue_token, login, make_admin, paid_order
from tests.fakes.pay_kit import new_order

FORM = "application/x-www-form-urlencoded"


async def _count(mall, model, *where) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _status(mall, tenant, order_no) -> str:
    from social_mall.orders.service import find_order

    async with mall.svc.uows() as uow:
        return (await find_order(uow, tenant.id, order_no)).status


# -- secrets compared as bytes -----------------------------------------------------------------

@pytest.mark.parametrize("token", ["é", "\u00ff" * 43, "%ED%A0%80", "%00"])
async def test_a_non_ascii_pay_token_is_403_and_pays_nothing(mall, token):
    tenant, order = await new_order(mall)
    base = f"/h5/pay/{tenant.code}/{order.order_no}"
    t = token if token.startswith("%") else quote(token, safe="")
    for method, path in (("GET", base), ("POST", base + "/confirm"), ("GET", f"/h5/order-status/demo/{order.order_no}")):
        resp = await mall.client.request(method, f"{path}?t={t}", allow_redirects=False)
        assert resp.status == 403, (method, path, resp.status)
    assert await _status(mall, tenant, order.order_no) == "pending_payment"


async def _payer_cookie(mall, openid: str) -> None:
    """The signed payer cookie, through snsapi_base OAuth like WeChat's browser."""
    nxt = "/h5/bind/demo?c=x"
    start = await mall.client.get(f"/h5/oauth/demo?next={quote(nxt, safe='')}", allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    back = await mall.client.get(f"/h5/oauth/demo/callback?code={mall.fake.mint_code(openid)}&state={state}",
                                 allow_redirects=False)
    assert back.status == 302 and back.headers["Location"] == nxt


@pytest.mark.parametrize("cookie", ["o_x|9999999999|" + "é" * 32, "o_x|²|" + "0" * 32, "o_x|٩٩٩٩٩٩٩٩٩٩|" + "0" * 32,
                                    "é|9999999999|" + "0" * 32])
async def test_a_forged_non_ascii_payer_cookie_is_no_payer(mall, cookie):
    """The bind form's POST reads the payer cookie first: a forged one is「请重新打开链接」."""
    resp = await mall.client.post("/h5/bind/demo", data={"c": "A" * 32, "f": "0" * 32},
                                  headers={"Cookie": f"sm_payer_demo={cookie}"})
    assert resp.status == 403 and "请重新打开链接" in await resp.text()


async def test_a_non_ascii_bind_form_mac_is_403(mall):
    await _payer_cookie(mall, "o_bind_payer_000000000000001")
    resp = await mall.client.post("/h5/bind/demo", data={"c": "A" * 32, "f": "é" * 32})
    assert resp.status == 403 and "请重新打开链接" in await resp.text()


async def test_a_non_ascii_oauth_session_cookie_is_403(mall):
    nxt = "/h5/bind/demo?c=x"
    start = await mall.client.get(f"/h5/oauth/demo?next={quote(nxt, safe='')}", allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    mall.client.session.cookie_jar.clear()
    back = await mall.client.get(f"/h5/oauth/demo/callback?code={mall.fake.mint_code('o_x')}&state={state}",
                                 headers={"Cookie": "sm_oauth=" + "é" * 32}, allow_redirects=False)
    assert back.status == 403 and "sm_payer_demo" not in back.headers.get("Set-Cookie", "")


# -- forms that aren't UTF-8 -------------------------------------------------------------------

BAD_FORMS = [
    (FORM, b"\xff\xfe"),                                            # not UTF-8
    (FORM + "; charset=bogus", b"x=1"),                             # an unknown charset
    (FORM + "; charset=unicode_escape", b"x=\\ud800"),              # a charset that makes lone surrogates
    (FORM, b"x=a%00b"),                                             # NUL (PostgreSQL text can't hold it)
    ("multipart/form-data", b"x"),                                  # no boundary
    ("multipart/form-data; boundary=zz", b"garbage"),               # no parts
    ("multipart/form-data; boundary=zz",
     b'--zz\r\nContent-Disposition: form-data; name="x"\r\n\r\n\xff\r\n--zz--\r\n'),
    ("multipart/form-data; boundary=zz",
     b'--zz\r\nContent-Disposition: form-data; name="x"\r\nContent-Type: text/plain; charset=unicode_escape'
     b'\r\n\r\n\\ud800\r\n--zz--\r\n'),
    ("multipart/form-data; boundary=zz", b'--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n'),
    ("multipart/form-data; boundary=zz", b'--zz\r\nBroken header line\r\n\r\nx\r\n--zz--\r\n'),
]


def _with(body: bytes, ctype: str, fields: str) -> bytes:
    """Prefix the good fields (urlencoded only: multipart cases stay as they are)."""
    return (fields.encode() + b"&" + body) if ctype.startswith(FORM) else body


@pytest.mark.parametrize("ctype, body", BAD_FORMS)
async def test_console_login_with_a_body_that_is_not_utf8_text_is_400(mall, ctype, body):
    await make_admin(mall.svc.uows, "boss")
    page = await (await mall.client.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    resp = await mall.client.post("/console/login", data=_with(body, ctype, f"_csrf={token}&username=boss"),
                                  headers={"Content-Type": ctype}, allow_redirects=False)
    assert resp.status == 400, (resp.status, await resp.text())
    assert "sm_console=" not in resp.headers.get("Set-Cookie", "")


async def test_a_picture_upload_with_a_malformed_part_is_400_and_changes_nothing(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    async with mall.svc.uows() as uow:
        image = (await uow.catalog.product((await mall.svc.tenant("demo")).id, 1)).image
    head = b'--zz\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n' + csrf.encode() + b"\r\n"
    for tail in (b"--zz\r\nBroken header line\r\n\r\nx\r\n--zz--\r\n", b"garbage",
                 b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
                 b"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--zz--\r\n"):
        resp = await mall.client.post("/console/products/1/image", data=head + tail,
                                      headers={"Content-Type": "multipart/form-data; boundary=zz"})
        assert resp.status == 400, (tail, resp.status)
    async with mall.svc.uows() as uow:
        assert (await uow.catalog.product((await mall.svc.tenant("demo")).id, 1)).image == image


@pytest.mark.parametrize("username", ["boss\x00", "\x00"])
async def test_console_login_with_nul_in_the_username_is_400_on_both_backends(mall, username):
    await make_admin(mall.svc.uows, "boss")
    page = await (await mall.client.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    resp = await mall.client.post("/console/login", data={"_csrf": token, "username": username,
                                                          "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 400


@pytest.mark.parametrize("ctype, body", BAD_FORMS)
async def test_a_console_form_that_is_not_utf8_text_is_400_and_changes_nothing(mall, ctype, body):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    before = await _count(mall, Category)
    resp = await mall.client.post("/console/categories", data=_with(body, ctype, f"_csrf={csrf}&name=ok"),
                                  headers={"Content-Type": ctype}, allow_redirects=False)
    assert resp.status in (400, 403), (resp.status, await resp.text())     # 403: no token could be read
    assert await _count(mall, Category) == before


@pytest.mark.parametrize("ctype, body", BAD_FORMS)
async def test_the_bind_form_that_is_not_utf8_text_is_400(mall, ctype, body):
    await _payer_cookie(mall, "o_bind_payer_000000000000002")
    resp = await mall.client.post("/h5/bind/demo", data=_with(body, ctype, "c=" + "A" * 32),
                                  headers={"Content-Type": ctype})
    assert resp.status == 400, (resp.status, await resp.text())


async def test_nul_in_console_and_api_search_boxes_is_refused_on_both_backends(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    for path in ("/console/members?q=a%00", "/console/products?q=a%00", "/console/orders?q=a%00",
                 "/console/audit?actor=a%00"):
        resp = await mall.client.get(path)
        assert resp.status == 400, (path, resp.status)
    for path in ("/api/v1/members?q=a%00", "/api/v1/products?q=a%00", "/api/v1/orders?q=a%00"):
        resp = await mall.client.get(path, headers=auth)
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_input", path


# -- JSON with lone surrogates -----------------------------------------------------------------

@pytest.mark.parametrize("raw, field", [
    (b'{"name": "\\ud800"}', "name"),
    (b'{"name": "ok\\udfff"}', "name"),
    (b'{"name": "ok", "\\ud800": 1}', "body"),
    (b'{"name": "a\\u0000b"}', "name"),
])
async def test_api_json_with_a_lone_surrogate_or_nul_is_422_and_stores_nothing(mall, raw, field):
    await make_admin(mall.svc.uows, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, await login(mall.client, 'boss'))}",
            "Content-Type": "application/json"}
    before = await _count(mall, Category)
    resp = await mall.client.post("/api/v1/categories", data=raw, headers=auth)
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_input" and err["field"] == field
    assert await _count(mall, Category) == before


async def test_api_lone_surrogates_in_a_patch_or_a_refund_reason_change_nothing(mall):
    tenant = await mall.svc.tenant("demo")
    order_id, _ = await paid_order(mall.svc.uows, tenant.id, "o_surrogate_buyer_000000001")
    await make_admin(mall.svc.uows, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, await login(mall.client, 'boss'))}",
            "Content-Type": "application/json"}
    async with mall.svc.uows() as uow:
        title = (await uow.catalog.product(tenant.id, 1)).title
    resp = await mall.client.patch("/api/v1/products/1", data=b'{"title": "\\ud83d"}', headers=auth)
    assert resp.status == 422 and (await resp.json())["error"]["field"] == "title"
    resp = await mall.client.post("/api/v1/products", headers=auth, data=(
        b'{"title": "t", "category_id": 1, "skus": [{"spec": "\\udc00", "price_fen": 100, "stock": 1}]}'))
    assert resp.status == 422 and (await resp.json())["error"]["field"] == "skus.0.spec"
    resp = await mall.client.post(f"/api/v1/orders/{order_id}/refund", data=b'{"reason": "\\ud800\\ud800"}',
                                  headers=auth)
    assert resp.status == 422
    async with mall.svc.uows() as uow:
        assert (await uow.catalog.product(tenant.id, 1)).title == title
    assert await _count(mall, Refund, Refund.order_id == order_id) == 0
    assert await _count(mall, Product, Product.title == "t") == 0


async def test_api_json_nested_past_the_parser_is_422(mall):
    await make_admin(mall.svc.uows, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, await login(mall.client, 'boss'))}",
            "Content-Type": "application/json"}
    resp = await mall.client.post("/api/v1/categories", data=b"[" * 30000, headers=auth)
    assert resp.status == 422 and (await resp.json())["error"]["field"] == "body"


# -- stock: the total is capped, not only each change ------------------------------------------

async def _sku_stock(mall, sku_id: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(Sku.stock).where(Sku.id == sku_id)))


async def test_repeated_api_stock_deltas_cannot_raise_stock_past_the_cap(mall):
    from social_mall.console.rules import MAX_STOCK

    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    start = await _sku_stock(mall, 1)
    ok = await mall.client.patch("/api/v1/skus/1", json={"stock_delta": MAX_STOCK - start}, headers=auth)
    assert ok.status == 200 and (await ok.json())["stock"] == MAX_STOCK
    for delta in (1, MAX_STOCK):
        resp = await mall.client.patch("/api/v1/skus/1", json={"stock_delta": delta, "spec": "改了"}, headers=auth)
        assert resp.status == 422
        assert (await resp.json())["error"] == {"code": "invalid_input", "message": "stock_above_max",
                                                "field": "stock"}
    assert await _sku_stock(mall, 1) == MAX_STOCK
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Sku, 1)).spec != "改了"                # the whole change was refused
    down = await mall.client.patch("/api/v1/skus/1", json={"stock_delta": -5}, headers=auth)
    assert down.status == 200 and (await down.json())["stock"] == MAX_STOCK - 5


async def test_repeated_console_stock_forms_cannot_raise_stock_past_the_cap(mall):
    """The form sends the stock it showed and the stock wanted; a stale form (showed 0,
    wants the cap) posted again and again used to add the cap each time."""
    from social_mall.console.rules import MAX_STOCK

    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    async with mall.svc.uows() as uow:
        sku = await uow.session.get(Sku, 1)
        pid, spec, price = sku.product_id, sku.spec, sku.price_fen
    form = {"_csrf": csrf, "spec": spec, "price": f"{price // 100}.{price % 100:02d}", "stock": str(MAX_STOCK),
            "stock_was": "0", "on_shelf": "1"}
    first = await mall.client.post(f"/console/products/{pid}/skus/1", data=form, allow_redirects=False)
    assert first.status == 400 and "库存不能超过" in await first.text()
    start = await _sku_stock(mall, 1)
    form["stock_was"] = str(start)
    assert (await mall.client.post(f"/console/products/{pid}/skus/1", data=form, allow_redirects=False)).status == 303
    assert await _sku_stock(mall, 1) == MAX_STOCK
    form["stock_was"] = "0"
    again = await mall.client.post(f"/console/products/{pid}/skus/1", data=form, allow_redirects=False)
    assert again.status == 400 and "库存不能超过" in await again.text()
    assert await _sku_stock(mall, 1) == MAX_STOCK


# -- raw header bytes: what no well-behaved client sends -----------------------------------------

async def _raw(mall, request_line: str, headers: list[bytes], body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request written byte for byte (header values that aren't UTF-8 reach
    aiohttp as lone surrogates: `\\xff` → `\\udcff`)."""
    import asyncio

    server = mall.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [request_line.encode(), b"Host: 127.0.0.1", b"Connection: close",
            b"Content-Length: %d" % len(body), *headers]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return int(data.split(b" ", 2)[1]), data


async def test_secrets_in_raw_non_utf8_headers_are_refused_not_500(mall):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    session = mall.client.session.cookie_jar.filter_cookies(mall.client.make_url("/console/"))["sm_console"].value
    before = await _count(mall, Category)
    # the console's CSRF header
    status, _ = await _raw(mall, "POST /console/categories HTTP/1.1", [
        b"Cookie: sm_console=" + session.encode(), b"X-CSRF-Token: \xff" + csrf.encode()[1:],
        b"Content-Type: " + FORM.encode()], b"name=raw")
    assert status == 403
    # the login form's double-submit cookie
    status, _ = await _raw(mall, "POST /console/login HTTP/1.1", [
        b"Cookie: sm_console_login=\xff\xfe" + b"a" * 30, b"Content-Type: " + FORM.encode()],
        b"_csrf=abc&username=boss&password=" + PASSWORD.encode())
    assert status == 403
    # the payer cookie and the OAuth session cookie
    status, _ = await _raw(mall, "POST /h5/bind/demo HTTP/1.1", [
        b"Cookie: sm_payer_demo=o_x|9999999999|\xff" + b"0" * 31, b"Content-Type: " + FORM.encode()], b"c=x&f=y")
    assert status == 403
    assert await _count(mall, Category) == before
    # the API token
    status, data = await _raw(mall, "GET /api/v1/me HTTP/1.1", [b"Authorization: Bearer smk_\xff\xfe"])
    assert status == 401 and b'"unauthorized"' in data
    # cookies that are read as ids: the console session, the login token, the OAuth browser session
    status, data = await _raw(mall, "GET /console/ HTTP/1.1", [b"Cookie: sm_console=\xff" + b"a" * 42])
    assert status == 303 and b"Location: /console/login" in data
    status, data = await _raw(mall, "GET /console/login HTTP/1.1", [b"Cookie: sm_console_login=" + b"\xff" * 30])
    assert status == 200 and b"\xff" not in data
    page = await (await mall.client.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    status, data = await _raw(mall, "POST /console/login HTTP/1.1", [
        b"Cookie: sm_console_login=" + token.encode() + b"; sm_console=\xff" + b"a" * 42,
        b"Content-Type: " + FORM.encode()],
        f"_csrf={token}&username=boss&password={PASSWORD}".encode())
    assert status == 303 and b"Set-Cookie: sm_console=" in data                # logged in; the odd old id ignored
    nxt = quote("/h5/bind/demo?c=x", safe="")
    status, data = await _raw(mall, f"GET /h5/oauth/demo?next={nxt} HTTP/1.1", [b"Cookie: sm_oauth=" + b"\xff" * 30])
    assert status == 302 and b"\xff" not in data


async def test_a_v2_notify_with_a_non_ascii_sign_is_refused(mall, aiohttp_server, tmp_path):
    from tests.fakes.pay_kit import WECHAT_UA, XRW, oauth_login
    from tests.fakes.wechat_pay import attach_real_pay

    wxpay = await attach_real_pay(mall, aiohttp_server, tmp_path, api_version="v2",
                                  v2_key="192006250b4c09247ec02edce69f6a2d", v2_sign_type="MD5")
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", "o_v2_sign_payer_000000001")
    opened = await mall.client.post(f"/h5/pay/demo/{order.order_no}/jsapi?t={token}",
                                    headers={**XRW, "User-Agent": WECHAT_UA})
    assert opened.status == 200
    wxpay.orders[order.order_no].state = "SUCCESS"
    body = re.sub(rb"<sign><!\[CDATA\[[^\]]*\]\]></sign>", "<sign><![CDATA[签名签名]]></sign>".encode(),
                  wxpay.v2_notify_for(order.order_no))
    assert "签名".encode() in body
    resp = await mall.client.post("/pay/notify-v2/demo", data=body)
    assert resp.status in (400, 401) and "FAIL" in await resp.text()
    assert await _status(mall, tenant, order.order_no) == "pending_payment"
