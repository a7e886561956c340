"""Referral rules. Pure: no I/O.

Money is integer fen; rates are basis points (1 bp = 0.01 %, 10000 bp = 100 %).

Rounding rule (stated once, used everywhere): a commission is
``floor(base_fen * rate_bp / 10000)`` per order line and level, so it is never more
than the configured rate of what was actually paid; the fractions of a fen stay with
the merchant. An order-level discount is spread over the lines pro rata, each line's
share of the paid goods amount rounded down as well.

A refund reverses commission pro rata to what is left paid: after refunds totalling
R of a paid amount P, a commission C keeps ``floor(C * (P - R) / P)``; a full refund
keeps nothing. Reversals are cumulative, so partial refunds never drift by a fen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

_S = TypeVar("_S", bound=StrEnum)
BP = 10_000
LEVELS = (1, 2)
LEADER_LEVEL = 0   # a group-buy leader's reward (团长奖励), kept in the commissions beside the two levels
SCENE_PREFIX = "ref_"
CODE_RE = re.compile(r"[a-z0-9]{4,32}")


class BindingMode(StrEnum):
    FIRST_TOUCH = "first"   # the first distributor keeps the member (until the binding expires)
    LAST_TOUCH = "last"     # the latest distributor's QR/link takes the member over


@dataclass(frozen=True)
class ProgramSettings:
    """A tenant's referral programme (defaults apply until the merchant changes them)."""

    enabled: bool = True
    auto_approve: bool = True            # applications approved at once
    binding_mode: BindingMode = BindingMode.FIRST_TOUCH
    lifetime_days: int = 0               # 0: the binding never expires
    freeze_days: int = 7                 # after the order completes
    level1_bp: int = 1000                # direct referrer: 10 %
    level2_bp: int = 500                 # the referrer's referrer: 5 %
    min_withdraw_fen: int = 100          # ¥1.00
    daily_limit_fen: int = 500_000       # ¥5,000.00 per distributor per (Shanghai) day

    def __post_init__(self) -> None:
        check_rates(self.level1_bp, self.level2_bp)
        if self.lifetime_days < 0 or self.freeze_days < 0:
            raise ValueError("days must not be negative")
        if self.min_withdraw_fen < 1 or self.daily_limit_fen < self.min_withdraw_fen:
            raise ValueError("withdrawal limits")


def check_rates(level1_bp: int, level2_bp: int) -> None:
    for r in (level1_bp, level2_bp):
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= BP:
            raise ValueError(f"rate {r!r} must be 0..{BP} basis points")
    if level1_bp + level2_bp > BP:
        raise ValueError("the two levels together cannot exceed 100 %")


# -- statuses and their transition tables ------------------------------------------------

class DistributorStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISABLED = "disabled"
    MERGED = "merged"          # the member merged into another: closed for good (see merge rules)


class CommissionStatus(StrEnum):
    FROZEN = "frozen"          # the order may still be refunded
    AVAILABLE = "available"    # unfrozen: part of the withdrawable balance
    REVERSED = "reversed"      # fully reversed (the order was refunded in full)


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"    # funds held (a withdrawal entry on the ledger)
    APPROVED = "approved"      # payout under way through the gateway
    REJECTED = "rejected"      # funds returned
    PAID = "paid"
    FAILED = "failed"          # the gateway refused: funds returned


D, C, W = DistributorStatus, CommissionStatus, WithdrawalStatus

DISTRIBUTOR_TRANSITIONS: Mapping[DistributorStatus, frozenset[DistributorStatus]] = {
    D.PENDING: frozenset({D.APPROVED, D.REJECTED, D.MERGED}),
    D.APPROVED: frozenset({D.DISABLED, D.MERGED}),
    D.REJECTED: frozenset({D.PENDING, D.MERGED}),      # may apply again
    D.DISABLED: frozenset({D.APPROVED, D.MERGED}),
    D.MERGED: frozenset(),                             # its code leads to the kept member's record
}

COMMISSION_TRANSITIONS: Mapping[CommissionStatus, frozenset[CommissionStatus]] = {
    C.FROZEN: frozenset({C.AVAILABLE, C.REVERSED}),
    C.AVAILABLE: frozenset({C.REVERSED}),
    C.REVERSED: frozenset(),
}

WITHDRAWAL_TRANSITIONS: Mapping[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    W.REQUESTED: frozenset({W.APPROVED, W.REJECTED}),
    W.APPROVED: frozenset({W.PAID, W.FAILED}),
    W.REJECTED: frozenset(),
    W.PAID: frozenset(),
    W.FAILED: frozenset(),
}

#: Withdrawal moves that give the held amount back to the available balance.
RETURNS_FUNDS: frozenset[tuple[WithdrawalStatus, WithdrawalStatus]] = frozenset(
    {(W.REQUESTED, W.REJECTED), (W.APPROVED, W.FAILED)}
)


def can_move(table: Mapping[_S, frozenset[_S]], src: _S, dst: _S) -> bool:
    return dst in table.get(src, frozenset())


def payout_outcome(gateway_status: str) -> WithdrawalStatus | None:
    """The withdrawal status a gateway transfer state leads to (None: still in flight, e.g.
    ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING, or not found yet).
    A cancelled bill (by the merchant, or the user never confirmed) paid nothing: failed."""
    return {"SUCCESS": W.PAID, "FAIL": W.FAILED, "FAILED": W.FAILED, "CLOSED": W.FAILED,
            "CANCELLED": W.FAILED}.get(gateway_status.upper())


# -- ledger ------------------------------------------------------------------------------

class EntryKind(StrEnum):
    COMMISSION = "commission"            # + frozen
    REVERSAL = "reversal"                # − frozen, or − available once unfrozen (may go negative)
    UNFREEZE = "unfreeze"                # a pair: − frozen, + available (nets to zero)
    WITHDRAWAL = "withdrawal"            # − available (held on request)
    WITHDRAWAL_RETURN = "withdrawal_return"  # + available (rejected or failed)
    ADJUSTMENT = "adjustment"            # ± available, by an admin, with a reason
    MERGE_TRANSFER = "merge_transfer"    # ± either bucket: a merged member's balance moving to the kept
                                         # member's record (out on one, the same amount in on the other)


class Bucket(StrEnum):
    FROZEN = "frozen"
    AVAILABLE = "available"


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    bucket: Bucket
    amount_fen: int


@dataclass(frozen=True)
class Balance:
    frozen_fen: int
    available_fen: int

    @property
    def total_fen(self) -> int:
        return self.frozen_fen + self.available_fen


def balance_of(entries: Sequence[Entry]) -> Balance:
    frozen = sum(e.amount_fen for e in entries if e.bucket == Bucket.FROZEN)
    available = sum(e.amount_fen for e in entries if e.bucket == Bucket.AVAILABLE)
    return Balance(frozen, available)


def reconcile(entries: Sequence[Entry]) -> int:
    """commissions − reversals − withdrawals (+ returns, adjustments, merge transfers): must equal the
    balance; returns that figure so callers can compare it with the stored balance."""
    by: dict[EntryKind, int] = {}
    for e in entries:
        by[e.kind] = by.get(e.kind, 0) + e.amount_fen
    return (by.get(EntryKind.COMMISSION, 0) + by.get(EntryKind.REVERSAL, 0)
            + by.get(EntryKind.WITHDRAWAL, 0) + by.get(EntryKind.WITHDRAWAL_RETURN, 0)
            + by.get(EntryKind.ADJUSTMENT, 0) + by.get(EntryKind.UNFREEZE, 0)
            + by.get(EntryKind.MERGE_TRANSFER, 0))


# -- binding -----------------------------------------------------------------------------

class BindVerdict(StrEnum):
    BIND = "bind"              # no (live) binding: bind to this distributor
    REBIND = "rebind"          # last-touch: move the member to this distributor
    SAME = "same"              # already bound to this distributor (lifetime renewed)
    KEEP = "keep"              # first-touch: the existing binding stays
    SELF = "self"              # a distributor's own QR/link
    CYCLE = "cycle"            # the referrer is (transitively) referred by the member


@dataclass(frozen=True)
class CurrentBinding:
    distributor_member_id: int
    expires_at: datetime | None


def binding_live(b: CurrentBinding | None, now: datetime) -> bool:
    return b is not None and (b.expires_at is None or b.expires_at > now)


def decide_binding(
    *,
    member_id: int,
    referrer_member_id: int,
    referrer_chain: Sequence[int],
    current: CurrentBinding | None,
    mode: BindingMode,
    now: datetime,
) -> BindVerdict:
    """Whether `member_id` arriving through `referrer_member_id`'s QR/link binds to them.

    `referrer_chain` is the referrer's own upline (their referrer, that one's referrer…):
    if the member is in it, binding would close a cycle."""
    if member_id == referrer_member_id:
        return BindVerdict.SELF
    if member_id in referrer_chain:
        return BindVerdict.CYCLE
    if not binding_live(current, now):
        return BindVerdict.BIND
    assert current is not None
    if current.distributor_member_id == referrer_member_id:
        return BindVerdict.SAME
    return BindVerdict.REBIND if mode == BindingMode.LAST_TOUCH else BindVerdict.KEEP


def binding_expiry(now: datetime, lifetime_days: int) -> datetime | None:
    return None if lifetime_days <= 0 else now + timedelta(days=lifetime_days)


def scene_code(scene: str) -> str | None:
    """The distributor code in a `ref_<code>` scene (None when it is not one of ours)."""
    if not scene.startswith(SCENE_PREFIX):
        return None
    code = scene[len(SCENE_PREFIX):]
    if not code.isascii():  # str.lower() folds some letters into ASCII ("\u212a" → "k")
        return None
    code = code.lower()
    return code if CODE_RE.fullmatch(code) else None


def scene_for(code: str) -> str:
    return SCENE_PREFIX + code


# -- member merges -----------------------------------------------------------------------
#
# Two members turned out to be one person (social_mall/loyalty/merge.py keeps the older
# one). The referral state of both becomes the kept member's:
#
# * Their own binding (who referred them): both bindings were touches of the same person,
#   so the tenant's policy picks one, as if the two had arrived one after the other:
#   first-touch keeps the earlier live binding, last-touch the later one (a tie keeps the
#   kept member's). A binding between the two (one referred the other) would bind the
#   person to themself: it is dropped. So is one that would close a cycle once the merged
#   member's downline points at the kept member (decided by the caller: `allowed`).
# * Downline: members bound to the merged member are bound to the kept member.
# * Distributor records: see `distributor_merge`.

class BindingPick(StrEnum):
    KEPT = "kept"        # the kept member's binding stays (the merged member's is dropped)
    MERGED = "merged"    # the merged member's binding becomes the kept member's
    NONE = "none"        # neither is live and allowed: no binding


@dataclass(frozen=True)
class Touch:
    distributor_member_id: int
    bound_at: datetime
    expires_at: datetime | None
    allowed: bool = True         # False: it would bind the person to themself or close a cycle


def _usable(t: Touch | None, now: datetime) -> bool:
    return t is not None and t.allowed and binding_live(CurrentBinding(t.distributor_member_id, t.expires_at), now)


def pick_binding(kept: Touch | None, merged: Touch | None, mode: BindingMode, now: datetime) -> BindingPick:
    k, m = _usable(kept, now), _usable(merged, now)
    if k and m:
        assert kept is not None and merged is not None
        if mode == BindingMode.FIRST_TOUCH:
            return BindingPick.MERGED if merged.bound_at < kept.bound_at else BindingPick.KEPT
        return BindingPick.MERGED if merged.bound_at > kept.bound_at else BindingPick.KEPT
    return BindingPick.KEPT if k else BindingPick.MERGED if m else BindingPick.NONE


class RecordMerge(StrEnum):
    NONE = "none"          # the merged member had no distributor record
    MOVE = "move"          # only the merged member had one: it becomes the kept member's, as it is
    REPLACE = "replace"    # the kept member only has a bare application (pending/rejected, no money
                           # ever): it gives way and the merged member's distributor record moves
    ABSORB = "absorb"      # both: the kept member's record stays and takes over the other's
                           # commissions, balance (transfer entries) and withdrawals in flight;
                           # the merged one is closed (`merged`), its code leading to the kept one


APPLICATIONS = frozenset({D.PENDING, D.REJECTED})
EVER_APPROVED = frozenset({D.APPROVED, D.DISABLED})


def distributor_merge(kept: DistributorStatus | None, merged: DistributorStatus | None, *,
                      kept_has_history: bool) -> RecordMerge:
    """What happens to the two members' distributor records. A disabled record counts as a
    distributor (the merchant's decision about this person stands; it is never lifted
    by a merge)."""
    if merged is None or merged == D.MERGED:
        return RecordMerge.NONE
    if kept is None:
        return RecordMerge.MOVE
    if kept in APPLICATIONS and merged in EVER_APPROVED and not kept_has_history:
        return RecordMerge.REPLACE
    return RecordMerge.ABSORB


# -- commissions -------------------------------------------------------------------------

@dataclass(frozen=True)
class LineBase:
    """One order line: its product and what was actually paid for it."""

    product_id: int
    paid_fen: int


@dataclass(frozen=True)
class Rates:
    level1_bp: int
    level2_bp: int

    def of(self, level: int) -> int:
        return self.level1_bp if level == 1 else self.level2_bp


def paid_per_line(line_fens: Sequence[int], discount_fen: int) -> list[int]:
    """Spread an order discount over its lines pro rata; each share rounded down."""
    goods = sum(line_fens)
    if goods <= 0:
        return [0 for _ in line_fens]
    paid_goods = max(goods - max(discount_fen, 0), 0)
    return [f * paid_goods // goods for f in line_fens]


def commission(base_fen: int, rate_bp: int) -> int:
    """floor(base × rate): never more than the configured rate of what was paid."""
    if base_fen <= 0 or rate_bp <= 0:
        return 0
    return base_fen * rate_bp // BP


def order_commission(
    lines: Sequence[LineBase],
    level: int,
    distributor_rates: Rates,
    product_rates: Mapping[int, Rates],
) -> tuple[int, int]:
    """(commission, base) for one level: per line, the product's own rate when it has one,
    else the distributor's (level or tenant default) rate."""
    total = base = 0
    for line in lines:
        rates = product_rates.get(line.product_id, distributor_rates)
        total += commission(line.paid_fen, rates.of(level))
        base += line.paid_fen
    return total, base


def leader_reward_split(bases: list[int], *, fixed_fen: int, rate_bp: int) -> list[int]:
    """The leader's reward for a successful team, per paid order (same order as `bases`:
    what each order paid for its goods). A rate: floor(base × bp / 10000) per order (never
    more than the rate of what was paid). A fixed amount: split over the orders in
    proportion to their bases (rounded down), the remainder on the first (the leader's)
    order, so the parts sum to exactly `fixed_fen` and each follows its order's refunds."""
    if not bases or sum(bases) <= 0:
        return [0 for _ in bases]
    if rate_bp > 0:
        return [b * rate_bp // 10_000 for b in bases]
    if fixed_fen <= 0:
        return [0 for _ in bases]
    total = sum(bases)
    parts = [fixed_fen * b // total for b in bases]
    parts[0] += fixed_fen - sum(parts)
    return parts


def kept_after_refund(amount_fen: int, paid_fen: int, refunded_fen: int, full: bool) -> int:
    """What a commission keeps once `refunded_fen` (in total) of `paid_fen` went back."""
    if full or paid_fen <= 0 or refunded_fen >= paid_fen:
        return 0
    return amount_fen * (paid_fen - max(refunded_fen, 0)) // paid_fen


def reversal_due(amount_fen: int, reversed_fen: int, paid_fen: int, refunded_fen: int, full: bool) -> int:
    """How much more to reverse now (cumulative: the sum over refunds never drifts)."""
    return max(amount_fen - kept_after_refund(amount_fen, paid_fen, refunded_fen, full) - reversed_fen, 0)


def unfreeze_at(completed_at: datetime, freeze_days: int) -> datetime:
    return completed_at + timedelta(days=freeze_days)


# -- withdrawals -------------------------------------------------------------------------

class WithdrawRefusal(StrEnum):
    BAD_AMOUNT = "bad_amount"
    BELOW_MINIMUM = "below_minimum"
    OVER_BALANCE = "over_balance"
    DAILY_LIMIT = "daily_limit"


_AMOUNT = re.compile(r"[¥￥]?\s*([0-9]{1,7})(?:\.([0-9]{1,2}))?\s*元?")


def parse_yuan(text: str) -> int | None:
    """"50" / "50.5" / "¥50.05" / "50元" → fen; None when it is not an amount."""
    m = _AMOUNT.fullmatch(text.strip())
    if not m:
        return None
    cents = (m.group(2) or "").ljust(2, "0")
    return int(m.group(1)) * 100 + int(cents or 0)


def check_withdrawal(
    amount_fen: int, *, available_fen: int, withdrawn_today_fen: int, settings: ProgramSettings
) -> WithdrawRefusal | None:
    if amount_fen <= 0:
        return WithdrawRefusal.BAD_AMOUNT
    if amount_fen < settings.min_withdraw_fen:
        return WithdrawRefusal.BELOW_MINIMUM
    if amount_fen > available_fen:
        return WithdrawRefusal.OVER_BALANCE
    if withdrawn_today_fen + amount_fen > settings.daily_limit_fen:
        return WithdrawRefusal.DAILY_LIMIT
    return None
