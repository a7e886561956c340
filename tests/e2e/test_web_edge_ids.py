"""Item 11 of issue 17: every HTTP route that reads an id from its path or query parses it
with the one parser (social_mall.parsing.parse_id). Ids like `²` (a Unicode digit that
passes str.isdigit() but not int()), `١` (an Arabic-Indic digit int() accepts), 23-digit
numbers (past BIGINT) or 2^63 answer 404 (a JSON error in the API, the console's error
page in the console), never 500. The routes are enumerated from the app itself, so a new
route with an id is probed too."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from storage.console_repos import ConsoleRepo
from tests.fakes.console_kit import issue_token, login, make_admin, paid_order

BAD_IDS = ["²", "١", "0", "-1", "01x", "9" * 23, str(2**63), "1" * 20, " 1"]
ID_VARS = {"id", "sku_id", "tag_id", "team", "pid"}
#: the WeChat endpoints and pay notifies take no ids from the path (another item covers them)
SKIP_PREFIXES = ("/wechat/", "/pay/")
VAR = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _routes(app):
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("formatter") or ""
        if "{" not in path or path.startswith(SKIP_PREFIXES):
            continue
        names = [n for n in VAR.findall(path) if n in ID_VARS]
        if names:
            yield route.method, path, str(info["pattern"].pattern)


def _fill(path: str, pattern: str, bad: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "tenant":
            return "1" if path.startswith("/uploads/") else "demo"
        if name == "account":  # the member API's explicit prefix: the demo's mini-program
            return "mini"
        if name not in ID_VARS:  # e.g. {action:approve|reject}: its first choice
            return re.search(rf"\(\?P<{name}>([^|)]+)", pattern).group(1)
        return quote(bad, safe="")
    return VAR.sub(one, path)


async def test_odd_ids_in_any_path_are_404_never_500(mall, monkeypatch):
    from handlers import api_app

    monkeypatch.setattr(api_app, "RATE_PER_MINUTE", 10**6)  # one member token walks every route
    tenant = await mall.svc.tenant("demo")
    await paid_order(mall.svc.uows, tenant.id, "o_ids_buyer_000000000000001")
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    from tests.e2e.test_app_api import _mini
    from tests.e2e.test_app_api import login as app_login

    await _mini(mall)  # the member API (/api/app/v1/) with a member's session token
    member_auth = {"Authorization": f"Bearer {(await app_login(mall, 'o_ids_mini'))['token']}"}
    # the API first: `١` is int() 1, so before the fix /console/tokens/١/revoke revoked token 1
    routes = sorted(_routes(mall.app), key=lambda r: not r[1].startswith("/api/"))
    async with mall.svc.uows() as uow:
        before, _ = await ConsoleRepo(uow.session).audit(tenant.id, limit=500)   # the demo's, the login's
    assert any(p.startswith("/api/") for _, p, _ in routes) and any(p.startswith("/gb/") for _, p, _ in routes)
    failures = []
    for method, path, pattern in routes:
        for bad in BAD_IDS:
            url = _fill(path, pattern, bad)
            if path.startswith("/api/"):
                headers = member_auth if path.startswith("/api/app/") else auth
                resp = await mall.client.request(method, url, headers=headers, json={})
            elif method == "POST":
                resp = await mall.client.post(url, data={"_csrf": csrf}, allow_redirects=False)
            else:
                resp = await mall.client.get(url, allow_redirects=False)
            body = (await resp.read()).decode("utf-8", "replace")
            if resp.status != 404:
                failures.append((method, url, resp.status, body[:80]))
            elif path.startswith("/api/") and '"not_found"' not in body:
                failures.append((method, url, "not a JSON not_found", body[:80]))
            elif path.startswith("/console/") and "没有找到这条记录" not in body:
                failures.append((method, url, "not the console's error page", body[:80]))
    assert not failures, "\n".join(map(str, (f[:3] for f in failures)))
    async with mall.svc.uows() as uow:
        entries, _ = await ConsoleRepo(uow.session).audit(tenant.id, limit=500)
    assert [e.id for e in entries] == [e.id for e in before]                               # nothing changed


@pytest.mark.parametrize("bad", ["²", "١", "9" * 23, str(2**63)])
async def test_odd_ids_in_query_strings_are_ignored_or_refused_never_500(mall, bad):
    """Ids and page numbers in query strings: a list filter ignores an unusable id (console)
    or refuses it (API: 422 JSON); pages fall back to the first."""
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    q = quote(bad, safe="")
    for url in (f"/console/products?category_id={q}", f"/console/products?page={q}", f"/console/orders?page={q}",
                f"/console/members?page={q}", f"/console/members?q={q}", f"/console/audit?page={q}",
                f"/console/groupbuy?page={q}", f"/console/groupbuy/new?product_id={q}"):
        resp = await mall.client.get(url, allow_redirects=False)
        assert resp.status == 200, (url, resp.status)
    resp = await mall.client.post("/console/groupbuy", data={"_csrf": csrf, "product_id": bad})
    assert resp.status == 400
    for url in (f"/api/v1/products?category_id={q}", f"/api/v1/orders?member_id={q}", f"/api/v1/products?page={q}",
                f"/api/v1/members?q={q}"):
        resp = await mall.client.get(url, headers=auth)
        assert resp.status in (200, 422), (url, resp.status)
        body = await resp.json()
        assert resp.status == 200 or body["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("bad", ["²", "١", "9" * 23])
async def test_odd_product_ids_on_h5_and_share_pages_are_404(mall, bad):
    from tests.fakes import referral_world as world

    tenant = await mall.svc.tenant("demo")
    d = await world.distributor(mall.svc.uows, tenant)
    async with mall.svc.uows() as uow:
        from social_mall.referral import service

        await service.approve_distributor(uow, tenant.id, d.id, actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    q = quote(bad, safe="")
    landing = await mall.client.get(f"/r/demo/{d.code}?p={q}")
    assert landing.status == 200                                             # the landing page, without a product
    assert "h5/product" not in await landing.text()
    for url in (f"/h5/product/demo/{q}", f"/media/products/{q}.png", f"/gb/demo/team/{q}",
                f"/groupbuy/qr/demo/{q}.png"):
        resp = await mall.client.get(url)
        assert resp.status == 404, (url, resp.status)


@pytest.mark.parametrize("field, value", [("since", "0001-01-01"), ("until", "9999-12-31")])
async def test_dates_at_the_ends_of_the_calendar_are_refused_not_500(mall, field, value):
    """A date filter is an id's cousin: `since=0001-01-01` (midnight in Shanghai is year 0 in
    UTC) and `until=9999-12-31` (plus one day) overflowed datetime."""
    await make_admin(mall.svc.uows, "fin", role="finance")
    csrf = await login(mall.client, "fin")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    for path in ("/console/orders", "/console/audit", "/console/orders/export.csv"):
        resp = await mall.client.get(f"{path}?{field}={value}")
        assert resp.status == 400 and "超出范围" in await resp.text(), path
    for path in ("/api/v1/orders", "/api/v1/audit"):
        resp = await mall.client.get(f"{path}?{field}={value}", headers=auth)
        assert resp.status == 422 and (await resp.json())["error"] == {
            "code": "invalid_input", "message": "range", "field": field}, path


async def test_a_tenant_code_with_nul_is_404_on_both_backends(mall):
    """`{tenant}` is looked up by code: NUL reached PostgreSQL (which refuses it; SQLite
    answered "no such shop")."""
    for url in ("/h5/pay/a%00/x?t=1", "/h5/product/a%00/1", "/gb/a%00/team/1", "/r/a%00/abc", "/h5/bind/a%00?c=x",
                "/h5/oauth/a%00?next=/h5/pay/a/b"):
        resp = await mall.client.get(url, allow_redirects=False)
        assert resp.status == 404, (url, resp.status)


@pytest.mark.parametrize("starts, ends", [("0001-01-01T00:00", "2030-01-01T00:00"),
                                          ("2030-01-01T00:00", "9999-12-31T23:59")])
async def test_a_campaign_at_the_ends_of_the_calendar_is_a_form_error(mall, starts, ends):
    await make_admin(mall.svc.uows, "boss")
    csrf = await login(mall.client, "boss")
    resp = await mall.client.post("/console/groupbuy", data={
        "_csrf": csrf, "product_id": "1", "title": "拼团", "starts_at": starts, "ends_at": ends, "team_size": "3",
        "lifetime_hours": "24", "max_qty": "5", "price_1": "1.00"})
    assert resp.status == 400 and "超出范围" in await resp.text()
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        entries, _ = await ConsoleRepo(uow.session).audit(tenant.id, action="groupbuy")
    assert entries == []
