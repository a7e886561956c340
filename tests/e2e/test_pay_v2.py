"""APIv2 merchants end to end against the fake platform: OAuth → JSAPI via unified order
(MD5 or HMAC-SHA256) → the fake client checks paySign and pays → XML notify → order paid;
forged, downgraded, hostile and mismatched XML notifies refused with nothing changed; a lost
notify recovered by the query sweeper."""

import json
from datetime import timedelta

import pytest

from handlers.pay_jobs import sweep_pending
from tests.fakes.pay_kit import WECHAT_UA, XRW, later, load, new_order, oauth_login
from tests.fakes.wechat_pay import attach_real_pay

V2_KEY = "192006250b4c09247ec02edce69f6a2d"


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
async def wxpay2(request, mall, aiohttp_server, tmp_path):
    return await attach_real_pay(mall, aiohttp_server, tmp_path, api_version="v2", v2_key=V2_KEY,
                                 v2_sign_type=request.param)


async def open_v2(mall, openid="o_v2_payer_0000000000000001"):
    tenant, order = await new_order(mall)
    token = mall.svc.pay_token(tenant.code, order.order_no)
    await oauth_login(mall, f"/h5/pay/{tenant.code}/{order.order_no}?t={token}", openid)
    resp = await mall.client.post(f"/h5/pay/demo/{order.order_no}/jsapi?t={token}", headers={**XRW, "User-Agent": WECHAT_UA})
    assert resp.status == 200, await resp.text()
    return tenant, order, (await resp.json())["params"]


async def test_v2_jsapi_pay_end_to_end(mall, wxpay2):
    tenant, order, params = await open_v2(mall)
    assert params["signType"] == wxpay2.v2_sign_type
    call = [c for c in wxpay2.calls if c.path == "/pay/unifiedorder"][0]
    assert call.auth_ok and call.body["total_fee"] == str(order.total_fen) and call.body["trade_type"] == "JSAPI"
    assert call.body["notify_url"].endswith("/pay/notify-v2/demo")
    bridge = await mall.client.session.post(f"{wxpay2.base_url}/fake/jsbridge", data=json.dumps(params))
    assert (await bridge.json())["err_msg"] == "get_brand_wcpay_request:ok"
    assert wxpay2.notifies[-1][2] == 200
    await mall.settle()
    assert (await load(mall, tenant, order.order_no)).status == "paid"
    # a repeat of the notify is acknowledged and changes nothing
    body = wxpay2.v2_notify_for(order.order_no)
    resp = await mall.client.post("/pay/notify-v2/demo", data=body)
    assert resp.status == 200 and "SUCCESS" in await resp.text()
    async with mall.svc.uows() as uow:
        assert await uow.outbox.count("order.paid") == 1


@pytest.mark.parametrize("case", ["forged", "other_sign_type", "xxe", "amount", "other_mchid"])
async def test_bad_v2_notify_is_refused(mall, wxpay2, case):
    tenant, order, _ = await open_v2(mall)
    wxpay2.orders[order.order_no].state = "SUCCESS"
    if case == "forged":
        body = wxpay2.v2_notify_for(order.order_no, key="f" * 32)
    elif case == "other_sign_type":
        other = "MD5" if wxpay2.v2_sign_type != "MD5" else "HMAC-SHA256"
        body = wxpay2.v2_notify_for(order.order_no, sign_type=other)
    elif case == "xxe":
        body = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                + wxpay2.v2_notify_for(order.order_no).replace(b"<attach><![CDATA[]]></attach>", b"<attach>&e;</attach>"))
    elif case == "amount":
        body = wxpay2.v2_notify_for(order.order_no, total_fee=1)
    else:
        body = wxpay2.v2_notify_for(order.order_no, mch_id="1999999999")
    resp = await mall.client.post("/pay/notify-v2/demo", data=body)
    assert resp.status == 400
    assert "<return_code><![CDATA[FAIL]]></return_code>" in await resp.text()
    assert (await load(mall, tenant, order.order_no)).status == "pending_payment"


async def test_v2_lost_notify_recovered_by_the_sweeper(mall, wxpay2):
    tenant, order, _ = await open_v2(mall)
    wxpay2.lose_notifies = 1
    assert await wxpay2.pay(order.order_no) is None
    later(mall, 6)
    assert await sweep_pending(mall.svc) == 1
    await mall.settle()
    assert (await load(mall, tenant, order.order_no)).status == "paid"
