"""Coordinates, distances and opening hours. Pure: no I/O.

Coordinates are GCJ-02 (what WeChat's LOCATION message, the location_select menu event
and Tencent/AMap use in mainland China) in integer micro-degrees. Distances are
great-circle metres (haversine on a 6,371,008.8 m sphere): well under 0.5 % off at city
scale, plenty for "850m" and delivery-fee tiers. Time of day is Asia/Shanghai, a fixed
UTC+8 with no daylight saving, so "the same wall-clock time tomorrow" is always +24 h.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
EARTH_M = 6_371_008.8
M_PER_DEG_LAT = 111_195  # metres per degree of latitude on that sphere
DAY_MIN = 24 * 60
E6 = 1_000_000

_DEG = re.compile(r"-?[0-9]{1,3}(?:\.[0-9]{1,6})?")
_RANGE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])\s*[-–~至]\s*([01][0-9]|2[0-4]):([0-5][0-9])$")


@dataclass(frozen=True)
class Point:
    lat_e6: int
    lng_e6: int

    @property
    def lat(self) -> float:
        return self.lat_e6 / E6

    @property
    def lng(self) -> float:
        return self.lng_e6 / E6

    def __str__(self) -> str:
        return f"{e6_text(self.lat_e6)},{e6_text(self.lng_e6)}"


def e6_text(v: int) -> str:
    return f"{'-' if v < 0 else ''}{abs(v) // E6}.{abs(v) % E6:06d}"


def parse_degrees(raw: str, limit: int) -> int | None:
    """"39.908722" → 39908722 (at most 6 decimals, |value| ≤ limit), else None."""
    text = raw.strip()
    if not (text.isascii() and _DEG.fullmatch(text)):
        return None
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    v = int(whole) * E6 + int((frac + "000000")[:6])
    return sign * v if v <= limit * E6 else None


def parse_point(lat: str, lng: str) -> Point | None:
    la, ln = parse_degrees(lat, 90), parse_degrees(lng, 180)
    if la is None or ln is None or (la == 0 and ln == 0):
        return None
    return Point(la, ln)


def distance_m(a: Point, b: Point) -> int:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return int(round(2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))))


def bounding_box(center: Point, radius_m: int) -> tuple[int, int, int, int]:
    """(lat_min, lat_max, lng_min, lng_max) in micro-degrees of a box holding every point
    within `radius_m` of `center` (a little more: the caller checks the real distance)."""
    dlat = radius_m / M_PER_DEG_LAT
    cos = max(math.cos(math.radians(min(abs(center.lat) + dlat, 89.0))), 0.01)
    dlng = radius_m / (M_PER_DEG_LAT * cos)
    pad = 1.001
    return (int(center.lat_e6 - dlat * pad * E6), int(center.lat_e6 + dlat * pad * E6) + 1,
            int(center.lng_e6 - dlng * pad * E6), int(center.lng_e6 + dlng * pad * E6) + 1)


def in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Ray casting on the plane of micro-degrees (fine for a city's zones)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if (a.lng_e6 > p.lng_e6) != (b.lng_e6 > p.lng_e6):
            cross = a.lat_e6 + (p.lng_e6 - a.lng_e6) * (b.lat_e6 - a.lat_e6) / (b.lng_e6 - a.lng_e6)
            if p.lat_e6 < cross:
                inside = not inside
    return inside


def distance_text(m: int) -> str:
    """850 → "850m", 1234 → "1.2km", 12345 → "12km"."""
    if m < 1000:
        return f"{m}m"
    if m < 10_000:
        tenths = (m + 50) // 100
        return f"{tenths // 10}.{tenths % 10}km"
    return f"{(m + 500) // 1000}km"


def map_url(p: Point, title: str, address: str = "") -> str:
    """A Tencent Maps marker link (GCJ-02, opens in WeChat's browser)."""
    marker = f"coord:{p};title:{title};addr:{address}"
    return f"https://apis.map.qq.com/uri/v1/marker?marker={quote(marker, safe=':;,')}&referer=social_mall"


# -- opening hours ----------------------------------------------------------------------------

Ranges = tuple[tuple[int, int], ...]   # (open, close) minutes of the day; close ≤ 2880


def parse_ranges(text: str) -> Ranges | None:
    """"09:00-12:00, 13:00-21:00" or "18:00-02:00" (past midnight) or "" (closed) →
    ranges, else None. 24:00 is the end of the day."""
    out: list[tuple[int, int]] = []
    for part in [p.strip() for p in re.split(r"[,，;；\s]+(?=\d)", text.strip()) if p.strip()]:
        m = _RANGE.match(part)
        if m is None:
            return None
        start = int(m[1]) * 60 + int(m[2])
        end = int(m[3]) * 60 + int(m[4])
        if end > DAY_MIN or start == end:
            return None
        if end < start:
            end += DAY_MIN  # runs past midnight
        out.append((start, end))
    out.sort()
    for (s1, e1), (s2, _) in zip(out, out[1:], strict=False):
        if s2 < e1:
            return None
    return tuple(out)


def ranges_text(ranges: Sequence[Sequence[int]]) -> str:
    return ", ".join(f"{clock(s)}-{clock(e)}" for s, e in ranges) if ranges else ""


def clock(minutes: int) -> str:
    m = minutes % DAY_MIN
    return f"{m // 60:02d}:{m % 60:02d}" if not (minutes == DAY_MIN) else "24:00"


@dataclass(frozen=True)
class Hours:
    """A store's week (ISO weekday 1–7 → ranges) and its exceptions (date → ranges; empty:
    closed all day)."""

    week: Mapping[int, Ranges]
    exceptions: Mapping[date, Ranges]

    @staticmethod
    def from_json(week: Mapping[str, object], exceptions: Mapping[str, object]) -> Hours:
        def ranges(v: object) -> Ranges:
            if not isinstance(v, list):
                return ()
            return tuple((int(r[0]), int(r[1])) for r in v if isinstance(r, list) and len(r) == 2)

        w = {int(k): ranges(v) for k, v in week.items() if k.isdigit() and 1 <= int(k) <= 7}
        ex: dict[date, Ranges] = {}
        for k, v in exceptions.items():
            try:
                ex[date.fromisoformat(k)] = ranges(v)
            except ValueError:
                continue
        return Hours(w, ex)

    def on(self, day: date) -> Ranges:
        """The ranges that start on `day` (an exception replaces the weekday's)."""
        if day in self.exceptions:
            return self.exceptions[day]
        return self.week.get(day.isoweekday(), ())

    def open_at(self, at: datetime) -> bool:
        local = at.astimezone(SHANGHAI)
        minute = local.hour * 60 + local.minute
        today, yesterday = local.date(), local.date() - timedelta(days=1)
        if any(s <= minute < e for s, e in self.on(today)):
            return True
        return any(s <= minute + DAY_MIN < e for s, e in self.on(yesterday))  # last night's, past midnight

    def closes_at(self, at: datetime) -> datetime | None:
        """When the range open at `at` ends (None: closed now)."""
        local = at.astimezone(SHANGHAI)
        minute = local.hour * 60 + local.minute
        midnight = datetime.combine(local.date(), datetime.min.time(), SHANGHAI)
        for s, e in self.on(local.date()):
            if s <= minute < e:
                return midnight + timedelta(minutes=e)
        for s, e in self.on(local.date() - timedelta(days=1)):
            if s <= minute + DAY_MIN < e:
                return midnight + timedelta(minutes=e - DAY_MIN)
        return None

    def next_open(self, at: datetime, days: int = 8) -> datetime | None:
        """The next opening after `at` within `days` (None: closed all that time)."""
        local = at.astimezone(SHANGHAI)
        for d in range(days):
            day = local.date() + timedelta(days=d)
            midnight = datetime.combine(day, datetime.min.time(), SHANGHAI)
            for s, _ in self.on(day):
                start = midnight + timedelta(minutes=s)
                if start > at:
                    return start
        return None


def local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def at_local(day: date, minute: int) -> datetime:
    """The instant (UTC) of minute `minute` past midnight of `day` in Shanghai (minute
    may pass 1440: the next day)."""
    return (datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(minutes=minute)).astimezone(timezone.utc)
