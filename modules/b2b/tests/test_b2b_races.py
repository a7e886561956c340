"""Decisions and prices on a real database, through two workers (separate engines and
connection pools: on PostgreSQL, real separate connections): two admins deciding one
application at once apply exactly one decision (one audit row, one push event); another
tenant never sees, decides or prices a company; a pending applicant is not priced."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from social_mall.errors import NotFoundError
from social_mall.members.service import resolve_member
from social_mall.pricing.unit import Wanted
from social_mall_b2b import accounts, prices
from social_mall_b2b.errors import NotPendingError
from social_mall_b2b.rules import ListKind
from storage.models import AuditEntry, OutboxEvent, Sku, Tenant

from storage.db import create_engine

from b2b_kit import GOOD_USCC

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


async def applied(uows, tenant: int, openid: str = "o_b2b_race") -> tuple[int, int]:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant, "mp", openid)
        c = await accounts.apply(uow, tenant, member.id, accounts.Application(
            "上海味之源餐饮管理有限公司", GOOD_USCC, "张三", "13800138000"), NOW)
        await uow.commit()
    return member.id, c.id


async def test_two_admins_deciding_at_once_apply_exactly_one_decision(uows, other_worker, demo):
    _, company = await applied(uows, demo.id)

    async def decide(factory, approve: bool) -> str:
        async with factory() as uow:
            try:
                await accounts.decide(uow, demo.id, company, approve=approve, reason="" if approve else "不符合",
                                      actor=f"admin:{'a' if approve else 'b'}", now=NOW)
            except NotPendingError:
                await uow.rollback()
                return "refused"
            await uow.commit()
            return "approved" if approve else "rejected"

    results = await asyncio.gather(decide(uows, True), decide(other_worker, False))
    assert results.count("refused") == 1
    assert await decide(uows, True) == "refused"          # and once decided, no later decision either
    async with uows() as uow:
        c = await accounts.company(uow, demo.id, company)
        decisions = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(["b2b.approve", "b2b.reject"])))
        events = await uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.topic == "b2b.company_decided"))
    assert c.status in ("approved", "rejected") and (decisions, events) == (1, 1)


async def test_another_tenant_never_sees_decides_or_prices_a_company(uows, demo):
    member, company = await applied(uows, demo.id)
    async with uows() as uow:
        other = Tenant(code="b2b_other", name="other")
        uow.session.add(other)
        await uow.session.flush()
        other_id = other.id
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(NotFoundError):
            await accounts.decide(uow, other_id, company, approve=True, reason="", actor="admin:x", now=NOW)
        assert (await accounts.list_companies(uow, other_id, None)).total == 0
        assert await accounts.member_company(uow, other_id, member) is None
    async with uows() as uow:
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == demo.id).order_by(Sku.id))
        wanted = [Wanted(sku.id, sku.product_id, sku.price_fen, 1)]
        sku_id = sku.id
        with pytest.raises(NotFoundError):     # a list for another tenant's company: nothing written
            await prices.save_list(uow, other_id, None, prices.ListInput(
                "x", ListKind.OVERRIDE, None, company, 0, None, None, True, ()), "admin:x")
        await uow.rollback()
    async with uows() as uow:
        await prices.save_list(uow, demo.id, None, prices.ListInput(
            "批发", ListKind.OVERRIDE, None, company, 0, None, None, True, ((sku_id, 1, 100),)), "admin:a")
        await uow.commit()
    async with uows() as uow:                   # pending: not priced
        assert await prices.PRICER.prices(uow, demo.id, member, wanted, NOW) == {}
        await accounts.decide(uow, demo.id, company, approve=True, reason="", actor="admin:a", now=NOW)
        await uow.commit()
    async with uows() as uow:
        assert (await prices.PRICER.prices(uow, demo.id, member, wanted, NOW))[sku_id].fen == 100
        assert await prices.PRICER.prices(uow, other_id, member, wanted, NOW) == {}


@pytest.fixture
async def priced(engine, backend):
    """Two workers as the app builds them (the module's unit pricer registered): this
    engine, and one of its own (on PostgreSQL: separate connections)."""
    from storage.db import session_factory
    from storage.uow import uow_factory

    eng = create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg" else \
        create_engine(backend.db_url)
    yield (uow_factory(session_factory(engine), {}, pricers=[prices.PRICER]),
           uow_factory(session_factory(eng), {}, pricers=[prices.PRICER]))
    await eng.dispose()


async def test_two_acceptances_of_one_quote_at_once_place_one_order(priced, demo):
    uows, other_worker = priced
    from datetime import timedelta

    from social_mall.members.service import add_address
    from social_mall_b2b import quick, quotes
    from social_mall_b2b.errors import QuoteUnavailableError
    from storage.models import Order

    member, company = await applied(uows, demo.id, "o_b2b_quote_race")
    async with uows() as uow:
        await accounts.decide(uow, demo.id, company, approve=True, reason="", actor="admin:a", now=NOW)
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == demo.id, Sku.stock >= 150).order_by(Sku.id))
        sku_id, stock = sku.id, sku.stock
        await quick.set_code(uow, demo.id, sku_id, "R1", "admin:a")
        address = await add_address(uow, demo.id, member, "李四", "13912345678", "北京市朝阳区建国路88号")
        q = await quotes.request_quote(uow, demo.id, member, [("R1", 120)], [], NOW)
        await quotes.answer_quote(uow, demo.id, q.id, {sku_id: 777}, NOW + timedelta(days=1), "admin:a", NOW)
        await uow.commit()

    async def accept(factory) -> str:
        async with factory() as uow:
            try:
                order = await quotes.accept_quote(uow, demo.id, member, q.id, address_id=address.id, now=NOW,
                                                  timeout=timedelta(minutes=30), channel="mp")
            except QuoteUnavailableError:
                await uow.rollback()
                return "refused"
            await uow.commit()
            return order.order_no

    results = await asyncio.gather(accept(uows), accept(other_worker), accept(uows), accept(other_worker))
    assert results.count("refused") == 3
    async with uows() as uow:
        orders = (await uow.session.scalars(select(Order).where(Order.source == f"b2b:quote:{q.id}"))).all()
        assert len(orders) == 1 and orders[0].goods_fen == 120 * 777
        assert await uow.catalog.stock(demo.id, sku_id) == stock - 120


async def test_a_buyers_budget_passes_one_of_two_orders_at_once_and_a_cancel_gives_it_back_once(priced, demo):
    from datetime import timedelta

    from social_mall.members.service import add_address
    from social_mall.orders.service import cancel_order, place_order
    from social_mall_b2b import budgets
    from social_mall_b2b.errors import ApprovalRequestedError, BudgetExceededError
    from social_mall_b2b.models import BudgetEntry, BuyerBudget, CompanyMember

    uows, other_worker = priced
    _, company = await applied(uows, demo.id, "o_b2b_budget_owner")
    async with uows() as uow:
        await accounts.decide(uow, demo.id, company, approve=True, reason="", actor="admin:a", now=NOW)
        buyer, _ = await resolve_member(uow, demo.id, "mp", "o_b2b_budget_buyer")
        uow.session.add(CompanyMember(tenant_id=demo.id, company_id=company, member_id=buyer.id, role="buyer",
                                      created_at=NOW))
        await uow.session.flush()
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == demo.id, Sku.stock >= 10,
                                                         Sku.price_fen >= 2000).order_by(Sku.id))
        sku_id, price = sku.id, sku.price_fen
        address = await add_address(uow, demo.id, buyer.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        await uow.commit()
    probe_total = None
    async with uows() as uow:            # what one order of 1 costs (goods + shipping)
        probe = await place_order(uow, demo.id, buyer.id, [(sku_id, 1)], address_id=address.id, now=NOW,
                                  timeout=timedelta(minutes=30))
        probe_total = probe.total_fen
        await uow.rollback()
    async with uows() as uow:
        await budgets.set_limit(uow, demo.id, buyer.id, probe_total * 3 // 2, "admin:a")   # room for one
        await uow.commit()

    async def order(factory) -> str:
        async with factory() as uow:
            try:
                o = await place_order(uow, demo.id, buyer.id, [(sku_id, 1)], address_id=address.id, now=NOW,
                                      timeout=timedelta(minutes=30))
            except (BudgetExceededError, ApprovalRequestedError):
                await uow.rollback()        # an over-budget order waits for the owner's approval instead
                return "refused"
            await uow.commit()
            return str(o.id)

    results = await asyncio.gather(order(uows), order(other_worker))
    assert results.count("refused") == 1
    placed = int(next(r for r in results if r != "refused"))
    async with uows() as uow:
        b = await uow.session.scalar(select(BuyerBudget))
        assert (b.spent_fen, b.period) == (probe_total, budgets.period_of(NOW))
        assert await uow.session.scalar(select(func.count()).select_from(BudgetEntry)) == 1
        from social_mall_b2b.models import ApprovalRequest

        assert await uow.session.scalar(select(func.count()).select_from(ApprovalRequest)) == 1
    async with uows() as uow:
        await cancel_order(uow, demo.id, placed, reason="buyer", now=NOW)
        await uow.commit()
    for _ in range(2):                   # the subscriber delivered twice: given back once
        async with uows() as uow:
            await budgets.give_back(uow, demo.id, placed)
            await uow.commit()
    async with uows() as uow:
        assert (await uow.session.scalar(select(BuyerBudget))).spent_fen == 0
    assert await order(other_worker) != "refused"
    assert price > 0
