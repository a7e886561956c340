"""Parallel requests on one order never collide on a number (issue #17 item 10), through
real concurrent HTTP requests on both backends: 确认支付 on the sandbox page and the real
Native button open one payment; partial refunds from the console API and the console form
each get their own refund number, and together never more than was paid. Every answer is
the page's or the API's normal one (2xx, a redirect, or a clear 409), never a 500."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text

from social_mall.orders.service import find_order
from social_mall.payments.desk import OPEN_DESK
from storage.db import create_engine
from storage.models import AuditEntry, PayNotification, Payment, Refund
from tests.fakes.console_kit import csrf_of, issue_token, login, make_admin, paid_order
from tests.fakes.pay_kit import XRW, load, new_order
from tests.fakes.wechat_pay import attach_real_pay

N = 8


@asynccontextmanager
async def inserts_held(backend, table: str, n: int, desk=None) -> AsyncIterator[None]:
    """PostgreSQL: from a connection of its own, hold `table` in SHARE mode (reads go on,
    INSERTs wait) until `n` requests wait on it, then let them all go at once: every one
    has read "no row yet" before any writes. The worst interleaving, every time, with no
    clock involved. SQLite runs one transaction at a time: nothing to hold. Requests that
    write through a batching `desk` (a callable giving it) wait there: one lot's transaction
    on the lock, the rest queued behind it."""
    if backend.name != "pg":
        yield
        return
    eng = create_engine(backend.db_url, schema=backend.schema)
    try:
        async with eng.connect() as holder, eng.connect() as watcher:
            await holder.begin()
            await holder.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
            waiting = text("SELECT count(*) FROM pg_locks WHERE relation = CAST(:t AS regclass) AND NOT granted")
            yield
            for _ in range(3000):  # if fewer ever get there, let them go anyway: the asserts tell
                blocked = (await watcher.execute(waiting, {"t": table})).scalar_one()
                d = desk() if desk is not None else None
                if blocked >= n or (d is not None and blocked >= 1 and d.writing + len(d.pending) >= n):
                    break
                await watcher.rollback()
                await asyncio.sleep(0.01)
            await holder.commit()
    finally:
        await eng.dispose()


async def racing(backend, table: str, calls: list[Awaitable[object]], desk=None) -> list[object]:
    """Run `calls` concurrently, their INSERTs into `table` released together (PostgreSQL)."""
    async with inserts_held(backend, table, len(calls), desk):
        tasks = [asyncio.ensure_future(c) for c in calls]
    return list(await asyncio.gather(*tasks))


def open_desk(mall):
    """The deployment's payments desk once a pay page made it (None before)."""
    return lambda: mall.svc.uows().shared.get(OPEN_DESK)


def opened_by_desk(mall, backend) -> int:
    """Pay pages opened through the payments desk (payments/desk.py), in lots (or, a lot that
    failed as a whole — SQLite busy under the racing clicks —, one by one through the desk
    too): on PostgreSQL the held INSERTs queue every request behind the first, so they go in
    fewer lots than requests."""
    desk = mall.svc.uows().shared.get(OPEN_DESK)
    assert desk is not None, "the pay page opened its payment outside the desk"
    if backend.name == "pg":
        assert desk.batches < desk.done, (desk.batches, desk.done)
    return desk.done + desk.singly


def all_through_desk(mall, backend) -> None:
    """On PostgreSQL the held INSERTs keep every click waiting at the desk: all N open there.
    On SQLite nothing is held: a click that comes after the payment is made and paid finds
    nothing to open (a redirect to the paid page), so at least one, at most N, open there."""
    opened = opened_by_desk(mall, backend)
    assert (opened == N) if backend.name == "pg" else (1 <= opened <= N), opened


async def payments_of(mall, order_id) -> list[Payment]:
    async with mall.svc.uows() as uow:
        return list((await uow.session.scalars(select(Payment).where(Payment.order_id == order_id))).all())


async def test_parallel_sandbox_confirms_open_one_payment_and_pay_once(mall, backend):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    path = f"/h5/pay/{tenant.code}/{order.order_no}/confirm?t={token}"

    async def confirm():
        resp = await mall.client.post(path, allow_redirects=False)
        return resp.status, resp.headers.get("Location", "")

    answers = await racing(backend, "payments", [confirm() for _ in range(N)], open_desk(mall))
    assert [s for s, _ in answers] == [303] * N, answers
    assert all("error" not in loc for _, loc in answers)
    all_through_desk(mall, backend)
    await mall.settle()
    assert [(p.status, p.amount_fen) for p in await payments_of(mall, order.id)] == [("paid", order.total_fen)]
    assert (await load(mall, tenant, order.order_no)).status == "paid"
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1
        verdicts = sorted((await uow.session.scalars(select(PayNotification.verdict))).all())
    assert verdicts.count("applied") == 1 and set(verdicts) <= {"applied", "duplicate"}


async def test_parallel_native_buttons_open_one_payment(mall, backend, aiohttp_server, tmp_path):
    wxpay = await attach_real_pay(mall, aiohttp_server, tmp_path)
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)

    async def click():
        resp = await mall.client.post(f"/h5/pay/demo/{order.order_no}/native?t={token}", headers=XRW)
        return resp.status, (await resp.json()).get("code_url")

    answers = await racing(backend, "payments", [click() for _ in range(N)], open_desk(mall))
    assert {s for s, _ in answers} == {200}, answers
    assert len({url for _, url in answers}) == 1
    assert [(p.status, p.out_trade_no) for p in await payments_of(mall, order.id)] == [("created", order.order_no)]
    assert list(wxpay.orders) == [order.order_no]
    all_through_desk(mall, backend)
    assert await wxpay.pay(order.order_no) == 204
    assert (await load(mall, tenant, order.order_no)).status == "paid"


@pytest.mark.parametrize("via", ["api", "console"])
async def test_parallel_partial_refunds_get_distinct_numbers_and_never_exceed_what_was_paid(mall, via):
    tenant = await mall.svc.tenant("demo")
    order_id, order_no = await paid_order(mall.svc.uows, tenant.id, "o_par_refund_0000000000001", qty=2)
    async with mall.svc.uows() as uow:
        paid = (await find_order(uow, tenant.id, order_no)).paid_fen
    each = paid // 5 + 1           # four fit, a fifth would pass what was paid
    assert 4 * each <= paid < 5 * each
    await make_admin(mall.svc.uows, "fin_par", role="finance")
    csrf = await login(mall.client, "fin_par")
    auth = {"Authorization": f"Bearer {await issue_token(mall.client, csrf)}"}
    csrf = await csrf_of(mall.client, f"/console/orders/{order_id}")

    async def ask(i: int):
        if via == "api":
            resp = await mall.client.post(f"/api/v1/orders/{order_id}/refund", headers=auth,
                                          json={"amount_fen": each, "reason": f"部分退款{i}"})
        else:
            resp = await mall.client.post(f"/console/orders/{order_id}/refund", allow_redirects=False, data={
                "_csrf": csrf, "amount": f"{each // 100}.{each % 100:02d}", "reason": f"部分退款{i}", "confirm": "1"})
        return resp.status, await resp.text()

    answers = await asyncio.gather(*(ask(i) for i in range(N)))
    ok, refused = (202, 409) if via == "api" else (303, 409)
    statuses = sorted(s for s, _ in answers)
    assert statuses == [ok] * 4 + [refused] * (N - 4), answers
    for status, text in answers:
        if status == refused:
            assert "refund_too_large" in text
    async with mall.svc.uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).where(Refund.order_id == order_id))).all()
        audited = await uow.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "refund.request"))
    nos = [r.out_refund_no for r in refunds]
    assert len(nos) == 4 == len(set(nos)) == audited
    assert all(re.fullmatch(rf"RF{order_no}\d{{2}}", no) for no in nos)
    assert sum(r.amount_fen for r in refunds) == 4 * each <= paid
    await mall.settle()                  # the sandbox gateway pays each one once
    async with mall.svc.uows() as uow:
        order = await find_order(uow, tenant.id, order_no)
        assert await uow.outbox.count("payment.needs_refund") == 4
    assert (order.status, order.refunded_fen) == ("paid", 4 * each)
