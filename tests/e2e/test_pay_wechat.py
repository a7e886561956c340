"""Real WeChat Pay (APIv3) end to end against a faithful fake platform on 127.0.0.1:
chat pay link → OAuth (snsapi_base, state bound to the browser) → JSAPI pay page → the fake
client checks paySign and pays → signed, encrypted notify → order paid and the buyer pushed.
Plus forged/stale/mismatched notifies, refunds with refund notifies, lost notifies recovered
by the sweeper, payments after cancel refunded, Native pay, transfers and reconciliation."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from handlers.pay_jobs import reconcile_day, sweep_pending
from social_mall.demo import ensure_demo_order
from social_mall.orders.service import cancel_order, find_order
from social_mall.payments import wxpay_v3
from social_mall.payments.service import request_refund
from storage.models import PayNotification, Refund
from storage.pay_models import PayReconciliation
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN
from tests.fakes.pay_kit import WECHAT_UA, XRW, later, load, new_order, oauth_login
from tests.fakes.wechat_pay import attach_real_pay


@pytest.fixture
async def wxpay(mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path)


async def jsapi_params(mall, tenant, order, token):
    resp = await mall.client.post(f"/h5/pay/{tenant.code}/{order.order_no}/jsapi?t={token}",
                                  headers={**XRW, "User-Agent": WECHAT_UA})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["params"]


async def paid_by_jsapi(mall, wxpay, openid="o_payer_0000000000000000001"):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", openid)
    await jsapi_params(mall, tenant, order, token)
    assert await wxpay.pay(order.order_no) == 204
    await mall.settle()
    return tenant, await load(mall, tenant, order.order_no)


# -- the whole path -------------------------------------------------------------------------

async def test_chat_pay_link_oauth_jsapi_notify_pays_the_order_and_pushes(mall, wxpay):
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY)
    user = "oUser_wxpay_buyer_000000001"
    await wx.event(user, "subscribe")
    for text in ("分类", "1", "1", "1 x2", "王小明 13912345678 广东省深圳市南山区科技园1号"):
        assert (await wx.text(user, text)).status == 200
    placed = (await wx.text(user, "确认")).text
    order_no = re.search(r"订单号：(\d+)", placed).group(1)
    pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", placed).group(1)
    path = pay_url[pay_url.index("/h5/"):]

    html = await oauth_login(mall, path, user)
    assert "微信支付 ¥87.80" in html and "/confirm" not in html
    tenant = await mall.svc.tenant("demo")
    order = await load(mall, tenant, order_no)
    params = await jsapi_params(mall, tenant, order, parse_qs(urlsplit(path).query)["t"][0])
    # the JSAPI order carried the OAuth openid, the amount and our notify URL
    created = [c for c in wxpay.calls if c.path == "/v3/pay/transactions/jsapi"]
    assert len(created) == 1 and created[0].auth_ok
    body = created[0].body
    assert body["payer"] == {"openid": user} and body["amount"] == {"total": 8780, "currency": "CNY"}
    assert body["notify_url"].endswith("/pay/notify/demo") and body["out_trade_no"] == order_no
    assert params["package"] == f"prepay_id={wxpay.orders[order_no].prepay_id}" and params["signType"] == "RSA"
    # asking again reuses the prepay_id (no second order at the gateway)
    assert (await jsapi_params(mall, tenant, order, parse_qs(urlsplit(path).query)["t"][0]))["package"] == params["package"]
    assert len([c for c in wxpay.calls if c.path == "/v3/pay/transactions/jsapi"]) == 1

    # the WeChat client checks paySign, the user pays, the platform POSTs the notify
    bridge = await mall.client.session.post(f"{wxpay.base_url}/fake/jsbridge", data=json.dumps(params))
    assert (await bridge.json())["err_msg"] == "get_brand_wcpay_request:ok"
    assert wxpay.notifies[-1][2] == 204
    await mall.settle()
    order = await load(mall, tenant, order_no)
    assert (order.status, order.paid_fen) == ("paid", 8780)
    pushes = mall.fake.sent_messages(user)
    assert len(pushes) == 1 and "支付成功" in pushes[0]["text"]["content"]
    page = await (await mall.client.get(path, headers={"User-Agent": WECHAT_UA})).text()
    assert 'id="paid"' in page and "支付成功" in page


async def test_tampered_pay_sign_is_refused_by_the_client(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", "o_tamper_000000000000000001")
    params = await jsapi_params(mall, tenant, order, token)
    params["timeStamp"] = str(int(params["timeStamp"]) + 1)
    bridge = await mall.client.session.post(f"{wxpay.base_url}/fake/jsbridge", data=json.dumps(params))
    assert (await bridge.json())["err_msg"] == "get_brand_wcpay_request:fail"
    assert (await load(mall, tenant, order.order_no)).status == "pending_payment"


# -- OAuth CSRF ----------------------------------------------------------------------------------

async def test_oauth_state_from_another_browser_or_replayed_is_refused(mall, wxpay, aiohttp_client):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    path = f"/h5/pay/{tenant.code}/{order.order_no}?t={token}"
    start = (await mall.client.get(path, headers={"User-Agent": WECHAT_UA}, allow_redirects=False)).headers["Location"]
    loc = (await mall.client.get(start, allow_redirects=False)).headers["Location"]
    state = parse_qs(urlsplit(loc).query)["state"][0]
    # an attacker's browser (no session cookie) presenting the victim's state
    other = await aiohttp_client(mall.app)
    resp = await other.get(f"/h5/oauth/demo/callback?code={mall.fake.mint_code('o_attacker')}&state={state}",
                           allow_redirects=False)
    assert resp.status == 403
    # the state was consumed by that attempt: the real browser must start again
    resp = await mall.client.get(f"/h5/oauth/demo/callback?code={mall.fake.mint_code('o_victim')}&state={state}",
                                 allow_redirects=False)
    assert resp.status == 403
    assert "sm_payer_demo" not in {c.key for c in mall.client.session.cookie_jar}
    # an unknown state, and an open redirect attempt
    assert (await mall.client.get("/h5/oauth/demo/callback?code=x&state=nope", allow_redirects=False)).status == 403
    assert (await mall.client.get("/h5/oauth/demo?next=https://evil.example/", allow_redirects=False)).status == 400
    # without the payer cookie the JSAPI endpoint refuses
    resp = await mall.client.post(f"/h5/pay/demo/{order.order_no}/jsapi?t={token}", headers=XRW)
    assert resp.status == 401


async def test_jsapi_endpoint_needs_the_same_origin_header_and_a_valid_link(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    assert (await mall.client.post(f"/h5/pay/demo/{order.order_no}/jsapi?t={token}")).status == 403
    assert (await mall.client.post(f"/h5/pay/demo/{order.order_no}/jsapi?t=forged", headers=XRW)).status == 403
    # the sandbox button is gone for a real merchant
    assert (await mall.client.post(f"/h5/pay/demo/{order.order_no}/confirm?t={token}")).status == 403


# -- notifies ---------------------------------------------------------------------------------------

async def _open_jsapi(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", "o_notify_0000000000000000001")
    await jsapi_params(mall, tenant, order, token)
    wxpay.orders[order.order_no].state = "SUCCESS"
    wxpay.orders[order.order_no].transaction_id = "4200000000000000000000000001"
    wxpay.orders[order.order_no].success_time = "2026-11-25T10:00:00+08:00"
    return tenant, order


@pytest.mark.parametrize("case", ["wrong_amount", "other_mchid", "other_appid", "stale", "future",
                                  "forged_platform_key", "wrong_apiv3_key", "bad_signature", "unknown_order"])
async def test_forged_stale_or_mismatched_notify_is_refused_and_changes_nothing(mall, wxpay, case):
    tenant, order = await _open_jsapi(mall, wxpay)
    kw: dict = {}
    if case == "wrong_amount":
        kw["amount"] = order.total_fen - 1
    elif case == "other_mchid":
        kw["mchid"] = "1999999999"
    elif case == "other_appid":
        kw["appid"] = "wx_someone_else_0001"
    elif case == "stale":
        kw["now"] = time.time() - 301
    elif case == "future":
        kw["now"] = time.time() + 301
    elif case == "forged_platform_key":
        kw["platform"] = wxpay_v3.generate_keypair(wxpay.platform.serial)
    elif case == "wrong_apiv3_key":
        kw["apiv3_key"] = "Z" * 32
    elif case == "unknown_order":
        kw["out_trade_no"] = "000000000000000001"
    headers, body = wxpay.notify_for(order.order_no, **kw)
    if case == "bad_signature":
        body = body.replace(b'"summary"', b'"summary" ', 1)
    resp = await mall.client.post("/pay/notify/demo", data=body, headers=headers)
    assert resp.status in (400, 401)
    assert await resp.json() == {"code": "FAIL", "message": "失败"}
    assert (await load(mall, tenant, order.order_no)).status == "pending_payment"
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 0
        verdicts = list((await uow.session.scalars(select(PayNotification.verdict))).all())
    assert verdicts == ["rejected"]
    # the genuine notify still works afterwards
    assert await wxpay.send_notify(order.order_no) == 204
    assert (await load(mall, tenant, order.order_no)).status == "paid"


async def test_duplicate_notify_applies_once(mall, wxpay):
    tenant, order = await _open_jsapi(mall, wxpay)
    headers, body = wxpay.notify_for(order.order_no)
    for _ in range(3):
        assert (await mall.client.post("/pay/notify/demo", data=body, headers=headers)).status == 204
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1


# -- refunds ---------------------------------------------------------------------------------------

async def test_partial_then_full_refund_through_processing_and_refund_notifies(mall, wxpay):
    tenant, order = await paid_by_jsapi(mall, wxpay)
    assert order.status == "paid"
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=500, reason="少发一件", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    calls = [c for c in wxpay.calls if c.path == "/v3/refund/domestic/refunds"]
    assert len(calls) == 1 and calls[0].auth_ok
    assert calls[0].body["amount"] == {"refund": 500, "total": order.paid_fen, "currency": "CNY"}
    assert calls[0].body["notify_url"].endswith("/pay/refund-notify/demo")
    async with mall.svc.uows() as uow:
        refunds = await uow.payments.refunds_for(tenant.id, order.id)
    assert [(r.amount_fen, r.status) for r in refunds] == [(500, "processing")]

    assert await wxpay.complete_refunds() == [204]
    await mall.settle()
    order = await load(mall, tenant, order.order_no)
    assert (order.status, order.refunded_fen) == ("paid", 500)
    # the same refund notify again: acknowledged, applied once
    ref = next(iter(wxpay.refunds.values()))
    assert await wxpay.send_refund_notify(ref) == 204
    assert (await load(mall, tenant, order.order_no)).refunded_fen == 500

    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=None, reason="全部退款", actor="admin",
                             now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    assert await wxpay.complete_refunds() == [204]
    await mall.settle()
    order = await load(mall, tenant, order.order_no)
    assert (order.status, order.refunded_fen) == ("refunded", order.paid_fen)


async def test_forged_or_mismatched_refund_notify_is_refused(mall, wxpay):
    tenant, order = await paid_by_jsapi(mall, wxpay)
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=300, reason="r", actor="admin", now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    ref = next(iter(wxpay.refunds.values()))
    ref.status = "SUCCESS"
    assert await wxpay.send_refund_notify(ref, amount={"total": ref.total, "refund": 999, "payer_total": 1,
                                                       "payer_refund": 1}) == 400
    assert await wxpay.send_refund_notify(ref, mchid="1999999999") == 400
    assert await wxpay.send_refund_notify(ref, out_trade_no="999999") == 400
    # stale
    headers, body = wxpay_v3.build_notify(
        platform=wxpay.platform, apiv3_key=wxpay.apiv3_key, event_type="REFUND.SUCCESS", summary="x",
        original_type="refund", now=time.time() - 400,
        plain={"mchid": wxpay.mchid, "out_trade_no": order.order_no, "out_refund_no": ref.out_refund_no,
               "refund_status": "SUCCESS", "amount": {"total": ref.total, "refund": 300}})
    assert (await mall.client.post("/pay/refund-notify/demo", data=body, headers=headers)).status == 401
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund.status == "processing"
    assert (await load(mall, tenant, order.order_no)).refunded_fen == 0


# -- lost notifies, late payments -------------------------------------------------------------------

async def test_lost_notify_is_recovered_by_the_query_sweeper(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    user = "o_lost_notify_000000000000001"
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", user)
    await jsapi_params(mall, tenant, order, token)
    wxpay.lose_notifies = 1
    assert await wxpay.pay(order.order_no) is None
    assert await sweep_pending(mall.svc) == 0           # inside the notify window: left alone
    assert (await load(mall, tenant, order.order_no)).status == "pending_payment"
    later(mall, 6)
    assert await sweep_pending(mall.svc) == 1
    await mall.settle()
    assert (await load(mall, tenant, order.order_no)).status == "paid"
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1
    assert await sweep_pending(mall.svc) == 0           # settled: not asked again
    # the notify arriving after all is a harmless duplicate
    assert await wxpay.send_notify(order.order_no) == 204
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1


async def test_payment_notify_after_cancel_is_refunded_through_the_gateway(mall, wxpay):
    tenant, order = await _open_jsapi(mall, wxpay)
    async with mall.svc.uows() as uow:
        await cancel_order(uow, tenant.id, order.id, reason="timeout", now=mall.svc.clock())
        await uow.commit()
    assert await wxpay.send_notify(order.order_no) == 204
    await mall.settle()
    refund_calls = [c for c in wxpay.calls if c.path == "/v3/refund/domestic/refunds"]
    assert len(refund_calls) == 1
    assert refund_calls[0].body["amount"]["refund"] == order.total_fen
    assert await wxpay.complete_refunds() == [204]
    async with mall.svc.uows() as uow:
        refund = await uow.session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert (refund.amount_fen, refund.status, refund.reason) == (order.total_fen, "succeeded", "paid_after_close")
    assert (await load(mall, tenant, order.order_no)).status == "cancelled"


async def test_sweeper_refunds_a_lost_payment_of_a_cancelled_order_and_closes_unpaid_ones(mall, wxpay):
    tenant, paid = await _open_jsapi(mall, wxpay)                   # paid at WeChat, notify lost
    _, unpaid = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, unpaid.order_no)
    await jsapi_params(mall, tenant, unpaid, token)                  # payer cookie from before
    async with mall.svc.uows() as uow:
        for o in (paid, unpaid):
            await cancel_order(uow, tenant.id, o.id, reason="timeout", now=mall.svc.clock())
        await uow.commit()
    later(mall, 10)
    assert await sweep_pending(mall.svc) == 2
    await mall.settle()
    assert wxpay.orders[unpaid.order_no].state == "CLOSED"
    assert [c.body["out_refund_no"] for c in wxpay.calls if c.path == "/v3/refund/domestic/refunds"] == [
        f"RL{paid.order_no}"]
    assert await sweep_pending(mall.svc) == 0


# -- Native, transfers, reconciliation --------------------------------------------------------------

async def test_desktop_browser_gets_native_qr_pay(mall, wxpay):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    page = await mall.client.get(f"/h5/pay/demo/{order.order_no}?t={token}")
    assert page.status == 200 and "扫码支付" in await page.text()
    resp = await mall.client.post(f"/h5/pay/demo/{order.order_no}/native?t={token}", headers=XRW)
    data = await resp.json()
    assert data["code_url"].startswith("weixin://wxpay/bizpayurl?pr=") and data["qr_svg"].startswith("<svg")
    assert await wxpay.pay(order.order_no, "o_scanner") == 204
    assert (await load(mall, tenant, order.order_no)).status == "paid"


async def test_transfer_to_balance_goes_through_the_signed_api(mall, wxpay):
    tenant = await mall.svc.tenant("demo")
    result = await mall.svc.gateway(tenant).transfer(out_bill_no="WD0001", openid="o_dist", amount_fen=1234,
                                                     remark="佣金提现")
    assert (result.out_bill_no, result.status) == ("WD0001", "SUCCESS") and result.transfer_id
    call = [c for c in wxpay.calls if c.path.endswith("transfer-bills")][0]
    assert call.auth_ok and call.body["transfer_amount"] == 1234 and call.body["openid"] == "o_dist"


async def test_daily_reconciliation_reports_mismatches(mall, wxpay):
    tenant, order = await paid_by_jsapi(mall, wxpay)
    day = mall.svc.clock().astimezone(__import__("handlers.pay_jobs", fromlist=["CST"]).CST).date()
    status, mismatches = await reconcile_day(mall.svc, tenant.id, day)
    assert (status, mismatches) == ("ok", [])
    wxpay.extra_bill_rows.append(",".join("`" + c for c in [
        "2026-11-25 10:00:00", wxpay.appid, wxpay.mchid, "0", "", "4200999", "ZZ_UNKNOWN_01", "o_x", "JSAPI",
        "SUCCESS", "OTHERS", "CNY", "1.00", "0.00", "0", "0", "0.00", "0.00", "", "", "x", "", "0.00", "0.60%",
        "1.00", "0.00", ""]))
    wxpay.orders[order.order_no].amount += 1  # the platform's figure differs from ours
    status, mismatches = await reconcile_day(mall.svc, tenant.id, day)
    assert status == "mismatch"
    assert {(m["kind"], m["ref"]) for m in mismatches} == {
        ("unknown_trade", "ZZ_UNKNOWN_01"), ("amount_mismatch", order.order_no)}
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(PayReconciliation))).all()
    assert [(r.bill_date, r.status, len(r.mismatches)) for r in rows] == [(day.isoformat(), "mismatch", 2)]


async def test_tenant_without_pay_account_has_the_sandbox_only_where_the_settings_list_it(mall):
    from social_mall.payments.sandbox import SandboxGateway

    tenant = await mall.svc.tenant("demo")
    assert mall.svc.settings.sandbox_pay_tenants == ["demo"]   # the suite's explicit choice (conftest)
    assert isinstance(mall.svc.gateway(tenant), SandboxGateway)
    mall.svc.settings.sandbox_pay_tenants = []
    assert mall.svc.gateway(tenant) is None and not mall.svc.can_pay(tenant)


async def test_pay_keys_never_reach_the_logs(mall, wxpay, caplog):
    import logging

    from social_mall.logs import _Formatter
    from tests.fakes.wechat_pay import APIV3_KEY

    caplog.set_level(logging.INFO)
    tenant, order = await paid_by_jsapi(mall, wxpay)
    headers, body = wxpay.notify_for(order.order_no, now=time.time() - 999)  # refused: stale
    assert (await mall.client.post("/pay/notify/demo", data=body, headers=headers)).status == 401
    async with mall.svc.uows() as uow:
        await request_refund(uow, tenant.id, order.id, amount_fen=None, reason="r", actor="admin", now=mall.svc.clock())
        await uow.commit()
    await mall.settle()
    await wxpay.complete_refunds()
    gw = mall.svc.gateway(tenant)
    lines = "\n".join(_Formatter("json").format(r) for r in caplog.records) + repr(gw) + repr(gw.account)
    assert "pay.notify.refused" in lines and "pay.refund_notify.ok" in lines
    pem_body = wxpay.merchant.private_pem.decode().splitlines()[5]
    for secret in (APIV3_KEY, pem_body, "paySign", wxpay.orders[order.order_no].prepay_id):
        assert secret not in lines
