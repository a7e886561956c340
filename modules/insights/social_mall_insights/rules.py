"""Pure rules: where a member came from, RFM scores and segment names, quiet hours and
the weekly cap, Shanghai days and weeks. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# acquisition kinds, from the QR scene a member first came through
REFERRAL, GROUPBUY, STORE, QR, ORGANIC = "referral", "groupbuy", "store", "qr", "organic"
ACQ_ZH = {REFERRAL: "分销推荐", GROUPBUY: "拼团", STORE: "门店", QR: "其他二维码", ORGANIC: "自然流量"}
CHANNEL_ZH = {"mp": "公众号", "wecom": "企业微信", "h5": "H5", "terminal": "终端", "console": "后台发放",
              "job": "自动发放", "": "—"}
# channels of what was done to a member, not by them (a coupon an admin or a job gave): no visit
GIVEN_CHANNELS = ("console", "job")


def coupon_source_zh(source: str) -> str:
    """How a coupon was given, in words: 「会员领取」, 「后台发放（admin:3）」, 「自动发放（birthday）」."""
    if source == "claim":
        return "会员领取"
    if source.startswith("admin:"):
        return f"后台发放（{source.removeprefix('admin:')}）"
    if source.startswith("event:"):
        return f"自动发放（{source.removeprefix('event:')}）"
    return source or "—"


def acquisition(scene: str) -> str:
    """The acquisition kind of a QR scene (referral `ref_<code>`, group-buy `gb_<team>`,
    a store's `store_<id>`); no scene: organic."""
    if not scene:
        return ORGANIC
    if scene.startswith("ref_"):
        return REFERRAL
    if scene.startswith("gb_"):
        return GROUPBUY
    if scene.startswith(("store_", "st_")):
        return STORE
    return QR


def shanghai_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a Shanghai day starts and ends at."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start.astimezone(timezone.utc), (start + timedelta(days=1)).astimezone(timezone.utc)


def week_start(day: date) -> date:
    """The Monday of the day's ISO week."""
    return day - timedelta(days=day.weekday())


# -- RFM ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rfm:
    r: int  # 1..5, 5 = most recent
    f: int  # 1..5, 5 = most orders
    m: int  # 1..5, 5 = most spent


def quintile_scores(values: Sequence[int], *, higher_is_better: bool = True) -> list[int]:
    """Each value's quintile (1..5) among `values`, by rank; ties share the lower rank's
    score so equal values always score alike."""
    n = len(values)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: values[i])
    scores = [0] * n
    first_rank: dict[int, int] = {}
    for rank, i in enumerate(order):
        first_rank.setdefault(values[i], rank)
    for i in range(n):
        q = 1 + (first_rank[values[i]] * 5) // n
        scores[i] = q if higher_is_better else 6 - q
    return scores


# The standard eight segments: R, F, M each high (≥ 3… above the middle) or low.
SEGMENTS = {
    (True, True, True): "重要价值客户",
    (False, True, True): "重要保持客户",
    (True, False, True): "重要发展客户",
    (False, False, True): "重要挽留客户",
    (True, True, False): "一般价值客户",
    (False, True, False): "一般保持客户",
    (True, False, False): "一般发展客户",
    (False, False, False): "一般挽留客户",
}
SEGMENT_ORDER = list(SEGMENTS.values())
# common aliases merchants use
ALIASES = {"重要唤回客户": "重要保持客户", "一般唤回客户": "一般保持客户"}


def segment(score: Rfm) -> str:
    """High = above the middle quintile (4 or 5)… R, F and M each compared with 3."""
    return SEGMENTS[(score.r > 3, score.f > 3, score.m > 3)]


def segment_name(name: str) -> str:
    return ALIASES.get(name, name)


# -- pushes -----------------------------------------------------------------------------------

def in_quiet_hours(at: datetime, start_min: int, end_min: int) -> bool:
    """Quiet from start to end (minutes of the Shanghai day; start > end wraps midnight)."""
    local = at.astimezone(SHANGHAI)
    m = local.hour * 60 + local.minute
    if start_min == end_min:
        return False
    if start_min < end_min:
        return start_min <= m < end_min
    return m >= start_min or m < end_min


def quiet_until(at: datetime, start_min: int, end_min: int) -> datetime:
    """The first instant at or after `at` outside quiet hours (UTC)."""
    if not in_quiet_hours(at, start_min, end_min):
        return at
    local = at.astimezone(SHANGHAI)
    end = local.replace(hour=end_min // 60, minute=end_min % 60, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(timezone.utc)


KF_WINDOW = timedelta(hours=48)


def within_kf_window(last_seen: datetime | None, now: datetime) -> bool:
    """May a customer-service message reach the member (their last action < 48 h ago)?
    A 15-minute margin: last seen is recorded in 10-minute steps, and WeChat counts too."""
    return last_seen is not None and now - last_seen < KF_WINDOW - timedelta(minutes=15)


def median(values: Sequence[int]) -> int:
    if not values:
        return 0
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2
