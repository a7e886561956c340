"""Group-buy domain events (written to the outbox with the change that caused them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class TeamOpened(DomainEvent):
    topic: ClassVar[str] = "groupbuy.team_opened"
    team_id: int
    campaign_id: int
    member_id: int
    chat_id: str = ""


@dataclass(frozen=True)
class SeatConfirmed(DomainEvent):
    """A member paid for a seat: progress to push to every member of the team."""

    topic: ClassVar[str] = "groupbuy.seat_confirmed"
    team_id: int
    member_id: int
    order_id: int
    paid: int
    size: int


@dataclass(frozen=True)
class TeamSucceeded(DomainEvent):
    topic: ClassVar[str] = "groupbuy.team_succeeded"
    team_id: int
    paid: int
    virtual: int
    size: int
    member_ids: tuple[int, ...] = ()  # the paying members (loyalty issues success coupons)


@dataclass(frozen=True)
class TeamFailed(DomainEvent):
    """The team's lifetime ended short of its size (or its leader closed it): every paid
    member is refunded by the refund sweeper."""

    topic: ClassVar[str] = "groupbuy.team_failed"
    team_id: int
    paid: int
    size: int
    reason: str


@dataclass(frozen=True)
class TeamRefunded(DomainEvent):
    topic: ClassVar[str] = "groupbuy.team_refunded"
    team_id: int
    refunds: int
