"""Platform verification keys in both modes (WeChat Pay public key, platform certificate)
and the gateway's notify checks that don't need a server."""

import time
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from adapters.wechatpay_v3 import V3Account, WeChatPayV3Gateway, load_platform_keys
from social_mall.payments import wxpay_v3
from social_mall.payments.wxpay_v3 import KeyPair, PayStaleError, PayUnknownSerialError

APIV3 = "0123456789abcdefABCDEF0123456789"


def self_signed(pair: KeyPair, serial: int) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pair.public_key)
            .serial_number(serial).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(pair.private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def gateway(platform_keys, mode="public_key", key_id=""):
    merchant = wxpay_v3.generate_keypair()
    account = V3Account("1900000109", "wx0123456789abcdef", APIV3, merchant, platform_keys, "http://127.0.0.1:1",
                        mode, key_id)
    return WeChatPayV3Gateway(None, account, notify_url="n", refund_notify_url="r")  # type: ignore[arg-type]


def notify(platform: KeyPair, now: float):
    return wxpay_v3.build_notify(
        platform=platform, apiv3_key=APIV3, event_type="TRANSACTION.SUCCESS", summary="支付成功",
        original_type="transaction", now=now,
        plain={"appid": "wx0123456789abcdef", "mchid": "1900000109", "out_trade_no": "N1", "transaction_id": "42",
               "trade_state": "SUCCESS", "payer": {"openid": "o"}, "amount": {"total": 100}})


def test_certificate_mode_verifies_with_the_certificate_serial(tmp_path):
    key = wxpay_v3.generate_keypair()
    serial = 0x5157F09EFDC096DE15EBE81A47057A72
    path = tmp_path / "wechatpay_cert.pem"
    path.write_bytes(self_signed(key, serial))
    keys = load_platform_keys("certificate", str(path), "")
    assert list(keys) == ["5157F09EFDC096DE15EBE81A47057A72"]
    platform = KeyPair("5157F09EFDC096DE15EBE81A47057A72", key.private_pem, key.public_pem)
    headers, body = notify(platform, time.time())
    tx = gateway(keys, "certificate").parse_notify(headers, body, time.time())
    assert (tx.out_trade_no, tx.amount_fen) == ("N1", 100)


def test_public_key_mode_needs_its_id_and_refuses_other_serials(tmp_path):
    platform = wxpay_v3.generate_keypair("PUB_KEY_ID_0114232134912410000000000001")
    path = tmp_path / "pub_key.pem"
    path.write_bytes(platform.public_pem)
    with pytest.raises(ValueError):
        load_platform_keys("public_key", str(path), "")
    keys = load_platform_keys("public_key", str(path), platform.serial)
    gw = gateway(keys, key_id=platform.serial)
    headers, body = notify(platform, time.time())
    assert gw.parse_notify(headers, body, time.time()).transaction_id == "42"
    other = wxpay_v3.generate_keypair("PUB_KEY_ID_OTHER")
    with pytest.raises(PayUnknownSerialError):
        gw.parse_notify(*notify(other, time.time()), time.time())


@pytest.mark.parametrize("skew", [-301, 301])
def test_notify_more_than_five_minutes_off_is_stale(tmp_path, skew):
    platform = wxpay_v3.generate_keypair("PUB_KEY_ID_X")
    gw = gateway({platform.serial: platform.public_pem}, key_id=platform.serial)
    now = time.time()
    with pytest.raises(PayStaleError):
        gw.parse_notify(*notify(platform, now + skew), now)
    assert gw.parse_notify(*notify(platform, now + (299 if skew > 0 else -299)), now).out_trade_no == "N1"


def test_gateway_repr_shows_no_key_material():
    platform = wxpay_v3.generate_keypair("PUB_KEY_ID_X")
    gw = gateway({platform.serial: platform.public_pem})
    text = repr(gw) + repr(gw.account)
    assert APIV3 not in text and "PRIVATE" not in text and "1900000109" in text
