"""The module's domain events (written to the outbox with the change; the module's own
subscriber pushes them to the member)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class CompanyDecided(DomainEvent):
    """An admin approved or rejected a business-account application."""

    topic: ClassVar[str] = "b2b.company_decided"
    member_id: int
    company_id: int
    name: str
    approved: bool
    reason: str


@dataclass(frozen=True)
class QuoteAnswered(DomainEvent):
    """An admin priced a quote request: pushed to the member who asked."""

    topic: ClassVar[str] = "b2b.quote_answered"
    member_id: int
    quote_id: int
    total_fen: int
    expires_at: str     # ISO, UTC


@dataclass(frozen=True)
class StatementIssued(DomainEvent):
    """A monthly statement of a company's credit orders: pushed to the company's owner."""

    topic: ClassVar[str] = "b2b.statement_issued"
    member_id: int
    statement_id: int
    period: str
    amount_fen: int
    due_at: str         # ISO, UTC


@dataclass(frozen=True)
class ApprovalRequested(DomainEvent):
    """A buyer's order over its budget waits for the owner: pushed to the owner."""

    topic: ClassVar[str] = "b2b.approval_requested"
    member_id: int          # the owner
    approval_id: int
    buyer_id: int
    total_fen: int


@dataclass(frozen=True)
class ApprovalDecided(DomainEvent):
    """The owner approved (an order was placed) or rejected a buyer's request: pushed to the buyer."""

    topic: ClassVar[str] = "b2b.approval_decided"
    member_id: int          # the buyer
    approval_id: int
    approved: bool
    order_no: str
    total_fen: int
    expired: bool = False   # not approved in time (approvals.APPROVAL_DAYS): nothing placed
