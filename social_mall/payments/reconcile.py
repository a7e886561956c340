"""Lost notifies and daily reconciliation: the pure rules (the I/O lives in handlers/).

* `sweep_action`: what the active-query sweeper does with a payment still unpaid here,
  given what the gateway says about it.
* `parse_trade_bill`: WeChat Pay's trade bill (APIv3 ``/v3/bill/tradebill``, bill_type ALL):
  a CSV whose fields carry a leading backtick, then a summary block.
* `reconcile`: compare the bill with our payments and refunds, list every mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum


class SweepAction(StrEnum):
    APPLY = "apply"   # the gateway says paid: apply it like a notify (late → refund)
    CLOSE = "close"   # unpaid there and closed here: close it there so it can't be paid
    WAIT = "wait"     # still payable: ask again later
    FINAL = "final"   # nothing more to learn


PAYABLE_HERE = ("pending_payment",)


def sweep_action(trade_state: str, order_status: str) -> SweepAction:
    if trade_state == "SUCCESS":
        return SweepAction.APPLY
    if trade_state in ("NOTPAY", "USERPAYING"):
        return SweepAction.WAIT if order_status in PAYABLE_HERE else SweepAction.CLOSE
    if trade_state == "ORDER_NOT_EXIST":
        return SweepAction.WAIT if order_status in PAYABLE_HERE else SweepAction.FINAL
    return SweepAction.FINAL  # CLOSED, REVOKED, PAYERROR, REFUND


def yuan_to_fen(text: str) -> int:
    """"12.3" → 1230, "-0.01" → -1 (integer arithmetic, no floats)."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    whole, _, frac = s.partition(".")
    if not (whole or frac) or not (whole + frac).isdigit() or len(frac) > 2:
        raise ValueError(f"not an amount: {text!r}")
    return sign * (int(whole or "0") * 100 + int((frac + "00")[:2]))


@dataclass(frozen=True)
class BillRow:
    out_trade_no: str
    transaction_id: str
    trade_state: str       # SUCCESS | REFUND | REVOKED
    amount_fen: int        # 应结订单金额
    out_refund_no: str
    refund_fen: int
    refund_status: str


COLUMNS = {
    "transaction_id": "微信订单号", "out_trade_no": "商户订单号", "trade_state": "交易状态",
    "amount": "应结订单金额", "out_refund_no": "商户退款单号", "refund": "退款金额",
    "refund_status": "退款状态",
}


def parse_trade_bill(text: str) -> list[BillRow]:
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if not lines:
        return []
    header = [h.strip().lstrip("\ufeff") for h in lines[0].split(",")]
    try:
        idx = {key: header.index(name) for key, name in COLUMNS.items()}
    except ValueError as exc:
        raise ValueError(f"trade bill header: {exc}") from None
    rows: list[BillRow] = []
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break
        cells = [c.strip().lstrip("`") for c in line.split(",")]
        if len(cells) < len(header):
            raise ValueError("trade bill row is short")

        def cell(key: str) -> str:
            return cells[idx[key]]

        rows.append(BillRow(
            out_trade_no=cell("out_trade_no"), transaction_id=cell("transaction_id"),
            trade_state=cell("trade_state"), amount_fen=yuan_to_fen(cell("amount") or "0"),
            out_refund_no=cell("out_refund_no"), refund_fen=yuan_to_fen(cell("refund") or "0"),
            refund_status=cell("refund_status"),
        ))
    return rows


@dataclass(frozen=True)
class OurPayment:
    out_trade_no: str
    amount_fen: int
    status: str  # created | paid
    transaction_id: str


@dataclass(frozen=True)
class OurRefund:
    out_refund_no: str
    amount_fen: int
    status: str  # pending | processing | succeeded | failed


@dataclass(frozen=True)
class Mismatch:
    kind: str  # unknown_trade | not_paid_here | amount_mismatch | missing_in_bill | refund_*
    ref: str
    ours: int | None
    theirs: int | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def reconcile(
    bill: Sequence[BillRow], payments: Iterable[OurPayment], refunds: Iterable[OurRefund] = ()
) -> list[Mismatch]:
    """Every difference between the gateway's day and ours, sorted for stable reports."""
    ours = {p.out_trade_no: p for p in payments}
    our_refunds = {r.out_refund_no: r for r in refunds}
    out: list[Mismatch] = []
    seen: set[str] = set()
    seen_refunds: set[str] = set()
    for row in bill:
        if row.trade_state == "REFUND" and row.out_refund_no:
            seen_refunds.add(row.out_refund_no)
            mine = our_refunds.get(row.out_refund_no)
            if mine is None:
                out.append(Mismatch("refund_unknown", row.out_refund_no, None, row.refund_fen))
            elif mine.amount_fen != row.refund_fen:
                out.append(Mismatch("refund_amount_mismatch", row.out_refund_no, mine.amount_fen, row.refund_fen))
            elif mine.status != "succeeded" and row.refund_status == "SUCCESS":
                out.append(Mismatch("refund_not_settled_here", row.out_refund_no, mine.amount_fen, row.refund_fen))
            continue
        if row.trade_state != "SUCCESS":
            continue
        seen.add(row.out_trade_no)
        pay = ours.get(row.out_trade_no)
        if pay is None:
            out.append(Mismatch("unknown_trade", row.out_trade_no, None, row.amount_fen))
        elif pay.status != "paid":
            out.append(Mismatch("not_paid_here", row.out_trade_no, pay.amount_fen, row.amount_fen))
        elif pay.amount_fen != row.amount_fen:
            out.append(Mismatch("amount_mismatch", row.out_trade_no, pay.amount_fen, row.amount_fen))
    for pay in ours.values():
        if pay.status == "paid" and pay.out_trade_no not in seen:
            out.append(Mismatch("missing_in_bill", pay.out_trade_no, pay.amount_fen, None))
    for ref in our_refunds.values():
        if ref.status == "succeeded" and ref.out_refund_no not in seen_refunds:
            out.append(Mismatch("refund_missing_in_bill", ref.out_refund_no, ref.amount_fen, None))
    return sorted(out, key=lambda m: (m.kind, m.ref))
