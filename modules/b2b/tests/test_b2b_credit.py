"""Credit terms (账期/月结) on a real database: an order paid on the company's account moves
to paid through the core's payment-method seam once; over the limit, with no terms or with
an overdue statement it is refused and nothing changes; two buyers paying at once through
two workers (separate engines; on PostgreSQL real separate connections) never pass the
limit together; repayments are once per bank reference; statements are issued once a month
and paid oldest first; `reconcile` finds a balance that differs from its entries."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import load_order, place_order
from social_mall_b2b import accounts, credit, prices, statements
from social_mall_b2b.errors import CreditRefusedError, InvalidApplicationError
from social_mall_b2b.models import CompanyMember, CreditAccount, CreditEntry, Statement
from social_mall_b2b.rules import ListKind
from storage.db import create_engine, session_factory
from storage.models import AuditEntry, OutboxEvent, Sku
from storage.uow import uow_factory

from b2b_kit import GOOD_USCC

NOW = datetime(2030, 1, 10, 4, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


@pytest.fixture
async def workers(engine, backend):
    """Two workers as the app builds them (pricer and payment method registered)."""
    eng = create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg" else \
        create_engine(backend.db_url)
    kw = {"pricers": [prices.PRICER], "payment_methods": [credit.METHOD_OBJ]}
    yield uow_factory(session_factory(engine), {}, **kw), uow_factory(session_factory(eng), {}, **kw)
    await eng.dispose()


async def company_with_buyers(uows, tenant: int, limit_fen: int | None) -> tuple[int, list[int], int, int]:
    """An approved company (owner + one buyer), an override price of 100.00 a unit on one
    SKU; (company id, [owner, buyer], sku id, address id of each... the owner's)."""
    async with uows() as uow:
        owner, _ = await resolve_member(uow, tenant, "mp", "o_credit_owner")
        buyer, _ = await resolve_member(uow, tenant, "mp", "o_credit_buyer")
        c = await accounts.apply(uow, tenant, owner.id, accounts.Application(
            "上海味之源餐饮管理有限公司", GOOD_USCC, "张三", "13800138000"), NOW)
        await accounts.decide(uow, tenant, c.id, approve=True, reason="", actor="admin:a", now=NOW)
        uow.session.add(CompanyMember(tenant_id=tenant, company_id=c.id, member_id=buyer.id, role="buyer"))
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant, Sku.stock >= 50).order_by(Sku.id))
        await prices.save_list(uow, tenant, None, prices.ListInput(
            "批发", ListKind.OVERRIDE, None, c.id, 0, None, None, True, ((sku.id, 1, 10000),)), "admin:a")
        if limit_fen is not None:
            await credit.set_limit(uow, tenant, c.id, limit_fen, "admin:a")
        await uow.commit()
        return c.id, [owner.id, buyer.id], sku.id, 0


async def unpaid_order(uows, tenant: int, member: int, sku: int, qty: int, at: datetime = NOW) -> int:
    async with uows() as uow:
        address = await add_address(uow, tenant, member, "李四", "13912345678", "北京市朝阳区建国路88号")
        order = await place_order(uow, tenant, member, [(sku, qty)], address_id=address.id, now=at, timeout=TIMEOUT)
        await uow.commit()
        return order.id


async def snapshot(uows, tenant: int) -> tuple:
    async with uows() as uow:
        acc = (await uow.session.execute(select(CreditAccount.outstanding_fen, CreditAccount.limit_fen)
                                         .where(CreditAccount.tenant_id == tenant))).all()
        entries = await uow.session.scalar(select(func.count()).select_from(CreditEntry))
        return tuple(acc), entries


async def test_an_order_on_credit_is_paid_once_within_the_limit_and_refused_over_it(workers, demo):
    uows, _ = workers
    company, (owner, buyer), sku, _ = await company_with_buyers(uows, demo.id, 25000)
    first = await unpaid_order(uows, demo.id, buyer, sku, 2)           # 200.00 (+ shipping)
    async with uows() as uow:
        order = await load_order(uow, demo.id, first)
        offer = await credit.METHOD_OBJ.offer(uow, demo.id, order, NOW)
        assert "月结" in offer and "250.00" in offer
        paid = await credit.pay_on_credit(uow, demo.id, buyer, first, NOW)
        await uow.commit()
    assert paid.status == "paid" and paid.paid_fen == paid.total_fen
    async with uows() as uow:
        assert (await credit.account(uow, demo.id, company)).outstanding_fen == paid.total_fen
        with pytest.raises(CreditRefusedError) as again:                # paid: not twice
            await credit.pay_on_credit(uow, demo.id, buyer, first, NOW)
        assert again.value.reason == "order"
        await uow.rollback()
        audited = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "order.paid_by_method"))
        paid_events = await uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.topic == "order.paid"))
    assert audited == 1 and paid_events == 1       # order.paid once, as for a WeChat payment
    second = await unpaid_order(uows, demo.id, owner, sku, 1)          # 100.00 more: over 250.00
    before = await snapshot(uows, demo.id)
    async with uows() as uow:
        with pytest.raises(CreditRefusedError) as over:
            await credit.pay_on_credit(uow, demo.id, owner, second, NOW)
        await uow.rollback()
    assert over.value.reason == "over_limit" and over.value.outstanding_fen == paid.total_fen
    assert await snapshot(uows, demo.id) == before
    async with uows() as uow:
        assert (await load_order(uow, demo.id, second)).status == "pending_payment"
        with pytest.raises(CreditRefusedError):                          # someone else's order
            await credit.pay_on_credit(uow, demo.id, buyer, second, NOW)
        await uow.rollback()
        assert await credit.reconcile(uow, demo.id) == []


async def test_no_terms_no_offer_and_a_consumer_is_not_offered_credit(workers, demo):
    uows, _ = workers
    company, (owner, _), sku, _ = await company_with_buyers(uows, demo.id, None)
    oid = await unpaid_order(uows, demo.id, owner, sku, 1)
    async with uows() as uow:
        consumer, _ = await resolve_member(uow, demo.id, "mp", "o_credit_consumer")
        await uow.commit()
    cid = await unpaid_order(uows, demo.id, consumer.id, sku, 1)
    async with uows() as uow:
        assert await credit.METHOD_OBJ.offer(uow, demo.id, await load_order(uow, demo.id, oid), NOW) == ""
        assert await credit.METHOD_OBJ.offer(uow, demo.id, await load_order(uow, demo.id, cid), NOW) == ""
        with pytest.raises(CreditRefusedError) as none:
            await credit.pay_on_credit(uow, demo.id, owner, oid, NOW)
        assert none.value.reason == "no_terms"
        with pytest.raises(CreditRefusedError):
            await credit.pay_on_credit(uow, demo.id, consumer.id, cid, NOW)
        await uow.rollback()
    assert await snapshot(uows, demo.id) == ((), 0)


async def test_two_buyers_paying_on_credit_at_once_never_pass_the_limit(workers, demo):
    uows, other_worker = workers
    company, (owner, buyer), sku, _ = await company_with_buyers(uows, demo.id, 30000)
    a = await unpaid_order(uows, demo.id, owner, sku, 2)      # each 200.00 + shipping: one fits, not both
    b = await unpaid_order(uows, demo.id, buyer, sku, 2)

    async def pay(factory, member: int, order: int) -> str:
        async with factory() as uow:
            try:
                await credit.pay_on_credit(uow, demo.id, member, order, NOW)
            except CreditRefusedError as exc:
                await uow.rollback()
                return exc.reason
            await uow.commit()
            return "paid"

    results = await asyncio.gather(pay(uows, owner, a), pay(other_worker, buyer, b))
    assert sorted(results) == ["over_limit", "paid"]
    async with uows() as uow:
        acc = await credit.account(uow, demo.id, company)
        statuses = sorted([(await load_order(uow, demo.id, a)).status, (await load_order(uow, demo.id, b)).status])
        entries = await uow.session.scalar(select(func.count()).select_from(CreditEntry))
        one = (await load_order(uow, demo.id, a if results[0] == "paid" else b)).total_fen
        assert await credit.reconcile(uow, demo.id) == []
    assert statuses == ["paid", "pending_payment"] and entries == 1
    assert acc.outstanding_fen == one <= acc.limit_fen


async def test_repayments_statements_overdue_and_reconcile(workers, demo):
    uows, _ = workers
    company, (owner, buyer), sku, _ = await company_with_buyers(uows, demo.id, 100000)
    oid = await unpaid_order(uows, demo.id, buyer, sku, 3)
    async with uows() as uow:
        total = (await credit.pay_on_credit(uow, demo.id, buyer, oid, NOW)).total_fen
        await uow.commit()
    feb = datetime(2030, 2, 1, 2, tzinfo=timezone.utc)             # 10:00 in Shanghai on Feb 1st
    async with uows() as uow:
        issued = await statements.issue_due(uow, demo.id, feb)
        await uow.commit()
    async with uows() as uow:
        assert await statements.issue_due(uow, demo.id, feb + timedelta(hours=5)) == []     # once a month
        st = (await statements.statements(uow, demo.id))[0]
        csv_text = (await statements.statement_csv(uow, demo.id, st.id))[1]
        pushed = (await uow.session.execute(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "b2b.statement_issued"))).scalars().all()
    assert len(issued) == 1 and (st.period, st.amount_fen, st.paid_fen) == ("2030-01", total, 0)
    assert f"{total / 100:.2f}" in csv_text and "月结订单" in csv_text
    assert [p["member_id"] for p in pushed] == [owner]
    # overdue: a new credit order is refused, nothing written
    late = st.due_at + timedelta(minutes=1)
    second = await unpaid_order(uows, demo.id, owner, sku, 1, at=late)
    before = await snapshot(uows, demo.id)
    async with uows() as uow:
        with pytest.raises(CreditRefusedError) as blocked:
            await credit.pay_on_credit(uow, demo.id, owner, second, late)
        await uow.rollback()
    assert blocked.value.reason == "overdue" and await snapshot(uows, demo.id) == before
    # repaid in two transfers; the same bank reference twice counts once; never more than owed
    async with uows() as uow:
        with pytest.raises(InvalidApplicationError):
            await credit.record_repayment(uow, demo.id, company, total + 1, "BANK-X", "admin:a", late)
        await uow.rollback()
    async with uows() as uow:
        assert await credit.record_repayment(uow, demo.id, company, 5000, "BANK-1", "admin:a", late)
        await uow.commit()
    async with uows() as uow:
        assert not await credit.record_repayment(uow, demo.id, company, 5000, "BANK-1", "admin:a", late)
        assert await credit.record_repayment(uow, demo.id, company, total - 5000, "BANK-2", "admin:a", late)
        await uow.commit()
    async with uows() as uow:
        st = (await statements.statements(uow, demo.id))[0]
        assert st.paid_fen == st.amount_fen
        assert (await credit.account(uow, demo.id, company)).outstanding_fen == 0
        assert await credit.reconcile(uow, demo.id) == []
        paid = await credit.pay_on_credit(uow, demo.id, owner, second, late)   # no longer overdue
        await uow.commit()
    assert paid.status == "paid"
    # a balance moved behind the entries' back is found
    async with uows() as uow:
        await uow.session.execute(update(CreditAccount).values(outstanding_fen=CreditAccount.outstanding_fen + 1))
        await uow.commit()
    async with uows() as uow:
        [m] = await credit.reconcile(uow, demo.id)
        [text] = await credit.books_check(uow, demo.id)       # what the core's books.checks job logs
    assert (m.company_id, m.outstanding_fen - m.entries_fen) == (company, 1) and f"company {company}" in text
    async with uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Statement)) == 1


async def test_a_bank_transfer_keeps_the_order_open_and_partial_receipts_pay_it_once(workers, demo):
    from social_mall_b2b import transfers
    from social_mall_b2b.models import Transfer, TransferReceipt

    uows, _ = workers
    company, (owner, buyer), sku, _ = await company_with_buyers(uows, demo.id, None)
    oid = await unpaid_order(uows, demo.id, buyer, sku, 2)
    async with uows() as uow:                       # no account set: not offered, refused
        order = await load_order(uow, demo.id, oid)
        assert await transfers.METHOD_OBJ.offer(uow, demo.id, order, NOW) == ""
        with pytest.raises(CreditRefusedError):
            await transfers.choose(uow, demo.id, buyer, order, NOW)
        await uow.rollback()
        await transfers.set_shop_terms(uow, demo.id, transfers.BankAccount(
            "招商银行上海分行", "上海示例商贸有限公司", "1219 0000 0000 001", 72), "admin:a")
        await uow.commit()
    async with uows() as uow:
        order = await load_order(uow, demo.id, oid)
        assert "对公转账" in await transfers.METHOD_OBJ.offer(uow, demo.id, order, NOW)
        t, terms, until = await transfers.choose(uow, demo.id, buyer, order, NOW)
        await uow.commit()
    assert t.reference == f"ZZ{order.order_no}" and until == order.created_at + timedelta(hours=72)
    async with uows() as uow:
        assert (await load_order(uow, demo.id, oid)).expires_at == until      # the longer window
        first = await transfers.confirm_receipt(uow, demo.id, t.id, 5000, "SN-1", "admin:a", NOW)
        await uow.commit()
    assert first == (True, False)
    async with uows() as uow:
        assert await transfers.confirm_receipt(uow, demo.id, t.id, 5000, "SN-1", "admin:a", NOW) == (False, False)
        with pytest.raises(InvalidApplicationError):                          # more than still due
            await transfers.confirm_receipt(uow, demo.id, t.id, order.total_fen, "SN-2", "admin:a", NOW)
        await uow.rollback()
    async with uows() as uow:
        assert (await load_order(uow, demo.id, oid)).status == "pending_payment"
        assert await transfers.confirm_receipt(uow, demo.id, t.id, order.total_fen - 5000, "SN-3", "admin:a",
                                               NOW) == (True, True)
        await uow.commit()
    async with uows() as uow:
        paid = await load_order(uow, demo.id, oid)
        received = await uow.session.scalar(select(Transfer.received_fen))
        receipts = await uow.session.scalar(select(func.count()).select_from(TransferReceipt))
        with pytest.raises(InvalidApplicationError):                          # paid: nothing more taken
            await transfers.confirm_receipt(uow, demo.id, t.id, 1, "SN-4", "admin:a", NOW)
        await uow.rollback()
    assert (paid.status, paid.paid_fen, received, receipts) == ("paid", order.total_fen, order.total_fen, 2)
