"""The pure rules behind the pay sweeper and the daily reconciliation."""

import pytest

from social_mall.payments.reconcile import (
    BillRow,
    Mismatch,
    OurPayment,
    OurRefund,
    SweepAction,
    parse_trade_bill,
    reconcile,
    sweep_action,
    yuan_to_fen,
)

HEAD = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
        "手续费,费率,订单金额,申请退款金额,费率备注")


def row(no, state, amount, out_refund="0", refund="0.00", refund_status=""):
    cells = ["2026-11-24 10:00:00", "wx1", "19", "0", "", "42" + no, no, "o1", "JSAPI", state, "OTHERS", "CNY",
             amount, "0.00", "0", out_refund, refund, "0.00", "", refund_status, "橙子", "", "0.00", "0.60%",
             amount, refund, ""]
    return ",".join("`" + c for c in cells)


@pytest.mark.parametrize("state, order, action", [
    ("SUCCESS", "pending_payment", SweepAction.APPLY),
    ("SUCCESS", "cancelled", SweepAction.APPLY),
    ("NOTPAY", "pending_payment", SweepAction.WAIT),
    ("USERPAYING", "pending_payment", SweepAction.WAIT),
    ("NOTPAY", "cancelled", SweepAction.CLOSE),
    ("CLOSED", "cancelled", SweepAction.FINAL),
    ("PAYERROR", "pending_payment", SweepAction.FINAL),
    ("ORDER_NOT_EXIST", "pending_payment", SweepAction.WAIT),
    ("ORDER_NOT_EXIST", "cancelled", SweepAction.FINAL),
])
def test_sweep_action_table(state, order, action):
    assert sweep_action(state, order) == action


@pytest.mark.parametrize("text, fen", [("0.01", 1), ("12.3", 1230), ("100", 10000), ("-0.5", -50), ("87.80", 8780)])
def test_yuan_to_fen_is_exact(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("bad", ["", "1.234", "abc", "1,00"])
def test_yuan_to_fen_refuses_garbage(bad):
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_parse_trade_bill_reads_rows_and_stops_at_the_summary():
    text = "\n".join([HEAD, row("A1", "SUCCESS", "87.80"), row("A1", "REFUND", "0.00", "RFA101", "5.00", "SUCCESS"),
                      "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
                      "`2,`87.80,`5.00,`0.00,`0.00,`87.80,`5.00"])
    rows = parse_trade_bill("\ufeff" + text)
    assert rows == [BillRow("A1", "42A1", "SUCCESS", 8780, "0", 0, ""),
                    BillRow("A1", "42A1", "REFUND", 0, "RFA101", 500, "SUCCESS")]


def test_parse_trade_bill_refuses_an_unknown_header():
    with pytest.raises(ValueError):
        parse_trade_bill("a,b,c\n`1,`2,`3\n")


def test_reconcile_finds_every_kind_of_difference():
    bill = [BillRow("OK", "t", "SUCCESS", 100, "", 0, ""), BillRow("AMT", "t", "SUCCESS", 200, "", 0, ""),
            BillRow("LOST", "t", "SUCCESS", 300, "", 0, ""), BillRow("GHOST", "t", "SUCCESS", 1, "", 0, ""),
            BillRow("OK", "t", "REFUND", 0, "RF1", 50, "SUCCESS"), BillRow("OK", "t", "REFUND", 0, "RF2", 10, "SUCCESS")]
    ours = [OurPayment("OK", 100, "paid", "t"), OurPayment("AMT", 199, "paid", "t"),
            OurPayment("LOST", 300, "created", ""), OurPayment("MISSING", 400, "paid", "t")]
    refunds = [OurRefund("RF1", 50, "succeeded"), OurRefund("RF3", 70, "succeeded")]
    assert reconcile(bill, ours, refunds) == [
        Mismatch("amount_mismatch", "AMT", 199, 200),
        Mismatch("missing_in_bill", "MISSING", 400, None),
        Mismatch("not_paid_here", "LOST", 300, 300),
        Mismatch("refund_missing_in_bill", "RF3", 70, None),
        Mismatch("refund_unknown", "RF2", None, 10),
        Mismatch("unknown_trade", "GHOST", None, 1),
    ]


def test_a_matching_day_has_no_mismatch():
    assert reconcile([BillRow("A", "t", "SUCCESS", 5, "", 0, "")], [OurPayment("A", 5, "paid", "t")]) == []
