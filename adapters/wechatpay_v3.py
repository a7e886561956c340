"""The real WeChat Pay APIv3 gateway (JSAPI / Native orders, query, close, refund,
transfer, notifies), the per-tenant gateway resolver, and the `pay` module.

Signing and verification are `social_mall.payments.wxpay_v3` (RSA-SHA256 with the merchant
key, platform signature on every 2xx answer and notify, AES-256-GCM resources). HTTP is the
shared `aiohttp` session; the base URL comes from the tenant's pay account so tests talk to a
fake on 127.0.0.1. Keys are never logged: the account's repr shows ids only.

Transfers use the current API (`/v3/fund-app/mch-transfer/transfer-bills`, "商家转账"):
the merchant must enable 商家转账 in the merchant platform and register the transfer scene
(`transfer_scene_id`, default 1000 现金营销). The bill's state is passed on as it is
(ACCEPTED, PROCESSING, WAIT_USER_CONFIRM for scenes the user must confirm, TRANSFERING,
SUCCESS, FAIL, CANCELING, CANCELLED); `query_transfer` asks for it again by out_bill_no
(the referral module's payout sweeper polls every payout not final yet).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from cryptography.x509 import load_pem_x509_certificates
from cryptography.hazmat.primitives import serialization
from yarl import URL

from social_mall.errors import MallError
from social_mall.payments import wxpay_v3
from social_mall.payments.gateway import PayGateway, RefundResult, Transaction, TransferBill, TransferResult, parse_fen
from social_mall.payments.sandbox import transaction_from
from social_mall.payments.wxpay_v3 import KeyPair, PayFormatError, PayNotifyError, PaySignatureError
from social_mall.tenants import TenantView
from storage.cache import MISS, ReadCache
from storage.pay_models import TenantPayAccount
from storage.pay_repos import PayAccountRepo

log = logging.getLogger(__name__)

USER_AGENT = "social_mall-wxpay/1.0"
TRANSFER_SCENE_ID = "1000"


class PayRefusedError(PayFormatError):
    """The gateway refused the request for good (4xx: PARAM_ERROR, INVALID_REQUEST…)."""

    code = "pay_refused"

    def __init__(self, status: int, gateway_code: str, message: str) -> None:
        super().__init__(gateway_code)
        self.status, self.gateway_code, self.message = status, gateway_code, message


class PayUnavailableError(MallError):
    """Network trouble, 5xx, rate limit, or a misconfigured account: retry later."""

    code = "pay_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TradeStatus:
    """What `query` learned: the state and, once paid, a Transaction to apply."""

    trade_state: str
    transaction: Transaction | None


@dataclass(frozen=True)
class RefundNotice:
    """A decrypted, signature-checked refund notify."""

    event_id: str
    mchid: str
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    refund_status: str  # SUCCESS | CLOSED | ABNORMAL
    refund_fen: int
    total_fen: int


@dataclass(frozen=True)
class V3Account:
    """A tenant's APIv3 merchant account, loaded (key material stays out of repr)."""

    mchid: str
    appid: str
    apiv3_key: str = field(repr=False)
    merchant: KeyPair = field(repr=False)
    platform_keys: Mapping[str, bytes] = field(repr=False)
    base_url: str = "https://api.mch.weixin.qq.com"
    platform_mode: str = "public_key"
    platform_key_id: str = ""


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class WeChatPayV3Gateway:
    """One tenant's merchant account at WeChat Pay (APIv3)."""

    name = "wxpay_v3"

    def __init__(
        self, http: aiohttp.ClientSession, account: V3Account, *, notify_url: str,
        refund_notify_url: str, max_skew: int = 300, clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._http, self.account = http, account
        self.mchid, self.appid = account.mchid, account.appid
        self.notify_url, self.refund_notify_url = notify_url, refund_notify_url
        self.max_skew, self._clock, self._timeout = max_skew, clock, timeout

    def __repr__(self) -> str:
        return f"WeChatPayV3Gateway(mchid={self.mchid!r})"

    # -- HTTP ---------------------------------------------------------------------------
    def _public_keys(self) -> Mapping[str, bytes]:
        return self.account.platform_keys

    async def request(
        self, method: str, path: str, body: Mapping[str, object] | None = None,
        query: Mapping[str, str] | None = None, *, verify: bool = True,
    ) -> tuple[int, Any]:
        """A signed APIv3 call; the 2xx answer's platform signature is checked."""
        target = quote(path, safe="/-_.~") + ("?" + urlencode(query) if query else "")
        text = _dumps(dict(body)) if body is not None else ""
        now = int(self._clock())
        auth = wxpay_v3.authorization(
            method, target, text, mchid=self.mchid, keypair=self.account.merchant,
            timestamp=now, nonce=wxpay_v3.new_nonce(),
        )
        headers = {"Authorization": auth, "Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.account.platform_mode == "public_key" and self.account.platform_key_id:
            headers["Wechatpay-Serial"] = self.account.platform_key_id
        url = URL(self.account.base_url.rstrip("/") + target, encoded=True)
        try:
            async with self._http.request(
                method, url, data=text.encode("utf-8") if body is not None else None, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PayUnavailableError(type(exc).__name__) from None
        if 200 <= status < 300:
            if verify:
                try:
                    wxpay_v3.verify_response(resp_headers, raw, public_keys=self._public_keys(),
                                             now=self._clock(), max_skew=self.max_skew)
                except PayNotifyError as exc:
                    log.warning("pay.v3.response_unverified", extra={"path": path, "reason": exc.code})
                    raise PayUnavailableError("response signature") from None
            return status, (json.loads(raw) if raw else {})
        try:
            err = json.loads(raw) if raw else {}
        except ValueError:
            err = {}
        code = str(err.get("code", "")) if isinstance(err, dict) else ""
        message = str(err.get("message", "")) if isinstance(err, dict) else ""
        log.warning("pay.v3.error", extra={"path": path, "status": status, "code": code})
        if status >= 500 or status == 429 or code in ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "NOT_ENOUGH"):
            raise PayUnavailableError(code or str(status))
        raise PayRefusedError(status, code, message)

    # -- orders -------------------------------------------------------------------------
    def _order_body(self, out_trade_no: str, description: str, amount_fen: int,
                    time_expire: str | None) -> dict[str, object]:
        body: dict[str, object] = {
            "appid": self.appid, "mchid": self.mchid, "description": description[:127],
            "out_trade_no": out_trade_no, "notify_url": self.notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
        }
        if time_expire:
            body["time_expire"] = time_expire
        return body

    async def jsapi(self, *, out_trade_no: str, description: str, amount_fen: int, openid: str,
                    time_expire: str | None = None, appid: str | None = None) -> str:
        """Create a JSAPI order; its prepay_id (valid 2 h). `appid`: the app the payer's
        openid belongs to when not the account's own (a mini-program bound to the merchant)."""
        body = self._order_body(out_trade_no, description, amount_fen, time_expire)
        if appid:
            body["appid"] = appid
        body["payer"] = {"openid": openid}
        _, data = await self.request("POST", "/v3/pay/transactions/jsapi", body)
        prepay_id = data.get("prepay_id") if isinstance(data, dict) else None
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PayUnavailableError("no prepay_id")
        return prepay_id

    async def native(self, *, out_trade_no: str, description: str, amount_fen: int,
                     time_expire: str | None = None) -> str:
        """Create a Native (QR) order; its code_url (weixin://wxpay/bizpayurl?pr=…)."""
        body = self._order_body(out_trade_no, description, amount_fen, time_expire)
        _, data = await self.request("POST", "/v3/pay/transactions/native", body)
        code_url = data.get("code_url") if isinstance(data, dict) else None
        if not isinstance(code_url, str) or not code_url:
            raise PayUnavailableError("no code_url")
        return code_url

    def jsapi_params(self, prepay_id: str, appid: str | None = None) -> dict[str, str]:
        """What the pay page hands to WeixinJSBridge getBrandWCPayRequest / wx.chooseWXPay
        (a mini-program's wx.requestPayment takes the same fields, signed with its `appid`)."""
        ts, nonce, app = str(int(self._clock())), wxpay_v3.new_nonce(), appid or self.appid
        return {
            "appId": app, "timeStamp": ts, "nonceStr": nonce, "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
            "paySign": wxpay_v3.jsapi_pay_sign(app, ts, nonce, prepay_id, self.account.merchant),
        }

    async def query(self, out_trade_no: str) -> TradeStatus:
        try:
            _, data = await self.request(
                "GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}", query={"mchid": self.mchid})
        except PayRefusedError as exc:
            if exc.status == 404 or exc.gateway_code == "ORDER_NOT_EXIST":
                return TradeStatus("ORDER_NOT_EXIST", None)
            raise
        if not isinstance(data, dict) or not isinstance(data.get("trade_state"), str):
            raise PayUnavailableError("query answer")
        state = str(data["trade_state"])
        tx = None
        if state == "SUCCESS":
            tx = transaction_from(f"query:{data.get('transaction_id', '')}", data)
        return TradeStatus(state, tx)

    async def close(self, out_trade_no: str) -> None:
        await self.request("POST", f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
                           {"mchid": self.mchid})

    # -- refunds ------------------------------------------------------------------------
    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> RefundResult:
        if not 0 < refund_fen <= total_fen:
            raise PayFormatError("refund amount")
        body = {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "reason": reason[:80],
            "notify_url": self.refund_notify_url,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        }
        _, data = await self.request("POST", "/v3/refund/domestic/refunds", body)
        return _refund_result(out_refund_no, data)

    async def query_refund(self, out_refund_no: str) -> RefundResult:
        _, data = await self.request("GET", f"/v3/refund/domestic/refunds/{out_refund_no}")
        return _refund_result(out_refund_no, data)

    # -- transfers ----------------------------------------------------------------------
    async def transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, appid: str | None = None
    ) -> TransferResult:
        """商家转账 to `openid` of `appid` (the payee's official account, bound to this
        merchant; WeChat Pay refuses an app id it isn't bound to: APPID_MCHID_NOT_MATCH)."""
        if amount_fen <= 0 or not openid:
            raise PayFormatError("transfer amount or openid")
        body = {
            "appid": appid or self.appid, "out_bill_no": out_bill_no, "transfer_scene_id": TRANSFER_SCENE_ID,
            "openid": openid, "transfer_amount": amount_fen, "transfer_remark": remark[:32],
            "transfer_scene_report_infos": [
                {"info_type": "活动名称", "info_content": "推广佣金"},
                {"info_type": "奖励说明", "info_content": "分销佣金提现"},
            ],
        }
        _, data = await self.request("POST", "/v3/fund-app/mch-transfer/transfer-bills", body)
        if not isinstance(data, dict):
            raise PayUnavailableError("transfer answer")
        state = str(data.get("state", "")) or "PROCESSING"
        return TransferResult(out_bill_no, str(data.get("transfer_bill_no", "")), state)

    async def query_transfer(self, out_bill_no: str) -> TransferBill:
        """GET /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no} (商户单号查询转账单)."""
        try:
            _, data = await self.request("GET", f"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}")
        except PayRefusedError as exc:
            if exc.status == 404 or exc.gateway_code == "NOT_FOUND":
                return TransferBill(out_bill_no, "", "NOT_FOUND", None)
            raise
        amount = data.get("transfer_amount") if isinstance(data, dict) else None
        if (not isinstance(data, dict) or data.get("out_bill_no") != out_bill_no
                or str(data.get("mch_id", self.mchid)) != self.mchid or not isinstance(data.get("state"), str)
                or not isinstance(amount, int) or isinstance(amount, bool)):
            raise PayUnavailableError("transfer bill answer")
        return TransferBill(out_bill_no, str(data.get("transfer_bill_no", "")), str(data["state"]), amount,
                            str(data.get("fail_reason", ""))[:80])

    # -- bills --------------------------------------------------------------------------
    async def trade_bill(self, bill_date: str) -> str:
        """The day's trade bill (bill_type ALL) as text, its SHA-1 checked."""
        import hashlib

        _, meta = await self.request("GET", "/v3/bill/tradebill",
                                     query={"bill_date": bill_date, "bill_type": "ALL"})
        url = URL(str(meta.get("download_url", "")))
        base = URL(self.account.base_url)
        target = url.raw_path_qs
        # the download is signed like any request but its answer is not: check the hash
        now = int(self._clock())
        auth = wxpay_v3.authorization("GET", target, "", mchid=self.mchid, keypair=self.account.merchant,
                                      timestamp=now, nonce=wxpay_v3.new_nonce())
        fetch = URL(str(base.with_path("")).rstrip("/") + target, encoded=True) if url.host == base.host else url
        try:
            async with self._http.get(fetch, headers={"Authorization": auth, "User-Agent": USER_AGENT},
                                      timeout=aiohttp.ClientTimeout(total=60)) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise PayUnavailableError(f"bill download {resp.status}")
        except aiohttp.ClientError as exc:
            raise PayUnavailableError(type(exc).__name__) from None
        if str(meta.get("hash_type", "SHA1")).upper() == "SHA1":
            if hashlib.sha1(raw).hexdigest() != str(meta.get("hash_value", "")).lower():
                raise PayUnavailableError("bill hash mismatch")
        return raw.decode("utf-8-sig")

    # -- notifies -----------------------------------------------------------------------
    def parse_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> Transaction:
        notify = wxpay_v3.parse_notify(headers, body, public_keys=self._public_keys(),
                                       apiv3_key=self.account.apiv3_key, now=now, max_skew=self.max_skew)
        if notify.event_type != "TRANSACTION.SUCCESS" and not notify.event_type.startswith("TRANSACTION."):
            raise PayFormatError("event_type")
        return transaction_from(notify.id, notify.resource)

    def parse_refund_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> RefundNotice:
        notify = wxpay_v3.parse_notify(headers, body, public_keys=self._public_keys(),
                                       apiv3_key=self.account.apiv3_key, now=now, max_skew=self.max_skew)
        if not notify.event_type.startswith("REFUND."):
            raise PayFormatError("event_type")
        res = notify.resource
        try:
            amount = res["amount"]
            assert isinstance(amount, dict)
            refund, total = parse_fen(amount["refund"]), parse_fen(amount["total"])
            if refund is None or total is None:
                raise PayFormatError("amount")
            return RefundNotice(
                event_id=notify.id, mchid=str(res["mchid"]), out_trade_no=str(res["out_trade_no"]),
                out_refund_no=str(res["out_refund_no"]), refund_id=str(res.get("refund_id", "")),
                refund_status=str(res["refund_status"]), refund_fen=refund, total_fen=total,
            )
        except (KeyError, AssertionError, TypeError) as exc:
            raise PayFormatError(f"refund resource: {exc}") from None


def _refund_result(out_refund_no: str, data: object) -> RefundResult:
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise PayUnavailableError("refund answer")
    return RefundResult(out_refund_no, str(data.get("refund_id", "")), str(data["status"]))


class UnavailableGateway:
    """A tenant whose pay account can't be loaded (missing key file…): never the sandbox —
    every call fails loudly so nothing is paid out or refunded by pretend."""

    name = "unavailable"

    def __init__(self, mchid: str, appid: str, reason: str) -> None:
        self.mchid, self.appid, self.reason = mchid, appid, reason

    def parse_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> Transaction:
        raise PaySignatureError("pay account unavailable")

    async def refund(self, **_: Any) -> RefundResult:
        raise PayUnavailableError(self.reason)

    async def transfer(self, **_: Any) -> TransferResult:
        raise PayUnavailableError(self.reason)

    async def query_transfer(self, out_bill_no: str) -> TransferBill:
        raise PayUnavailableError(self.reason)


# -- loading accounts ---------------------------------------------------------------------

def _read(path: str, what: str) -> bytes:
    if not path:
        raise ValueError(f"{what} path not set")
    return Path(path).expanduser().read_bytes()


def load_platform_keys(mode: str, path: str, key_id: str) -> dict[str, bytes]:
    """serial → public PEM. public_key mode: one key under its PUB_KEY_ID_…; certificate
    mode: every certificate in the file under its serial (hex, upper case)."""
    pem = _read(path, "platform key")
    if mode == "public_key":
        if not key_id:
            raise ValueError("platform_key_id (PUB_KEY_ID_…) not set")
        serialization.load_pem_public_key(pem)  # fail early on a bad file
        return {key_id: pem}
    if mode != "certificate":
        raise ValueError(f"platform_mode {mode!r}")
    out: dict[str, bytes] = {}
    for cert in load_pem_x509_certificates(pem):
        out[f"{cert.serial_number:X}"] = cert.public_bytes(serialization.Encoding.PEM)
    if key_id and key_id not in out:
        raise ValueError("platform_key_id not among the certificates")
    return out


def load_v3_account(row: TenantPayAccount) -> V3Account:
    merchant = KeyPair.from_private_pem(row.serial_no, _read(row.private_key_path, "merchant key"))
    return V3Account(
        mchid=row.mch_id, appid=row.app_id, apiv3_key=row.apiv3_key, merchant=merchant,
        platform_keys=load_platform_keys(row.platform_mode, row.platform_key_path, row.platform_key_id),
        base_url=row.base_url or "https://api.mch.weixin.qq.com", platform_mode=row.platform_mode,
        platform_key_id=row.platform_key_id,
    )


ACCOUNT_CACHE_SECONDS = 30.0


class PayResolver:
    """Per-tenant real gateways, one per merchant, refreshed whenever the tenant is looked up
    (handlers/context calls `refresh` from `Services.tenant` / `tenant_by_id`, then
    `gateway()` asks `cached` for the view's merchant: `tenant.merchant_id`, 0 the default)."""

    def __init__(self, svc: Any) -> None:
        self._svc = svc
        # one account read per tenant per ACCOUNT_CACHE_SECONDS, shared by concurrent lookups
        self._fresh = ReadCache(ttl=ACCOUNT_CACHE_SECONDS)
        self._gateways: dict[int, dict[int, PayGateway]] = {}

    async def refresh(self, tenant: TenantView) -> None:
        self._gateways[tenant.id] = await self._fresh.get_or_load(tenant.id, lambda: self._load(tenant))

    async def _load(self, tenant: TenantView) -> dict[int, PayGateway]:
        async with self._svc.uows() as uow:
            rows = await PayAccountRepo(uow.session).merchants(tenant.id)
        found: dict[int, PayGateway] = {}
        for i, row in enumerate(rows):  # the default first: key 0 as well as its id
            if not row.enabled:  # real credentials exist: never the sandbox, and nothing is paid
                gw: PayGateway = UnavailableGateway(row.mch_id, row.app_id, "disabled")  # type: ignore[assignment]
            else:
                gw = self.build(tenant, row, default=i == 0)
            found[row.id] = gw
            if i == 0:
                found[0] = gw
        return found

    def fresh(self, tenant: TenantView) -> bool:
        return self._fresh.peek(tenant.id) is not MISS  # a fresh entry was stored by `refresh`

    def cached(self, tenant: TenantView) -> PayGateway | None:
        merchants = self._gateways.get(tenant.id) or {}
        return merchants.get(tenant.merchant_id or 0)  # a merchant gone since: no gateway, never another

    def forget(self, tenant_id: int | None = None) -> None:
        self._fresh.clear()
        if tenant_id is None:
            self._gateways.clear()
        else:
            self._gateways.pop(tenant_id, None)

    def build(self, tenant: TenantView, row: TenantPayAccount, *, default: bool = True) -> PayGateway:
        svc = self._svc
        skew = svc.settings.signature_max_skew_seconds
        suffix = "" if default else f"/{row.id}"  # another merchant's notifies come to its own URL
        try:
            if row.api_version == "v2":
                from adapters.wechatpay_v2 import WeChatPayV2Gateway, v2_account

                return WeChatPayV2Gateway(svc.http, v2_account(row),
                                          notify_url=v2_notify_url(svc, tenant.code) + suffix)
            return WeChatPayV3Gateway(
                svc.http, load_v3_account(row), notify_url=svc.notify_url(tenant.code) + suffix,
                refund_notify_url=refund_notify_url(svc, tenant.code) + suffix, max_skew=skew,
            )
        except (OSError, ValueError, TypeError) as exc:
            log.error("pay.account.invalid", extra={"tenant": tenant.code, "error": type(exc).__name__})
            return UnavailableGateway(row.mch_id, row.app_id, "account")  # type: ignore[return-value]


def refund_notify_url(svc: Any, code: str) -> str:
    return f"{svc.public_base_url}/pay/refund-notify/{code}"


def v2_notify_url(svc: Any, code: str) -> str:
    return f"{svc.public_base_url}/pay/notify-v2/{code}"
