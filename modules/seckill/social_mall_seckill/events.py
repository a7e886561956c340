"""The module's events (through the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class SeckillStarted(DomainEvent):
    """A session started (once): announce it in the WeCom group."""

    topic: ClassVar[str] = "seckill.started"
    session_id: int


@dataclass(frozen=True)
class SeckillRemind(DomainEvent):
    """Push one subscribed member that the session started (delivered in lots)."""

    topic: ClassVar[str] = "seckill.remind"
    session_id: int
    member_id: int
