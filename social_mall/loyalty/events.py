"""Loyalty events. `member.merged` is for every module that keeps per-member rows of its
own (referral bindings, group-buy teams…): move `merged_member_id`'s rows to
`kept_member_id` when it arrives. Orders, identities, addresses, cart, points and coupons
are moved by the merge itself, in the transaction that emits the event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class MemberMerged(DomainEvent):
    topic: ClassVar[str] = "member.merged"
    kept_member_id: int
    merged_member_id: int
    via: str


@dataclass(frozen=True)
class LevelChanged(DomainEvent):
    topic: ClassVar[str] = "loyalty.level_changed"
    member_id: int
    old_level: str
    new_level: str
    growth: int
    up: bool


@dataclass(frozen=True)
class CouponIssued(DomainEvent):
    """A coupon was given to the member (not claimed by them): by an admin (channel
    "console", source "admin:<actor>") or automatically (channel "job", source
    "event:<what triggered it>"). `push` off: the giver tells the member itself."""

    topic: ClassVar[str] = "loyalty.coupon_issued"
    member_id: int
    coupon_id: int
    name: str
    source: str
    channel: str = ""
    push: bool = True


@dataclass(frozen=True)
class CouponClaimed(DomainEvent):
    """The member took a coupon themselves (「领券」): no push (that is `loyalty.coupon_issued`,
    for coupons given to them)."""

    topic: ClassVar[str] = "loyalty.coupon_claimed"
    member_id: int
    coupon_id: int
    name: str
    channel: str = ""


@dataclass(frozen=True)
class CouponUsed(DomainEvent):
    """A coupon was spent: the order it was applied to is paid (once per order)."""

    topic: ClassVar[str] = "loyalty.coupon_used"
    member_id: int
    coupon_id: int
    order_id: int
    off_fen: int          # what the coupon took off the order
    source: str           # how the member got it (claim, birthday, a campaign…)
    channel: str = ""     # where the order was paid from


@dataclass(frozen=True)
class BirthdayCouponsIssued(DomainEvent):
    """This year's birthday coupons were given (one push for all of them)."""

    topic: ClassVar[str] = "loyalty.birthday_coupons"
    member_id: int
    year: int
    count: int
    names: str          # the coupons' names, joined with "、"
