"""Issue 17 item 9: resetting an admin's password, changing their role or disabling them
ends their console sessions and API tokens at once, on every worker (sessions live in the
KV store: memory on `sqlite`, Redis on `pg`; tokens and the admin's credentials version in
the database). Two browsers over real HTTP: owner A in one, admin B in the other."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from storage.console_repos import ConsoleRepo
from tests.fakes.console_kit import CSRF_RE, PASSWORD, issue_token, login, make_admin

NEW_PASSWORD = "another-long-password-9"


@pytest.fixture
async def browser_b(mall):
    """A second browser: its own cookie jar, the same app."""
    async with aiohttp.ClientSession(base_url=str(mall.client.make_url("/")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def _api(client, token: str) -> int:
    return (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status


async def _sent_to_login(browser, csrf: str) -> bool:
    page = await browser.get("/console/products", allow_redirects=False)
    form = await browser.post("/console/categories", data={"_csrf": csrf, "name": "B 的分类"}, allow_redirects=False)
    return all(r.status == 303 and r.headers["Location"].startswith("/console/login") for r in (page, form))


async def _audit(mall, action: str, subject: str):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        rows, _ = await ConsoleRepo(uow.session).audit(tenant.id, action=action, subject=subject)
    return rows


ACTIONS = {
    "password": ("password", {"password": NEW_PASSWORD}, "admin.password_reset"),
    "role": ("role", {"role": "operator"}, "admin.role"),
    "disable": ("disable", {}, "admin.disable"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_owner_action_ends_the_admins_sessions_and_tokens(mall, browser_b, action):
    await make_admin(mall.svc.uows, "owner_a")
    b_id = await make_admin(mall.svc.uows, "admin_b", role="admin")
    csrf_a = await login(mall.client, "owner_a")
    csrf_b = await login(browser_b, "admin_b")
    token_b = await issue_token(browser_b, csrf_b, "b-script")
    token_a = await issue_token(mall.client, csrf_a, "a-script")
    assert (await browser_b.get("/console/products")).status == 200 and await _api(mall.client, token_b) == 200

    path, data, audit_action = ACTIONS[action]
    resp = await mall.client.post(f"/console/admins/{b_id}/{path}", data={"_csrf": csrf_a, **data},
                                  allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/admins?ok=saved"

    assert await _sent_to_login(browser_b, csrf_b)                          # the old cookie is dead
    assert await _api(mall.client, token_b) == 401                          # so is the token
    assert (await mall.client.get("/console/admins")).status == 200         # A's own session goes on
    assert await _api(mall.client, token_a) == 200
    entries = await _audit(mall, audit_action, f"admin:{b_id}")
    assert len(entries) == 1 and entries[0].after["tokens_revoked"] == 1 and entries[0].after["sessions"] == "ended"
    assert entries[0].actor.startswith("admin:") and "owner_a" in entries[0].actor
    async with mall.svc.uows() as uow:
        assert await ConsoleRepo(uow.session).tokens_for(b_id) == []         # gone from B's token list too


async def test_after_a_password_reset_only_the_new_password_logs_in(mall, browser_b):
    await make_admin(mall.svc.uows, "owner_a")
    b_id = await make_admin(mall.svc.uows, "admin_b", role="admin")
    csrf_a = await login(mall.client, "owner_a")
    await login(browser_b, "admin_b")
    await mall.client.post(f"/console/admins/{b_id}/password", data={"_csrf": csrf_a, "password": NEW_PASSWORD})
    page = await (await browser_b.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    old = await browser_b.post("/console/login", data={"_csrf": token, "username": "admin_b", "password": PASSWORD},
                               allow_redirects=False)
    assert old.status == 401
    await login(browser_b, "admin_b", NEW_PASSWORD)
    assert (await browser_b.get("/console/products")).status == 200


async def test_after_a_role_change_the_admin_signs_in_again_with_the_new_role(mall, browser_b):
    await make_admin(mall.svc.uows, "owner_a")
    b_id = await make_admin(mall.svc.uows, "admin_b", role="finance")
    csrf_a = await login(mall.client, "owner_a")
    await login(browser_b, "admin_b")
    assert (await browser_b.get("/console/orders/export.csv")).status == 200
    await mall.client.post(f"/console/admins/{b_id}/role", data={"_csrf": csrf_a, "role": "operator"})
    assert (await browser_b.get("/console/orders/export.csv", allow_redirects=False)).status == 303
    csrf_b = await login(browser_b, "admin_b")
    assert (await browser_b.get("/console/orders/export.csv")).status == 403  # operators don't export
    token = await issue_token(browser_b, csrf_b)                               # a new token, the new role
    me = await mall.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["role"] == "operator"


async def test_a_disabled_admin_cannot_log_in_until_enabled_and_old_credentials_stay_dead(mall, browser_b):
    await make_admin(mall.svc.uows, "owner_a")
    b_id = await make_admin(mall.svc.uows, "admin_b", role="admin")
    csrf_a = await login(mall.client, "owner_a")
    csrf_b = await login(browser_b, "admin_b")
    token_b = await issue_token(browser_b, csrf_b)
    await mall.client.post(f"/console/admins/{b_id}/disable", data={"_csrf": csrf_a})
    listing = await (await mall.client.get("/console/admins")).text()
    assert "已停用" in listing
    page = await (await browser_b.get("/console/login")).text()
    token = CSRF_RE.search(page).group(1)
    refused = await browser_b.post("/console/login", allow_redirects=False,
                                   data={"_csrf": token, "username": "admin_b", "password": PASSWORD})
    assert refused.status == 401 and "已停用" in await refused.text()
    assert "sm_console=" not in refused.headers.get("Set-Cookie", "")
    resp = await mall.client.post(f"/console/admins/{b_id}/enable", data={"_csrf": csrf_a}, allow_redirects=False)
    assert resp.status == 303
    assert len(await _audit(mall, "admin.enable", f"admin:{b_id}")) == 1
    await login(browser_b, "admin_b")
    assert (await browser_b.get("/console/products")).status == 200
    assert await _api(mall.client, token_b) == 401                          # enabling doesn't revive them


async def test_an_owner_cannot_disable_themselves_or_another_tenants_admin(mall):
    from tests.fakes.console_kit import make_tenant

    a_id = await make_admin(mall.svc.uows, "owner_a")
    await make_tenant(mall.svc.uows, "shop_b")
    other = await make_admin(mall.svc.uows, "owner_other", tenant_code="shop_b")
    csrf_a = await login(mall.client, "owner_a")
    own = await mall.client.post(f"/console/admins/{a_id}/disable", data={"_csrf": csrf_a})
    assert own.status == 400 and "不能停用自己" in await own.text()
    foreign = await mall.client.post(f"/console/admins/{other}/disable", data={"_csrf": csrf_a})
    assert foreign.status == 404
    async with mall.svc.uows() as uow:
        repo = ConsoleRepo(uow.session)
        assert (await repo.admin(a_id)).disabled_at is None and (await repo.admin(other)).disabled_at is None


async def test_tokens_issued_while_the_role_changes_never_outlive_the_change(mall, browser_b):
    """B asks for tokens while A changes B's role, all at once over HTTP: whatever the
    order, no token B ends up holding works afterwards (issued before the change → revoked;
    after → B's session was already dead)."""
    await make_admin(mall.svc.uows, "owner_a")
    b_id = await make_admin(mall.svc.uows, "admin_b", role="admin")
    csrf_a = await login(mall.client, "owner_a")
    csrf_b = await login(browser_b, "admin_b")

    async def b_issues(i: int) -> str | None:
        resp = await browser_b.post("/console/tokens", data={"_csrf": csrf_b, "name": f"t{i}"}, allow_redirects=False)
        m = re.search(r'id="new-token">([^<]+)<', await resp.text())
        return m.group(1) if m else None

    async def a_changes() -> int:
        await asyncio.sleep(0)
        resp = await mall.client.post(f"/console/admins/{b_id}/role", data={"_csrf": csrf_a, "role": "service"},
                                      allow_redirects=False)
        return resp.status

    *tokens, status = await asyncio.gather(*(b_issues(i) for i in range(4)), a_changes())
    assert status == 303
    for token in filter(None, tokens):
        assert await _api(mall.client, token) == 401
    async with mall.svc.uows() as uow:
        assert await ConsoleRepo(uow.session).tokens_for(b_id) == []
