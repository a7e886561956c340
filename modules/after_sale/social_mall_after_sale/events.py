"""The module's domain events (written to the outbox with the change, delivered after commit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class AfterSaleChanged(DomainEvent):
    """A request moved (submitted, approved, rejected, received, refunding, refunded,
    withdrawn, closed): the member is told."""

    topic: ClassVar[str] = "aftersale.changed"
    request_id: int
    member_id: int
    order_no: str
    kind: str
    status: str
    refund_fen: int = 0
    note: str = ""
    by_timer: bool = False


@dataclass(frozen=True)
class AfterSalePhotosSent(DomainEvent):
    """A request came with photos: fetch their bytes through WeChat's media API (a sent
    image is kept 3 days there) and keep them with the request. A media id is valid only
    with the token of the official account it was sent to: `account_id` (0: the primary)."""

    topic: ClassVar[str] = "aftersale.photos"
    request_id: int
    account_id: int = 0


@dataclass(frozen=True)
class ReviewPhotosSent(DomainEvent):
    """A review came with photos: fetch and keep them (as for a request's photos)."""

    topic: ClassVar[str] = "aftersale.review_photos"
    review_id: int
    account_id: int = 0   # the official account the photos were sent to (0: the primary)
