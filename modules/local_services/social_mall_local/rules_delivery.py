"""Same-city delivery (同城配送): zones, fee tiers, time slots. Pure.

A store's zone is a radius around it or a polygon. A point is served by the zone whose
store is nearest among the zones that contain it; the fee is the first tier whose
distance (store → point, straight line) reaches it; past the last tier nothing delivers.
Slots come from the store's weekday templates; a day the store's exceptions close has
none; a slot may be booked until it starts (minus a lead time), up to its capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from social_mall_local.geo import Hours, Point, at_local, distance_m, in_polygon, local_day

SLOT_DAYS = 3                          # today and the next two days
SLOT_LEAD = timedelta(minutes=30)      # a slot closes this long before it starts
SLOTS_LISTED = 9


@dataclass(frozen=True)
class ZoneRule:
    id: int
    store_id: int
    name: str
    kind: str                          # radius | polygon
    radius_m: int
    polygon: tuple[Point, ...]
    tiers: tuple[tuple[int, int], ...]  # (up to metres, fee fen), ascending
    min_order_fen: int
    active: bool = True

    def contains(self, store: Point, p: Point) -> bool:
        if self.kind == "polygon":
            return len(self.polygon) >= 3 and in_polygon(p, self.polygon)
        return distance_m(store, p) <= self.radius_m

    def fee(self, distance: int) -> int | None:
        return next((fee for upto, fee in self.tiers if distance <= upto), None)


@dataclass(frozen=True)
class Served:
    zone: ZoneRule
    distance_m: int
    fee_fen: int


def serve(zones: Sequence[tuple[ZoneRule, Point]], p: Point) -> Served | None:
    """The zone (with its store's point) that delivers to `p` at its fee, or None."""
    best: Served | None = None
    for zone, store in zones:
        if not zone.contains(store, p):
            continue
        d = distance_m(store, p)
        fee = zone.fee(d)
        if fee is None:
            continue
        if best is None or (d, zone.id) < (best.distance_m, best.zone.id):
            best = Served(zone, d, fee)
    return best


def parse_tiers(text: str) -> tuple[tuple[int, int], ...] | None:
    """Lines "3000 5.00" (up to 3 km: ¥5.00) → ascending tiers, else None."""
    out: list[tuple[int, int]] = []
    for line in [ln.strip() for ln in text.splitlines() if ln.strip()]:
        parts = line.split()
        if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit()) or not 0 < int(parts[0]) <= 100_000:
            return None
        whole, dot, frac = parts[1].partition(".")
        if not (whole.isascii() and whole.isdigit() and len(whole) <= 5) or (
                dot and not (frac.isascii() and frac.isdigit() and 1 <= len(frac) <= 2)):
            return None
        out.append((int(parts[0]), int(whole) * 100 + int(frac.ljust(2, "0") if dot else "0")))
    out.sort()
    if not out or len({u for u, _ in out}) != len(out):
        return None
    return tuple(out)


@dataclass(frozen=True)
class SlotDef:
    weekday: int
    start_min: int
    end_min: int
    capacity: int


@dataclass(frozen=True)
class Slot:
    day: date
    start_min: int
    end_min: int
    capacity: int

    @property
    def starts(self) -> datetime:
        return at_local(self.day, self.start_min)

    @property
    def key(self) -> int:
        """Epoch minutes of the start: what the conversation remembers."""
        return int(self.starts.timestamp()) // 60


def slots(defs: Sequence[SlotDef], hours: Hours, now: datetime, days: int = SLOT_DAYS) -> list[Slot]:
    """The slots open for booking: from the weekday templates of the next `days` days,
    none on a day the store's exceptions close, none starting within SLOT_LEAD."""
    out: list[Slot] = []
    today = local_day(now)
    for d in range(days):
        day = today + timedelta(days=d)
        if day in hours.exceptions and not hours.exceptions[day]:
            continue  # a holiday: closed
        for s in sorted((s for s in defs if s.weekday == day.isoweekday()), key=lambda s: s.start_min):
            slot = Slot(day, s.start_min, s.end_min, s.capacity)
            if slot.starts - SLOT_LEAD >= now:
                out.append(slot)
    return out


def slot_for(defs: Sequence[SlotDef], hours: Hours, now: datetime, key: int) -> Slot | None:
    return next((s for s in slots(defs, hours, now) if s.key == key), None)
