"""Loyalty rules: levels, points (earning, expiry), sign-in streaks, the coupon transition
table and what a refund gives back. Pure: no I/O.

Refund rules (applied per `order.refunded` event, cumulatively, so a series of partial
refunds ends exactly where one full refund would):

* Points spent on the order come back in proportion to the money refunded:
  `points_used × refunded_so_far // paid` in total (all of them on a full refund).
* Points earned from the order are taken back the same way, and so is the growth value.
  The points are taken back in full even if the member spent them meanwhile (as a
  distributor's commission is reversed even when it was withdrawn): the balance may go
  negative, one append-only clawback entry says why, and while it is negative no points
  can be spent (every other debit keeps `points + delta >= 0`). Points earned later (or
  returned, or given by an admin) repay the debt first.
* The coupon comes back only on a full refund, and only while it is still valid; a
  partially refunded order keeps its coupon used.
* Cancelling an unpaid order releases its coupon and returns its points at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from social_mall.orders.rules import SHANGHAI


# -- settings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoyaltyConfig:
    earn_points_per_yuan: int = 1        # points earned per whole yuan paid
    growth_per_yuan: int = 1             # growth value per whole yuan paid
    redeem_points_per_yuan: int = 100    # 100 points pay ¥1
    redeem_cap_bp: int = 5000            # points pay at most 50% of the goods
    points_valid_days: int = 365         # a lot of points expires this long after it was earned
    signin_points: int = 5
    streak_days: int = 7                 # every 7th day in a row …
    streak_bonus: int = 20               # … earns this on top
    refund_points: str = "share"         # points paid with come back on a refund: "share" (in proportion), "full" (only
                                         # when the order is refunded in full), "never"
    refund_coupon: str = "full"          # the coupon comes back (if still valid): "full" refund only, or "never"


#: What a tenant may choose for points and coupons on a refund (a cancel of an unpaid order
#: always gives both back: nothing was paid).
REFUND_POINTS_RULES = {"share": "按退款比例退回", "full": "全额退款时退回", "never": "不退回"}
REFUND_COUPON_RULES = {"full": "全额退款且未过期时退回", "never": "不退回"}
#: The console's bounds for each number of the configuration (inclusive).
CONFIG_BOUNDS = {
    "earn_points_per_yuan": (0, 1000), "growth_per_yuan": (0, 1000), "redeem_points_per_yuan": (1, 100_000),
    "redeem_cap_bp": (0, 10_000), "points_valid_days": (1, 3650), "signin_points": (0, 10_000),
    "streak_days": (2, 365), "streak_bonus": (0, 100_000),
}


def points_back(rule: str, used: int, refunded_fen: int, paid_fen: int) -> int:
    """Of `used` points paid with, how many are due back once `refunded_fen` of `paid_fen`
    is refunded in all, by the tenant's rule (cumulative: the caller gives back the
    difference from what it gave before)."""
    if rule == "never" or paid_fen <= 0:
        return 0
    if rule == "full":
        return used if refunded_fen >= paid_fen else 0
    return share(used, refunded_fen, paid_fen)


@dataclass(frozen=True)
class Level:
    name: str
    min_growth: int
    discount_bp: int = 10_000            # 9500 = 95折
    benefits: str = ""


#: A tenant with no levels configured gets these (no discounts until the merchant sets them).
DEFAULT_LEVELS: tuple[Level, ...] = (
    Level("普通会员", 0, 10_000, "积分抵现"),
    Level("银卡会员", 1000, 10_000, "积分抵现、生日券"),
    Level("金卡会员", 5000, 10_000, "积分抵现、生日券、专属客服"),
    Level("钻石会员", 20000, 10_000, "积分抵现、生日券、专属客服、优先发货"),
)


def level_for(growth: int, levels: Sequence[Level]) -> Level:
    ordered = sorted(levels or DEFAULT_LEVELS, key=lambda lv: lv.min_growth)
    current = ordered[0]
    for lv in ordered:
        if growth >= lv.min_growth:
            current = lv
    return current


def next_level(growth: int, levels: Sequence[Level]) -> Level | None:
    ordered = sorted(levels or DEFAULT_LEVELS, key=lambda lv: lv.min_growth)
    return next((lv for lv in ordered if lv.min_growth > growth), None)


def earned(paid_fen: int, per_yuan: int) -> int:
    return max(paid_fen, 0) // 100 * max(per_yuan, 0)


def share(total: int, part_fen: int, whole_fen: int) -> int:
    """`total × part / whole`, rounded down; all of it when part reaches whole."""
    if whole_fen <= 0 or part_fen >= whole_fen:
        return total
    return total * max(part_fen, 0) // whole_fen


# -- points ---------------------------------------------------------------------------------

class PointsKind(StrEnum):
    EARN = "earn"            # from a paid order
    SIGNIN = "signin"
    SPEND = "spend"          # at checkout
    RELEASE = "release"      # an unpaid order cancelled: its points come back
    RETURN = "return"        # a refund gives spent points back
    CLAWBACK = "clawback"    # a refund takes earned points back
    EXPIRE = "expire"
    ADJUST = "adjust"        # by an admin
    MERGE = "merge"          # moved in from a merged member (kept as-is, see merge)


@dataclass(frozen=True)
class Entry:
    """A ledger row as the expiry rule sees it."""

    id: int
    delta: int
    kind: str
    expires_at: datetime | None
    lot_id: int | None = None   # for EXPIRE rows: the lot they expire


def lots_left(entries: Sequence[Entry]) -> dict[int, int]:
    """What is left of each positive lot. Expiry rows first take their own lot; every other
    negative row consumes the lots that expire soonest (never-expiring lots last)."""
    lots = sorted((e for e in entries if e.delta > 0),
                  key=lambda e: (e.expires_at is None, e.expires_at or datetime.min, e.id))
    left = {e.id: e.delta for e in lots}
    for e in entries:
        if e.kind == PointsKind.EXPIRE and e.lot_id in left:
            left[e.lot_id] += e.delta
    used = -sum(e.delta for e in entries if e.delta < 0 and e.kind != PointsKind.EXPIRE)
    for lot in lots:
        take = min(used, max(left[lot.id], 0))
        left[lot.id] -= take
        used -= take
    return left


def due_to_expire(entries: Sequence[Entry], now: datetime) -> list[tuple[int, int]]:
    """(lot id, points) to expire now: what is left of lots past their expiry."""
    by_id: Mapping[int, Entry] = {e.id: e for e in entries}
    return [(lot, n) for lot, n in lots_left(entries).items()
            if n > 0 and (exp := by_id[lot].expires_at) is not None and exp <= now]


def expiry(now: datetime, cfg: LoyaltyConfig) -> datetime | None:
    return now + timedelta(days=cfg.points_valid_days) if cfg.points_valid_days > 0 else None


# -- sign-in -----------------------------------------------------------------------------------

def local_day(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def next_streak(last: date | None, streak: int, today: date) -> int:
    return streak + 1 if last is not None and today - last == timedelta(days=1) else 1


def signin_points(streak: int, cfg: LoyaltyConfig) -> int:
    bonus = cfg.streak_bonus if cfg.streak_days > 0 and streak % cfg.streak_days == 0 else 0
    return cfg.signin_points + bonus


# -- coupons ----------------------------------------------------------------------------------

class CouponStatus(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"      # held by an unpaid order
    USED = "used"


C = CouponStatus
COUPON_MOVES: Mapping[CouponStatus, frozenset[CouponStatus]] = {
    C.AVAILABLE: frozenset({C.LOCKED}),
    C.LOCKED: frozenset({C.AVAILABLE, C.USED}),   # cancelled | paid
    C.USED: frozenset({C.AVAILABLE}),             # fully refunded while still valid
}


def can_move(src: CouponStatus, dst: CouponStatus) -> bool:
    return dst in COUPON_MOVES[src]


def coupon_window(
    now: datetime, *, valid_from: datetime | None, valid_until: datetime | None, valid_days: int
) -> tuple[datetime, datetime | None]:
    """A claimed coupon's validity: the template's window, or `valid_days` from the claim."""
    if valid_days > 0:
        return now, now + timedelta(days=valid_days)
    return (valid_from or now), valid_until


def usable(now: datetime, start: datetime, until: datetime | None) -> bool:
    return start <= now and (until is None or now < until)
