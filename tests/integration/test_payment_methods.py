"""The payment-method seam (social_mall/payments/methods.py) and the unit of work's
after-rollback work, on a real database: a method marks an unpaid order paid once (order.paid
emitted, audited), never a closed or paid one; a slower method's longer deadline keeps the
unpaid-order sweeper off until then; work queued by a refused step runs after the rollback,
in a transaction of its own, and not after a commit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from social_mall.jobs import cancel_expired_orders
from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import cancel_order, load_order, place_order
from social_mall.payments.methods import extend_deadline, mark_paid, offers
from storage.models import AuditEntry, OutboxEvent, Sku

NOW = datetime(2030, 11, 25, 4, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


async def unpaid(uows, tenant, name: str) -> int:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant.id, "mp", name)
        address = await add_address(uow, tenant.id, member.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant.id, Sku.stock > 5).order_by(Sku.id))
        order = await place_order(uow, tenant.id, member.id, [(sku.id, 1)], address_id=address.id, now=NOW,
                                  timeout=TIMEOUT)
        await uow.commit()
        return order.id


async def test_a_method_marks_an_unpaid_order_paid_once_never_a_closed_one(uows, demo):
    oid = await unpaid(uows, demo, "o_method_a")
    async with uows() as uow:
        assert await offers(uow, demo.id, await load_order(uow, demo.id, oid), NOW) == []   # none registered
        assert await mark_paid(uow, demo.id, oid, method="test", actor="admin:a", now=NOW)
        await uow.commit()
    async with uows() as uow:
        assert not await mark_paid(uow, demo.id, oid, method="test", actor="admin:a", now=NOW)
        order = await load_order(uow, demo.id, oid)
        paid_events = await uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.topic == "order.paid"))
        audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "order.paid_by_method"))
    assert (order.status, order.paid_fen, paid_events, audits) == ("paid", order.total_fen, 1, 1)
    closed = await unpaid(uows, demo, "o_method_b")
    async with uows() as uow:
        await cancel_order(uow, demo.id, closed, reason="buyer", now=NOW)
        await uow.commit()
    async with uows() as uow:
        assert not await mark_paid(uow, demo.id, closed, method="test", actor="admin:a", now=NOW)
        assert (await load_order(uow, demo.id, closed)).status == "cancelled"


async def test_a_longer_deadline_keeps_the_sweeper_off_until_then(uows, demo):
    oid = await unpaid(uows, demo, "o_method_c")
    later = NOW + timedelta(hours=72)
    async with uows() as uow:
        assert await extend_deadline(uow, demo.id, oid, later, method="transfer", actor="member:1")
        assert not await extend_deadline(uow, demo.id, oid, NOW + timedelta(hours=1), method="transfer",
                                         actor="member:1")     # never shorter
        await uow.commit()
    await cancel_expired_orders(uows, now=NOW + timedelta(hours=2))
    async with uows() as uow:
        assert (await load_order(uow, demo.id, oid)).status == "pending_payment"
    await cancel_expired_orders(uows, now=later + timedelta(minutes=1))
    async with uows() as uow:
        assert (await load_order(uow, demo.id, oid)).status == "cancelled"


async def test_after_rollback_work_runs_after_a_rollback_in_its_own_transaction_not_after_a_commit(uows, demo):
    from storage.models import Member

    async def members() -> int:
        async with uows() as uow:
            return await uow.session.scalar(select(func.count()).select_from(Member))

    ran: list[str] = []
    before = await members()
    async with uows() as uow:
        await resolve_member(uow, demo.id, "mp", "o_method_d")      # rolled back

        async def record() -> None:
            async with uows() as own:
                await resolve_member(own, demo.id, "mp", "o_method_recorded")
                await own.commit()
            ran.append("rolled back")

        uow.after_rollback(record)
        assert ran == []
        await uow.rollback()
    assert ran == ["rolled back"] and await members() == before + 1

    async def never() -> None:
        ran.append("committed")

    async with uows() as uow:
        uow.after_rollback(never)
        await resolve_member(uow, demo.id, "mp", "o_method_e")
        await uow.commit()
        await uow.rollback()
    assert ran == ["rolled back"] and await members() == before + 2


async def test_books_checks_report_each_mismatch_and_a_failing_check_hides_no_other(uows, demo, caplog):
    import logging

    from social_mall.books import run_checks

    async def agrees(uow, tenant: int) -> list[str]:
        return []

    async def off_by_one(uow, tenant: int) -> list[str]:
        return [f"account 7 of {tenant}: 101 != 100"]

    async def broken(uow, tenant: int) -> list[str]:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="social_mall.books"):
        found = await run_checks(uows, {"a": agrees, "b": broken, "c": off_by_one})
    assert found == {("c", demo.id): [f"account 7 of {demo.id}: 101 != 100"]}
    assert [r.message for r in caplog.records if r.message == "books.mismatch"] == ["books.mismatch"]
