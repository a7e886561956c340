"""The payment gateway port: what the core needs from WeChat Pay (or its sandbox)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


#: The largest amount in fen we take from a gateway (what a 64-bit column holds). Anything
#: outside 0..MAX_FEN in a notify or query answer is malformed, never a mismatch to store.
MAX_FEN = 2**63 - 1


def parse_fen(raw: object) -> int | None:
    """An amount in fen as WeChat Pay sends it: a JSON integer (APIv3) or ASCII digits
    (APIv2 XML). None for anything else: bools, floats, negative or absurd numbers
    (10**30), Unicode digits ("²" passes str.isdigit), signs, blanks."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
            return None
        raw = int(raw)
    if not isinstance(raw, int):
        return None
    return raw if 0 <= raw <= MAX_FEN else None


@dataclass(frozen=True)
class Transaction:
    """A decrypted, signature-checked pay notify (APIv3 `transaction` resource)."""

    event_id: str
    out_trade_no: str
    transaction_id: str
    trade_state: str
    amount_fen: int
    mchid: str
    appid: str
    payer: str
    success_time: str


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    refund_id: str
    status: str  # PROCESSING | SUCCESS | CLOSED | ABNORMAL


@dataclass(frozen=True)
class TransferResult:
    """A payout to a WeChat user's balance (distributor withdrawals)."""

    out_bill_no: str
    transfer_id: str
    status: str  # the bill's state: ACCEPTED | PROCESSING | WAIT_USER_CONFIRM | TRANSFERING | SUCCESS | FAIL | …


@dataclass(frozen=True)
class TransferBill:
    """A payout as the gateway sees it now (商家转账单 queried by out_bill_no)."""

    out_bill_no: str
    transfer_id: str
    state: str             # ACCEPTED | PROCESSING | WAIT_USER_CONFIRM | TRANSFERING | SUCCESS | FAIL |
                           # CANCELING | CANCELLED, or NOT_FOUND (the gateway has no such bill)
    amount_fen: int | None  # None when not found
    fail_reason: str = ""


class PayGateway(Protocol):
    name: str
    mchid: str
    appid: str

    def parse_notify(self, headers: Mapping[str, str], body: bytes, now: float) -> Transaction:
        """Verify and decrypt a pay notify; raise a PayNotifyError when it must be refused."""
        ...

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> RefundResult: ...

    async def transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, appid: str | None = None
    ) -> TransferResult:
        """Pay `amount_fen` out to `openid`, an openid of `appid` (an app id bound to the
        merchant: the payee's official account's), or of the gateway's own app id."""
        ...

    async def query_transfer(self, out_bill_no: str) -> TransferBill:
        """Where a payout stands (the sweeper polls payouts not final yet)."""
        ...
