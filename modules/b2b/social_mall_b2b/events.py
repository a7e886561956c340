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
