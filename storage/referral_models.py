"""Referral tables: programme settings, distributor levels and per-product rates,
distributors (with their balance columns), bindings, commissions, the append-only
ledger and withdrawals. Every row carries tenant_id; money is integer fen; rates are
basis points.

The balance columns on `referral_distributors` move only by atomic increments in the
same transaction as the ledger entry that explains them (`reconcile` proves it); a
withdrawal takes funds with `available_fen >= :amount` in the UPDATE, so two
concurrent requests can never overdraw.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id"), index=True)


class ReferralSettings(Base):
    __tablename__ = "referral_settings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=True)
    binding_mode: Mapped[str] = mapped_column(String(8), default="first")
    lifetime_days: Mapped[int] = mapped_column(Integer, default=0)
    freeze_days: Mapped[int] = mapped_column(Integer, default=7)
    level1_bp: Mapped[int] = mapped_column(Integer, default=1000)
    level2_bp: Mapped[int] = mapped_column(Integer, default=500)
    min_withdraw_fen: Mapped[int] = mapped_column(BigInteger, default=100)
    daily_limit_fen: Mapped[int] = mapped_column(BigInteger, default=500_000)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralLevel(Base):
    __tablename__ = "referral_levels"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    name: Mapped[str] = mapped_column(String(40))
    level1_bp: Mapped[int] = mapped_column(Integer)
    level2_bp: Mapped[int] = mapped_column(Integer)
    sort: Mapped[int] = mapped_column(Integer, default=0)


class ReferralProductRate(Base):
    __tablename__ = "referral_product_rates"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    level1_bp: Mapped[int] = mapped_column(Integer)
    level2_bp: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)


class Distributor(Base):
    __tablename__ = "referral_distributors"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    level_id: Mapped[int | None] = mapped_column(ForeignKey("referral_levels.id"), default=None)
    frozen_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    available_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    qr_url: Mapped[str] = mapped_column(String(200), default="")   # what the OA QR encodes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"), UniqueConstraint("tenant_id", "code"))


class Binding(Base):
    """Who referred a member (one live binding per member; history in the audit log)."""

    __tablename__ = "referral_bindings"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    distributor_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="qr")   # qr | link
    version: Mapped[int] = mapped_column(Integer, default=1)         # for conditional rebinding
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("tenant_id", "member_id"),)


class Commission(Base):
    __tablename__ = "referral_commissions"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    order_no: Mapped[str] = mapped_column(String(32))
    buyer_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("referral_distributors.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    base_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger)          # the order's paid amount (refund ratio)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(12), default="frozen")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    unfreeze_at: Mapped[datetime | None] = mapped_column(default=None)
    unfrozen_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", "level"),
        Index("ix_referral_commissions_due", "status", "unfreeze_at"),
    )


class LedgerEntry(Base):
    """Append-only: never updated, never deleted. `ref` makes each money move happen once."""

    __tablename__ = "referral_ledger"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    distributor_id: Mapped[int] = mapped_column(ForeignKey("referral_distributors.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    bucket: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(64))
    commission_id: Mapped[int | None] = mapped_column(default=None)
    withdrawal_id: Mapped[int | None] = mapped_column(default=None)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(String(80), default="")
    actor: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "ref"),)


class Withdrawal(Base):
    __tablename__ = "referral_withdrawals"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    distributor_id: Mapped[int] = mapped_column(ForeignKey("referral_distributors.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="requested")
    out_bill_no: Mapped[str] = mapped_column(String(32), unique=True)
    transfer_id: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(80), default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    # the payout at the gateway (商家转账单 state: ACCEPTED, PROCESSING, WAIT_USER_CONFIRM,
    # TRANSFERING, SUCCESS, FAIL, CANCELING, CANCELLED; NOT_FOUND) and when it was last asked
    payout_state: Mapped[str] = mapped_column(String(24), default="", server_default="")
    payout_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    # the pay merchant (tenant_pay_accounts.id, 0: the default) the payout was sent through,
    # chosen once before the first transfer so a retry or the sweeper asks that one; None:
    # not sent yet (or sent before there were several: the default)
    payout_merchant_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    __table_args__ = (Index("ix_referral_withdrawals_day", "tenant_id", "distributor_id", "requested_at"),
                      Index("ix_referral_withdrawals_status_checked", "status", "payout_checked_at"))


class ReferralMerge(Base):
    """A `member.merged` the referral module has applied (once per merged member: the
    unique key makes a repeated or concurrent delivery a no-op), and where a merged
    distributor's code now leads (`kept_member_id`'s record)."""

    __tablename__ = "referral_merges"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    merged_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kept_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "merged_member_id"),)


class DistributorAccountQr(Base):
    """What a distributor's QR encodes at one of the tenant's other official accounts (its
    permanent QR, scene ref_<code>, made with that account's token: following through it
    follows that account). The primary account's is `referral_distributors.qr_url`."""

    __tablename__ = "referral_account_qr"
    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = _tenant()
    distributor_id: Mapped[int] = mapped_column(ForeignKey("referral_distributors.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    url: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("tenant_id", "distributor_id", "account_id"),)
