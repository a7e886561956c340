"""Appointments (预约): slots, resource cells, cancel and reschedule rules. Pure.

A service's slots on a day start at each opening range's start and every `step` minutes
after, as long as the service (`duration`) ends within the range; a range past midnight
(18:00–02:00) belongs to the day it opens, so its 00:30 slot is "the next day 00:30" of
that day's list. Times are Asia/Shanghai: a fixed UTC+8, no daylight saving, so every
day has 24 hours and a wall-clock time is one instant.

A resource's time is cut into 15-minute cells (epoch minutes // 15): a booking holds
every cell it touches, and a cell is held once (a unique key), so no resource is ever
booked twice at once — conservatively: two bookings sharing a started cell collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from social_mall_local.geo import Hours, at_local, local_day

CELL_MIN = 15
BOOKING_DAYS = 7
BOOKING_LEAD = timedelta(minutes=60)     # a slot can be booked until an hour before it starts
CHECK_IN_GRACE = timedelta(minutes=30)   # the check-in code works until this long after the end
NO_SHOW_AFTER = timedelta(minutes=30)    # not checked in this long after the end: a no-show
BP = 10_000


def cells(start: datetime, end: datetime) -> list[int]:
    """The 15-minute cells [start, end) touches."""
    first = int(start.timestamp()) // 60 // CELL_MIN
    end_min = -(-int(end.timestamp()) // 60)               # minutes, rounded up
    return list(range(first, max(-(-end_min // CELL_MIN), first + 1)))


def day_starts(hours: Hours, day: date, duration: int, step: int) -> list[datetime]:
    """Start instants of the service on `day` (ranges starting that day, past midnight too)."""
    out: list[datetime] = []
    for s, e in hours.on(day):
        t = s
        while t + duration <= e:
            out.append(at_local(day, t))
            t += max(step, CELL_MIN)
    return out


def bookable(hours: Hours, day: date, duration: int, step: int, now: datetime) -> list[datetime]:
    return [t for t in day_starts(hours, day, duration, step) if t - BOOKING_LEAD >= now]


def open_days(hours: Hours, duration: int, step: int, now: datetime, days: int = BOOKING_DAYS) -> list[date]:
    first = local_day(now)
    return [d for d in (first + timedelta(days=i) for i in range(days)) if bookable(hours, d, duration, step, now)]


@dataclass(frozen=True)
class CancelTerms:
    allowed: bool
    refund_fen: int
    free: bool


def cancel_terms(paid_fen: int, starts_at: datetime, now: datetime, free_hours: int, late_refund_bp: int
                 ) -> CancelTerms:
    """Free (everything back) until `free_hours` before the start; later and before the
    start, `late_refund_bp` of what was paid (0: nothing); from the start: not at all."""
    if now >= starts_at:
        return CancelTerms(False, 0, False)
    if now <= starts_at - timedelta(hours=free_hours):
        return CancelTerms(True, paid_fen, True)
    return CancelTerms(True, paid_fen * late_refund_bp // BP, False)


def can_reschedule(starts_at: datetime, now: datetime, free_hours: int) -> bool:
    return now <= starts_at - timedelta(hours=free_hours)
