"""The referral module's domain events (written to the outbox like the core's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class MemberBound(DomainEvent):
    topic: ClassVar[str] = "referral.bound"
    member_id: int
    distributor_member_id: int
    source: str


@dataclass(frozen=True)
class DistributorDecided(DomainEvent):
    """An application was approved (at once, or by an admin) or rejected."""

    topic: ClassVar[str] = "referral.distributor_decided"
    member_id: int
    status: str
    code: str
    auto: bool = False


@dataclass(frozen=True)
class CommissionEarned(DomainEvent):
    topic: ClassVar[str] = "referral.commission_earned"
    member_id: int              # the distributor (a member), to push to
    order_no: str
    level: int
    amount_fen: int
    freeze_days: int


@dataclass(frozen=True)
class QrRequested(DomainEvent):
    """The distributor asked for their QR code: made and sent as an image message."""

    topic: ClassVar[str] = "referral.qr_requested"
    member_id: int
    code: str
    explicit: bool = True       # False: part of 「我的推广」, sent at most once a day
    account_id: int = 0         # the official account asked through (0: the primary, or unknown)


@dataclass(frozen=True)
class PayoutDue(DomainEvent):
    """An approved withdrawal to pay out through the gateway's transfer API."""

    topic: ClassVar[str] = "referral.payout_due"
    withdrawal_id: int
    member_id: int
    out_bill_no: str
    amount_fen: int


@dataclass(frozen=True)
class WithdrawalSettled(DomainEvent):
    topic: ClassVar[str] = "referral.withdrawal_settled"
    withdrawal_id: int
    member_id: int
    amount_fen: int
    status: str                 # paid | rejected | failed
    reason: str = ""
