"""Pay module tables: per-tenant real WeChat Pay credentials, the active-query sweeper's
bookkeeping and daily reconciliation reports.

Secrets: the APIv3/APIv2 keys are stored here like the core stores tenants.pay_apiv3_key;
private keys and platform certificates/public keys stay on disk, referenced by path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow

MCH_API_BASE = "https://api.mch.weixin.qq.com"


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class TenantPayAccount(Base):
    """A merchant account of a tenant at WeChat Pay (several per tenant, one `is_default`;
    a channel account may name its own). No row: the sandbox gateway."""

    __tablename__ = "tenant_pay_accounts"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(40), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    api_version: Mapped[str] = mapped_column(String(4), default="v3")  # v3 | v2
    mch_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(64))
    apiv3_key: Mapped[str] = mapped_column(String(64), default="")   # v3: AEAD key (32 ASCII)
    apiv2_key: Mapped[str] = mapped_column(String(64), default="")   # v2: signing key
    v2_sign_type: Mapped[str] = mapped_column(String(16), default="MD5")  # MD5 | HMAC-SHA256
    private_key_path: Mapped[str] = mapped_column(String(255), default="")  # apiclient_key.pem
    serial_no: Mapped[str] = mapped_column(String(64), default="")  # merchant cert serial
    platform_mode: Mapped[str] = mapped_column(String(16), default="public_key")  # | certificate
    platform_key_path: Mapped[str] = mapped_column(String(255), default="")  # pub_key.pem / cert
    platform_key_id: Mapped[str] = mapped_column(String(64), default="")  # PUB_KEY_ID_… / serial
    base_url: Mapped[str] = mapped_column(String(255), default=MCH_API_BASE)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PayTradeCheck(Base):
    """What the active-query sweeper last learned about one pending payment."""

    __tablename__ = "pay_trade_checks"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    trade_state: Mapped[str] = mapped_column(String(20), default="")
    checks: Mapped[int] = mapped_column(Integer, default=0)
    final: Mapped[bool] = mapped_column(Boolean, default=False)  # nothing more to ask
    last_checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class PayReconciliation(Base):
    """One day's reconciliation of one merchant's payments against its trade bill."""

    __tablename__ = "pay_reconciliations"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    # the merchant (tenant_pay_accounts.id) whose bill it is; None: a report from before merchants
    pay_account_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)
    bill_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, Asia/Shanghai
    status: Mapped[str] = mapped_column(String(12))  # ok | mismatch | error
    checked: Mapped[int] = mapped_column(Integer, default=0)
    mismatches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "pay_account_id", "bill_date",
                                       name="uq_pay_reconciliations_merchant_day"),)
