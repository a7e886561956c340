"""Domain events (past tense). Written to the outbox in the changing transaction and
dispatched after commit to the subscribers registered for their topic."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


_PLAIN = frozenset({int, str, bool, float, type(None)})
_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class DomainEvent:
    topic: ClassVar[str] = "event"
    tenant_id: int

    def payload(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)`; an event of plain fields (most: ids, amounts, names)
        without its recursive deep copy (a crowd's member.joined, one per member)."""
        cls = type(self)
        names = _NAMES.get(cls)
        if names is None:
            names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(self))
        out: dict[str, Any] = {}
        for name in names:
            v = getattr(self, name)
            if type(v) not in _PLAIN:
                return dataclasses.asdict(self)
            out[name] = v
        return out


@dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    topic: ClassVar[str] = "order.placed"
    order_id: int
    order_no: str
    member_id: int
    total_fen: int
    source: str = ""


@dataclass(frozen=True)
class OrderPaid(DomainEvent):
    topic: ClassVar[str] = "order.paid"
    order_id: int
    order_no: str
    member_id: int
    paid_fen: int
    channel: str = "mp"
    fulfilment: str = "express"  # the order's fulfilment method (social_mall/fulfilment.py)


@dataclass(frozen=True)
class OrderCancelled(DomainEvent):
    topic: ClassVar[str] = "order.cancelled"
    order_id: int
    order_no: str
    member_id: int
    reason: str


@dataclass(frozen=True)
class OrderShipped(DomainEvent):
    topic: ClassVar[str] = "order.shipped"
    order_id: int
    order_no: str
    member_id: int
    tracking_no: str


@dataclass(frozen=True)
class OrderCompleted(DomainEvent):
    """Receipt confirmed: the return window closes, referral freeze clocks start."""

    topic: ClassVar[str] = "order.completed"
    order_id: int
    order_no: str
    member_id: int
    paid_fen: int


@dataclass(frozen=True)
class OrderReceiptDue(DomainEvent):
    """A shipped order will be confirmed received automatically at `confirm_at` (ISO, UTC):
    the member is told the day before."""

    topic: ClassVar[str] = "order.receipt_due"
    order_id: int
    order_no: str
    member_id: int
    confirm_at: str


@dataclass(frozen=True)
class OrderRefunded(DomainEvent):
    topic: ClassVar[str] = "order.refunded"
    order_id: int
    order_no: str
    member_id: int
    refund_fen: int
    paid_fen: int
    full: bool
    out_refund_no: str = ""   # which refund settled (a module that asked for it finds its own)


@dataclass(frozen=True)
class MemberJoined(DomainEvent):
    topic: ClassVar[str] = "member.joined"
    member_id: int
    channel: str
    entry_source: str


@dataclass(frozen=True)
class MemberTagDeleted(DomainEvent):
    """A member tag was deleted (its links with it): whoever keeps it up by a rule lets go."""

    topic: ClassVar[str] = "member_tag.deleted"
    tag_id: int
    name: str


@dataclass(frozen=True)
class MemberTagMembersChanged(DomainEvent):
    """A tag synced to WeChat was given to or taken from these members: each synced official
    account's tag is brought in line with who holds ours when it is delivered."""

    topic: ClassVar[str] = "member_tag.members_changed"
    tag_id: int
    member_ids: tuple[int, ...]


@dataclass(frozen=True)
class MemberTagRenamed(DomainEvent):
    topic: ClassVar[str] = "member_tag.renamed"
    tag_id: int
    name: str


@dataclass(frozen=True)
class MemberTagUnsynced(DomainEvent):
    """A deleted tag's WeChat user tag on one official account: to delete there too."""

    topic: ClassVar[str] = "member_tag.wechat_unsynced"
    tag_id: int
    account_id: int
    wechat_tag_id: int


@dataclass(frozen=True)
class MessageQueued(DomainEvent):
    """A chat message to deliver later through the channel's push API (the slow path)."""

    topic: ClassVar[str] = "message.push"
    channel: str
    user_id: str
    replies: list[dict[str, Any]]
    account: int = 0  # the tenant's channel account the member talks to (0: the primary one)


@dataclass(frozen=True)
class PaymentNeedsRefund(DomainEvent):
    """Money arrived for an order that was already closed; a refund must go back."""

    topic: ClassVar[str] = "payment.needs_refund"
    order_id: int
    out_trade_no: str
    out_refund_no: str
    refund_fen: int
    total_fen: int


@dataclass(frozen=True)
class MemberEntered(DomainEvent):
    """A member arrived through a parametric QR code or link (scene value): referral
    and group-buy modules subscribe to bind the member or open the team's join step."""

    topic: ClassVar[str] = "member.entered"
    member_id: int
    channel: str
    scene: str
    first_time: bool
