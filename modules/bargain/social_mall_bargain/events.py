"""The module's domain events (written to the outbox with the change; its subscribers push
them to the starter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from social_mall.events import DomainEvent


@dataclass(frozen=True)
class BargainHelped(DomainEvent):
    """A friend's help cut the price: the starter hears 「还差 ¥x」 (or that the floor is reached)."""

    topic: ClassVar[str] = "bargain.helped"
    member_id: int        # the starter
    bargain_id: int
    code: str
    cut_fen: int
    price_fen: int
    floor_fen: int
    helps: int
    helps_needed: int


@dataclass(frozen=True)
class BargainExpired(DomainEvent):
    topic: ClassVar[str] = "bargain.expired"
    member_id: int
    bargain_id: int
    price_fen: int
