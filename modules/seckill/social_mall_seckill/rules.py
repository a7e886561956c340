"""Pure rules: a session's phase, countdowns, the admission pool of an item, quantities."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

PAY_GRACE = timedelta(minutes=2)      # the core's own deadline on a seckill order: ours + this
ADMIT_HOLD_SECONDS = 30.0             # an admitted request has this long to write its order
BUSY_SECONDS = 10.0                   # one attempt in flight per member (a lease)
MAX_PAY_MINUTES = 30


class Phase(StrEnum):
    UPCOMING = "upcoming"
    LIVE = "live"
    ENDED = "ended"


def phase(starts_at: datetime, ends_at: datetime, now: datetime) -> Phase:
    if now < starts_at:
        return Phase.UPCOMING
    return Phase.LIVE if now < ends_at else Phase.ENDED


def countdown(delta: timedelta) -> str:
    """「01:02:03」 (hours may pass 24: 「26:00:00」); never negative."""
    secs = max(0, int(delta.total_seconds()))
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def pool(item_id: int) -> str:
    """The admission pool of an item (social_mall/admission.py)."""
    return f"seckill:{item_id}"


def item_of_pool(name: str) -> int | None:
    head, _, tail = name.partition(":")
    return int(tail) if head == "seckill" and tail.isascii() and tail.isdigit() else None


def pay_by(now: datetime, pay_minutes: int) -> datetime:
    return now + timedelta(minutes=pay_minutes)
