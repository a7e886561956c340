"""APIv2 signatures (MD5 and HMAC-SHA256, wechatpy's known answers) and safe XML parsing."""

import pytest

from adapters.wechatpay_v2 import parse_xml, sign_v2, transaction_from_v2, verify_v2
from social_mall.payments.wxpay_v3 import PayFormatError, PaySignatureError

KEY = "192006250b4c09247ec02edce69f6a2d"


def test_known_answers_md5_and_hmac_sha256():
    params = {"test1": "test1", "test2": "test2"}
    assert sign_v2(params, KEY, "MD5") == "1E3A8D73B5A4AEE787C0F68B5DAB8520"
    assert sign_v2(params, KEY, "HMAC-SHA256") == "EDAC6D70D2FDF5A2382F8204FC96A1918017E46ACC5297F565ED1A7610ACF659"


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_verify_accepts_own_sign_type_and_refuses_tampering(sign_type):
    data = {"a": "1", "total_fee": "100"}
    if sign_type != "MD5":
        data["sign_type"] = sign_type
    data["sign"] = sign_v2(data, KEY, sign_type)
    verify_v2(data, KEY, sign_type)
    with pytest.raises(PaySignatureError):
        verify_v2({**data, "total_fee": "1"}, KEY, sign_type)
    with pytest.raises(PaySignatureError):
        verify_v2(data, "x" * 32, sign_type)


def test_sign_type_must_match_the_account():
    data = {"a": "1", "sign_type": "HMAC-SHA256"}
    data["sign"] = sign_v2(data, KEY, "HMAC-SHA256")
    with pytest.raises(PaySignatureError):
        verify_v2(data, KEY, "MD5")       # a downgrade/upgrade is not accepted silently
    md5 = {"a": "1"}
    md5["sign"] = sign_v2(md5, KEY, "MD5")
    with pytest.raises(PaySignatureError):
        verify_v2(md5, KEY, "HMAC-SHA256")


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>',
    b'<!ENTITY a "b"><xml/>',
    b"<xml><a><b>nested</b></a></xml>",
    b"not xml",
    b"<other><a>1</a></other>",
])
def test_hostile_or_malformed_xml_is_refused(body):
    with pytest.raises(PayFormatError):
        parse_xml(body)


def test_transaction_from_v2_notify():
    tx = transaction_from_v2("v2:1", {"out_trade_no": "N1", "total_fee": "8780", "mch_id": "19", "appid": "wx",
                                      "result_code": "SUCCESS", "transaction_id": "42", "openid": "o"})
    assert (tx.out_trade_no, tx.amount_fen, tx.trade_state, tx.payer) == ("N1", 8780, "SUCCESS", "o")
    with pytest.raises(PayFormatError):
        transaction_from_v2("v2:1", {"out_trade_no": "N1", "total_fee": "8.5", "mch_id": "19", "appid": "wx"})
