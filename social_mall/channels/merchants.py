"""A tenant's WeChat Pay merchants (`tenant_pay_accounts`), configured from the console:
several per tenant, one default; a channel account names the one its orders are paid
through (none: the default).

Secrets are write-only: the APIv3/APIv2 keys and the two key files (the merchant's private
key, the platform's public key or certificates) are never shown back; a blank field keeps
what is stored. Key files are pasted as PEM text and written under the deployment's data
directory, one folder per tenant (never a path typed in: a tenant can't point its merchant
at another tenant's key). Every change is audited with before/after, secrets as "***".
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from social_mall.channels.service import ChannelInputError, secret_mark
from social_mall.errors import NotFoundError
from storage.pay_models import TenantPayAccount
from storage.pay_repos import PayAccountRepo
from storage.uow import UnitOfWork

_MCH = re.compile(r"[0-9]{6,32}")
_APP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEY32 = re.compile(r"[\x21-\x7e]{32}")
_SERIAL = re.compile(r"[0-9A-Fa-f]{8,64}")
_KEY_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
PEM_MAX = 16 * 1024
PLAIN = ("name", "api_version", "mch_id", "app_id", "v2_sign_type", "serial_no", "platform_mode", "platform_key_id")
SECRET_KEYS = ("apiv3_key", "apiv2_key")
FILES = ("private_key", "platform_key")  # pasted PEM → *_path


@dataclass(frozen=True)
class MerchantView:
    id: int
    name: str
    is_default: bool
    api_version: str
    mch_id: str
    app_id: str
    v2_sign_type: str
    serial_no: str
    platform_mode: str
    platform_key_id: str
    base_url: str
    enabled: bool
    is_set: dict[str, bool]   # apiv3_key, apiv2_key, private_key, platform_key


def merchant_view(r: TenantPayAccount) -> MerchantView:
    return MerchantView(r.id, r.name or "", bool(r.is_default), r.api_version, r.mch_id, r.app_id, r.v2_sign_type,
                        r.serial_no, r.platform_mode, r.platform_key_id, r.base_url, bool(r.enabled),
                        {"apiv3_key": bool(r.apiv3_key), "apiv2_key": bool(r.apiv2_key),
                         "private_key": bool(r.private_key_path), "platform_key": bool(r.platform_key_path)})


def audit_values(r: TenantPayAccount) -> dict[str, object]:
    out: dict[str, object] = {k: getattr(r, k) for k in PLAIN}
    out.update(is_default=bool(r.is_default), enabled=bool(r.enabled), base_url=r.base_url)
    for k in SECRET_KEYS:
        out[k] = secret_mark(getattr(r, k) or "")
    for k in FILES:
        out[k] = secret_mark(getattr(r, f"{k}_path") or "")
    return out


async def merchants(uow: UnitOfWork, tenant: int) -> tuple[MerchantView, ...]:
    return tuple(merchant_view(r) for r in await PayAccountRepo(uow.session).merchants(tenant))


async def merchant(uow: UnitOfWork, tenant: int, merchant_id: int) -> MerchantView:
    row = await PayAccountRepo(uow.session).for_merchant(tenant, merchant_id)
    if row is None:
        raise NotFoundError("merchant", merchant_id)
    return merchant_view(row)


def _check(values: dict[str, str]) -> dict[str, str]:
    """The fields given (blank ones dropped), each checked; ChannelInputError names the first bad one."""
    out = {k: v.strip() for k, v in values.items() if v.strip()}
    rules: dict[str, re.Pattern[str]] = {"mch_id": _MCH, "app_id": _APP_ID, "apiv3_key": _KEY32,
                                         "apiv2_key": _KEY32, "serial_no": _SERIAL, "platform_key_id": _KEY_ID}
    for k, pattern in rules.items():
        if k in out and not pattern.fullmatch(out[k]):
            raise ChannelInputError(k, "format")
    if "name" in out and (len(out["name"]) > 40 or not out["name"].isprintable()):
        raise ChannelInputError("name", "length")
    choices = {"api_version": ("v3", "v2"), "v2_sign_type": ("MD5", "HMAC-SHA256"),
               "platform_mode": ("public_key", "certificate")}
    for k, allowed in choices.items():
        if k in out and out[k] not in allowed:
            raise ChannelInputError(k, "unknown")
    for k in FILES:
        if k in out:
            out[k] = _pem(k, out[k])
    return out


def _pem(field_name: str, text: str) -> str:
    """A pasted PEM that the payment code will be able to load, or ChannelInputError."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    text = text.replace("\r\n", "\n")
    if len(text) > PEM_MAX or not text.isascii() or "-----BEGIN" not in text:
        raise ChannelInputError(field_name, "pem")
    data = text.encode()
    try:
        if field_name == "private_key":
            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ChannelInputError(field_name, "pem")
        elif "CERTIFICATE" in text:
            if not x509.load_pem_x509_certificates(data):
                raise ChannelInputError(field_name, "pem")
        else:
            serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ChannelInputError(field_name, "pem") from None
    return text if text.endswith("\n") else text + "\n"


def _write_pem(keys_dir: Path, tenant: int, merchant_id: int, what: str, text: str) -> str:
    """Write a key file (owner-only) under keys_dir/<tenant>/ named by its SHA-256; returns its path."""
    folder = keys_dir / str(tenant)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"m{merchant_id}_{what}_{hashlib.sha256(text.encode()).hexdigest()[:12]}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    return str(path)


async def prune_keys(uow: UnitOfWork, tenant: int, merchant_id: int, keys_dir: Path) -> int:
    """Remove the merchant's key files that its row no longer names (a key replaced in the
    console): called once the save is committed, so a failed save keeps the old key in use.
    Only files `_write_pem` named for this merchant, under keys_dir/<tenant>/; how many went."""
    row = await PayAccountRepo(uow.session).for_merchant(tenant, merchant_id)
    if row is None:
        return 0
    keep = {getattr(row, f"{k}_path") or "" for k in FILES}
    gone = 0
    for path in (keys_dir / str(tenant)).glob(f"m{merchant_id}_*.pem"):
        if str(path) not in keep:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


async def save_merchant(uow: UnitOfWork, tenant: int, merchant_id: int | None, values: dict[str, str], *,
                        enabled: bool, keys_dir: Path, base_url: str, actor: str, now: datetime) -> MerchantView:
    """Create (`merchant_id` None) or update a merchant. Blank fields keep what is stored;
    a new one needs mch_id, app_id and (v3) the APIv3 key, the private key with its serial
    and the platform key (public-key mode: with its PUB_KEY_ID), or (v2) the APIv2 key.
    The default merchant can't be disabled (make another the default first)."""
    repo = PayAccountRepo(uow.session)
    given = _check(values)
    plain = {k: given[k] for k in PLAIN if k in given}
    keys = {k: given[k] for k in SECRET_KEYS if k in given}
    if merchant_id is None:
        version = plain.get("api_version", "v3")
        need = ("mch_id", "app_id", "apiv3_key", "private_key", "serial_no", "platform_key") if version == "v3" \
            else ("mch_id", "app_id", "apiv2_key")
        for k in need:
            if k not in given:
                raise ChannelInputError(k, "required")
        if version == "v3" and plain.get("platform_mode", "public_key") == "public_key" and "platform_key_id" not in given:
            raise ChannelInputError("platform_key_id", "required")
        made = await repo.add_merchant(tenant, now, **plain, **keys, enabled=True, base_url=base_url)
        paths = {f"{k}_path": _write_pem(keys_dir, tenant, made.id, k, given[k]) for k in FILES if k in given}
        if paths:
            await repo.update_merchant(made, now, **paths)
        uow.audit(tenant, actor, "merchant.create", f"merchant:{made.id}",
                  after={**audit_values(made), "changed": sorted(given)})
        return merchant_view(made)
    row = await repo.for_merchant(tenant, merchant_id)
    if row is None:
        raise NotFoundError("merchant", merchant_id)
    if not enabled and row.is_default and row.enabled:
        raise ChannelInputError("enabled", "default")
    changes: dict[str, object] = {k: v for k, v in {**plain, **keys}.items() if getattr(row, k) != v}
    for k in FILES:
        if k in given:
            path = _write_pem(keys_dir, tenant, row.id, k, given[k])
            if path != getattr(row, f"{k}_path"):
                changes[f"{k}_path"] = path
    if bool(row.enabled) != enabled:
        changes["enabled"] = enabled
    if changes:
        before = audit_values(row)
        await repo.update_merchant(row, now, **changes)
        uow.audit(tenant, actor, "merchant.update", f"merchant:{row.id}", before=before,
                  after={**audit_values(row), "changed": sorted(k.removesuffix("_path") for k in changes)})
    return merchant_view(row)


async def make_default(uow: UnitOfWork, tenant: int, merchant_id: int, *, actor: str) -> MerchantView:
    """The tenant's orders without a merchant of their own are paid through this one now."""
    repo = PayAccountRepo(uow.session)
    rows = await repo.merchants(tenant)
    target = next((r for r in rows if r.id == merchant_id), None)
    if target is None:
        raise NotFoundError("merchant", merchant_id)
    if not target.enabled:
        raise ChannelInputError("is_default", "disabled")
    old = rows[0] if rows and rows[0].is_default else None
    if old is not None and old.id == merchant_id:
        return merchant_view(target)
    await repo.make_default(tenant, merchant_id)
    uow.audit(tenant, actor, "merchant.default", f"merchant:{merchant_id}",
              before={"default": old.id if old is not None else None}, after={"default": merchant_id})
    row = await repo.for_merchant(tenant, merchant_id)
    assert row is not None
    return merchant_view(row)
