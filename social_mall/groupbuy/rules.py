"""Group buying (拼团) rules: the team and seat transition tables, prices, limits and the
expiry decision. Pure: no I/O, no clock (the caller passes `now`).

Team:  forming → succeeded | failed;  failed → refunding → refunded
Seat:  held → paid | released;  paid → refunding → refunded

Seat semantics (decided here, documented in README): a join *holds* a seat at once with a
conditional UPDATE on the team's counter (`held < size`), so the 200-joiners-for-one-seat
race has exactly one winner and no team is ever over-filled. The seat is *confirmed* when
the order is paid (`paid` counter); the team succeeds when confirmed seats (plus virtual
ones under simulated completion) reach the size. An unpaid hold is released when its order
is cancelled: the order sweeper cancels it at ORDER_TIMEOUT, the member may cancel it, and
the team sweeper cancels the unpaid orders of a team whose lifetime ended; each emits
order.cancelled, whose subscriber releases the seat (held - 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from social_mall.parsing import parse_id

MIN_SIZE, MAX_SIZE = 2, 100
MAX_LIFETIME_HOURS = 24 * 7
SCENE_PREFIX = "gb_"


class TeamStatus(StrEnum):
    FORMING = "forming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


class SeatStatus(StrEnum):
    HELD = "held"
    PAID = "paid"
    RELEASED = "released"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


T, S = TeamStatus, SeatStatus

TEAM_MOVES: Mapping[TeamStatus, frozenset[TeamStatus]] = {
    T.FORMING: frozenset({T.SUCCEEDED, T.FAILED}),
    T.SUCCEEDED: frozenset(),
    T.FAILED: frozenset({T.REFUNDING}),
    T.REFUNDING: frozenset({T.REFUNDED}),
    T.REFUNDED: frozenset(),
}

SEAT_MOVES: Mapping[SeatStatus, frozenset[SeatStatus]] = {
    S.HELD: frozenset({S.PAID, S.RELEASED}),
    S.PAID: frozenset({S.REFUNDING, S.REFUNDED}),   # refunded: by the merchant, outside the team's refund run
    S.RELEASED: frozenset(),
    S.REFUNDING: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

ACTIVE_SEATS = (S.HELD, S.PAID)


def can_move_team(src: str, dst: str) -> bool:
    return src in TEAM_MOVES and TeamStatus(dst) in TEAM_MOVES[TeamStatus(src)]


def can_move_seat(src: str, dst: str) -> bool:
    return src in SEAT_MOVES and SeatStatus(dst) in SEAT_MOVES[SeatStatus(src)]


@dataclass(frozen=True)
class CampaignTerms:
    """What a campaign allows (validated by `check_terms`)."""

    team_size: int
    lifetime_hours: int
    starts_at: datetime
    ends_at: datetime
    max_teams_per_member: int      # teams a member may be in at once in this campaign (0: no limit)
    max_qty: int                   # pieces per seat
    leader_discount_fen: int       # off the group price for the team's leader
    simulated: bool                # 模拟成团: fill missing seats virtually on expiry
    max_extend_hours: int = 24     # how far a leader may extend a team in total
    leader_reward_fen: int = 0     # 团长奖励 per successful team, fixed (fen), or
    leader_reward_bp: int = 0      # a share of the team's paid goods (basis points); one of the two


MAX_LEADER_REWARD_BP = 5000        # at most half of what the team paid
MAX_LEADER_REWARD_FEN = 10_000_000  # ¥100,000 a team


def check_terms(t: CampaignTerms) -> list[str]:
    """The broken rules, as field names (empty: fine)."""
    bad: list[str] = []
    if not MIN_SIZE <= t.team_size <= MAX_SIZE:
        bad.append("team_size")
    if not 1 <= t.lifetime_hours <= MAX_LIFETIME_HOURS:
        bad.append("lifetime_hours")
    if t.ends_at <= t.starts_at:
        bad.append("ends_at")
    if t.max_teams_per_member < 0:
        bad.append("max_teams_per_member")
    if not 1 <= t.max_qty <= 99:
        bad.append("max_qty")
    if t.leader_discount_fen < 0:
        bad.append("leader_discount_fen")
    if t.max_extend_hours < 0:
        bad.append("max_extend_hours")
    if (not 0 <= t.leader_reward_fen <= MAX_LEADER_REWARD_FEN or not 0 <= t.leader_reward_bp <= MAX_LEADER_REWARD_BP
            or (t.leader_reward_fen > 0 and t.leader_reward_bp > 0)):
        bad.append("leader_reward")
    return bad


def is_live(starts_at: datetime, ends_at: datetime, active: bool, now: datetime) -> bool:
    return active and starts_at <= now < ends_at


def unit_price(group_price_fen: int, *, leader: bool, leader_discount_fen: int) -> int:
    """What one piece costs in the team: the group price, less the leader's discount
    (never below 1 fen: an order of 0 cannot be paid)."""
    if group_price_fen <= 0:
        raise ValueError("group price must be positive")
    if not leader:
        return group_price_fen
    return max(1, group_price_fen - leader_discount_fen)


def team_expiry(now: datetime, lifetime_hours: int, campaign_ends_at: datetime) -> datetime:
    """A team lives its lifetime, but never past the campaign's end."""
    return min(now + timedelta(hours=lifetime_hours), campaign_ends_at)


def seats_left(size: int, held: int) -> int:
    return max(0, size - held)


def missing(size: int, paid: int, virtual: int = 0) -> int:
    """Confirmed seats still needed for success."""
    return max(0, size - paid - virtual)


def is_complete(size: int, paid: int, virtual: int = 0) -> bool:
    return paid + virtual >= size


class Expiry(StrEnum):
    SUCCEED = "succeed"                  # every seat paid in time (its order.paid came late)
    SUCCEED_SIMULATED = "succeed_simulated"
    FAIL = "fail"


def on_expiry(*, size: int, paid: int, simulated: bool) -> tuple[Expiry, int]:
    """What happens to a forming team whose lifetime ended: complete (the payments counted
    just now) → success; simulated completion fills the missing seats virtually (if at
    least one member paid); otherwise it fails. Returns (decision, virtual seats to add)."""
    if is_complete(size, paid):
        return Expiry.SUCCEED, 0
    if simulated and paid >= 1:
        return Expiry.SUCCEED_SIMULATED, missing(size, paid)
    return Expiry.FAIL, 0


def check_extend(
    *, expires_at: datetime, created_at: datetime, lifetime_hours: int, max_extend_hours: int,
    hours: int, campaign_ends_at: datetime,
) -> datetime | None:
    """The new expiry if a leader may extend by `hours`, else None: in total a team lives
    at most lifetime + max_extend hours, and never past the campaign's end."""
    if hours <= 0:
        return None
    new = expires_at + timedelta(hours=hours)
    limit = min(created_at + timedelta(hours=lifetime_hours + max_extend_hours), campaign_ends_at)
    return new if new <= limit else None


def time_left(expires_at: datetime, now: datetime) -> tuple[int, int]:
    """(hours, minutes) left, floored, never negative."""
    secs = max(0, int((expires_at - now).total_seconds()))
    return secs // 3600, (secs % 3600) // 60


def team_source(team_id: int) -> str:
    return f"groupbuy:team:{team_id}"


def team_of_source(source: str) -> int | None:
    """The team id in an order's `source`, if it came from a group buy."""
    prefix = "groupbuy:team:"
    if not source.startswith(prefix):
        return None
    return parse_id(source[len(prefix):])


def team_scene(team_id: int) -> str:
    return f"{SCENE_PREFIX}{team_id}"


def team_of_scene(scene: str) -> int | None:
    """The team in a QR scene `gb_<id>` (any text from outside: None unless it is one)."""
    if not scene.startswith(SCENE_PREFIX):
        return None
    return parse_id(scene[len(SCENE_PREFIX):])


# -- the WeCom group bot's settings ------------------------------------------------------------

WECOM_FIELDS = ("token", "aes_key", "webhook_key", "bot_name")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_KEY_CHARS = _ALNUM | frozenset("-_")


def wecom_problem(field: str, value: str) -> str | None:
    """Why `value` can't be the bot's `field` (None: it can). WeCom's own rules: the
    callback token is 3–32 letters or digits, the EncodingAESKey 43 letters or digits; a
    robot's webhook key is a UUID-like word (letters, digits, - and _; up to 64)."""
    if field == "token":
        return None if 3 <= len(value) <= 32 and set(value) <= _ALNUM else "token_format"
    if field == "aes_key":
        return None if len(value) == 43 and set(value) <= _ALNUM else "aes_key_format"
    if field == "webhook_key":
        return None if 1 <= len(value) <= 64 and set(value) <= _KEY_CHARS else "webhook_key_format"
    if field == "bot_name":
        ok = 1 <= len(value) <= 20 and value.isprintable() and not any(c.isspace() for c in value)
        return None if ok else "bot_name_format"
    return "unknown_field"


def webhook_url(api_base: str, key: str) -> str:
    """The group robot's webhook for `key`, on WeCom's API host (never a URL typed in:
    the server posts there)."""
    return f"{api_base.rstrip('/')}/cgi-bin/webhook/send?key={key}" if key else ""
