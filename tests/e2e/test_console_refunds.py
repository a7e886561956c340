"""A refund the gateway refuses becomes the merchant's to-do in the console (both
backends): the dashboard says how many, the orders list filters them, and a second
request through the console settles it and clears the to-do."""

from __future__ import annotations

import re

from social_mall.payments.service import request_refund, settle_refund
from tests.fakes.console_kit import csrf_of, login, make_admin, paid_order


async def _refund(mall, tenant_id: int, order_id: int) -> str:
    async with mall.svc.uows() as uow:
        r = await request_refund(uow, tenant_id, order_id, amount_fen=None, reason="质量问题", actor="admin:1",
                                 now=mall.svc.clock())
        await uow.commit()
    return r.out_refund_no


async def test_a_refused_refund_is_listed_until_the_merchant_refunds_again(mall):
    tenant = await mall.svc.tenant("demo")
    refused_id, refused_no = await paid_order(mall.svc.uows, tenant.id, "o_rf_refused_0000000000001")
    flying_id, flying_no = await paid_order(mall.svc.uows, tenant.id, "o_rf_in_flight_000000000001")
    _, plain_no = await paid_order(mall.svc.uows, tenant.id, "o_rf_untouched_000000000001")
    first = await _refund(mall, tenant.id, refused_id)
    await _refund(mall, tenant.id, flying_id)          # still with the gateway: not a to-do
    async with mall.svc.uows() as uow:
        assert await settle_refund(uow, first, tenant=tenant.id, status="ABNORMAL", now=mall.svc.clock())
        await uow.commit()

    await make_admin(mall.svc.uows, "fin_rf", role="finance")
    await login(mall.client, "fin_rf")
    dash = await (await mall.client.get("/console/")).text()
    assert re.search(r'id="refunds-failed">有 <a href="/console/orders\?refund=failed">1 笔订单退款失败', dash), dash
    listed = await (await mall.client.get("/console/orders?refund=failed")).text()
    assert refused_no in listed and flying_no not in listed and plain_no not in listed
    csv = (await (await mall.client.get("/console/orders/export.csv?refund=failed")).read()).decode("utf-8-sig")
    assert len(csv.strip().splitlines()) == 2 and refused_no in csv

    # the merchant refunds again from the order page (confirmation step, then the gateway)
    page = await (await mall.client.get(f"/console/orders/{refused_id}")).text()
    assert "failed" in page and "退款" in page
    csrf = await csrf_of(mall.client, f"/console/orders/{refused_id}")
    resp = await mall.client.post(f"/console/orders/{refused_id}/refund",
                                  data={"_csrf": csrf, "amount": "", "reason": "重新退款", "confirm": "1"},
                                  allow_redirects=False)
    assert resp.status == 303 and "refund_requested" in resp.headers["Location"]
    assert refused_no not in await (await mall.client.get("/console/orders?refund=failed")).text()
    await mall.settle()   # the outbox hands the new request to the sandbox gateway, which pays it
    async with mall.svc.uows() as uow:
        order = await uow.orders.get(tenant.id, refused_id)
        assert (order.status, order.refunded_fen) == ("refunded", order.paid_fen)
    assert 'id="refunds-failed"' not in await (await mall.client.get("/console/")).text()


async def test_an_unknown_refund_filter_is_a_clear_400(mall):
    await make_admin(mall.svc.uows, "fin_rf2", role="finance")
    await login(mall.client, "fin_rf2")
    resp = await mall.client.get("/console/orders?refund=everything")
    assert resp.status == 400 and "退款筛选不对" in await resp.text()
