"""The embedded sandbox gateway: plays WeChat Pay's platform side with locally
generated keys, so the demo and the tests run the real APIv3 notify path: RSA-SHA256
signature, timestamp freshness, AES-256-GCM decryption, merchant and amount checks."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from social_mall.payments import wxpay_v3
from social_mall.payments.gateway import RefundResult, Transaction, TransferBill, TransferResult, parse_fen
from social_mall.payments.wxpay_v3 import KeyPair, PayFormatError

CST = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class SandboxGateway:
    """One tenant's merchant account at the sandbox platform."""

    platform: KeyPair
    mchid: str
    appid: str
    apiv3_key: str
    max_skew: int = 300
    name: str = "sandbox"

    # the platform's side ---------------------------------------------------------
    def pay_notify(
        self, *, out_trade_no: str, amount_fen: int, payer: str, now: float,
        trade_state: str = "SUCCESS", mchid: str | None = None, appid: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The signed, encrypted TRANSACTION.SUCCESS notify WeChat Pay would POST."""
        paid_at = datetime.fromtimestamp(now, CST).isoformat(timespec="seconds")
        plain = {
            "appid": appid or self.appid,
            "mchid": mchid or self.mchid,
            "out_trade_no": out_trade_no,
            "transaction_id": "42000" + secrets.token_hex(12),
            "trade_type": "JSAPI",
            "trade_state": trade_state,
            "trade_state_desc": "支付成功" if trade_state == "SUCCESS" else trade_state,
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": paid_at,
            "payer": {"openid": payer},
            "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY",
                       "payer_currency": "CNY"},
        }
        return wxpay_v3.build_notify(
            platform=self.platform, apiv3_key=self.apiv3_key, event_type="TRANSACTION.SUCCESS",
            summary="支付成功", original_type="transaction", plain=plain, now=now,
        )

    # the merchant's side ---------------------------------------------------------
    def parse_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> Transaction:
        notify = wxpay_v3.parse_notify(
            headers, body, public_keys={self.platform.serial: self.platform.public_pem},
            apiv3_key=self.apiv3_key, now=now, max_skew=self.max_skew,
        )
        return transaction_from(notify.id, notify.resource)

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> RefundResult:
        """The sandbox refunds at once."""
        if not 0 < refund_fen <= total_fen:
            raise PayFormatError("refund amount")
        return RefundResult(out_refund_no, "50000" + secrets.token_hex(10), "SUCCESS")


    async def transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, appid: str | None = None
    ) -> TransferResult:
        """The sandbox pays out at once (amount must be positive, 1 fen at least)."""
        if amount_fen <= 0 or not openid:
            raise PayFormatError("transfer amount or openid")
        return TransferResult(out_bill_no, "1000" + secrets.token_hex(10), "SUCCESS")

    async def query_transfer(self, out_bill_no: str) -> TransferBill:
        """The sandbox pays out at once and keeps no bills: whatever is still open here was
        never sent (its transfer is still queued), so there is nothing to apply."""
        return TransferBill(out_bill_no, "", "NOT_FOUND", None)


def transaction_from(event_id: str, res: Mapping[str, object]) -> Transaction:
    try:
        amount = res["amount"]
        payer = res.get("payer") or {}
        assert isinstance(amount, dict) and isinstance(payer, dict)
        total = parse_fen(amount["total"])
        if total is None:
            raise PayFormatError("amount.total")
        return Transaction(
            event_id=event_id,
            out_trade_no=str(res["out_trade_no"]),
            transaction_id=str(res.get("transaction_id", "")),
            trade_state=str(res["trade_state"]),
            amount_fen=total,
            mchid=str(res["mchid"]),
            appid=str(res["appid"]),
            payer=str(payer.get("openid", "")),
            success_time=str(res.get("success_time", "")),
        )
    except (KeyError, AssertionError, TypeError) as exc:
        raise PayFormatError(f"resource: {exc}") from exc
