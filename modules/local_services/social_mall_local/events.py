"""The module's domain events (written to the outbox with the change; its own subscribers
push them to members)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class TicketsIssued(DomainEvent):
    topic: ClassVar[str] = "local.tickets_issued"
    member_id: int
    order_id: int
    order_no: str
    ticket_ids: list[int]


@dataclass(frozen=True)
class TicketVerified(DomainEvent):
    topic: ClassVar[str] = "local.ticket_verified"
    member_id: int
    ticket_id: int
    title: str
    store_name: str
    uses: int
    uses_left: int


@dataclass(frozen=True)
class DeliveryMoved(DomainEvent):
    """A same-city delivery was handed to a rider, or delivered."""

    topic: ClassVar[str] = "local.delivery_moved"
    member_id: int
    order_id: int
    order_no: str
    status: str
    rider: str = ""


@dataclass(frozen=True)
class BookingReminder(DomainEvent):
    topic: ClassVar[str] = "local.booking_reminder"
    member_id: int
    booking_id: int
    title: str
    store_name: str
    starts_at: str     # ISO, UTC


@dataclass(frozen=True)
class BookingChanged(DomainEvent):
    topic: ClassVar[str] = "local.booking_changed"
    member_id: int
    booking_id: int
    title: str
    status: str
    starts_at: str
    refund_fen: int = 0
