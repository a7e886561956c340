"""Pure rules of the bargain module (no I/O): the cut sequence, share codes and QR
scenes, campaign terms, who may help.

The cuts (precomputed when the bargain starts, stored with their seed):

    total = start − floor (fen), N helps, minimum cut m (≥ 1 fen), N·m ≤ total.
    extra = total − N·m is split into N parts by "stars and bars": N − 1 cut points drawn
    uniformly (with repetition) from 0..extra with random.Random(seed), sorted; the parts
    are the gaps between 0, the points and extra. cut[i] = m + part[i].

So every cut is an integer number of fen ≥ m, the N cuts sum to exactly `total` (the
floor is reached at the N-th help and never passed), every composition of `extra` into N
parts is equally likely (the expected cut is total/N, no help is worth nothing), and the
same seed gives the same cuts (a bargain's cuts can be re-derived and audited).
"""

from __future__ import annotations

import json
import random
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

SCENE_PREFIX = "bk_"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"   # 32 symbols, no 0/O/1/I
CODE_LEN = 8                                          # 40 bits
CODE_RX = re.compile(r"[2-9A-HJ-NP-Z]{8}")
SHANGHAI = timezone(timedelta(hours=8))
MAX_HELPS = 100
MAX_HOURS = 24 * 7


class Status(StrEnum):
    OPEN = "open"          # helps still cut
    REACHED = "reached"    # the floor is reached: buy at the floor
    ORDERED = "ordered"    # an order is placed (one per bargain), not paid yet
    BOUGHT = "bought"      # paid
    EXPIRED = "expired"    # the validity ran out before an order


LIVE = (Status.OPEN, Status.REACHED)


def cut_sequence(total_fen: int, helps: int, seed: int, min_cut_fen: int = 1) -> list[int]:
    """N integer cuts, each ≥ min_cut_fen, summing to total_fen (see the module doc)."""
    if helps < 1 or min_cut_fen < 1 or total_fen < helps * min_cut_fen:
        raise ValueError("the total can't be split into that many cuts of at least the minimum")
    extra = total_fen - helps * min_cut_fen
    rng = random.Random(seed)
    points = sorted(rng.randint(0, extra) for _ in range(helps - 1))
    edges = [0, *points, extra]
    return [min_cut_fen + edges[i + 1] - edges[i] for i in range(helps)]


def dump_cuts(cuts: Sequence[int]) -> str:
    return json.dumps(list(cuts), separators=(",", ":"))


def load_cuts(raw: str) -> list[int]:
    return [int(x) for x in json.loads(raw)]


def new_seed() -> int:
    return secrets.randbits(62)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))


def parse_code(raw: str) -> str | None:
    """A share code as typed (「帮砍 k7q2m9xd」: case and spaces forgiven), or None."""
    code = raw.strip().upper().replace(" ", "").replace("-", "")
    return code if code.isascii() and CODE_RX.fullmatch(code) else None


def scene_for(code: str) -> str:
    return f"{SCENE_PREFIX}{code}"


def code_of_scene(scene: str) -> str | None:
    return parse_code(scene[len(SCENE_PREFIX):]) if scene.startswith(SCENE_PREFIX) else None


def day_of(now: datetime) -> date:
    """The Shanghai calendar day a help counts on (K helps a day)."""
    return now.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Terms:
    """A campaign's terms as the console submits them."""

    floor_fen: int
    helps_needed: int
    min_cut_fen: int
    hours: int
    stock: int
    daily_helps: int
    helper_min_age_hours: int
    starts_at: datetime
    ends_at: datetime


def check_terms(t: Terms, price_fen: int) -> list[str]:
    """What is wrong with the terms for a SKU at `price_fen` (field names; [] when fine)."""
    bad: list[str] = []
    if not 1 <= t.floor_fen < price_fen:
        bad.append("floor")
    if not 1 <= t.helps_needed <= MAX_HELPS:
        bad.append("helps")
    if t.min_cut_fen < 1 or (1 <= t.floor_fen < price_fen and t.helps_needed >= 1
                             and (price_fen - t.floor_fen) < t.helps_needed * t.min_cut_fen):
        bad.append("min_cut")
    if not 1 <= t.hours <= MAX_HOURS:
        bad.append("hours")
    if not 0 <= t.stock <= 1_000_000:
        bad.append("stock")
    if not 1 <= t.daily_helps <= 100:
        bad.append("daily")
    if not 0 <= t.helper_min_age_hours <= 24 * 365:
        bad.append("age")
    if t.ends_at <= t.starts_at:
        bad.append("window")
    return bad


class Refusal(StrEnum):
    SELF = "self"              # the starter can't help his own bargain
    NOT_FOLLOWER = "follower"  # no official-account identity: not a follower
    TOO_NEW = "new"            # followed less than the campaign's minimum age ago


def helper_refusal(helper: int, starter: int, since: datetime | None, min_age_hours: int,
                   now: datetime) -> Refusal | None:
    """Why this member's help doesn't count (None: it may count)."""
    if helper == starter:
        return Refusal.SELF
    if since is None:
        return Refusal.NOT_FOLLOWER
    if now - since < timedelta(hours=min_age_hours):
        return Refusal.TOO_NEW
    return None
