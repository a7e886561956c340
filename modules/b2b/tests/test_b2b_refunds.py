"""Refunds of orders paid on credit (月结) or by bank transfer (对公转账) through the core's
one refund path (`request_refund`) and the payment-method seam's refund hook: no WeChat Pay
refund is asked for; a credit order's refund lowers the company's balance at once (once per
refund number, audited, the books check agrees); a transfer order's refund waits for an
admin's confirmation with a bank reference (once per reference). Two refunds of one order
at once through two workers (separate engines; on PostgreSQL separate connections) never
refund more than was paid."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.errors import MallError
from social_mall.orders.service import load_order
from social_mall.payments.service import request_refund
from social_mall_b2b import credit, prices, refunds, transfers
from social_mall_b2b.models import CreditEntry, OfflineRefund
from storage.db import create_engine, session_factory
from storage.models import AuditEntry, OutboxEvent, Refund
from storage.uow import uow_factory

from test_b2b_credit import NOW, company_with_buyers, unpaid_order


@pytest.fixture
async def workers(engine, backend):
    """Two workers as the app builds them (pricer and both payment methods registered)."""
    eng = create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg" else \
        create_engine(backend.db_url)
    kw = {"pricers": [prices.PRICER], "payment_methods": [credit.METHOD_OBJ, transfers.METHOD_OBJ]}
    yield uow_factory(session_factory(engine), {}, **kw), uow_factory(session_factory(eng), {}, **kw)
    await eng.dispose()


async def count(uow, model, *where) -> int:
    return int(await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def credit_order(uows, tenant: int, qty: int = 3) -> tuple[int, int, int, int]:
    """(company, buyer, order id, total) of an order paid on account."""
    company, (_, buyer), sku, _ = await company_with_buyers(uows, tenant, 500000)
    oid = await unpaid_order(uows, tenant, buyer, sku, qty)
    async with uows() as uow:
        total = (await credit.pay_on_credit(uow, tenant, buyer, oid, NOW)).total_fen
        await uow.commit()
    return company, buyer, oid, total


async def refund(factory, tenant: int, oid: int, amount: int | None, at=NOW):
    async with factory() as uow:
        view = await request_refund(uow, tenant, oid, amount_fen=amount, reason="售后", actor="admin:a", now=at)
        await uow.commit()
        return view


async def test_a_credit_order_refund_lowers_the_balance_at_once_without_wechat_pay(workers, demo):
    uows, _ = workers
    company, buyer, oid, total = await credit_order(uows, demo.id)
    first = await refund(uows, demo.id, oid, 10000)
    assert first.status == "succeeded"
    async with uows() as uow:
        acc = await credit.account(uow, demo.id, company)
        order = await load_order(uow, demo.id, oid)
        assert await credit.reconcile(uow, demo.id) == []
        assert await credit.books_check(uow, demo.id) == []
        assert await count(uow, OutboxEvent, OutboxEvent.topic == "payment.needs_refund") == 0
        assert await count(uow, OutboxEvent, OutboxEvent.topic == "order.refunded") == 1
        assert await count(uow, CreditEntry, CreditEntry.kind == "refund", CreditEntry.ref == first.out_refund_no) == 1
        assert await count(uow, AuditEntry, AuditEntry.action == "b2b.credit_refund") == 1
    assert acc.outstanding_fen == total - 10000
    assert (order.refunded_fen, order.status) == (10000, "paid")
    rest = await refund(uows, demo.id, oid, None)                      # the rest: the order closes
    async with uows() as uow:
        acc = await credit.account(uow, demo.id, company)
        order = await load_order(uow, demo.id, oid)
        assert await credit.reconcile(uow, demo.id) == []
    assert rest.amount_fen == total - 10000 and acc.outstanding_fen == 0
    assert (order.refunded_fen, order.status) == (total, "refunded")
    async with uows() as uow:                                          # nothing left: refused, nothing changed
        with pytest.raises(MallError):
            await request_refund(uow, demo.id, oid, amount_fen=1, reason="x", actor="admin:a", now=NOW)
        await uow.rollback()
        assert await count(uow, Refund, Refund.order_id == oid) == 2
        assert (await credit.account(uow, demo.id, company)).outstanding_fen == 0


async def test_a_credit_order_already_repaid_is_refunded_by_transfer(workers, demo):
    uows, _ = workers
    company, buyer, oid, total = await credit_order(uows, demo.id)
    async with uows() as uow:
        assert await credit.record_repayment(uow, demo.id, company, total, "BANK-R1", "admin:a", NOW)
        await uow.commit()
    view = await refund(uows, demo.id, oid, 5000)
    async with uows() as uow:
        pending = await refunds.offline_refunds(uow, demo.id)
        order = await load_order(uow, demo.id, oid)
        assert (await credit.account(uow, demo.id, company)).outstanding_fen == 0
        assert await credit.reconcile(uow, demo.id) == []
        assert await count(uow, OutboxEvent, OutboxEvent.topic == "payment.needs_refund") == 0
    assert view.status == "pending" and order.refunded_fen == 0
    assert [(p.method, p.amount_fen, p.status, p.out_refund_no) for p in pending] == [
        ("credit", 5000, "pending", view.out_refund_no)]
    async with uows() as uow:
        assert await refunds.confirm_offline(uow, demo.id, pending[0].id, "HK-20300110-1", "admin:f", NOW)
        await uow.commit()
    async with uows() as uow:
        order = await load_order(uow, demo.id, oid)
        assert await credit.reconcile(uow, demo.id) == []
    assert order.refunded_fen == 5000


async def test_a_transfer_order_refund_waits_for_the_admin_and_is_confirmed_once_per_reference(workers, demo):
    uows, _ = workers
    _, (owner, buyer), sku, _ = await company_with_buyers(uows, demo.id, None)
    oid = await unpaid_order(uows, demo.id, buyer, sku, 2)
    async with uows() as uow:
        await transfers.set_shop_terms(uow, demo.id, transfers.BankAccount("招商银行", "某某贸易公司", "6225888800001"),
                                       "admin:a")
        t, _, _ = await transfers.choose(uow, demo.id, buyer, await load_order(uow, demo.id, oid), NOW)
        total = t.expected_fen
        assert await transfers.confirm_receipt(uow, demo.id, t.id, total, "IN-1", "admin:a", NOW) == (True, True)
        await uow.commit()
    a = await refund(uows, demo.id, oid, 3000)
    b = await refund(uows, demo.id, oid, 2000)
    async with uows() as uow:
        rows = {r.out_refund_no: r for r in await refunds.offline_refunds(uow, demo.id)}
        order = await load_order(uow, demo.id, oid)
        assert await count(uow, OutboxEvent, OutboxEvent.topic == "payment.needs_refund") == 0
    assert (a.status, b.status) == ("pending", "pending") and order.refunded_fen == 0
    assert [r.method for r in rows.values()] == ["transfer", "transfer"]
    ra, rb = rows[a.out_refund_no], rows[b.out_refund_no]
    async with uows() as uow:                       # no more than what is left while two are in flight
        with pytest.raises(MallError):
            await request_refund(uow, demo.id, oid, amount_fen=total - 4999, reason="x", actor="admin:a", now=NOW)
        await uow.rollback()
    async with uows() as uow:
        assert await refunds.confirm_offline(uow, demo.id, ra.id, "OUT-77", "admin:f", NOW)
        await uow.commit()
    async with uows() as uow:                       # the same refund again, or the same reference: once
        assert not await refunds.confirm_offline(uow, demo.id, ra.id, "OUT-78", "admin:f", NOW)
        assert not await refunds.confirm_offline(uow, demo.id, rb.id, "OUT-77", "admin:f", NOW)
        await uow.rollback()
    async with uows() as uow:
        order = await load_order(uow, demo.id, oid)
        done = await uow.session.scalar(select(Refund.status).where(Refund.out_refund_no == a.out_refund_no))
        left = await uow.session.scalar(select(Refund.status).where(Refund.out_refund_no == b.out_refund_no))
        confirmed = await count(uow, AuditEntry, AuditEntry.action == "b2b.offline_refund_confirmed")
        refunded_events = await count(uow, OutboxEvent, OutboxEvent.topic == "order.refunded")
        b_row = (await uow.session.execute(select(OfflineRefund).where(OfflineRefund.id == rb.id))).scalar_one()
    assert order.refunded_fen == 3000 and (done, left) == ("succeeded", "pending")
    assert confirmed == 1 and refunded_events == 1 and (b_row.status, b_row.bank_ref) == ("pending", None)


async def test_two_refunds_of_one_credit_order_at_once_never_pass_what_was_paid(workers, demo):
    uows, other_worker = workers
    company, buyer, oid, total = await credit_order(uows, demo.id)
    part = total * 2 // 3                           # each fits alone, not both

    async def attempt(factory) -> str:
        try:
            await refund(factory, demo.id, oid, part)
        except MallError as exc:
            return exc.code
        return "ok"

    results = await asyncio.gather(attempt(uows), attempt(other_worker))
    assert sorted(results) == ["ok", "refund_too_large"]
    async with uows() as uow:
        order = await load_order(uow, demo.id, oid)
        acc = await credit.account(uow, demo.id, company)
        entries = await count(uow, CreditEntry, CreditEntry.kind == "refund")
        refunded = await uow.session.scalar(select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == oid, Refund.status != "failed"))
        assert await credit.reconcile(uow, demo.id) == []
    assert order.refunded_fen == part == refunded <= order.paid_fen
    assert acc.outstanding_fen == total - part and entries == 1


async def test_an_after_sale_refund_of_a_credit_order_lowers_the_balance_and_completes_the_request(workers, demo):
    """The after-sale module's refund goes through the same core path: no WeChat Pay call,
    the balance lowered at once, and the core's order.refunded names the request's refund."""
    from social_mall_after_sale import service as after_sale
    from social_mall_after_sale.rules import Kind

    uows, _ = workers
    company, buyer, oid, total = await credit_order(uows, demo.id)
    async with uows() as uow:
        order = await load_order(uow, demo.id, oid)
        sku = order.lines[0].sku_id
        req = await after_sale.open_request(uow, demo.id, buyer, oid, [(sku, 1)], kind=Kind.REFUND, reason_code=1,
                                            now=NOW)
        await uow.commit()
    async with uows() as uow:
        view = await after_sale.approve(uow, demo.id, req.id, actor="admin:a", now=NOW + timedelta(minutes=5))
        await uow.commit()
    async with uows() as uow:
        view = await after_sale.get_request(uow, demo.id, req.id)
        refunded = (await uow.session.execute(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "order.refunded"))).scalars().all()
        acc = await credit.account(uow, demo.id, company)
        order = await load_order(uow, demo.id, oid)
        needs = await count(uow, OutboxEvent, OutboxEvent.topic == "payment.needs_refund")
        assert await credit.reconcile(uow, demo.id) == []
    assert view.refund_fen == 10000 and needs == 0                       # one unit at 100.00
    assert [p["out_refund_no"] for p in refunded] == [view.out_refund_no]
    assert acc.outstanding_fen == total - 10000 and order.refunded_fen == 10000
    async with uows() as uow:                                            # the module's order.refunded subscriber
        assert await after_sale.on_refunded(uow, demo.id, view.out_refund_no, now=NOW + timedelta(minutes=6))
        await uow.commit()
    async with uows() as uow:
        assert (await after_sale.get_request(uow, demo.id, req.id)).status == "refunded"


async def test_a_refund_of_an_order_on_an_issued_statement_pays_that_statement_down(workers, demo):
    """January's order is on January's statement (issued Feb 1st); a refund on Feb 3rd lowers
    what that statement still wants at once, so repaying the rest clears it (not overdue),
    and February's statement does not net the refund a second time."""
    from datetime import datetime, timezone

    from social_mall_b2b import statements

    uows, _ = workers
    company, buyer, oid, total = await credit_order(uows, demo.id)        # Jan 10th
    feb = datetime(2030, 2, 1, 2, tzinfo=timezone.utc)
    async with uows() as uow:
        assert len(await statements.issue_due(uow, demo.id, feb)) == 1
        await uow.commit()
    await refund(uows, demo.id, oid, 10000, at=feb + timedelta(days=2))
    async with uows() as uow:
        st = (await statements.statements(uow, demo.id))[0]
        assert (st.amount_fen, st.paid_fen) == (total, 10000)
        assert await credit.record_repayment(uow, demo.id, company, total - 10000, "BANK-FEB", "admin:a",
                                             feb + timedelta(days=3))
        await uow.commit()
    march = datetime(2030, 3, 1, 2, tzinfo=timezone.utc)
    async with uows() as uow:
        assert await statements.issue_due(uow, demo.id, march) == []          # nothing billed in February
        st = (await statements.statements(uow, demo.id))[0]
        assert st.paid_fen == st.amount_fen
        assert not await statements.overdue(uow, demo.id, company, march + timedelta(days=30))
        assert (await credit.account(uow, demo.id, company)).outstanding_fen == 0
        assert await credit.reconcile(uow, demo.id) == []
