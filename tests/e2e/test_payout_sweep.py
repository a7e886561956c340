"""Payouts (商家转账) left under way are polled until final (issue 17, item 17).

An admin approves a withdrawal in the console; the outbox sends the transfer to WeChat Pay
(the fake platform, signed HTTP), which leaves the bill PROCESSING. The payout sweeper asks
for the bill by out_bill_no (GET /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/…):
still PROCESSING → noted with the time; SUCCESS → paid once even when two workers sweep at
the same moment; FAIL or CANCELLED → failed once and the hold returns to the balance. The
console's withdrawals page shows the payout's state and when it was last checked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from handlers.referral import sweep_payouts
from social_mall.referral import service as ref
from social_mall.orders.rules import SHANGHAI
from storage.models import AuditEntry
from storage.referral_models import LedgerEntry
from tests.e2e.test_console_modules import funded_withdrawal, state
from tests.fakes.console_kit import login, make_admin
from tests.fakes.wechat_pay import attach_real_pay


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    fake = await attach_real_pay(mall, aiohttp_server, tmp_path)
    fake.transfer_state = "PROCESSING"
    return fake


@pytest.fixture
async def second_worker(mall, aiohttp_client):
    """Another `serve` process on the same database (its own engine, pools and caches)."""
    from bot import build_app
    from handlers.context import SERVICES

    app = build_app(mall.settings, auto_setup=False)
    await aiohttp_client(app)
    return app[SERVICES]


async def approve_in_console(mall, withdrawal_id: int) -> None:
    await make_admin(mall.svc.uows, "payout_admin", role="admin")
    csrf = await login(mall.client, "payout_admin")
    resp = await mall.client.post(f"/console/referral/withdrawals/{withdrawal_id}/approve",
                                  data={"_csrf": csrf, "confirm": "1"}, allow_redirects=False)
    assert resp.status == 303
    await mall.settle()


async def settle_both(mall, second_worker) -> None:
    """The other worker's sweep kicks its own outbox run, which may hold an event (its lease)
    while this worker's settle passes it by: wait for that run, then settle here."""
    await second_worker.outbox.drain()
    await mall.settle()


async def entries(mall, tenant_id: int, distributor_id: int, kind: str) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.tenant_id == tenant_id, LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.kind == kind)) or 0)


async def settled_events(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.outbox.count("referral.withdrawal_settled")


async def test_a_processing_payout_is_polled_and_paid_once_by_two_workers(mall, wxpay, second_worker):
    tenant = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, tenant.id, amount_fen=500, balance_fen=2000)
    await approve_in_console(mall, w.id)
    assert wxpay.transfers[w.out_bill_no]["state"] == "PROCESSING"
    assert await state(mall, tenant.id, did, w.id) == ("approved", 1500)

    at = mall.svc.clock() + timedelta(minutes=5)
    mall.svc.clock = lambda: at
    assert await sweep_payouts(mall.svc) == 1          # asked: still under way
    queries = [c for c in wxpay.calls if c.path.endswith(f"/out-bill-no/{w.out_bill_no}")]
    assert len(queries) == 1 and queries[0].auth_ok and queries[0].method == "GET"
    async with mall.svc.uows() as uow:
        view = await ref.get_withdrawal(uow, tenant.id, w.id)
    assert (view.status, view.payout_state, view.payout_checked_at) == ("approved", "PROCESSING", at)
    page = await (await mall.client.get("/console/referral/withdrawals")).text()
    assert 'id="payout-state-%d">转账中（PROCESSING）' % w.id in page
    assert "最后查询" in page and at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") in page

    assert await sweep_payouts(second_worker) == 1       # the other worker polls it too: nothing changes
    assert await state(mall, tenant.id, did, w.id) == ("approved", 1500)

    wxpay.set_transfer(w.out_bill_no, "SUCCESS")
    done = await asyncio.gather(sweep_payouts(mall.svc), sweep_payouts(second_worker))
    assert sum(done) >= 1
    await settle_both(mall, second_worker)
    assert await state(mall, tenant.id, did, w.id) == ("paid", 1500)
    assert await settled_events(mall) == 1
    assert await entries(mall, tenant.id, did, "withdrawal_return") == 0
    assert await sweep_payouts(mall.svc) == 0          # final: never asked again
    async with mall.svc.uows() as uow:
        assert (await ref.reconcile(uow, tenant.id, did)).ok
    page = await (await mall.client.get("/console/referral/withdrawals")).text()
    assert f'id="payout-state-{w.id}">转账成功' in page


@pytest.mark.parametrize("final", ["FAIL", "CANCELLED"])
async def test_a_failed_or_cancelled_payout_returns_the_hold_exactly_once(mall, wxpay, second_worker, final):
    tenant = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, tenant.id, amount_fen=500, balance_fen=2000)
    wxpay.transfer_state = "WAIT_USER_CONFIRM" if final == "CANCELLED" else "ACCEPTED"
    await approve_in_console(mall, w.id)
    assert await asyncio.gather(sweep_payouts(mall.svc), sweep_payouts(second_worker)) == [1, 1]
    assert await state(mall, tenant.id, did, w.id) == ("approved", 1500)

    wxpay.set_transfer(w.out_bill_no, final, "PAYEE_ACCOUNT_ABNORMAL" if final == "FAIL" else "")
    await asyncio.gather(sweep_payouts(mall.svc), sweep_payouts(second_worker))
    await asyncio.gather(sweep_payouts(mall.svc), sweep_payouts(second_worker))
    await settle_both(mall, second_worker)
    assert await state(mall, tenant.id, did, w.id) == ("failed", 2000)
    assert await entries(mall, tenant.id, did, "withdrawal_return") == 1
    assert await settled_events(mall) == 1
    async with mall.svc.uows() as uow:
        assert (await ref.reconcile(uow, tenant.id, did)).ok
        failed = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action == "referral.withdrawal.failed"))
    assert failed == 1
    pushes = mall.fake.sent_messages(await _openid(mall, tenant.id, w.member_id))
    assert len(pushes) == 1 and "¥5.00" in pushes[0]["text"]["content"]


async def test_a_bill_for_another_amount_is_never_applied(mall, wxpay):
    tenant = await mall.svc.tenant("demo")
    did, w = await funded_withdrawal(mall, tenant.id, amount_fen=500, balance_fen=2000)
    await approve_in_console(mall, w.id)
    wxpay.transfers[w.out_bill_no]["amount"] = 50_000
    wxpay.set_transfer(w.out_bill_no, "FAIL")
    assert await sweep_payouts(mall.svc) == 1
    await mall.settle()
    assert await state(mall, tenant.id, did, w.id) == ("approved", 1500)   # nothing returned on a wrong bill
    async with mall.svc.uows() as uow:
        assert (await ref.get_withdrawal(uow, tenant.id, w.id)).payout_state == "AMOUNT_MISMATCH"
        assert (await ref.reconcile(uow, tenant.id, did)).ok


async def _openid(mall, tenant_id: int, member_id: int) -> str:
    from social_mall.members.service import channel_identity

    async with mall.svc.uows() as uow:
        return await channel_identity(uow, tenant_id, member_id, "mp")
