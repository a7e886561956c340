"""Payments belong to their tenant (issue #17 item 1), through the real endpoints.

Two merchants on one platform, each with a real WeChat Pay account at a fake platform of its
own (its own merchant id, keys and APIv3 key): the victim `demo` (tenant Y, APIv3) and the
hostile `shopx` (tenant X, APIv3 or APIv2). X uses its own merchant API, with its own
credentials, to create and pay an order at WeChat Pay under Y's order number, then lets the
genuine, correctly signed notifies arrive at its own endpoints; it refunds under Y's refund
number; its platform answers queries naming Y's order; its trade bill lists Y's numbers.
None of that may touch Y's order, payment or refund. Also: absurd notify amounts are a 400.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers.pay_jobs import CST, reconcile_day, sweep_pending
from social_mall.demo import DemoCredentials, seed_demo
from social_mall.payments.service import request_refund
from storage.models import PayNotification, Payment, Refund
from storage.pay_models import PayReconciliation
from tests.conftest import TEST_AES_KEY
from tests.fakes.pay_kit import XRW, later, load, new_order
from tests.fakes.wechat_pay import attach_real_pay

X_CODE = "shopx"
X_MCHID = "1900000222"
X_APIV3_KEY = "XxXxXxXxXxXxXxXxXxXxXxXxXxXxXx01"
X_V2_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f"


async def two_merchants(mall, aiohttp_server, tmp_path, *, x_api: str = "v3"):
    """(Y's fake platform, X's fake platform): demo is Y, shopx is X."""
    async with mall.svc.uows() as uow:
        await seed_demo(uow, DemoCredentials(wechat_app_id="wx_shopx_00000000001", wechat_token="tok_x",
                                             wechat_aes_key=TEST_AES_KEY, wechat_app_secret="secret_x"),
                        code=X_CODE)
        await uow.commit()
    y_fake = await attach_real_pay(mall, aiohttp_server, tmp_path)
    x_fake = await attach_real_pay(mall, aiohttp_server, tmp_path, tenant_code=X_CODE, api_version=x_api,
                                   mchid=X_MCHID, apiv3_key=X_APIV3_KEY, v2_key=X_V2_KEY)
    return y_fake, x_fake


async def open_native(mall, tenant, order) -> None:
    """The buyer opens the real pay page's Native pay: our payment row + the order at WeChat Pay."""
    token = mall.svc.pay_token(tenant.code, order.order_no)
    resp = await mall.client.post(f"/h5/pay/{tenant.code}/{order.order_no}/native?t={token}", headers=XRW)
    assert resp.status == 200, await resp.text()


async def shadow_order(mall, x_fake, order) -> int | None:
    """X's merchant creates (its own API, its own keys) and pays an order under Y's number at
    its own WeChat Pay; the genuine notify goes to X's notify URL. Returns that answer."""
    x = await mall.svc.tenant(X_CODE)
    await mall.svc.gateway(x).native(out_trade_no=order.order_no, description="x", amount_fen=order.total_fen)
    return await x_fake.pay(order.order_no, "o_x_accomplice")


async def notes(mall) -> list[tuple[int | None, str, str]]:
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(PayNotification).order_by(PayNotification.id))).all()
    return [(r.tenant_id, r.verdict, r.reason) for r in rows]


async def paid_count(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.outbox.count("order.paid")


async def payment_status(mall, order) -> str:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Payment.status).where(Payment.order_id == order.id))


# -- pay notifies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("x_api", ["v3", "v2"])
async def test_tenant_x_genuine_notify_naming_tenant_y_order_is_refused(mall, aiohttp_server, tmp_path, x_api):
    y_fake, x_fake = await two_merchants(mall, aiohttp_server, tmp_path, x_api=x_api)
    y, order = await new_order(mall)
    await open_native(mall, y, order)
    x = await mall.svc.tenant(X_CODE)

    assert await shadow_order(mall, x_fake, order) == 400
    path = "/pay/notify-v2/shopx" if x_api == "v2" else "/pay/notify/shopx"
    assert x_fake.notifies[-1][1].endswith(path)
    await mall.settle()
    assert (await load(mall, y, order.order_no)).status == "pending_payment"
    assert await payment_status(mall, order) == "created"
    assert await paid_count(mall) == 0
    assert [(t, v) for t, v, _ in await notes(mall)] == [(x.id, "rejected")]

    # Y's own buyer pays through Y's own platform: that one is applied
    assert await y_fake.pay(order.order_no, "o_y_buyer") == 204
    await mall.settle()
    assert (await load(mall, y, order.order_no)).status == "paid"
    assert await paid_count(mall) == 1


async def test_tenant_x_refund_notify_naming_tenant_y_refund_is_refused(mall, aiohttp_server, tmp_path):
    y_fake, x_fake = await two_merchants(mall, aiohttp_server, tmp_path)
    y, order = await new_order(mall)
    await open_native(mall, y, order)
    assert await y_fake.pay(order.order_no, "o_y_buyer") == 204
    async with mall.svc.uows() as uow:
        await request_refund(uow, y.id, order.id, amount_fen=500, reason="少发一件", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    y_ref = next(iter(y_fake.refunds.values()))
    x = await mall.svc.tenant(X_CODE)

    assert await shadow_order(mall, x_fake, order) == 400
    await mall.svc.gateway(x).refund(out_trade_no=order.order_no, out_refund_no=y_ref.out_refund_no,
                                     refund_fen=500, total_fen=order.total_fen, reason="x")
    assert await x_fake.complete_refunds() == [400]
    await mall.settle()
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert (refund.out_refund_no, refund.status) == (y_ref.out_refund_no, "processing")
    assert (await load(mall, y, order.order_no)).refunded_fen == 0
    rejected = [(t, r) for t, v, r in await notes(mall) if v == "rejected"]
    assert len(rejected) == 2 and rejected[1][0] == x.id and rejected[1][1].startswith("refund:")

    # Y's genuine refund notify settles Y's refund
    assert await y_fake.complete_refunds() == [204]
    await mall.settle()
    assert (await load(mall, y, order.order_no)).refunded_fen == 500


# -- the query sweeper ------------------------------------------------------------------------------

async def test_the_sweeper_settles_only_the_queried_payment_of_its_own_tenant(mall, aiohttp_server, tmp_path):
    y_fake, x_fake = await two_merchants(mall, aiohttp_server, tmp_path)
    y, y_order = await new_order(mall)
    await open_native(mall, y, y_order)                     # Y's buyer hasn't paid
    x, x_order = await new_order(mall, X_CODE)
    await open_native(mall, x, x_order)
    # X's platform answers the query about X's payment with a paid transaction naming Y's order
    fo = x_fake.orders[x_order.order_no]
    fo.state, fo.transaction_id, fo.success_time = "SUCCESS", "4200000000000000000000000777", "2026-11-25T10:00:00+08:00"
    x_fake.query_overrides[x_order.order_no] = {
        "out_trade_no": y_order.order_no,
        "amount": {"total": y_order.total_fen, "payer_total": y_order.total_fen, "currency": "CNY",
                   "payer_currency": "CNY"}}
    later(mall, 6)
    assert await sweep_pending(mall.svc) == 2
    await mall.settle()
    assert (await load(mall, y, y_order.order_no)).status == "pending_payment"
    assert (await load(mall, x, x_order.order_no)).status == "pending_payment"
    assert await payment_status(mall, y_order) == "created"
    assert await paid_count(mall) == 0
    rejected = [(t, r) for t, v, r in await notes(mall) if v == "rejected"]
    assert len(rejected) == 1 and rejected[0][0] == x.id and rejected[0][1].startswith("query:")

    # Y's own payment is still settled by Y's own notify
    assert await y_fake.pay(y_order.order_no, "o_y_buyer") == 204
    assert (await load(mall, y, y_order.order_no)).status == "paid"


# -- reconciliation ---------------------------------------------------------------------------------

async def test_reconciliation_matches_bill_rows_only_within_the_tenant(mall, aiohttp_server, tmp_path):
    y_fake, x_fake = await two_merchants(mall, aiohttp_server, tmp_path)
    y, order = await new_order(mall)
    await open_native(mall, y, order)
    assert await y_fake.pay(order.order_no, "o_y_buyer") == 204
    async with mall.svc.uows() as uow:
        await request_refund(uow, y.id, order.id, amount_fen=500, reason="少发一件", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    assert await y_fake.complete_refunds() == [204]
    y_ref = next(iter(y_fake.refunds.values()))
    x = await mall.svc.tenant(X_CODE)
    # X's bill: a payment under Y's order number and a refund under Y's refund number
    assert await shadow_order(mall, x_fake, order) == 400
    await mall.svc.gateway(x).refund(out_trade_no=order.order_no, out_refund_no=y_ref.out_refund_no,
                                     refund_fen=500, total_fen=order.total_fen, reason="x")
    assert await x_fake.complete_refunds() == [400]

    day = mall.svc.clock().astimezone(CST).date()
    assert await reconcile_day(mall.svc, y.id, day) == ("ok", [])
    status, mismatches = await reconcile_day(mall.svc, x.id, day)
    assert status == "mismatch"
    assert sorted((m["kind"], m["ref"]) for m in mismatches) == [
        ("refund_unknown", y_ref.out_refund_no), ("unknown_trade", order.order_no)]
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(PayReconciliation).order_by(PayReconciliation.tenant_id))).all()
    assert sorted((r.tenant_id, r.status, r.checked) for r in rows) == sorted(
        [(y.id, "ok", 1), (x.id, "mismatch", 0)])


# -- absurd amounts (issue #17 item 3, the notify part) --------------------------------------------

@pytest.mark.parametrize("amount", [10**30, 2**63, -1])
async def test_absurd_notify_amounts_are_a_400_and_change_nothing(mall, aiohttp_server, tmp_path, amount):
    y_fake, x_fake = await two_merchants(mall, aiohttp_server, tmp_path, x_api="v2")
    y, order = await new_order(mall)
    await open_native(mall, y, order)
    fo = y_fake.orders[order.order_no]
    fo.state, fo.transaction_id, fo.success_time = "SUCCESS", "4200000000000000000000000888", "2026-11-25T10:00:00+08:00"
    # APIv3 pay notify
    headers, body = y_fake.notify_for(order.order_no, amount=amount)
    resp = await mall.client.post("/pay/notify/demo", data=body, headers=headers)
    assert resp.status == 400 and await resp.json() == {"code": "FAIL", "message": "失败"}
    # APIv2 pay notify (X is an APIv2 merchant)
    x, x_order = await new_order(mall, X_CODE)
    await open_native(mall, x, x_order)
    resp = await mall.client.post("/pay/notify-v2/shopx", data=x_fake.v2_notify_for(x_order.order_no, total_fee=amount))
    assert resp.status == 400 and "<![CDATA[FAIL]]>" in await resp.text()
    assert [(await load(mall, t, o.order_no)).status for t, o in ((y, order), (x, x_order))] == [
        "pending_payment", "pending_payment"]
    # APIv3 refund notify
    assert await y_fake.send_notify(order.order_no) == 204
    async with mall.svc.uows() as uow:
        await request_refund(uow, y.id, order.id, amount_fen=500, reason="少发一件", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    ref = next(iter(y_fake.refunds.values()))
    ref.status = "SUCCESS"
    assert await y_fake.send_refund_notify(ref, amount={"total": ref.total, "refund": amount,
                                                        "payer_total": ref.total, "payer_refund": amount}) == 400
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund.status == "processing"
    assert (await load(mall, y, order.order_no)).refunded_fen == 0
    assert [v for _, v, _ in await notes(mall)] == ["rejected", "rejected", "applied", "rejected"]


async def test_a_v2_amount_in_unicode_digits_is_a_400(mall, aiohttp_server, tmp_path):
    _, x_fake = await two_merchants(mall, aiohttp_server, tmp_path, x_api="v2")
    x, order = await new_order(mall, X_CODE)
    await open_native(mall, x, order)
    for amount in ("²", "１２", "12.5", ""):
        resp = await mall.client.post("/pay/notify-v2/shopx", data=x_fake.v2_notify_for(order.order_no, total_fee=amount))
        assert resp.status == 400, amount
    assert (await load(mall, x, order.order_no)).status == "pending_payment"
    assert [v for _, v, _ in await notes(mall)] == ["rejected"] * 4
