"""A fake api.mch.weixin.qq.com (APIv3 + a little APIv2) for tests, run by `aiohttp_server`.

Like the real platform it: checks the merchant's Authorization header (RSA-SHA256 over
METHOD\\nPATH?QUERY\\nTS\\nNONCE\\nBODY\\n, known serial, fresh timestamp, mchid), signs every
2xx answer with its own platform key (Wechatpay-* headers, public-key mode), encrypts
notifies with AES-256-GCM under the APIv3 key and POSTs them to the order's notify_url,
answers refunds PROCESSING and later sends REFUND.SUCCESS, dedupes out_trade_no and
out_refund_no, keeps transfer bills (商家转账: a new bill answers `transfer_state`, queried by
out_bill_no, moved on by `set_transfer`), and serves trade bills. Test helpers: `pay()` (the user pays: the order turns
SUCCESS and the notify goes out, unless `lose_notifies`), `send_notify()` (any variant,
forged or stale), `complete_refunds()`, and `/fake/jsbridge` for a stubbed WeixinJSBridge,
which checks the page's paySign like the WeChat client does. Every call is recorded.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

from social_mall.payments import wxpay_v3
from social_mall.payments.wxpay_v3 import KeyPair, PayNotifyError

CST = timezone(timedelta(hours=8))


@dataclass
class Call:
    method: str
    path: str
    body: Any
    auth_ok: bool
    status: int = 0


@dataclass
class FakeOrder:
    out_trade_no: str
    appid: str
    mchid: str
    amount: int
    notify_url: str
    trade_type: str
    description: str
    openid: str = ""
    prepay_id: str = ""
    code_url: str = ""
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""
    refunded: int = 0


@dataclass
class FakeRefund:
    out_refund_no: str
    out_trade_no: str
    refund: int
    total: int
    notify_url: str
    refund_id: str
    status: str = "PROCESSING"


@dataclass
class FakeWeChatPay:
    mchid: str
    appid: str
    apiv3_key: str
    merchant_serial: str
    merchant_public_pem: bytes
    platform: KeyPair = field(default_factory=lambda: wxpay_v3.generate_keypair("PUB_KEY_ID_0114232134912410000000000000"))
    lose_notifies: int = 0  # drop this many upcoming pay notifies (lost in transit)
    # scripted answers to the next new refund requests, in order: (HTTP status, error code) is
    # refused like the platform does (e.g. 403 USER_ACCOUNT_ABNORMAL, 500 SYSTEM_ERROR, and no
    # refund is created), None is handled normally
    refund_script: list[tuple[int, str] | None] = field(default_factory=list)
    # the state a new transfer bill answers with (SUCCESS at once, or ACCEPTED / PROCESSING /
    # WAIT_USER_CONFIRM … until the test moves it on with `set_transfer`)
    transfer_state: str = "SUCCESS"
    calls: list[Call] = field(default_factory=list)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    refunds: dict[str, FakeRefund] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifies: list[tuple[str, str, int]] = field(default_factory=list)  # (event_type, url, status)
    base_url: str = ""
    # fields a (hostile) platform puts into its answer to an order query, by out_trade_no
    query_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # other app ids bound to the merchant (a mini-program): WeChat Pay refuses any other
    # app id with APPID_MCHID_NOT_MATCH
    bound_appids: set[str] = field(default_factory=set)
    # openids known to belong to one app (an official account or mini-program): a JSAPI order
    # naming another app id for them is refused, as WeChat Pay does (appid和openid不匹配)
    openid_apps: dict[str, str] = field(default_factory=dict)

    # -- app ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/v3/pay/transactions/jsapi", self._jsapi)
        r.add_post("/v3/pay/transactions/native", self._native)
        r.add_get("/v3/pay/transactions/out-trade-no/{no}", self._query)
        r.add_post("/v3/pay/transactions/out-trade-no/{no}/close", self._close)
        r.add_post("/v3/refund/domestic/refunds", self._refund)
        r.add_get("/v3/refund/domestic/refunds/{no}", self._refund_query)
        r.add_post("/v3/fund-app/mch-transfer/transfer-bills", self._transfer)
        r.add_get("/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}", self._transfer_query)
        r.add_get("/v3/certificates", self._certificates)
        r.add_get("/v3/bill/tradebill", self._tradebill)
        r.add_get("/v3/billdownload/file", self._bill_file)
        r.add_post("/pay/unifiedorder", self._v2_unified)
        r.add_post("/pay/orderquery", self._v2_query)
        r.add_post("/fake/jsbridge", self._jsbridge)
        r.add_route("OPTIONS", "/fake/jsbridge", self._cors)
        return app

    # -- signing --------------------------------------------------------------------------
    def _signed(self, status: int, obj: Mapping[str, object] | None) -> web.Response:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if obj is not None else ""
        headers = wxpay_v3.response_headers(body, self.platform, timestamp=int(time.time()),
                                            nonce=wxpay_v3.new_nonce())
        if obj is None:
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, text=body, content_type="application/json", headers=headers)

    @staticmethod
    def _error(status: int, code: str, message: str = "") -> web.Response:
        return web.json_response({"code": code, "message": message or code}, status=status)

    async def _auth(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        raw = await request.read()
        try:
            mchid = wxpay_v3.verify_authorization(
                request.method, request.rel_url.raw_path_qs, raw, request.headers.get("Authorization", ""),
                {self.merchant_serial: self.merchant_public_pem}, time.time())
            ok = mchid == self.mchid
        except PayNotifyError:
            ok = False
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        self.calls.append(Call(request.method, request.path, body, ok))
        if not ok:
            return raw, self._error(401, "SIGN_ERROR", "签名错误")
        return raw, None

    # -- platform certificates ------------------------------------------------------------
    def platform_certificate(self) -> tuple[str, str]:
        """(serial hex, PEM) of a certificate over the platform key, made once."""
        if not hasattr(self, "_cert"):
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.x509.oid import NameOID

            key = serialization.load_pem_private_key(self.platform.private_pem, password=None)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
            now = datetime.now(timezone.utc)
            serial = x509.random_serial_number()
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                    .serial_number(serial).not_valid_before(now - timedelta(days=1))
                    .not_valid_after(now + timedelta(days=365 * 5)).sign(key, hashes.SHA256()))  # type: ignore[arg-type]
            self._cert = (f"{serial:X}", cert.public_bytes(serialization.Encoding.PEM).decode())
        return self._cert

    async def _certificates(self, request: web.Request) -> web.Response:
        """GET /v3/certificates: the platform certificates, each encrypted under the
        merchant's APIv3 key (associated_data "certificate"), the answer signed."""
        _, err = await self._auth(request)
        if err:
            return err
        serial, pem = self.platform_certificate()
        enc = wxpay_v3.encrypt_resource(self.apiv3_key, pem, associated_data="certificate",
                                        original_type="certificate")
        enc.pop("original_type", None)
        now = datetime.now(CST)
        return self._signed(200, {"data": [{
            "serial_no": serial, "effective_time": (now - timedelta(days=1)).isoformat(timespec="seconds"),
            "expire_time": (now + timedelta(days=365 * 5)).isoformat(timespec="seconds"),
            "encrypt_certificate": enc}]})

    # -- orders ---------------------------------------------------------------------------
    async def _create(self, request: web.Request, trade_type: str) -> web.Response:
        raw, err = await self._auth(request)
        if err:
            return err
        b = json.loads(raw)
        try:
            amount = b["amount"]["total"]
            assert b["mchid"] == self.mchid and isinstance(amount, int) and amount > 0
            assert b["notify_url"].startswith("http")
            if b["appid"] != self.appid and b["appid"] not in self.bound_appids:
                return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
            assert 1 <= len(b["description"]) <= 127 and 6 <= len(b["out_trade_no"]) <= 32
            openid = b["payer"]["openid"] if trade_type == "JSAPI" else ""
            assert trade_type != "JSAPI" or openid
            if self.openid_apps.get(openid, b["appid"]) != b["appid"]:
                return self._error(400, "PARAM_ERROR", "appid和openid不匹配")
        except (KeyError, AssertionError, TypeError):
            return self._error(400, "PARAM_ERROR", "参数错误")
        no = b["out_trade_no"]
        existing = self.orders.get(no)
        if existing is not None:
            if existing.state == "SUCCESS":
                return self._error(400, "ORDERPAID", "该订单已支付")
            if existing.state == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            if existing.amount != amount or existing.trade_type != trade_type or existing.openid != openid:
                return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
        else:
            existing = self.orders[no] = FakeOrder(no, b["appid"], b["mchid"], amount, b["notify_url"],
                                                   trade_type, b["description"], openid)
        if trade_type == "JSAPI":
            existing.prepay_id = existing.prepay_id or "wx" + secrets.token_hex(15)
            return self._signed(200, {"prepay_id": existing.prepay_id})
        existing.code_url = existing.code_url or f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"
        return self._signed(200, {"code_url": existing.code_url})

    async def _jsapi(self, request: web.Request) -> web.Response:
        return await self._create(request, "JSAPI")

    async def _native(self, request: web.Request) -> web.Response:
        return await self._create(request, "NATIVE")

    def transaction(self, order: FakeOrder) -> dict[str, Any]:
        tx: dict[str, Any] = {
            "appid": order.appid, "mchid": order.mchid, "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type, "trade_state": order.state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭"}.get(order.state, ""),
            "attach": "", "amount": {"total": order.amount, "currency": "CNY"},
        }
        if order.state in ("SUCCESS", "REFUND"):
            tx.update(transaction_id=order.transaction_id, bank_type="OTHERS", success_time=order.success_time,
                      payer={"openid": order.openid or "o_native_payer"},
                      amount={"total": order.amount, "payer_total": order.amount, "currency": "CNY",
                              "payer_currency": "CNY"})
        return tx

    async def _query(self, request: web.Request) -> web.Response:
        _, err = await self._auth(request)
        if err:
            return err
        if request.query.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR")
        order = self.orders.get(request.match_info["no"])
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._signed(200, {**self.transaction(order), **self.query_overrides.get(order.out_trade_no, {})})

    async def _close(self, request: web.Request) -> web.Response:
        raw, err = await self._auth(request)
        if err:
            return err
        order = self.orders.get(request.match_info["no"])
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST")
        if order.state == "SUCCESS":
            return self._error(400, "ORDERPAID", "该订单已支付")
        order.state = "CLOSED"
        return self._signed(204, None)

    # -- refunds --------------------------------------------------------------------------
    async def _refund(self, request: web.Request) -> web.Response:
        raw, err = await self._auth(request)
        if err:
            return err
        b = json.loads(raw)
        existing = self.refunds.get(b.get("out_refund_no", ""))
        if existing is not None:
            return self._signed(200, self._refund_obj(existing))
        if self.refund_script:
            scripted = self.refund_script.pop(0)
            if scripted is not None:
                return self._error(scripted[0], scripted[1], "退款请求失败")
        order = self.orders.get(b.get("out_trade_no", ""))
        if order is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        amt = b.get("amount", {})
        if order.state not in ("SUCCESS", "REFUND"):
            return self._error(400, "INVALID_REQUEST", "订单未支付")
        if amt.get("total") != order.amount or not 0 < amt.get("refund", 0) <= order.amount - order.refunded:
            return self._error(400, "PARAM_ERROR", "退款金额错误")
        order.refunded += amt["refund"]
        ref = self.refunds[b["out_refund_no"]] = FakeRefund(
            b["out_refund_no"], order.out_trade_no, amt["refund"], order.amount, b.get("notify_url", ""),
            "50" + secrets.token_hex(14))
        return self._signed(200, self._refund_obj(ref))

    def _refund_obj(self, ref: FakeRefund) -> dict[str, Any]:
        return {"refund_id": ref.refund_id, "out_refund_no": ref.out_refund_no, "out_trade_no": ref.out_trade_no,
                "transaction_id": self.orders[ref.out_trade_no].transaction_id, "channel": "ORIGINAL",
                "status": ref.status, "amount": {"total": ref.total, "refund": ref.refund, "currency": "CNY"}}

    async def _refund_query(self, request: web.Request) -> web.Response:
        _, err = await self._auth(request)
        if err:
            return err
        ref = self.refunds.get(request.match_info["no"])
        if ref is None:
            return self._error(404, "RESOURCE_NOT_EXISTS")
        return self._signed(200, self._refund_obj(ref))

    async def complete_refunds(self, status: str = "SUCCESS") -> list[int]:
        """Refunds in PROCESSING finish; their REFUND.* notifies go out. Returns HTTP statuses."""
        return [await self.finish_refund(ref, status) for ref in list(self.refunds.values())
                if ref.status == "PROCESSING"]

    async def finish_refund(self, ref: FakeRefund, status: str = "SUCCESS") -> int:
        """One refund in PROCESSING ends SUCCESS | CLOSED | ABNORMAL and its notify goes out (a
        closed refund gives the amount back to what can still be refunded)."""
        assert ref.status == "PROCESSING", ref.status
        ref.status = status
        order = self.orders[ref.out_trade_no]
        if status == "CLOSED":
            order.refunded -= ref.refund
        if status == "SUCCESS" and order.refunded == ref.total:
            order.state = "REFUND"
        return await self.send_refund_notify(ref)

    async def send_refund_notify(self, ref: FakeRefund, **overrides: Any) -> int:
        plain = {"mchid": self.mchid, "out_trade_no": ref.out_trade_no,
                 "transaction_id": self.orders[ref.out_trade_no].transaction_id,
                 "out_refund_no": ref.out_refund_no, "refund_id": ref.refund_id, "refund_status": ref.status,
                 "success_time": datetime.now(CST).isoformat(timespec="seconds"),
                 "user_received_account": "支付用户零钱",
                 "amount": {"total": ref.total, "refund": ref.refund, "payer_total": ref.total,
                            "payer_refund": ref.refund}}
        plain.update(overrides)
        headers, body = wxpay_v3.build_notify(
            platform=self.platform, apiv3_key=self.apiv3_key, event_type=f"REFUND.{ref.status}",
            summary="退款成功", original_type="refund", plain=plain, now=time.time())
        return await self._post(f"REFUND.{ref.status}", ref.notify_url, headers, body)

    # -- transfers ------------------------------------------------------------------------
    async def _transfer(self, request: web.Request) -> web.Response:
        raw, err = await self._auth(request)
        if err:
            return err
        b = json.loads(raw)
        if b.get("appid") != self.appid and b.get("appid") not in self.bound_appids:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not b.get("openid") or not isinstance(b.get("transfer_amount"), int):
            return self._error(400, "PARAM_ERROR")
        if self.openid_apps.get(b["openid"], b["appid"]) != b["appid"]:   # an openid of another app
            return self._error(400, "PARAM_ERROR", "appid和openid不匹配")
        now = datetime.now(CST).isoformat(timespec="seconds")
        bill = self.transfers.setdefault(b["out_bill_no"], {
            "out_bill_no": b["out_bill_no"], "transfer_bill_no": "1330" + secrets.token_hex(12),
            "create_time": now, "update_time": now, "state": self.transfer_state,
            "amount": b["transfer_amount"], "openid": b["openid"], "remark": b.get("transfer_remark", ""),
            "fail_reason": ""})
        return self._signed(200, {k: bill[k] for k in ("out_bill_no", "transfer_bill_no", "create_time", "state")})

    async def _transfer_query(self, request: web.Request) -> web.Response:
        """商户单号查询转账单: 404 NOT_FOUND until the bill exists."""
        _, err = await self._auth(request)
        if err:
            return err
        bill = self.transfers.get(request.match_info["no"])
        if bill is None:
            return self._error(404, "NOT_FOUND", "记录不存在")
        body = {"mch_id": self.mchid, "out_bill_no": bill["out_bill_no"], "transfer_bill_no": bill["transfer_bill_no"],
                "appid": self.appid, "state": bill["state"], "transfer_amount": bill["amount"],
                "transfer_remark": bill["remark"], "openid": bill["openid"], "create_time": bill["create_time"],
                "update_time": bill["update_time"]}
        if bill["state"] == "FAIL":
            body["fail_reason"] = bill["fail_reason"] or "PAYEE_ACCOUNT_ABNORMAL"
        return self._signed(200, body)

    def set_transfer(self, out_bill_no: str, state: str, fail_reason: str = "") -> None:
        """The platform moves a bill on (ACCEPTED → PROCESSING → SUCCESS | FAIL, WAIT_USER_CONFIRM
        → CANCELING → CANCELLED …); nothing is pushed: the merchant finds out by asking."""
        bill = self.transfers[out_bill_no]
        bill.update(state=state, fail_reason=fail_reason,
                    update_time=datetime.now(CST).isoformat(timespec="seconds"))

    # -- bills ----------------------------------------------------------------------------
    def bill_text(self, extra_rows: list[str] | None = None) -> str:
        head = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
        rows = []
        for o in self.orders.values():
            if o.state in ("SUCCESS", "REFUND"):
                rows.append(",".join("`" + c for c in [
                    o.success_time, o.appid, o.mchid, "0", "", o.transaction_id, o.out_trade_no,
                    o.openid, o.trade_type, "SUCCESS", "OTHERS", "CNY", _yuan(o.amount), "0.00", "0", "0",
                    "0.00", "0.00", "", "", o.description, "", "0.00", "0.60%", _yuan(o.amount), "0.00", ""]))
        for r in self.refunds.values():
            o = self.orders[r.out_trade_no]
            rows.append(",".join("`" + c for c in [
                o.success_time, o.appid, o.mchid, "0", "", o.transaction_id, o.out_trade_no, o.openid,
                o.trade_type, "REFUND", "OTHERS", "CNY", "0.00", "0.00", r.refund_id, r.out_refund_no,
                _yuan(r.refund), "0.00", "ORIGINAL", r.status, o.description, "", "0.00", "0.60%", "0.00",
                _yuan(r.refund), ""]))
        rows += extra_rows or []
        summary = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
        return "\n".join([head, *rows, summary, f"`{len(rows)},`0.00,`0.00,`0.00,`0.00,`0.00,`0.00"]) + "\n"

    extra_bill_rows: list[str] = field(default_factory=list)
    v2_key: str = ""
    v2_sign_type: str = "MD5"

    # -- APIv2 (XML, MD5 / HMAC-SHA256) ---------------------------------------------------
    def _v2_reply(self, fields: dict[str, Any]) -> web.Response:
        from adapters.wechatpay_v2 import sign_v2
        from wechatpy.pay.utils import dict_to_xml

        body = {"return_code": "SUCCESS", "return_msg": "OK", "appid": self.appid, "mch_id": self.mchid,
                "nonce_str": secrets.token_hex(8), **fields}
        if self.v2_sign_type != "MD5":
            body["sign_type"] = self.v2_sign_type
        return web.Response(text=dict_to_xml(body, sign_v2(body, self.v2_key, self.v2_sign_type)),
                            content_type="text/xml")

    async def _v2_in(self, request: web.Request, path: str) -> dict[str, str] | None:
        from adapters.wechatpay_v2 import parse_xml, verify_v2

        data = parse_xml(await request.read())
        try:
            verify_v2(data, self.v2_key, self.v2_sign_type)
            ok = data.get("mch_id") == self.mchid and data.get("appid") == self.appid
        except PayNotifyError:
            ok = False
        self.calls.append(Call("POST", path, data, ok))
        return data if ok else None

    async def _v2_unified(self, request: web.Request) -> web.Response:
        data = await self._v2_in(request, "/pay/unifiedorder")
        if data is None:
            return web.Response(text="<xml><return_code>FAIL</return_code><return_msg>签名错误</return_msg></xml>",
                                content_type="text/xml")
        no, amount, trade_type = data["out_trade_no"], int(data["total_fee"]), data["trade_type"]
        order = self.orders.get(no)
        if order is None:
            order = self.orders[no] = FakeOrder(no, self.appid, self.mchid, amount, data["notify_url"], trade_type,
                                                data["body"], data.get("openid", ""))
        elif order.amount != amount:
            return self._v2_reply({"result_code": "FAIL", "err_code": "INVALID_REQUEST", "err_code_des": "重复"})
        if trade_type == "JSAPI":
            order.prepay_id = order.prepay_id or "wx" + secrets.token_hex(15)
            return self._v2_reply({"result_code": "SUCCESS", "trade_type": "JSAPI", "prepay_id": order.prepay_id})
        order.code_url = order.code_url or f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"
        return self._v2_reply({"result_code": "SUCCESS", "trade_type": "NATIVE", "code_url": order.code_url})

    async def _v2_query(self, request: web.Request) -> web.Response:
        data = await self._v2_in(request, "/pay/orderquery")
        if data is None:   # as the real platform: a bad signature is refused before any lookup
            return web.Response(text="<xml><return_code>FAIL</return_code><return_msg>签名错误</return_msg></xml>",
                                content_type="text/xml")
        order = self.orders.get(data.get("out_trade_no", ""))
        if order is None:
            return self._v2_reply({"result_code": "FAIL", "err_code": "ORDERNOTEXIST"})
        return self._v2_reply({"result_code": "SUCCESS", "trade_state": order.state, "out_trade_no": order.out_trade_no,
                               "total_fee": order.amount, "transaction_id": order.transaction_id,
                               "openid": order.openid})

    def v2_notify_for(self, out_trade_no: str, /, *, key: str | None = None, sign_type: str | None = None,
                      **overrides: Any) -> bytes:
        from adapters.wechatpay_v2 import sign_v2
        from wechatpy.pay.utils import dict_to_xml

        o = self.orders[out_trade_no]
        st = sign_type or self.v2_sign_type
        body: dict[str, Any] = {
            "return_code": "SUCCESS", "result_code": "SUCCESS", "appid": o.appid, "mch_id": o.mchid,
            "nonce_str": secrets.token_hex(8), "openid": o.openid or "o_v2", "is_subscribe": "Y",
            "trade_type": o.trade_type, "bank_type": "OTHERS", "total_fee": o.amount, "cash_fee": o.amount,
            "fee_type": "CNY", "transaction_id": o.transaction_id or "4200" + secrets.token_hex(14),
            "out_trade_no": o.out_trade_no, "attach": "", "time_end": datetime.now(CST).strftime("%Y%m%d%H%M%S")}
        if st != "MD5":
            body["sign_type"] = st
        body.update(overrides)
        return dict_to_xml(body, sign_v2(body, key or self.v2_key, st)).encode("utf-8")

    async def _tradebill(self, request: web.Request) -> web.Response:
        _, err = await self._auth(request)
        if err:
            return err
        data = self.bill_text(self.extra_bill_rows).encode("utf-8")
        token = secrets.token_hex(8)
        self._bills = getattr(self, "_bills", {})
        self._bills[token] = data
        url = f"{self.base_url}/v3/billdownload/file?token={token}"
        return self._signed(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(data).hexdigest(),
                                  "download_url": url})

    async def _bill_file(self, request: web.Request) -> web.Response:
        _, err = await self._auth(request)
        if err:
            return err
        data = getattr(self, "_bills", {}).get(request.query.get("token", ""))
        if data is None:
            return self._error(404, "NO_STATEMENT_EXIST")
        return web.Response(body=data, content_type="text/plain")

    # -- the payer's side -----------------------------------------------------------------
    def order_by_prepay(self, prepay_id: str) -> FakeOrder:
        return next(o for o in self.orders.values() if o.prepay_id == prepay_id)

    async def pay(self, out_trade_no: str, openid: str | None = None) -> int | None:
        """The user pays: SUCCESS here, then the notify (None if it was lost)."""
        order = self.orders[out_trade_no]
        if order.state == "NOTPAY":
            order.state = "SUCCESS"
            order.transaction_id = "4200" + secrets.token_hex(14)
            order.success_time = datetime.now(CST).isoformat(timespec="seconds")
            order.openid = order.openid or openid or "o_native_payer"
        if self.lose_notifies > 0:
            self.lose_notifies -= 1
            self.notifies.append(("TRANSACTION.SUCCESS", order.notify_url, 0))
            return None
        if self.v2_key:
            return await self._post("v2", order.notify_url, {"Content-Type": "text/xml"},
                                    self.v2_notify_for(out_trade_no))
        return await self.send_notify(out_trade_no)

    def notify_for(self, out_trade_no: str, /, *, now: float | None = None, apiv3_key: str | None = None,
                   platform: KeyPair | None = None, **overrides: Any) -> tuple[dict[str, str], bytes]:
        order = self.orders[out_trade_no]
        plain = self.transaction(order)
        for key, value in overrides.items():
            if key == "amount":
                plain["amount"] = {**plain["amount"], "total": value}
            else:
                plain[key] = value
        return wxpay_v3.build_notify(
            platform=platform or self.platform, apiv3_key=apiv3_key or self.apiv3_key,
            event_type="TRANSACTION.SUCCESS", summary="支付成功", original_type="transaction", plain=plain,
            now=time.time() if now is None else now)

    async def send_notify(self, out_trade_no: str, /, **kw: Any) -> int:
        headers, body = self.notify_for(out_trade_no, **kw)
        return await self._post("TRANSACTION.SUCCESS", self.orders[out_trade_no].notify_url, headers, body)

    async def _post(self, event: str, url: str, headers: Mapping[str, str], body: bytes) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=body, headers=dict(headers)) as resp:
                status = resp.status
        self.notifies.append((event, url, status))
        return status

    async def _cors(self, request: web.Request) -> web.Response:
        return web.Response(headers={"Access-Control-Allow-Origin": "*",
                                     "Access-Control-Allow-Headers": "Content-Type",
                                     "Access-Control-Allow-Methods": "POST"})

    async def _jsbridge(self, request: web.Request) -> web.Response:
        """What the WeChat client does on getBrandWCPayRequest: check paySign, let the user pay."""
        cors = {"Access-Control-Allow-Origin": "*"}
        p = json.loads(await request.read())
        self.calls.append(Call("POST", "/fake/jsbridge", p, True))
        prepay = str(p.get("package", "")).removeprefix("prepay_id=")
        message = f"{p.get('appId')}\n{p.get('timeStamp')}\n{p.get('nonceStr')}\n{p.get('package')}\n"
        if self.v2_key:
            from adapters.wechatpay_v2 import sign_v2

            good = p.get("signType") == self.v2_sign_type and p.get("paySign") == sign_v2(
                {k: v for k, v in p.items() if k != "paySign"}, self.v2_key, self.v2_sign_type)
        else:
            good = p.get("signType") == "RSA" and wxpay_v3.verify(self.merchant_public_pem, message,
                                                                  str(p.get("paySign", "")))
        if p.get("appId") != self.appid or not good:
            return web.json_response({"err_msg": "get_brand_wcpay_request:fail"}, headers=cors)
        try:
            order = self.order_by_prepay(prepay)
        except StopIteration:
            return web.json_response({"err_msg": "get_brand_wcpay_request:fail"}, headers=cors)
        await self.pay(order.out_trade_no)
        return web.json_response({"err_msg": "get_brand_wcpay_request:ok"}, headers=cors)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


MCHID = "1900000109"
APIV3_KEY = "0123456789abcdefABCDEF0123456789"


async def attach_real_pay(mall: Any, aiohttp_server: Any, tmp_path: Any, *, tenant_code: str = "demo",
                          api_version: str = "v3", v2_key: str = "", v2_sign_type: str = "MD5",
                          mchid: str = MCHID, apiv3_key: str = APIV3_KEY) -> FakeWeChatPay:
    """Give `tenant_code` a real pay account pointing at a fresh fake WeChat Pay server
    (each tenant its own: merchant key, platform key, APIv3 key, merchant id)."""
    from storage.pay_repos import PayAccountRepo

    merchant = wxpay_v3.generate_keypair()
    key_dir = tmp_path / ("paykeys" if tenant_code == "demo" else f"paykeys_{tenant_code}")
    key_dir.mkdir(exist_ok=True)
    (key_dir / "apiclient_key.pem").write_bytes(merchant.private_pem)
    tenant = await mall.svc.tenant(tenant_code)
    fake = FakeWeChatPay(mchid=mchid, appid=tenant.wechat_app_id, apiv3_key=apiv3_key,
                         merchant_serial=merchant.serial, merchant_public_pem=merchant.public_pem)
    (key_dir / "pub_key.pem").write_bytes(fake.platform.public_pem)
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    async with mall.svc.uows() as uow:
        await PayAccountRepo(uow.session).save(
            tenant.id, mall.svc.clock(), api_version=api_version, mch_id=mchid, app_id=tenant.wechat_app_id,
            apiv3_key=apiv3_key, apiv2_key=v2_key, v2_sign_type=v2_sign_type,
            private_key_path=str(key_dir / "apiclient_key.pem"), serial_no=merchant.serial,
            platform_mode="public_key", platform_key_path=str(key_dir / "pub_key.pem"),
            platform_key_id=fake.platform.serial, base_url=fake.base_url, enabled=True)
        await uow.commit()
    mall.svc.pay_resolver.forget()
    fake.v2_key, fake.v2_sign_type = (v2_key, v2_sign_type) if api_version == "v2" else ("", "MD5")
    fake.merchant = merchant  # type: ignore[attr-defined]
    return fake
