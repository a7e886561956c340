"""A company in several customer groups gets the best applicable price over every list of
every group it is in (and its own lists), never loses them all: the rule (override lists
always apply, the lowest of them being the price otherwise due; a sale list only below
that; lists out of their dates count for nothing), and end to end through the console's
multi-group company form and the chat's 企业价, on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from social_mall_b2b.models import Company, CompanyGroup, CustomerGroup
from social_mall_b2b.rules import ListKind, PriceList, Tier, company_price
from storage.models import AuditEntry

from b2b_kit import apply_in_chat, console, count, make_mall, say, simulator
from test_b2b_prices import BUYER, SHOPPER, sku_of

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
PAST = NOW - timedelta(days=30)


def _list(list_id: int, kind: ListKind, fen: int, *, ends_at: datetime | None = None, min_qty: int = 1) -> PriceList:
    return PriceList(list_id, f"list {list_id}", kind, 0, {7: (Tier(min_qty, fen),)}, None, ends_at, True)


def test_best_price_over_two_groups_lists_sale_only_below_the_due_price_expired_ignored():
    group_a = [_list(1, ListKind.OVERRIDE, 2500), _list(2, ListKind.SALE, 2400)]
    group_b = [_list(3, ListKind.OVERRIDE, 2300), _list(4, ListKind.SALE, 1800, ends_at=PAST)]
    # due: the lowest override over both groups (23.00); group A's sale (24.00) is not below it;
    # group B's cheaper sale list has ended
    assert company_price(group_a + group_b, 7, 2990, 1, NOW) == (2300, 3)
    # group A alone: its sale list is below its override, so it applies
    assert company_price(group_a, 7, 2990, 1, NOW) == (2400, 2)
    # an override dearer than retail still applies; a sale list from another group below it wins
    dear = [_list(5, ListKind.OVERRIDE, 3200)]
    assert company_price(dear + [_list(6, ListKind.SALE, 3000)], 7, 2990, 1, NOW) == (3000, 6)
    # per quantity: a tier of one group beats the other group's flat price from its minimum on
    tiered = [_list(7, ListKind.OVERRIDE, 2000, min_qty=50)]
    assert company_price(group_b + tiered, 7, 2990, 49, NOW) == (2300, 3)
    assert company_price(group_b + tiered, 7, 2990, 50, NOW) == (2000, 7)
    # every list ended: retail (None), never a stale list price
    assert company_price([_list(4, ListKind.SALE, 1800, ends_at=PAST)], 7, 2990, 1, NOW) is None


async def test_company_in_two_groups_gets_the_cheaper_lists_price_in_chat(backend, engine, tmp_path, fake_wechat,
                                                                         aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    csrf = await console(mall)
    sku = await sku_of(mall, "芒果干")          # retail ¥29.90
    post = mall.client.post
    await wx.event(BUYER, "subscribe")
    await apply_in_chat(wx, BUYER)
    async with mall.svc.uows() as uow:
        company = await uow.session.scalar(select(Company))
    assert (await post(f"/console/b2b/companies/{company.id}/decide",
                       data={"_csrf": csrf, "verdict": "approve"})).status == 200
    for name in ("餐饮客户", "连锁超市"):
        assert (await post("/console/b2b/groups", data={"_csrf": csrf, "name": name})).status == 200
    async with mall.svc.uows() as uow:
        a, b = [g.id for g in (await uow.session.scalars(select(CustomerGroup).order_by(CustomerGroup.id))).all()]
    for group, name, kind, fen, extra in (
        (a, "餐饮覆盖价", "override", "25", {}),
        (a, "餐饮促销价", "sale", "24", {}),
        (b, "超市覆盖价", "override", "23", {}),
        (b, "超市旧促销", "sale", "18", {"starts_at": "2020-01-01", "ends_at": "2020-01-31"}),
    ):
        resp = await post("/console/b2b/lists", data={"_csrf": csrf, "name": name, "kind": kind, "group_id": str(group),
                                                      "tiers": f"{sku.id} 1 {fen}", "active": "1", **extra})
        assert resp.status == 200, await resp.text()

    audits = await count(mall, AuditEntry)
    resp = await post(f"/console/b2b/companies/{company.id}/group",
                      data=[("_csrf", csrf), ("group_id", str(a)), ("group_id", str(b))])
    assert resp.status == 200
    async with mall.svc.uows() as uow:
        assert sorted((await uow.session.scalars(select(CompanyGroup.group_id))).all()) == [a, b]
    assert await count(mall, AuditEntry) == audits + 1
    page = await (await mall.client.get("/console/b2b/companies")).text()
    assert page.count(" selected>") >= 2

    card = await say(wx, BUYER, "搜索 芒果干")
    assert "企业价 ¥23.00" in card, card               # group B's override, below group A's lists
    await wx.event(SHOPPER, "subscribe")
    retail = await say(wx, SHOPPER, "搜索 芒果干")
    assert "¥29.90" in retail and "企业价" not in retail

    # group B dropped: group A's sale list, below its override, applies
    assert (await post(f"/console/b2b/companies/{company.id}/group",
                       data=[("_csrf", csrf), ("group_id", str(a))])).status == 200
    assert "企业价 ¥24.00" in await say(wx, BUYER, "搜索 芒果干")
    # another tenant's (unknown) group: not found, the groups stay as they were
    resp = await post(f"/console/b2b/companies/{company.id}/group",
                      data=[("_csrf", csrf), ("group_id", str(a)), ("group_id", "99999")])
    assert resp.status == 404
    async with mall.svc.uows() as uow:
        assert (await uow.session.scalars(select(CompanyGroup.group_id))).all() == [a]
    # none: only the company's own lists (none here), retail
    assert (await post(f"/console/b2b/companies/{company.id}/group", data={"_csrf": csrf})).status == 200
    assert "企业价" not in await say(wx, BUYER, "搜索 芒果干")


async def test_migration_moves_each_companys_group_into_the_link_table(fresh_backend):
    """b2b_0012 on a database at b2b_0011 holding a company with a group: the company is
    in that group afterwards, and the old `b2b_companies.group_id` is emptied (one truth)."""
    from sqlalchemy import MetaData

    from storage.db import create_engine, migrate
    from tests.conftest import seed_row

    eng = create_engine(fresh_backend.db_url, schema=fresh_backend.schema)
    try:
        await migrate(eng, "b2b_0011")

        def seed(conn) -> None:
            meta = MetaData()
            meta.reflect(conn, only=["tenants", "members", "b2b_groups", "b2b_companies"])

            made = iter(range(1, 1000))

            def row(table: str, /, **given) -> int:
                return seed_row(conn, meta.tables[table], made, **given)

            tenant = row("tenants")
            member = row("members", tenant_id=tenant)
            group = row("b2b_groups", tenant_id=tenant, name="餐饮客户")
            row("b2b_companies", tenant_id=tenant, owner_member_id=member, name="味之源", uscc="91350100M000100Y43",
                status="approved", group_id=group)
            row("b2b_companies", tenant_id=tenant, owner_member_id=row("members", tenant_id=tenant),
                name="无分组", uscc="91110000100000000X", status="approved", group_id=None)

        async with eng.begin() as conn:
            await conn.run_sync(seed)
        await migrate(eng, "b2b_0012")
        async with eng.connect() as conn:
            links = (await conn.execute(select(CompanyGroup.tenant_id, CompanyGroup.company_id,
                                               CompanyGroup.group_id))).all()
            old = (await conn.execute(select(Company.group_id))).all()
        assert len(links) == 1 and links[0][1:] == (1, 1)
        assert old == [(None,), (None,)]
    finally:
        await eng.dispose()
