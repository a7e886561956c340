"""WeChat Pay APIv3 crypto: signatures, Authorization headers, AEAD resources, notifies.

Pure functions (the only I/O is `load_or_create_keypair`), shared by the local sandbox
gateway -- which plays the WeChat Pay platform with its own generated keys -- and the
real gateway. The primitives come from `wechatpayv3.utils` where they fit, so what we
produce is what the SDK accepts.

Messages signed (RSA PKCS#1 v1.5, SHA-256, base64):

* a request (merchant key):        ``METHOD\\nPATH?QUERY\\nTS\\nNONCE\\nBODY\\n``
* a response or notify (platform): ``TS\\nNONCE\\nBODY\\n``
* a JSAPI paySign (merchant key):  ``appId\\ntimeStamp\\nnonceStr\\nprepay_id=...\\n``

PATH?QUERY is the raw request target as sent (aiohttp: ``request.rel_url.raw_path_qs``),
not a decoded path. Bodies are verified byte for byte: never re-serialize before checking.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import secrets
import string
import tempfile
from base64 import b64decode, b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509 import load_pem_x509_certificate
from wechatpayv3 import utils as _sdk

from social_mall.errors import MallError

__all__ = [
    "AUTH_SCHEME",
    "AEAD_ALGORITHM",
    "SIGNATURE_TYPE",
    "PROBE_PREFIX",
    "KeyPair",
    "Notify",
    "PayNotifyError",
    "PaySignatureError",
    "PayProbeError",
    "PayUnknownSerialError",
    "PayStaleError",
    "PayFormatError",
    "PayDecryptError",
    "generate_keypair",
    "load_or_create_keypair",
    "new_nonce",
    "sign",
    "verify",
    "request_message",
    "authorization",
    "parse_authorization",
    "verify_authorization",
    "response_headers",
    "verify_response",
    "encrypt_resource",
    "decrypt_resource",
    "build_notify",
    "parse_notify",
    "jsapi_pay_sign",
]

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
RESOURCE_TYPE = "encrypt-resource"

H_TIMESTAMP = "Wechatpay-Timestamp"
H_NONCE = "Wechatpay-Nonce"
H_SIGNATURE = "Wechatpay-Signature"
H_SERIAL = "Wechatpay-Serial"
H_SIGNATURE_TYPE = "Wechatpay-Signature-Type"
H_REQUEST_ID = "Request-ID"

_CST = timezone(timedelta(hours=8))
_ALNUM = string.ascii_uppercase + string.digits
_TS_RE = re.compile(r"[0-9]{1,12}")
_AUTH_PARAM_RE = re.compile(r'\s*([A-Za-z_]+)="([^"]*)"\s*')
_AUTH_REQUIRED = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
_PRIVATE_FILE = "private_key.pem"
_SERIAL_FILE = "serial"


# --------------------------------------------------------------------------- errors


class PayNotifyError(MallError):
    """A signed WeChat Pay message (notify, response or request) was refused."""

    code = "pay_notify"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaySignatureError(PayNotifyError):
    """Missing/malformed signature headers, wrong type, or a signature that doesn't verify."""

    code = "pay_signature"


class PayProbeError(PaySignatureError):
    """WeChat's signature probe (``WECHATPAY/SIGNTEST/...``): must be answered non-2xx."""

    code = "pay_probe"


class PayUnknownSerialError(PaySignatureError):
    """Signed with a key we don't know (cert mode: time to refresh platform certificates)."""

    code = "pay_unknown_serial"

    def __init__(self, serial: str) -> None:
        super().__init__("unknown serial")
        self.serial = serial


class PayStaleError(PayNotifyError):
    """The signed timestamp is more than `max_skew` seconds away from now (either way)."""

    code = "pay_stale"

    def __init__(self, timestamp: int, skew: int) -> None:
        super().__init__("timestamp outside the allowed window")
        self.timestamp, self.skew = timestamp, skew


class PayFormatError(PayNotifyError):
    """Authentic, but not the JSON shape of a notify."""

    code = "pay_format"


class PayDecryptError(PayNotifyError):
    """The encrypted resource doesn't decrypt (wrong APIv3 key, tampered, malformed)."""

    code = "pay_decrypt"


# --------------------------------------------------------------------------- keys


@lru_cache(maxsize=64)
def _load_private(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@lru_cache(maxsize=256)
def _load_public(pem: bytes) -> rsa.RSAPublicKey:
    """A ``PUBLIC KEY`` PEM, or a platform ``CERTIFICATE`` PEM (cert mode)."""
    key: object
    if b"-----BEGIN CERTIFICATE-----" in pem:
        key = load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def _private_to_pem(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#8 ("BEGIN PRIVATE KEY"): the only form wechatpayv3.utils.load_private_key takes.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_to_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class KeyPair:
    """An RSA key and its WeChat serial (cert serial in hex, or ``PUB_KEY_ID_...``)."""

    serial: str
    private_pem: bytes = field(repr=False)
    public_pem: bytes = field(repr=False)

    @classmethod
    def from_private_pem(cls, serial: str, private_pem: bytes) -> KeyPair:
        """The real merchant key (``apiclient_key.pem``); the public half is derived."""
        key = _load_private(private_pem)
        return cls(serial, private_pem, _public_to_pem(key.public_key()))

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return _load_private(self.private_pem)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return _load_public(self.public_pem)


def _new_serial() -> str:
    """40 upper hex digits, no leading zero, and below 2**159 so it is also a valid
    X.509 serial (positive, at most 20 DER octets) should the sandbox issue certificates."""
    low = 1 << 156
    return f"{low + secrets.randbelow(7 * low):040X}"


def generate_keypair(serial: str | None = None) -> KeyPair:
    """A fresh RSA-2048 key; `serial` defaults to 40 upper-case hex chars (a cert serial)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(serial or _new_serial(), _private_to_pem(key), _public_to_pem(key.public_key()))


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, atomically (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_create_keypair(path: Path, serial: str | None = None) -> KeyPair:
    """Load the key pair stored in directory `path`, or create and store a new one.

    Files: ``private_key.pem`` (PKCS#8) and ``serial``, both 0600, directory 0700 when
    created. A stored serial that differs from a given `serial` is a ValueError, as is a
    half-written directory. Not meant for several processes creating it at once.
    """
    key_file, serial_file = path / _PRIVATE_FILE, path / _SERIAL_FILE
    if key_file.exists() or serial_file.exists():
        if not (key_file.exists() and serial_file.exists()):
            raise ValueError(f"incomplete key directory {path}: need {_PRIVATE_FILE} and {_SERIAL_FILE}")
        stored = serial_file.read_text(encoding="ascii").strip()
        if not stored:
            raise ValueError(f"empty serial file in {path}")
        if serial is not None and serial != stored:
            raise ValueError(f"key directory {path} holds serial {stored}, not {serial}")
        return KeyPair.from_private_pem(stored, key_file.read_bytes())
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    pair = generate_keypair(serial)
    # Serial first: the key file's presence marks a complete directory.
    _write_private(serial_file, (pair.serial + "\n").encode("ascii"))
    _write_private(key_file, pair.private_pem)
    return pair


# --------------------------------------------------------------------------- signatures


def new_nonce(length: int = 32) -> str:
    """Random upper-case alphanumerics (the SDK uses 32 for request nonces)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def sign(private_pem: bytes, message: str) -> str:
    """base64 RSA PKCS#1 v1.5 SHA-256 signature of `message` (UTF-8)."""
    return str(_sdk.rsa_sign(private_key=_load_private(private_pem), sign_str=message))


def _verify_bytes(public_pem: bytes, message: bytes, signature_b64: str) -> bool:
    try:
        signature = b64decode(signature_b64, validate=True)
        _load_public(public_pem).verify(signature, message, padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        return False
    return True


def verify(public_pem: bytes, message: str | bytes, signature_b64: str) -> bool:
    """True iff `signature_b64` is a valid signature of `message`. Never raises.

    Strict base64 (unlike the SDK's rsa_verify, which drops stray characters).
    """
    try:
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    except (UnicodeEncodeError, TypeError):
        return False
    return _verify_bytes(public_pem, data, signature_b64)


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _request_bytes(method: str, path_with_query: str, timestamp: int | str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n".encode("utf-8") + body + b"\n"


def _signed_bytes(timestamp: int | str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode("utf-8") + body + b"\n"


def request_message(method: str, path_with_query: str, timestamp: int | str, nonce: str, body: str) -> str:
    """``METHOD\\nPATH?QUERY\\nTS\\nNONCE\\nBODY\\n`` (an empty body keeps its newline)."""
    return f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n"


def authorization(
    method: str,
    path_with_query: str,
    body: str,
    *,
    mchid: str,
    keypair: KeyPair,
    timestamp: int,
    nonce: str,
) -> str:
    """The merchant's ``Authorization`` header for one APIv3 request."""
    signature = sign(keypair.private_pem, request_message(method, path_with_query, timestamp, nonce, body))
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{keypair.serial}"'
    )


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of a ``WECHATPAY2-SHA256-RSA2048 k="v",...`` header, any order.

    Raises PaySignatureError on another scheme, a malformed or repeated parameter, or a
    missing/empty one of mchid, nonce_str, signature, timestamp, serial_no.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        raise PaySignatureError("authorization scheme")
    params: dict[str, str] = {}
    for part in rest.split(","):
        m = _AUTH_PARAM_RE.fullmatch(part)
        if m is None:
            raise PaySignatureError("authorization format")
        key, value = m.group(1), m.group(2)
        if key in params:
            raise PaySignatureError("authorization repeats a parameter")
        params[key] = value
    for key in _AUTH_REQUIRED:
        if not params.get(key):
            raise PaySignatureError(f"authorization lacks {key}")
    return params


def _check_timestamp(raw: str, now: float, max_skew: int) -> int:
    if not _TS_RE.fullmatch(raw):
        raise PaySignatureError("timestamp format")
    ts = int(raw)
    if abs(now - ts) > max_skew:
        raise PayStaleError(ts, int(now - ts))
    return ts


def verify_authorization(
    method: str,
    path_with_query: str,
    body: str | bytes,
    header: str,
    public_keys: Mapping[str, bytes],
    now: float,
    max_skew: int = 300,
) -> str:
    """Check a merchant request's Authorization header; return its mchid.

    `public_keys` maps merchant serial_no to public PEM. The caller should still check
    that the returned mchid owns that serial if it serves several merchants.
    Raises PaySignatureError (PayUnknownSerialError) or PayStaleError.
    """
    params = parse_authorization(header)
    public_pem = public_keys.get(params["serial_no"])
    if public_pem is None:
        raise PayUnknownSerialError(params["serial_no"])
    _check_timestamp(params["timestamp"], now, max_skew)
    message = _request_bytes(method, path_with_query, params["timestamp"], params["nonce_str"], _as_bytes(body))
    if not _verify_bytes(public_pem, message, params["signature"]):
        raise PaySignatureError("signature mismatch")
    return params["mchid"]


def response_headers(
    body: str,
    keypair: KeyPair,
    *,
    timestamp: int,
    nonce: str,
    request_id: str | None = None,
) -> dict[str, str]:
    """The headers with which the platform signs a response (or notify) body."""
    return {
        H_TIMESTAMP: str(timestamp),
        H_NONCE: nonce,
        H_SIGNATURE: sign(keypair.private_pem, f"{timestamp}\n{nonce}\n{body}\n"),
        H_SERIAL: keypair.serial,
        H_SIGNATURE_TYPE: SIGNATURE_TYPE,
        H_REQUEST_ID: request_id or secrets.token_hex(16),
    }


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        low = key.lower()
        if low in out and out[low] != value:
            raise PaySignatureError(f"conflicting {key} headers")
        out[low] = value
    return out


def verify_response(
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_keys: Mapping[str, bytes],
    now: float,
    max_skew: int = 300,
) -> str:
    """Check the platform signature on a response or notify; return the serial used.

    Order: required headers present, signature type, probe prefix, serial known,
    timestamp within `max_skew` (PayStaleError), signature over the raw `body`.
    Header names are matched case-insensitively.
    """
    h = _lower_headers(headers)
    names = (H_TIMESTAMP, H_NONCE, H_SIGNATURE, H_SERIAL, H_SIGNATURE_TYPE)
    missing = [n for n in names if not h.get(n.lower())]
    if missing:
        raise PaySignatureError("missing " + ", ".join(missing))
    if h[H_SIGNATURE_TYPE.lower()] != SIGNATURE_TYPE:
        raise PaySignatureError("signature type")
    signature = h[H_SIGNATURE.lower()]
    if signature.startswith(PROBE_PREFIX):
        raise PayProbeError("signature probe")
    serial = h[H_SERIAL.lower()]
    public_pem = public_keys.get(serial)
    if public_pem is None:
        raise PayUnknownSerialError(serial)
    raw_ts = h[H_TIMESTAMP.lower()]
    _check_timestamp(raw_ts, now, max_skew)
    if not _verify_bytes(public_pem, _signed_bytes(raw_ts, h[H_NONCE.lower()], body), signature):
        raise PaySignatureError("signature mismatch")
    return serial


# --------------------------------------------------------------------------- AEAD resources


def _aes_key(apiv3_key: str) -> bytes:
    """A misconfigured key is a ValueError, not a bad notify."""
    try:
        key = apiv3_key.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("APIv3 key must be 32 ASCII characters") from None
    if len(key) != 32:
        raise ValueError("APIv3 key must be 32 ASCII characters")
    return key


def encrypt_resource(
    apiv3_key: str,
    plaintext: str,
    *,
    associated_data: str,
    original_type: str,
    nonce: str | None = None,
) -> dict[str, str]:
    """AEAD_AES_256_GCM as the platform does it: base64(ciphertext || 16-byte tag)."""
    key = _aes_key(apiv3_key)
    nonce = nonce if nonce is not None else new_nonce(12)
    if len(nonce) != 12 or not nonce.isascii():
        raise ValueError("nonce must be 12 ASCII characters")
    sealed = AESGCM(key).encrypt(nonce.encode("ascii"), plaintext.encode("utf-8"), associated_data.encode("utf-8"))
    return {
        "original_type": original_type,
        "algorithm": AEAD_ALGORITHM,
        "ciphertext": b64encode(sealed).decode("ascii"),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def decrypt_resource(apiv3_key: str, resource: Mapping[str, object]) -> str:
    """The plaintext of an encrypted resource; PayDecryptError if it can't be had."""
    _aes_key(apiv3_key)
    algorithm = resource.get("algorithm", AEAD_ALGORITHM)
    if algorithm != AEAD_ALGORITHM:
        raise PayDecryptError("algorithm")
    nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
    associated_data = resource.get("associated_data") or ""
    if not (isinstance(nonce, str) and nonce and isinstance(ciphertext, str) and ciphertext):
        raise PayDecryptError("missing nonce or ciphertext")
    if not isinstance(associated_data, str):
        raise PayDecryptError("associated_data")
    try:
        plain = _sdk.aes_decrypt(
            nonce=nonce, ciphertext=ciphertext, associated_data=associated_data, apiv3_key=apiv3_key
        )
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise PayDecryptError("malformed resource") from None
    if plain is None:  # the SDK's answer to a bad tag
        raise PayDecryptError("authentication tag mismatch")
    return str(plain)


# --------------------------------------------------------------------------- notifies


@dataclass(frozen=True)
class Notify:
    id: str
    event_type: str
    summary: str
    create_time: str
    resource: dict[str, object]  # the decrypted JSON object


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def build_notify(
    *,
    platform: KeyPair,
    apiv3_key: str,
    event_type: str,
    summary: str,
    original_type: str,
    plain: Mapping[str, object],
    now: float,
    event_id: str | None = None,
    associated_data: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body WeChat Pay POSTs to notify_url.

    `associated_data` defaults to `original_type` ("transaction" / "refund").
    """
    resource = encrypt_resource(
        apiv3_key,
        _dumps(dict(plain)),
        associated_data=original_type if associated_data is None else associated_data,
        original_type=original_type,
    )
    envelope = {
        "id": event_id or f"EV-{secrets.token_hex(10).upper()}",
        "create_time": datetime.fromtimestamp(now, _CST).isoformat(timespec="seconds"),
        "resource_type": RESOURCE_TYPE,
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
    }
    body = _dumps(envelope)
    headers = response_headers(body, platform, timestamp=int(now), nonce=new_nonce())
    headers["Content-Type"] = "application/json"
    return headers, body.encode("utf-8")


def _parse_envelope(body: bytes) -> tuple[dict[str, object], dict[str, object]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise PayFormatError("body is not JSON") from None
    if not isinstance(data, dict):
        raise PayFormatError("body is not an object")
    for key in ("id", "create_time", "event_type"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PayFormatError(f"{key} missing")
    if not isinstance(data.get("summary", ""), str):
        raise PayFormatError("summary")
    if data.get("resource_type", RESOURCE_TYPE) != RESOURCE_TYPE:
        raise PayFormatError("resource_type")
    resource = data.get("resource")
    if not isinstance(resource, dict):
        raise PayFormatError("resource missing")
    if resource.get("algorithm") != AEAD_ALGORITHM:
        raise PayFormatError("resource algorithm")
    for key in ("ciphertext", "nonce"):
        if not isinstance(resource.get(key), str) or not resource[key]:
            raise PayFormatError(f"resource {key} missing")
    if not isinstance(resource.get("associated_data", ""), str):
        raise PayFormatError("resource associated_data")
    return data, resource


def parse_notify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_keys: Mapping[str, bytes],
    apiv3_key: str,
    now: float,
    max_skew: int = 300,
) -> Notify:
    """Authenticate and decrypt a notify POST. Pass the body exactly as received.

    Raises, in the order checked: PaySignatureError (missing headers, signature type;
    PayProbeError for a probe, PayUnknownSerialError), PayStaleError, PaySignatureError
    (signature mismatch), PayFormatError, PayDecryptError. A non-object plaintext is a
    PayFormatError. ValueError if `apiv3_key` itself is malformed (configuration).
    """
    verify_response(headers, body, public_keys=public_keys, now=now, max_skew=max_skew)
    data, resource = _parse_envelope(body)
    plain = decrypt_resource(apiv3_key, resource)
    try:
        decoded = json.loads(plain)
    except (ValueError, RecursionError):
        raise PayFormatError("resource plaintext is not JSON") from None
    if not isinstance(decoded, dict):
        raise PayFormatError("resource plaintext is not an object")
    summary = data.get("summary", "")
    return Notify(
        id=str(data["id"]),
        event_type=str(data["event_type"]),
        summary=summary if isinstance(summary, str) else "",
        create_time=str(data["create_time"]),
        resource=decoded,
    )


# --------------------------------------------------------------------------- JSAPI


def jsapi_pay_sign(app_id: str, timestamp: str, nonce: str, prepay_id: str, keypair: KeyPair) -> str:
    """``paySign`` for ``wx.requestPayment`` / ``WeixinJSBridge`` (signType "RSA").

    `prepay_id` is the bare id; the signed line is ``prepay_id=<id>``.
    """
    if prepay_id.startswith("prepay_id="):
        raise ValueError("pass the bare prepay_id, not the package string")
    return sign(keypair.private_pem, f"{app_id}\n{timestamp}\n{nonce}\nprepay_id={prepay_id}\n")
