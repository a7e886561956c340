"""WeChat Pay APIv2 for older merchants: unified order (JSAPI / NATIVE), order query,
close, and the parsing of its XML pay notify (the route: handlers/pay_v2.py).

Signatures are wechatpy.pay's (`calculate_signature` MD5, `calculate_signature_hmac`
HMAC-SHA256, `dict_to_xml`); requests go through the shared aiohttp session (wechatpy's own
client is synchronous). wechatpy's `parse_payment_result` only checks MD5, so notifies and
answers are verified here: the sign type named in the message (default MD5) must be the one
this account uses, and the signature is compared in constant time. XML from outside is
refused if it carries a DOCTYPE or ENTITY, then parsed by xmltodict with entities disabled.

Refunds and transfers on APIv2 need the merchant's API client certificate (mutual TLS,
`/secapi/pay/refund`): not supported here; such merchants should enable APIv3 (refunds
through v3 work for orders paid through v2).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import xmltodict
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml

from adapters.wechatpay_v3 import PayRefusedError, PayUnavailableError, TradeStatus
from social_mall.parsing import same_secret
from social_mall.payments.gateway import RefundResult, Transaction, TransferResult, parse_fen
from social_mall.payments.wxpay_v3 import PayFormatError, PaySignatureError
from storage.pay_models import TenantPayAccount

log = logging.getLogger(__name__)

_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
SIGN_TYPES = ("MD5", "HMAC-SHA256")


def parse_xml(body: bytes) -> dict[str, str]:
    """A flat `<xml>` document as a dict; PayFormatError on anything else or anything hostile."""
    if _HOSTILE.search(body):
        raise PayFormatError("DOCTYPE/ENTITY not allowed")
    try:
        doc = xmltodict.parse(body, disable_entities=True)
    except Exception:  # noqa: BLE001 - expat errors and friends: a malformed body
        raise PayFormatError("malformed XML") from None
    data = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise PayFormatError("not an <xml> document")
    out: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise PayFormatError(f"nested element {key}")
        out[key] = value
    return out


def sign_v2(params: Mapping[str, object], key: str, sign_type: str) -> str:
    values = {k: v for k, v in params.items() if k != "sign"}
    if sign_type == "HMAC-SHA256":
        return str(calculate_signature_hmac(values, key))
    if sign_type == "MD5":
        return str(calculate_signature(values, key))
    raise PaySignatureError("sign_type")


def verify_v2(data: Mapping[str, str], key: str, expected_type: str) -> None:
    """PaySignatureError unless `data` is signed with `key` the way this account signs."""
    sign_type = data.get("sign_type") or "MD5"
    if sign_type not in SIGN_TYPES or sign_type != expected_type:
        raise PaySignatureError("sign_type")
    sign = data.get("sign", "")
    if not sign or not same_secret(sign.upper(), sign_v2(data, key, sign_type)):
        raise PaySignatureError("signature mismatch")


@dataclass(frozen=True)
class V2Account:
    mchid: str
    appid: str
    api_key: str = field(repr=False)
    sign_type: str = "MD5"
    base_url: str = "https://api.mch.weixin.qq.com"


def v2_account(row: TenantPayAccount) -> V2Account:
    if not row.apiv2_key:
        raise ValueError("APIv2 key not set")
    sign_type = row.v2_sign_type or "MD5"
    if sign_type not in SIGN_TYPES:
        raise ValueError("v2_sign_type")
    return V2Account(row.mch_id, row.app_id, row.apiv2_key, sign_type, row.base_url or V2Account.base_url)


class WeChatPayV2Gateway:
    name = "wxpay_v2"

    def __init__(self, http: aiohttp.ClientSession, account: V2Account, *, notify_url: str,
                 clock: Callable[[], float] = time.time, timeout: float = 10.0) -> None:
        self._http, self.account = http, account
        self.mchid, self.appid = account.mchid, account.appid
        self.notify_url, self._clock, self._timeout = notify_url, clock, timeout

    def __repr__(self) -> str:
        return f"WeChatPayV2Gateway(mchid={self.mchid!r})"

    async def call(self, path: str, params: Mapping[str, object]) -> dict[str, str]:
        body: dict[str, object] = {"appid": self.appid, "mch_id": self.mchid,
                                   "nonce_str": secrets.token_hex(16), **params}
        if self.account.sign_type != "MD5":
            body["sign_type"] = self.account.sign_type
        xml = dict_to_xml(body, sign_v2(body, self.account.api_key, self.account.sign_type))
        try:
            async with self._http.post(self.account.base_url.rstrip("/") + path, data=xml.encode("utf-8"),
                                       headers={"Content-Type": "text/xml; charset=utf-8"},
                                       timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PayUnavailableError(type(exc).__name__) from None
        if status != 200:
            raise PayUnavailableError(str(status))
        data = parse_xml(raw)
        if data.get("return_code") != "SUCCESS":
            log.warning("pay.v2.error", extra={"path": path, "return_msg": data.get("return_msg", "")[:60]})
            raise PayRefusedError(400, "FAIL", data.get("return_msg", ""))
        try:
            verify_v2(data, self.account.api_key, self.account.sign_type)
        except PaySignatureError:
            raise PayUnavailableError("response signature") from None
        return data

    def _business(self, data: Mapping[str, str]) -> None:
        if data.get("result_code") != "SUCCESS":
            code = data.get("err_code", "FAIL")
            if code in ("SYSTEMERROR", "BANKERROR"):
                raise PayUnavailableError(code)
            raise PayRefusedError(400, code, data.get("err_code_des", ""))

    async def _unified(self, trade_type: str, out_trade_no: str, description: str, amount_fen: int,
                       openid: str = "", time_expire: str | None = None) -> dict[str, str]:
        params: dict[str, object] = {
            "body": description[:127], "out_trade_no": out_trade_no, "total_fee": amount_fen,
            "spbill_create_ip": "127.0.0.1", "notify_url": self.notify_url, "trade_type": trade_type,
        }
        if openid:
            params["openid"] = openid
        data = await self.call("/pay/unifiedorder", params)
        self._business(data)
        return data

    async def jsapi(self, *, out_trade_no: str, description: str, amount_fen: int, openid: str,
                    time_expire: str | None = None) -> str:
        data = await self._unified("JSAPI", out_trade_no, description, amount_fen, openid)
        if not data.get("prepay_id"):
            raise PayUnavailableError("no prepay_id")
        return data["prepay_id"]

    async def native(self, *, out_trade_no: str, description: str, amount_fen: int,
                     time_expire: str | None = None) -> str:
        data = await self._unified("NATIVE", out_trade_no, description, amount_fen)
        if not data.get("code_url"):
            raise PayUnavailableError("no code_url")
        return data["code_url"]

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        params = {"appId": self.appid, "timeStamp": str(int(self._clock())), "nonceStr": secrets.token_hex(16),
                  "package": f"prepay_id={prepay_id}", "signType": self.account.sign_type}
        params["paySign"] = sign_v2(params, self.account.api_key, self.account.sign_type)
        return params

    async def query(self, out_trade_no: str) -> TradeStatus:
        data = await self.call("/pay/orderquery", {"out_trade_no": out_trade_no})
        if data.get("result_code") != "SUCCESS":
            if data.get("err_code") == "ORDERNOTEXIST":
                return TradeStatus("ORDER_NOT_EXIST", None)
            self._business(data)
        state = data.get("trade_state", "")
        tx = transaction_from_v2(f"query:{data.get('transaction_id', '')}", data) if state == "SUCCESS" else None
        return TradeStatus(state, tx)

    async def close(self, out_trade_no: str) -> None:
        self._business(await self.call("/pay/closeorder", {"out_trade_no": out_trade_no}))

    def parse_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> Transaction:
        data = parse_xml(body)
        verify_v2(data, self.account.api_key, self.account.sign_type)
        if data.get("return_code") != "SUCCESS":
            raise PayFormatError("return_code")
        return transaction_from_v2(f"v2:{data.get('transaction_id', '')}", data)

    async def refund(self, **_: Any) -> RefundResult:
        raise PayUnavailableError("APIv2 refunds need the merchant API certificate: enable APIv3")

    async def transfer(self, **_: Any) -> TransferResult:
        raise PayUnavailableError("APIv2 transfers need the merchant API certificate: enable APIv3")

    async def query_transfer(self, out_bill_no: str) -> Any:
        raise PayUnavailableError("APIv2 transfers need the merchant API certificate: enable APIv3")


def transaction_from_v2(event_id: str, data: Mapping[str, str]) -> Transaction:
    total = parse_fen(data.get("total_fee", ""))
    if total is None:
        raise PayFormatError("total_fee")
    state = data.get("trade_state") or ("SUCCESS" if data.get("result_code") == "SUCCESS" else "PAYERROR")
    for key in ("out_trade_no", "mch_id", "appid"):
        if not data.get(key):
            raise PayFormatError(key)
    return Transaction(
        event_id=event_id, out_trade_no=data["out_trade_no"], transaction_id=data.get("transaction_id", ""),
        trade_state=state, amount_fen=total, mchid=data["mch_id"], appid=data["appid"],
        payer=data.get("openid", ""), success_time=data.get("time_end", ""),
    )
