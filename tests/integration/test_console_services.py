"""Console services on a real database and key-value store (both backends)."""

from datetime import datetime, timedelta, timezone

import pytest

from social_mall.console import auth, catalog as cat, orders as adm
from social_mall.console.dashboard import dashboard
from social_mall.console.errors import InvalidInputError
from social_mall.console.sessions import close_session, load_session, open_session
from social_mall.console.tenants import create_tenant, tenant_settings, update_settings
from social_mall.errors import NotFoundError
from tests.fakes.console_kit import PASSWORD, make_admin, make_tenant, paid_order

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)  # in the future: rows written at wall-clock time stay "before" it


async def actor(uows, name="boss", role="owner"):
    admin_id = await make_admin(uows, name, role)
    async with uows() as uow:
        return await auth.current_admin(uow, admin_id)


async def test_lockout_after_five_failures_and_unlock_after_the_window(uows, kv, demo):
    await make_admin(uows, "boss")

    async def attempt(password, now, address="10.0.0.1"):
        async with uows() as uow:
            result = await auth.login(uow, kv, username="boss", password=password, address=address, now=now)
            await uow.commit()
        return result

    assert (await attempt(PASSWORD, NOW)).admin is not None
    for i in range(5):
        assert (await attempt("nope-nope-nope", NOW, f"10.0.1.{i}")).error == "bad_credentials"
    assert (await attempt(PASSWORD, NOW + timedelta(minutes=1), "10.0.2.1")).error == "locked"
    assert (await attempt(PASSWORD, NOW + timedelta(minutes=16), "10.0.2.2")).admin is not None


async def test_one_address_is_rate_limited_across_usernames(uows, kv, demo):
    for i in range(auth.MAX_TRIES_PER_ADDRESS):
        async with uows() as uow:
            r = await auth.login(uow, kv, username=f"ghost{i}", password="x", address="10.9.9.9", now=NOW)
        assert r.error == "bad_credentials"
    async with uows() as uow:
        r = await auth.login(uow, kv, username="ghost", password="x", address="10.9.9.9", now=NOW)
    assert r.error == "rate_limited"


async def test_sessions_live_in_the_kv_store_and_end_on_logout(kv):
    sid, session = await open_session(kv, 7)
    loaded = await load_session(kv, sid)
    assert loaded is not None and loaded.admin_id == 7 and loaded.csrf == session.csrf
    assert await load_session(kv, sid + "x") is None
    await close_session(kv, sid)
    assert await load_session(kv, sid) is None


async def test_stock_moves_by_delta_so_concurrent_reservations_survive(uows, demo):
    boss = await actor(uows)
    async with uows() as uow:
        pid = await cat.create_product(uow, demo.id, boss, cat.ProductInput("测试品", "", "", 1),
                                       [cat.SkuInput("标准", 1000, 10)])
        await uow.commit()
        sku_id = (await cat.get_product(uow, demo.id, pid)).skus[0].id
    await paid_order(uows, demo.id, "o_stock_buyer_0000000000001", qty=3, sku_id=sku_id)  # 10 → 7
    async with uows() as uow:   # the admin saw 10 and wants 15: +5 on top of what is left
        row = await cat.update_sku(uow, demo.id, boss, sku_id, stock_delta=15 - 10)
        await uow.commit()
    assert row.stock == 12
    async with uows() as uow:
        with pytest.raises(InvalidInputError):
            await cat.update_sku(uow, demo.id, boss, sku_id, stock_delta=-13)


async def test_product_validation_and_tenant_scope(uows, demo):
    boss = await actor(uows)
    other = await make_tenant(uows, "shop_b")
    async with uows() as uow:
        with pytest.raises(InvalidInputError) as err:
            cat.product_input({"title": "", "category_id": "1"})
        assert err.value.field == "title"
        with pytest.raises(InvalidInputError):
            await cat.create_product(uow, demo.id, boss, cat.ProductInput("x", "", "", 999999), [cat.SkuInput("", 1, 1)])
        with pytest.raises(NotFoundError):
            await cat.get_product(uow, other, 1)
        with pytest.raises(NotFoundError):
            await cat.set_product_shelf(uow, other, boss, 1, False)


async def test_ship_and_refund_are_audited_with_before_and_after(uows, demo):
    boss = await actor(uows)
    # paid an hour before NOW: WeChat Pay refunds only within a year of the payment
    oid, no = await paid_order(uows, demo.id, "o_audit_buyer_0000000000001", now=NOW - timedelta(hours=1))
    async with uows() as uow:
        with pytest.raises(InvalidInputError):
            await adm.ship(uow, demo.id, boss, oid, "bad no!", NOW)
        await adm.ship(uow, demo.id, boss, oid, "YT0000001", NOW)
        await adm.refund(uow, demo.id, boss, oid, amount_fen=100, reason="破损补偿", now=NOW)
        await uow.commit()
    from social_mall.console.audit import AuditFilter, list_audit

    async with uows() as uow:
        page = await list_audit(uow, demo.id, AuditFilter(subject=f"order:{no}"), page=1, per_page=10)
    by_action = {r.action: r for r in page.items}
    assert by_action["order.ship"].before == {"status": "paid"}
    assert by_action["order.ship"].after == {"status": "shipped", "tracking_no": "YT0000001"}
    assert by_action["refund.request"].actor == boss.actor
    assert by_action["refund.request"].after["amount_fen"] == 100


async def test_dashboard_counts_today_in_shanghai(uows, demo):
    await paid_order(uows, demo.id, "o_dash_1_000000000000000001", now=NOW)
    await paid_order(uows, demo.id, "o_dash_2_000000000000000001", now=NOW - timedelta(days=3))
    async with uows() as uow:
        d = await dashboard(uow, demo.id, NOW)
    assert d.orders_today == 1 and d.paying_members_today == 1
    assert d.gmv_today_fen > 0 and sum(p.orders for p in d.series) == 2
    assert d.visitors_today >= 1 and d.conversion_permille == 1000 // d.visitors_today


async def test_super_admin_creates_a_tenant_and_credentials_stay_write_only(uows, demo):
    await make_admin(uows, "platform", "super", tenant_code=None)
    async with uows() as uow:
        root = await auth.current_admin(uow, (await auth.login(uow, _NoKV(), username="platform", password=PASSWORD,
                                                               address="x", now=NOW)).admin.id)
        tid = await create_tenant(uow, root, code="shop_c", name="C 店", owner_username="owner_c",
                                  owner_password="long-enough-pw")
        await uow.commit()
    async with uows() as uow:
        from storage.console_repos import ConsoleRepo

        owner = auth.admin_view(await ConsoleRepo(uow.session).admin_by_username("owner_c"))
        assert owner.tenant_id == tid and owner.role == "owner"
        with pytest.raises(InvalidInputError):
            await create_tenant(uow, owner, code="shop_d", name="D", owner_username="x_d", owner_password="x" * 12)
        changed = await update_settings(uow, tid, owner, {"wechat_app_secret": "sekrit-value", "wechat_token": ""})
        await uow.commit()
        s = await tenant_settings(uow, tid)
    assert changed == ["wechat_app_secret"]
    assert s.is_set["wechat_app_secret"] and not s.is_set["wechat_token"]
    assert "sekrit-value" not in repr(s)


class _NoKV:
    async def incr(self, key, ttl):
        return 1
