"""WeChat Pay APIv3 crypto, cross-checked against the wechatpayv3 SDK."""

from __future__ import annotations

import json
import re
import stat
import time
from base64 import b64decode, b64encode
from collections.abc import Callable
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3 import utils as sdk

from social_mall.errors import MallError
from social_mall.payments import wxpay_v3 as wx
from social_mall.payments.wxpay_v3 import (
    KeyPair,
    PayDecryptError,
    PayFormatError,
    PayNotifyError,
    PayProbeError,
    PaySignatureError,
    PayStaleError,
    PayUnknownSerialError,
)

NOW = 1_700_000_000.0
APIV3_KEY = "0123456789abcdefghijKLMNOPQRSTUV"
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
PAY_PLAIN: dict[str, object] = {
    "appid": APPID,
    "mchid": MCHID,
    "out_trade_no": "MO20240101000001",
    "transaction_id": "4200000000000000000000000001",
    "trade_type": "JSAPI",
    "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功",
    "bank_type": "OTHERS",
    "attach": "",
    "success_time": "2023-11-15T06:13:20+08:00",
    "payer": {"openid": "o_user"},
    "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
}


@pytest.fixture(scope="module")
def platform() -> KeyPair:
    return wx.generate_keypair()


@pytest.fixture(scope="module")
def merchant() -> KeyPair:
    return wx.generate_keypair("5157F09EFDC096DE15EBE81A47057A7232F1B8E1")


@pytest.fixture(scope="module")
def impostor(platform: KeyPair) -> KeyPair:
    """Another key claiming the platform's serial."""
    return wx.generate_keypair(platform.serial)


@pytest.fixture
def keys(platform: KeyPair) -> dict[str, bytes]:
    return {platform.serial: platform.public_pem}


@pytest.fixture
def notify(platform: KeyPair) -> tuple[dict[str, str], bytes]:
    return wx.build_notify(
        platform=platform,
        apiv3_key=APIV3_KEY,
        event_type="TRANSACTION.SUCCESS",
        summary="支付成功",
        original_type="transaction",
        plain=PAY_PLAIN,
        now=NOW,
    )


def parse(headers: dict[str, str] | CIMultiDictProxy[str], body: bytes, keys: dict[str, bytes], now: float = NOW) -> wx.Notify:
    return wx.parse_notify(headers, body, public_keys=keys, apiv3_key=APIV3_KEY, now=now)


def resign(platform: KeyPair, body: bytes, ts: int = int(NOW)) -> dict[str, str]:
    """Headers for an arbitrary body, correctly signed by the platform."""
    return wx.response_headers(body.decode("utf-8"), platform, timestamp=ts, nonce=wx.new_nonce())


def sdk_client(merchant: KeyPair, platform: KeyPair) -> WeChatPay:
    """The SDK in public-key mode: no network at construction."""
    return WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=MCHID,
        private_key=merchant.private_pem.decode(),
        cert_serial_no=merchant.serial,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        public_key=platform.public_pem.decode(),
        public_key_id=platform.serial,
    )


# ----------------------------------------------------------------- keys


def test_generated_keypair_is_rsa2048_with_hex_serial_and_sdk_loadable(platform: KeyPair) -> None:
    assert re.fullmatch(r"[1-7][0-9A-F]{39}", platform.serial)
    for _ in range(200):  # usable as an X.509 serial: positive, < 2**159
        assert re.fullmatch(r"[1-7][0-9A-F]{39}", wx._new_serial())
    assert platform.private_key.key_size == 2048
    assert platform.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert platform.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert sdk.load_private_key(platform.private_pem.decode()).key_size == 2048
    assert sdk.load_public_key(platform.public_pem.decode()).public_numbers() == platform.public_key.public_numbers()


def test_keypair_repr_hides_key_material(platform: KeyPair) -> None:
    text = repr(platform)
    assert platform.serial in text
    assert "PRIVATE" not in text and "PUBLIC" not in text


def test_keypair_from_private_pem_derives_public_half(merchant: KeyPair) -> None:
    again = KeyPair.from_private_pem(merchant.serial, merchant.private_pem)
    assert again == merchant


def test_load_or_create_keypair_stores_0600_files_and_reloads_same_key(tmp_path: Path) -> None:
    d = tmp_path / "keys" / "platform"
    first = wx.load_or_create_keypair(d)
    files = sorted(p.name for p in d.iterdir())
    assert files == ["private_key.pem", "serial"]
    for p in d.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    second = wx.load_or_create_keypair(d)
    assert second == first
    assert wx.load_or_create_keypair(d, first.serial) == first


def test_load_or_create_keypair_uses_given_serial_and_refuses_a_different_one(tmp_path: Path) -> None:
    pair = wx.load_or_create_keypair(tmp_path, "PUB_KEY_ID_0114232134912410000000000000")
    assert pair.serial == "PUB_KEY_ID_0114232134912410000000000000"
    with pytest.raises(ValueError, match="serial"):
        wx.load_or_create_keypair(tmp_path, "OTHER")


def test_load_or_create_keypair_refuses_half_written_directory(tmp_path: Path) -> None:
    (tmp_path / "serial").write_text("ABC\n")
    with pytest.raises(ValueError, match="incomplete"):
        wx.load_or_create_keypair(tmp_path)
    assert not (tmp_path / "private_key.pem").exists()


# ----------------------------------------------------------------- sign / verify


def test_sign_verify_round_trip_and_sdk_agrees(merchant: KeyPair) -> None:
    sig = wx.sign(merchant.private_pem, "hello\n世界\n")
    assert wx.verify(merchant.public_pem, "hello\n世界\n", sig)
    assert wx.verify(merchant.public_pem, "hello\n世界\n".encode(), sig)
    # PKCS#1 v1.5 is deterministic: byte-identical to the SDK's signature.
    assert sig == sdk.rsa_sign(merchant.private_key, "hello\n世界\n")


@pytest.mark.parametrize(
    "message, signature",
    [
        ("hello!", None),  # tampered message
        ("hello", "!!not base64!!"),
        ("hello", "签名"),
        ("hello", ""),
        ("hello", b64encode(b"short").decode()),
    ],
)
def test_verify_returns_false_on_bad_input(merchant: KeyPair, message: str, signature: str | None) -> None:
    good = wx.sign(merchant.private_pem, "hello")
    assert not wx.verify(merchant.public_pem, message, good if signature is None else signature)


def test_verify_returns_false_for_wrong_or_garbage_key(merchant: KeyPair, platform: KeyPair) -> None:
    sig = wx.sign(merchant.private_pem, "hello")
    assert not wx.verify(platform.public_pem, "hello", sig)
    assert not wx.verify(b"not a pem", "hello", sig)
    assert not wx.verify(b"", "hello", sig)


def test_verify_rejects_signature_with_stray_characters(merchant: KeyPair) -> None:
    sig = wx.sign(merchant.private_pem, "hello")
    assert not wx.verify(merchant.public_pem, "hello", sig[:10] + "*" + sig[10:])


# ----------------------------------------------------------------- Authorization


def test_request_message_keeps_newline_for_empty_body() -> None:
    assert wx.request_message("GET", "/v3/x?mchid=1", 1, "N", "") == "GET\n/v3/x?mchid=1\n1\nN\n\n"


def test_authorization_header_format_parses_and_verifies(merchant: KeyPair) -> None:
    body = '{"mchid":"1900000109"}'
    path = "/v3/pay/transactions/out-trade-no/MO1/close"
    header = wx.authorization("POST", path, body, mchid=MCHID, keypair=merchant, timestamp=int(NOW), nonce="NONCE1")
    assert re.fullmatch(
        r'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="NONCE1",signature="[A-Za-z0-9+/=]+",'
        r'timestamp="1700000000",serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"',
        header,
    )
    params = wx.parse_authorization(header)
    assert params["mchid"] == MCHID and params["nonce_str"] == "NONCE1"
    assert params["timestamp"] == "1700000000" and params["serial_no"] == merchant.serial
    msg = wx.request_message("POST", path, int(NOW), "NONCE1", body)
    assert wx.verify(merchant.public_pem, msg, params["signature"])
    assert wx.verify_authorization("POST", path, body, header, {merchant.serial: merchant.public_pem}, NOW) == MCHID
    assert wx.verify_authorization("POST", path, body.encode(), header, {merchant.serial: merchant.public_pem}, NOW) == MCHID


def test_sdk_built_authorization_verifies(merchant: KeyPair) -> None:
    path, body = "/v3/pay/transactions/jsapi", '{"appid":"wx1","amount":{"total":100}}'
    header = sdk.build_authorization(path, "POST", MCHID, merchant.serial, merchant.private_key, data=body)
    keys = {merchant.serial: merchant.public_pem}
    assert wx.verify_authorization("POST", path, body, header, keys, time.time()) == MCHID


def test_parse_authorization_accepts_any_order_and_spaces() -> None:
    header = 'WECHATPAY2-SHA256-RSA2048 serial_no="S", timestamp="1" ,signature="c2ln",nonce_str="n", mchid="m"'
    assert wx.parse_authorization(header) == {
        "serial_no": "S", "timestamp": "1", "signature": "c2ln", "nonce_str": "n", "mchid": "m",
    }


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        'WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="s",timestamp="1"',
        'WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="s",timestamp="1",serial_no=""',
        'WECHATPAY2-SHA256-RSA2048 mchid="m",mchid="x",nonce_str="n",signature="s",timestamp="1",serial_no="S"',
        'WECHATPAY2-SHA256-RSA2048 mchid=m,nonce_str="n",signature="s",timestamp="1",serial_no="S"',
        'WECHATPAY2-SM2-WITH-SM3 mchid="m",nonce_str="n",signature="s",timestamp="1",serial_no="S"',
    ],
)
def test_parse_authorization_rejects_malformed(header: str) -> None:
    with pytest.raises(PaySignatureError):
        wx.parse_authorization(header)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/v3/pay/transactions/jsapi", '{"total":100}'),
        ("POST", "/v3/pay/transactions/native", '{"total":100}'),
        ("POST", "/v3/pay/transactions/jsapi", '{"total":1}'),
        ("POST", "/v3/pay/transactions/jsapi?x=1", '{"total":100}'),
    ],
)
def test_verify_authorization_rejects_tampered_request(merchant: KeyPair, method: str, path: str, body: str) -> None:
    header = wx.authorization(
        "POST", "/v3/pay/transactions/jsapi", '{"total":100}',
        mchid=MCHID, keypair=merchant, timestamp=int(NOW), nonce="N",
    )
    with pytest.raises(PaySignatureError, match="mismatch"):
        wx.verify_authorization(method, path, body, header, {merchant.serial: merchant.public_pem}, NOW)


def test_verify_authorization_rejects_unknown_serial_stale_and_wrong_key(merchant: KeyPair, platform: KeyPair) -> None:
    header = wx.authorization("GET", "/v3/x", "", mchid=MCHID, keypair=merchant, timestamp=int(NOW), nonce="N")
    with pytest.raises(PayUnknownSerialError):
        wx.verify_authorization("GET", "/v3/x", "", header, {platform.serial: platform.public_pem}, NOW)
    with pytest.raises(PayStaleError):
        wx.verify_authorization("GET", "/v3/x", "", header, {merchant.serial: merchant.public_pem}, NOW + 301)
    with pytest.raises(PaySignatureError, match="mismatch"):
        wx.verify_authorization("GET", "/v3/x", "", header, {merchant.serial: platform.public_pem}, NOW)


# ----------------------------------------------------------------- responses


def test_response_headers_are_verified_by_sdk(platform: KeyPair) -> None:
    body = '{"prepay_id":"wx201410272009395522657a690389285100"}'
    h = wx.response_headers(body, platform, timestamp=int(NOW), nonce="NONCE", request_id="RID")
    assert h["Wechatpay-Timestamp"] == "1700000000"
    assert h["Wechatpay-Nonce"] == "NONCE"
    assert h["Wechatpay-Serial"] == platform.serial
    assert h["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert h["Request-ID"] == "RID"
    assert sdk.rsa_verify("1700000000", "NONCE", body, h["Wechatpay-Signature"], platform.public_key)
    assert not sdk.rsa_verify("1700000000", "NONCE", body + " ", h["Wechatpay-Signature"], platform.public_key)
    assert wx.verify_response(h, body.encode(), public_keys={platform.serial: platform.public_pem}, now=NOW) == platform.serial


def test_response_headers_make_a_fresh_request_id(platform: KeyPair) -> None:
    a = wx.response_headers("", platform, timestamp=1, nonce="N")
    b = wx.response_headers("", platform, timestamp=1, nonce="N")
    assert a["Request-ID"] and a["Request-ID"] != b["Request-ID"]


# ----------------------------------------------------------------- resources


def test_encrypt_resource_decrypts_with_sdk_and_here() -> None:
    res = wx.encrypt_resource(APIV3_KEY, '{"a":"支付"}', associated_data="transaction", original_type="transaction")
    assert res["algorithm"] == "AEAD_AES_256_GCM"
    assert res["original_type"] == res["associated_data"] == "transaction"
    assert len(res["nonce"]) == 12 and res["nonce"].isascii()
    assert len(b64decode(res["ciphertext"])) == len('{"a":"支付"}'.encode()) + 16  # ct || tag
    assert sdk.aes_decrypt(res["nonce"], res["ciphertext"], res["associated_data"], APIV3_KEY) == '{"a":"支付"}'
    assert wx.decrypt_resource(APIV3_KEY, res) == '{"a":"支付"}'


def test_encrypt_resource_fresh_nonce_each_time() -> None:
    a = wx.encrypt_resource(APIV3_KEY, "x", associated_data="", original_type="t")
    b = wx.encrypt_resource(APIV3_KEY, "x", associated_data="", original_type="t")
    assert a["nonce"] != b["nonce"] and a["ciphertext"] != b["ciphertext"]


def test_decrypt_resource_treats_missing_associated_data_as_empty() -> None:
    res = wx.encrypt_resource(APIV3_KEY, "x", associated_data="", original_type="t", nonce="abcdefghijkl")
    del res["associated_data"]
    assert wx.decrypt_resource(APIV3_KEY, res) == "x"


def _flip_ct_byte(ct: str) -> str:
    raw = bytearray(b64decode(ct))
    raw[0] ^= 1
    return b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda r: r.update(ciphertext=_flip_ct_byte(r["ciphertext"])), id="ciphertext"),
        pytest.param(lambda r: r.update(associated_data="refund"), id="associated_data"),
        pytest.param(lambda r: r.update(nonce="zzzzzzzzzzzz"), id="nonce"),
        pytest.param(lambda r: r.update(ciphertext="%%%"), id="not-base64"),
        pytest.param(lambda r: r.update(ciphertext="AAAA"), id="shorter-than-tag"),
        pytest.param(lambda r: r.update(nonce=""), id="empty-nonce"),
        pytest.param(lambda r: r.update(algorithm="AEAD_SM4_GCM"), id="algorithm"),
        pytest.param(lambda r: r.pop("ciphertext"), id="no-ciphertext"),
    ],
)
def test_decrypt_resource_rejects_tampering(mutate: Callable[[dict[str, str]], object]) -> None:
    res = wx.encrypt_resource(APIV3_KEY, '{"ok":1}', associated_data="transaction", original_type="transaction")
    mutate(res)
    with pytest.raises(PayDecryptError):
        wx.decrypt_resource(APIV3_KEY, res)


def test_decrypt_resource_wrong_key_is_decrypt_error_bad_key_is_value_error() -> None:
    res = wx.encrypt_resource(APIV3_KEY, "x", associated_data="a", original_type="t")
    with pytest.raises(PayDecryptError):
        wx.decrypt_resource(APIV3_KEY[::-1], res)
    with pytest.raises(ValueError):
        wx.decrypt_resource("short", res)
    with pytest.raises(ValueError):
        wx.encrypt_resource("short", "x", associated_data="a", original_type="t")
    with pytest.raises(ValueError):
        wx.encrypt_resource(APIV3_KEY, "x", associated_data="a", original_type="t", nonce="tooshort")


# ----------------------------------------------------------------- notify


def test_notify_round_trip(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    n = parse(headers, body, keys)
    assert n.event_type == "TRANSACTION.SUCCESS"
    assert n.summary == "支付成功"
    assert n.create_time == "2023-11-15T06:13:20+08:00"
    assert n.id.startswith("EV-")
    assert n.resource == PAY_PLAIN


def test_notify_body_has_wechat_shape(notify: tuple[dict[str, str], bytes], platform: KeyPair) -> None:
    headers, body = notify
    data = json.loads(body)
    assert set(data) == {"id", "create_time", "resource_type", "event_type", "summary", "resource"}
    assert data["resource_type"] == "encrypt-resource"
    assert set(data["resource"]) == {"original_type", "algorithm", "ciphertext", "associated_data", "nonce"}
    assert data["resource"]["associated_data"] == "transaction"
    assert "支付成功" in body.decode("utf-8")  # UTF-8, not \u escapes, as WeChat sends
    assert headers["Wechatpay-Timestamp"] == "1700000000"
    assert headers["Wechatpay-Serial"] == platform.serial
    assert headers["Content-Type"] == "application/json"


def test_notify_verifies_and_decrypts_with_sdk_utils(notify: tuple[dict[str, str], bytes], platform: KeyPair) -> None:
    headers, body = notify
    assert sdk.rsa_verify(
        headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body.decode("utf-8"),
        headers["Wechatpay-Signature"], platform.public_key,
    )
    r = json.loads(body)["resource"]
    assert json.loads(sdk.aes_decrypt(r["nonce"], r["ciphertext"], r["associated_data"], APIV3_KEY)) == PAY_PLAIN


def test_notify_accepted_by_sdk_callback(notify: tuple[dict[str, str], bytes], merchant: KeyPair, platform: KeyPair) -> None:
    headers, body = notify
    result = sdk_client(merchant, platform).callback(headers, body)
    assert result is not None
    assert result["resource"] == PAY_PLAIN
    assert result["event_type"] == "TRANSACTION.SUCCESS"


def test_refund_notify_uses_refund_associated_data(platform: KeyPair, keys: dict[str, bytes]) -> None:
    plain = {"out_trade_no": "MO1", "out_refund_no": "RF1", "refund_status": "SUCCESS",
             "amount": {"total": 100, "refund": 100, "payer_total": 100, "payer_refund": 100}}
    headers, body = wx.build_notify(
        platform=platform, apiv3_key=APIV3_KEY, event_type="REFUND.SUCCESS", summary="退款成功",
        original_type="refund", plain=plain, now=NOW, event_id="EV-1",
    )
    resource = json.loads(body)["resource"]
    assert resource["original_type"] == resource["associated_data"] == "refund"
    n = parse(headers, body, keys)
    assert (n.id, n.event_type, n.resource) == ("EV-1", "REFUND.SUCCESS", plain)


@pytest.mark.parametrize("case", [str.lower, str.upper, lambda k: k.swapcase()])
def test_parse_notify_header_names_are_case_insensitive(
    notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], case: Callable[[str], str]
) -> None:
    headers, body = notify
    assert parse({case(k): v for k, v in headers.items()}, body, keys).resource == PAY_PLAIN


def test_parse_notify_takes_aiohttp_style_multidict(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    md = CIMultiDictProxy(CIMultiDict({k.upper(): v for k, v in headers.items()}))
    assert parse(md, body, keys).resource == PAY_PLAIN


@pytest.mark.parametrize(
    "name", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Signature-Type"]
)
def test_parse_notify_requires_each_header(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], name: str) -> None:
    headers, body = notify
    del headers[name]
    with pytest.raises(PaySignatureError, match="missing"):
        parse(headers, body, keys)


def test_parse_notify_rejects_other_signature_type(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    with pytest.raises(PaySignatureError, match="type"):
        parse(headers, body, keys)


def test_parse_notify_rejects_probe_before_serial_lookup(notify: tuple[dict[str, str], bytes]) -> None:
    headers, body = notify
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    with pytest.raises(PayProbeError):
        parse(headers, body, {})


def test_parse_notify_rejects_unknown_serial(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    headers["Wechatpay-Serial"] = "0" * 40
    with pytest.raises(PayUnknownSerialError) as exc:
        parse(headers, body, keys)
    assert exc.value.serial == "0" * 40


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_parse_notify_rejects_stale_timestamp(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], offset: int) -> None:
    headers, body = notify
    with pytest.raises(PayStaleError):
        parse(headers, body, keys, now=NOW + offset)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_parse_notify_accepts_skew_up_to_max(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], offset: int) -> None:
    headers, body = notify
    assert parse(headers, body, keys, now=NOW + offset).resource == PAY_PLAIN


def test_parse_notify_stale_is_checked_before_signature(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    with pytest.raises(PayStaleError):
        parse(headers, body + b" ", keys, now=NOW + 1000)


@pytest.mark.parametrize(
    "header, value",
    [
        ("Wechatpay-Timestamp", str(int(NOW) + 1)),  # still within the window
        ("Wechatpay-Timestamp", "1.7e9"),
        ("Wechatpay-Nonce", "OTHERNONCE"),
        ("Wechatpay-Signature", "AAAA"),
    ],
)
def test_parse_notify_rejects_tampered_header(
    notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], header: str, value: str
) -> None:
    headers, body = notify
    headers[header] = value
    with pytest.raises(PaySignatureError):
        parse(headers, body, keys)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: b.replace(b"TRANSACTION.SUCCESS", b"REFUND.SUCCESS"), id="field"),
        pytest.param(lambda b: b + b"\n", id="trailing-newline"),
        pytest.param(lambda b: json.dumps(json.loads(b)).encode(), id="reserialized"),
        pytest.param(lambda b: b[:-1], id="truncated"),
    ],
)
def test_parse_notify_rejects_tampered_body(
    notify: tuple[dict[str, str], bytes], keys: dict[str, bytes], tamper: Callable[[bytes], bytes]
) -> None:
    headers, body = notify
    changed = tamper(body)
    assert changed != body
    with pytest.raises(PaySignatureError, match="mismatch"):
        parse(headers, changed, keys)


def test_parse_notify_rejects_impostor_key_with_known_serial(
    platform: KeyPair, impostor: KeyPair, keys: dict[str, bytes]
) -> None:
    headers, body = wx.build_notify(
        platform=impostor, apiv3_key=APIV3_KEY, event_type="TRANSACTION.SUCCESS", summary="支付成功",
        original_type="transaction", plain=PAY_PLAIN, now=NOW,
    )
    assert headers["Wechatpay-Serial"] == platform.serial
    with pytest.raises(PaySignatureError, match="mismatch"):
        parse(headers, body, keys)


def test_parse_notify_signature_checked_before_format(platform: KeyPair, impostor: KeyPair, keys: dict[str, bytes]) -> None:
    body = b"not json"
    with pytest.raises(PaySignatureError):
        parse(resign(impostor, body), body, keys)
    with pytest.raises(PayFormatError):
        parse(resign(platform, body), body, keys)


def _envelope(notify: tuple[dict[str, str], bytes]) -> dict[str, object]:
    data: dict[str, object] = json.loads(notify[1])
    return data


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("resource"), id="no-resource"),
        pytest.param(lambda d: d.update(resource="x"), id="resource-not-object"),
        pytest.param(lambda d: d.pop("id"), id="no-id"),
        pytest.param(lambda d: d.update(event_type=1), id="event_type-not-str"),
        pytest.param(lambda d: d.update(resource_type="plain"), id="resource_type"),
        pytest.param(lambda d: d["resource"].update(algorithm="AEAD_SM4_GCM"), id="algorithm"),
        pytest.param(lambda d: d["resource"].pop("nonce"), id="no-nonce"),
    ],
)
def test_parse_notify_rejects_bad_shape_even_when_signed(
    notify: tuple[dict[str, str], bytes], platform: KeyPair, keys: dict[str, bytes], mutate: Callable[[dict[str, object]], object]
) -> None:
    data = _envelope(notify)
    mutate(data)
    body = json.dumps(data).encode()
    with pytest.raises(PayFormatError):
        parse(resign(platform, body), body, keys)


def test_parse_notify_rejects_list_body(platform: KeyPair, keys: dict[str, bytes]) -> None:
    body = b"[]"
    with pytest.raises(PayFormatError):
        parse(resign(platform, body), body, keys)


def test_parse_notify_rejects_tampered_ciphertext_even_when_signed(
    notify: tuple[dict[str, str], bytes], platform: KeyPair, keys: dict[str, bytes]
) -> None:
    data = _envelope(notify)
    resource = data["resource"]
    assert isinstance(resource, dict)
    resource["ciphertext"] = _flip_ct_byte(resource["ciphertext"])
    body = json.dumps(data).encode()
    with pytest.raises(PayDecryptError):
        parse(resign(platform, body), body, keys)


def test_parse_notify_rejects_wrong_apiv3_key(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    with pytest.raises(PayDecryptError):
        wx.parse_notify(headers, body, public_keys=keys, apiv3_key=APIV3_KEY.lower(), now=NOW)


def test_parse_notify_rejects_non_object_plaintext(platform: KeyPair, keys: dict[str, bytes]) -> None:
    resource = wx.encrypt_resource(APIV3_KEY, "[1,2]", associated_data="transaction", original_type="transaction")
    body = json.dumps({"id": "EV-1", "create_time": "2023-11-15T06:13:20+08:00", "resource_type": "encrypt-resource",
                       "event_type": "TRANSACTION.SUCCESS", "summary": "s", "resource": resource}).encode()
    with pytest.raises(PayFormatError, match="plaintext"):
        parse(resign(platform, body), body, keys)


# ----------------------------------------------------------------- JSAPI


def test_jsapi_pay_sign_matches_sdk(merchant: KeyPair, platform: KeyPair) -> None:
    ours = wx.jsapi_pay_sign(APPID, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "wx2017", merchant)
    theirs = sdk_client(merchant, platform).sign([APPID, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "prepay_id=wx2017"])
    assert ours == theirs
    assert wx.verify(merchant.public_pem, f"{APPID}\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx2017\n", ours)


def test_jsapi_pay_sign_refuses_package_string(merchant: KeyPair) -> None:
    with pytest.raises(ValueError):
        wx.jsapi_pay_sign(APPID, "1", "n", "prepay_id=wx2017", merchant)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "cls, code",
    [
        (PaySignatureError, "pay_signature"),
        (PayProbeError, "pay_probe"),
        (PayUnknownSerialError, "pay_unknown_serial"),
        (PayStaleError, "pay_stale"),
        (PayFormatError, "pay_format"),
        (PayDecryptError, "pay_decrypt"),
    ],
)
def test_error_codes_are_stable_and_mall_errors(cls: type[PayNotifyError], code: str) -> None:
    assert cls.code == code
    assert issubclass(cls, PayNotifyError) and issubclass(cls, MallError)


def test_error_facts_carry_no_secrets(notify: tuple[dict[str, str], bytes], keys: dict[str, bytes]) -> None:
    headers, body = notify
    with pytest.raises(PayStaleError) as exc:
        parse(headers, body, keys, now=NOW + 1000)
    assert exc.value.facts() == {"reason": "timestamp outside the allowed window", "timestamp": int(NOW), "skew": 1000}


def test_verify_accepts_platform_certificate_pem(platform: KeyPair) -> None:
    """Cert mode: public_keys may map the serial to the platform certificate PEM."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(platform.public_key).serial_number(int(platform.serial, 16))
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
        .sign(platform.private_key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    headers, body = wx.build_notify(
        platform=platform, apiv3_key=APIV3_KEY, event_type="TRANSACTION.SUCCESS", summary="支付成功",
        original_type="transaction", plain=PAY_PLAIN, now=NOW,
    )
    assert parse(headers, body, {platform.serial: cert_pem}).resource == PAY_PLAIN
