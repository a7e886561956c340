"""The sandbox pay path end to end: pay page → 确认支付 → signed APIv3 notify over HTTP →
order paid; and every forged, stale, mismatched or repeated notify handled safely."""

import asyncio
import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.demo import ensure_demo_order
from social_mall.orders.service import cancel_order, find_order
from social_mall.payments.service import open_payment
from storage.models import PayNotification, Refund


async def demo_order(mall):
    svc = mall.svc
    tenant = await svc.tenant("demo")
    async with svc.uows() as uow:
        order_no = await ensure_demo_order(uow, tenant, now=svc.clock(), timeout=timedelta(minutes=30))
        order = await find_order(uow, tenant.id, order_no)
        await open_payment(uow, order, gateway="sandbox")
        await uow.commit()
    return tenant, order


async def order_status(mall, tenant, order_no) -> str:
    async with mall.svc.uows() as uow:
        return (await find_order(uow, tenant.id, order_no)).status


async def verdicts(mall, order_no) -> list[str]:
    async with mall.svc.uows() as uow:
        rows = await uow.payments.notifications(order_no)
        return sorted(r.verdict for r in rows)


async def post_notify(mall, tenant, headers, body):
    resp = await mall.client.post(f"/pay/notify/{tenant.code}", data=body,
                                  headers={**headers, "Content-Type": "application/json"})
    return resp.status, await resp.text()


async def test_user_pays_on_the_sandbox_page_and_sees_the_order_paid(mall):
    tenant, order = await demo_order(mall)
    url = mall.svc.pay_url(tenant.code, order.order_no)
    path = url[url.index("/h5/"):]
    page = await mall.client.get(path)
    html = await page.text()
    assert page.status == 200
    assert order.order_no in html and "确认支付" in html
    assert f"¥{order.total_fen // 100}.{order.total_fen % 100:02d}" in html

    action = re.search(r'action="([^"]+)"', html).group(1).replace("&amp;", "&")
    paid = await mall.client.post(action, allow_redirects=True)
    paid_html = await paid.text()
    assert paid.status == 200
    assert "支付成功" in paid_html
    assert await order_status(mall, tenant, order.order_no) == "paid"
    assert await verdicts(mall, order.order_no) == ["applied"]
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1


async def test_pay_page_refuses_a_forged_link(mall):
    tenant, order = await demo_order(mall)
    resp = await mall.client.get(f"/h5/pay/{tenant.code}/{order.order_no}?t=forged")
    assert resp.status == 403
    resp = await mall.client.post(f"/h5/pay/{tenant.code}/{order.order_no}/confirm?t=forged")
    assert resp.status == 403
    assert await order_status(mall, tenant, order.order_no) == "pending_payment"


async def test_ten_duplicate_notifies_in_parallel_pay_once_and_emit_one_event(mall):
    tenant, order = await demo_order(mall)
    headers, body = mall.svc.gateway(tenant).pay_notify(
        out_trade_no=order.order_no, amount_fen=order.total_fen, payer="o_payer", now=time.time())
    results = await asyncio.gather(*(post_notify(mall, tenant, headers, body) for _ in range(10)))
    assert [status for status, _ in results] == [204] * 10
    assert await order_status(mall, tenant, order.order_no) == "paid"
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1
    assert await verdicts(mall, order.order_no) == ["applied"] + ["duplicate"] * 9


@pytest.mark.parametrize(
    "case, expected_status",
    [("wrong_amount", 400), ("bad_signature", 401), ("stale", 401), ("other_mchid", 400),
     ("other_appid", 400), ("wrong_key", 400), ("unknown_order", 400), ("probe", 401)],
)
async def test_bad_notify_changes_nothing_and_gets_the_failure_format(mall, case, expected_status):
    from social_mall.payments.sandbox import SandboxGateway

    tenant, order = await demo_order(mall)
    gw = mall.svc.gateway(tenant)
    kwargs = dict(out_trade_no=order.order_no, amount_fen=order.total_fen, payer="o_payer", now=time.time())
    if case == "wrong_amount":
        kwargs["amount_fen"] = order.total_fen - 1
    if case == "stale":
        kwargs["now"] = time.time() - 600
    if case == "other_mchid":
        kwargs["mchid"] = "1999999999"
    if case == "other_appid":
        kwargs["appid"] = "wx_someone_else"
    if case == "unknown_order":
        kwargs["out_trade_no"] = "000000000000000000"
    if case == "wrong_key":
        gw = SandboxGateway(platform=gw.platform, mchid=gw.mchid, appid=gw.appid,
                            apiv3_key="X" * 32)
    headers, body = gw.pay_notify(**kwargs)
    if case == "bad_signature":
        body = body.replace(b'"summary"', b'"summary" ', 1)
    if case == "probe":
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    status, text = await post_notify(mall, tenant, headers, body)
    assert status == expected_status
    assert json.loads(text) == {"code": "FAIL", "message": "失败"}
    assert await order_status(mall, tenant, order.order_no) == "pending_payment"
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 0
        rejected = await uow.session.scalar(
            select(func.count()).select_from(PayNotification).where(PayNotification.verdict == "rejected"))
    assert rejected == 1


async def test_payment_after_the_order_closed_is_refunded_not_lost(mall):
    tenant, order = await demo_order(mall)
    async with mall.svc.uows() as uow:
        await cancel_order(uow, tenant.id, order.id, reason="timeout", now=mall.svc.clock())
        await uow.commit()
    headers, body = mall.svc.gateway(tenant).pay_notify(
        out_trade_no=order.order_no, amount_fen=order.total_fen, payer="o_late", now=time.time())
    status, _ = await post_notify(mall, tenant, headers, body)
    assert status == 204
    await mall.settle()
    assert await order_status(mall, tenant, order.order_no) == "cancelled"
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert (refund.amount_fen, refund.status) == (order.total_fen, "succeeded")
    assert await verdicts(mall, order.order_no) == ["late"]


async def test_healthz_reports_database_and_store(mall):
    resp = await mall.client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200
    assert body["db"] == "ok" and body["kv"] == "ok"
    assert "shop" in body["modules"]


async def test_every_route_answers_with_a_request_id_and_keeps_the_callers(mall):
    first = await mall.client.get("/healthz")
    second = await mall.client.get("/healthz")
    ours = first.headers.get("X-Request-Id", "")
    assert len(ours) == 16 and ours != second.headers.get("X-Request-Id")
    given = await mall.client.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert given.headers.get("X-Request-Id") == "trace-42"
    # no middleware: aiohttp skips its middleware chain for every request
    assert not mall.app.middlewares
