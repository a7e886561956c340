"""Every refund outcome settles the order (issue 17, item 16), through the real path: the
outbox hands each refund to WeChat Pay (the fake platform over signed HTTP), which accepts
it (PROCESSING, then a signed REFUND.* notify) or refuses it (4xx), in either order.

The case that used to stick: a partial refund A is requested, then B for the rest (the
order moves to refund_requested); the platform refuses A (or closes it later). A stayed
"pending" for ever (its refusal was retried, never recorded), so the order was never
refunded, its stock never restored and the rest could not be refunded again."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from social_mall.payments.service import request_refund
from storage.models import OutboxEvent
from tests.e2e.test_pay_wechat import paid_by_jsapi
from tests.fakes.pay_kit import load
from tests.fakes.wechat_pay import attach_real_pay

REFUSED = (403, "USER_ACCOUNT_ABNORMAL")  # 退款请求失败: the platform's answer for good
BUSY = (500, "SYSTEM_ERROR")              # try again later


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def refund(mall, tenant, order, amount_fen):
    async with mall.svc.uows() as uow:
        view = await request_refund(uow, tenant.id, order.id, amount_fen=amount_fen, reason="售后",
                                    actor="admin:1", now=mall.svc.clock())
        await uow.commit()
    return view.out_refund_no


async def retries_due(mall) -> None:
    """Time passes for the outbox: every delivery waiting for a retry is due now."""
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(OutboxEvent).where(OutboxEvent.status == "pending")
                                  .values(next_attempt_at=datetime.now(timezone.utc)))
        await uow.commit()
    await mall.settle()


async def stock(mall, tenant, order) -> int:
    async with mall.svc.uows() as uow:
        line = (await uow.orders.lines(tenant.id, order.id))[0]
        return await uow.catalog.stock(tenant.id, line.sku_id)


async def refunds(mall, tenant, order) -> dict[str, tuple[int, str]]:
    async with mall.svc.uows() as uow:
        return {r.out_refund_no: (r.amount_fen, r.status) for r in await uow.payments.refunds_for(tenant.id, order.id)}


@pytest.mark.parametrize("outcome", ["refused", "closed"])
@pytest.mark.parametrize("first", ["a_fails_first", "b_succeeds_first"])
async def test_a_failed_partial_refund_under_a_full_request_settles_the_order(mall, wxpay, outcome, first):
    tenant, order = await paid_by_jsapi(mall, wxpay)
    reserved = await stock(mall, tenant, order)
    a_fen = 500
    if outcome == "refused":
        # A's refusal comes before or after B's success (a busy answer first delays it)
        wxpay.refund_script = [REFUSED, None] if first == "a_fails_first" else [BUSY, None, REFUSED]
    a = await refund(mall, tenant, order, a_fen)
    b = await refund(mall, tenant, order, None)               # the rest: everything is requested now
    assert (await load(mall, tenant, order.order_no)).status == "refund_requested"
    await mall.settle()
    ref_a, ref_b = wxpay.refunds.get(a), wxpay.refunds[b]
    if outcome == "refused":
        assert ref_a is None                                   # the platform never took A
        if first == "b_succeeds_first":
            assert await wxpay.finish_refund(ref_b) == 204
            await retries_due(mall)                            # A again: refused for good now
        else:
            assert await wxpay.finish_refund(ref_b) == 204
    else:
        done = [(ref_a, "CLOSED"), (ref_b, "SUCCESS")]
        for ref, status in (done if first == "a_fails_first" else done[::-1]):
            assert await wxpay.finish_refund(ref, status) == 204
    await mall.settle()

    rest = order.paid_fen - a_fen
    assert await refunds(mall, tenant, order) == {a: (a_fen, "failed"), b: (rest, "succeeded")}
    after = await load(mall, tenant, order.order_no)
    # A can't complete the refund any more: the order is back to paid with what was refunded,
    # and the rest can be refunded again (nothing stuck in flight)
    assert (after.status, after.refunded_fen) == ("paid", rest)
    assert await stock(mall, tenant, order) == reserved
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.refunded") == 1

    again = await refund(mall, tenant, order, None)
    await mall.settle()
    assert await wxpay.finish_refund(wxpay.refunds[again]) == 204
    await mall.settle()
    done = await load(mall, tenant, order.order_no)
    assert (done.status, done.refunded_fen) == ("refunded", order.paid_fen)
    assert await stock(mall, tenant, order) == reserved + sum(line.qty for line in order.lines)
    assert await wxpay.send_refund_notify(wxpay.refunds[again]) == 204   # a repeat changes nothing
    assert await stock(mall, tenant, order) == reserved + sum(line.qty for line in order.lines)
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.refunded") == 2

