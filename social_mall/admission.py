"""Admission: the contended step in front of a scarce write (a limited stock sold at a
fixed moment, the seats of a team), taken in memory while the database stays the truth.

A *pool* is a named quantity a module sells (its key is the module's own: an item id with
a prefix). One call to `reserve` checks and takes, atomically, the pool's stock, the
member's limit in that pool and optionally a *seat* (a sub-count with its own capacity,
e.g. a team's places), and records the reservation under a token with an expiry. Only an
admitted request goes on to write its order; everybody else is answered at once
(sold out, over the limit, no seat) with no database work.

- `confirm(token, hold_until)`: the order was written (hold until its payment deadline)
  or paid (`hold_until=None`: held for good). A token that expired meanwhile is taken again
  (the database took it, so memory follows).
- `release(token)`: the order was cancelled or never written; the stock, the member's count
  and the seat go back. Idempotent.
- Expired reservations (a worker died between admission and its order) go back lazily in
  every `reserve` (a few at a time) and in `sweep`.
- Flush detection: the store keeps an *epoch* (a random value set when the first pool is
  loaded); a pool records the epoch it was loaded under. A server restarted without its
  data, or flushed, has no epoch: every pool reads as UNLOADED and is rebuilt from the
  database (the module's `loader`: the stock left, each member's count, the live
  reservations) under a lock, before it admits anybody again.
- `reconcile(pool, truth)` compares what memory holds with what the database says.

The database guards again when the order is written (a conditional update of the sold
count, a per-member claim row): memory is a front filter that converges on the database,
so a lost reservation can only make memory admit a request the database then refuses,
never sell twice.

Two stores implement `AdmissionStore` (storage/admission.py): a Redis Lua script per
operation for PostgreSQL + Redis (several workers), and an in-process equivalent for the
embedded default (one worker).
"""

from __future__ import annotations

import asyncio
import heapq
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Protocol


class Verdict(IntEnum):
    ADMITTED = 0
    SOLD_OUT = 1    # not enough stock left in the pool
    OVER_LIMIT = 2  # the member would hold more than the pool's per-member limit
    NO_SEAT = 3     # the seat asked for has no place left
    UNLOADED = 4    # the pool is not in memory (never loaded, or the server lost its data)


@dataclass(frozen=True)
class Held:
    """A live reservation as the database knows it (for a rebuild): whose, how many, which
    seat, and until when it is held (None: for good, e.g. paid)."""

    member: int
    qty: int
    seat: str = ""
    until_ms: int | None = None


@dataclass(frozen=True)
class PoolTruth:
    """What the database says of a pool: the stock left to sell, the per-member limit
    (0: none), each member's count, the live reservations by token, and the seats'
    capacities (seat → places in all)."""

    stock_left: int
    limit: int
    members: Mapping[int, int] = field(default_factory=dict)
    held: Mapping[str, Held] = field(default_factory=dict)
    seats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Admit:
    verdict: Verdict
    token: str = ""
    left: int = 0     # the pool's stock after this call (what a caller may show)

    @property
    def admitted(self) -> bool:
        return self.verdict == Verdict.ADMITTED


@dataclass(frozen=True)
class PoolState:
    """What memory holds of a pool (for reconciliation and the console)."""

    loaded: bool
    stock_left: int = 0
    limit: int = 0
    members: Mapping[int, int] = field(default_factory=dict)
    held: Mapping[str, Held] = field(default_factory=dict)

    @property
    def reserved(self) -> int:
        return sum(h.qty for h in self.held.values())


@dataclass(frozen=True)
class Drift:
    """Where memory and the database disagree (empty: they agree)."""

    stock: tuple[int, int] | None = None               # (memory, database)
    members: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()                      # tokens the database holds, memory doesn't
    extra: tuple[str, ...] = ()                        # tokens memory holds past their order (or none)

    @property
    def clean(self) -> bool:
        return self.stock is None and not self.members and not self.missing and not self.extra


class AdmissionStore(Protocol):
    async def reserve(self, tenant: int, pool: str, member: int, qty: int, token: str, expires_ms: int,
                      now_ms: int, seat: str = "", seat_cap: int = 0) -> tuple[Verdict, int]: ...
    async def confirm(self, tenant: int, pool: str, token: str, member: int, qty: int, seat: str,
                      hold_until_ms: int | None) -> int:
        """1: held as it was; 2: taken again (it had expired or was lost); 0: pool unloaded."""
        ...
    async def release(self, tenant: int, pool: str, token: str) -> bool: ...
    async def sweep(self, tenant: int, pool: str, now_ms: int, limit: int = 500) -> int: ...
    async def load(self, tenant: int, pool: str, truth: PoolTruth, *, claim: str = "",
                   if_unloaded: bool = False) -> bool:
        """Put the pool in memory from `truth` (`if_unloaded`: unless it is loaded already;
        False then) and end the rebuild `claim` if one is given, in one step."""
        ...
    async def claim_load(self, tenant: int, pool: str, lease_seconds: float, force: bool = False) -> str | None:
        """In one step: None when the pool is loaded already (and not `force`), else a claim
        on loading it ("" when another holder has it). The claim ends with `load(claim=)`
        or `end_rebuild`."""
        ...
    async def state(self, tenant: int, pool: str) -> PoolState: ...
    async def drop(self, tenant: int, pool: str) -> None: ...
    async def claim_rebuild(self, tenant: int, pool: str, lease_seconds: float) -> str:
        """A claim on rebuilding the pool ("" when another holder has it)."""
        ...
    async def end_rebuild(self, tenant: int, pool: str, claim: str) -> None: ...


Loader = Callable[[], Awaitable[PoolTruth]]

REBUILD_LEASE = 30.0   # seconds a rebuild claim lasts if its holder dies
REBUILD_POLL = 0.02    # seconds between looks while another request rebuilds
REBUILD_TRIES = 1500   # ~30 s of looks, then UNLOADED is the answer


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class Admission:
    """The service modules call (`Services.admission`): the store plus the rebuild."""

    store: AdmissionStore
    rebuilds: int = 0   # how many times this worker rebuilt a pool from the database
    primes: int = 0     # how many pools this worker loaded from a truth it was handed (`prime`)

    async def reserve(self, tenant: int, pool: str, member: int, qty: int, *, now: datetime, hold_seconds: float,
                      loader: Loader, seat: str = "", seat_cap: int = 0) -> Admit:
        """Take `qty` of `pool` for `member` (and a place of `seat`) for `hold_seconds`, or
        say why not. An unloaded pool is rebuilt from `loader` (the database) first."""
        token = secrets.token_hex(12)
        now_ms = ms(now)
        expires = now_ms + int(hold_seconds * 1000)
        for _ in range(REBUILD_TRIES):
            verdict, left = await self.store.reserve(tenant, pool, member, qty, token, expires, now_ms, seat, seat_cap)
            if verdict != Verdict.UNLOADED:
                return Admit(verdict, token if verdict == Verdict.ADMITTED else "", left)
            if await self._rebuild(tenant, pool, loader) is None:
                await asyncio.sleep(REBUILD_POLL)   # another request (or worker) is rebuilding it
        return Admit(Verdict.UNLOADED)

    async def rebuild(self, tenant: int, pool: str, loader: Loader, *, force: bool = False) -> bool:
        """Load the pool from the database, unless it is loaded already (`force`: reload
        anyway) or another request is loading it (a claim with a lease: one rebuild runs,
        the others poll until it is in). True when this call loaded it."""
        return bool(await self._rebuild(tenant, pool, loader, force=force))

    async def _rebuild(self, tenant: int, pool: str, loader: Loader, *, force: bool = False) -> bool | None:
        """True: loaded by this call; False: it was loaded already; None: another holder is
        loading it. Two round trips to the store: the claim (which also says whether the
        pool is loaded) and the load (which also ends the claim)."""
        claim = await self.store.claim_load(tenant, pool, REBUILD_LEASE, force)
        if claim is None:
            return False
        if not claim:
            return None
        try:
            truth = await loader()
        except BaseException:
            await self.store.end_rebuild(tenant, pool, claim)
            raise
        loaded = await self.store.load(tenant, pool, truth, claim=claim, if_unloaded=not force)
        if loaded:
            self.rebuilds += 1
        return loaded

    async def prime(self, tenant: int, pool: str, truth: PoolTruth) -> bool:
        """Load a pool whose truth the caller already holds (a team just opened, a session
        just started), unless it is loaded already: one call to the store, no read of the
        database, so its first request does not pay for a rebuild. True when loaded."""
        loaded = await self.store.load(tenant, pool, truth, if_unloaded=True)
        if loaded:
            self.primes += 1
        return loaded

    async def confirm(self, tenant: int, pool: str, token: str, member: int, qty: int, *,
                      hold_until: datetime | None, seat: str = "") -> int:
        return await self.store.confirm(tenant, pool, token, member, qty, seat,
                                        None if hold_until is None else ms(hold_until))

    async def release(self, tenant: int, pool: str, token: str) -> bool:
        return await self.store.release(tenant, pool, token)

    async def sweep(self, tenant: int, pool: str, now: datetime) -> int:
        return await self.store.sweep(tenant, pool, ms(now))

    async def state(self, tenant: int, pool: str) -> PoolState:
        return await self.store.state(tenant, pool)

    async def drop(self, tenant: int, pool: str) -> None:
        await self.store.drop(tenant, pool)

    async def reconcile(self, tenant: int, pool: str, truth: PoolTruth) -> Drift:
        """Memory against the database. Reservations memory holds that the database does
        not (admitted, order not written yet) count as `extra` only once past their expiry
        would have released them: a caller compares after a quiet moment."""
        mem = await self.store.state(tenant, pool)
        if not mem.loaded:
            return Drift()
        db_members = {m: q for m, q in truth.members.items() if q}
        mem_members = {m: q for m, q in mem.members.items() if q}
        members = {m: (mem_members.get(m, 0), db_members.get(m, 0))
                   for m in set(db_members) | set(mem_members) if mem_members.get(m, 0) != db_members.get(m, 0)}
        return Drift(
            stock=None if mem.stock_left == truth.stock_left else (mem.stock_left, truth.stock_left),
            members=members,
            missing=tuple(sorted(set(truth.held) - set(mem.held))),
            extra=tuple(sorted(set(mem.held) - set(truth.held))),
        )


class MemoryAdmissionStore:
    """The embedded default's store: the same operations on dicts, in one process (each
    call runs without an await, so it is atomic on the event loop). `flush()` forgets
    everything, as a restarted Redis would."""

    def __init__(self) -> None:
        self.epoch = ""
        self._pools: dict[tuple[int, str], _Pool] = {}
        self._rebuilding: dict[tuple[int, str], str] = {}

    def flush(self) -> None:
        self.epoch = ""
        self._pools.clear()

    def _pool(self, tenant: int, pool: str) -> _Pool | None:
        p = self._pools.get((tenant, pool))
        if p is None or not self.epoch or p.gen != self.epoch:
            return None
        return p

    async def reserve(self, tenant: int, pool: str, member: int, qty: int, token: str, expires_ms: int,
                      now_ms: int, seat: str = "", seat_cap: int = 0) -> tuple[Verdict, int]:
        p = self._pool(tenant, pool)
        if p is None:
            return Verdict.UNLOADED, 0
        p.expire(now_ms, 20)
        if p.stock < qty:
            return Verdict.SOLD_OUT, p.stock
        if p.limit > 0 and p.members.get(member, 0) + qty > p.limit:
            return Verdict.OVER_LIMIT, p.stock
        if seat:
            p.seats.setdefault(seat, seat_cap)
            if p.seats[seat] < 1:
                return Verdict.NO_SEAT, p.stock
            p.seats[seat] -= 1
        p.stock -= qty
        p.members[member] = p.members.get(member, 0) + qty
        p.hold(token, Held(member, qty, seat, expires_ms))
        return Verdict.ADMITTED, p.stock

    async def confirm(self, tenant: int, pool: str, token: str, member: int, qty: int, seat: str,
                      hold_until_ms: int | None) -> int:
        p = self._pool(tenant, pool)
        if p is None:
            return 0
        if token in p.held:
            p.hold(token, Held(member, qty, seat, hold_until_ms))
            return 1
        p.take(token, Held(member, qty, seat, hold_until_ms))
        return 2

    async def release(self, tenant: int, pool: str, token: str) -> bool:
        p = self._pool(tenant, pool)
        return p is not None and p.give_back(token)

    async def sweep(self, tenant: int, pool: str, now_ms: int, limit: int = 500) -> int:
        p = self._pool(tenant, pool)
        return 0 if p is None else p.expire(now_ms, limit)

    async def load(self, tenant: int, pool: str, truth: PoolTruth, *, claim: str = "",
                   if_unloaded: bool = False) -> bool:
        if claim and self._rebuilding.get((tenant, pool)) == claim:
            del self._rebuilding[(tenant, pool)]
        if if_unloaded and self._pool(tenant, pool) is not None:
            return False
        if not self.epoch:
            self.epoch = secrets.token_hex(8)
        p = _Pool(self.epoch, truth.stock_left, truth.limit, dict(truth.members), {}, {})
        for token, h in truth.held.items():
            p.hold(token, h)
        for seat, cap in truth.seats.items():
            p.seats[seat] = cap - sum(1 for h in truth.held.values() if h.seat == seat)
        self._pools[(tenant, pool)] = p
        return True

    async def claim_load(self, tenant: int, pool: str, lease_seconds: float, force: bool = False) -> str | None:
        if not force and self._pool(tenant, pool) is not None:
            return None
        return await self.claim_rebuild(tenant, pool, lease_seconds)

    async def state(self, tenant: int, pool: str) -> PoolState:
        p = self._pool(tenant, pool)
        if p is None:
            return PoolState(False)
        return PoolState(True, p.stock, p.limit, dict(p.members), dict(p.held))

    async def drop(self, tenant: int, pool: str) -> None:
        self._pools.pop((tenant, pool), None)

    async def claim_rebuild(self, tenant: int, pool: str, lease_seconds: float) -> str:
        if (tenant, pool) in self._rebuilding:
            return ""
        claim = self._rebuilding[(tenant, pool)] = secrets.token_hex(8)
        return claim

    async def end_rebuild(self, tenant: int, pool: str, claim: str) -> None:
        if self._rebuilding.get((tenant, pool)) == claim:
            del self._rebuilding[(tenant, pool)]


@dataclass
class _Pool:
    gen: str
    stock: int
    limit: int
    members: dict[int, int]
    held: dict[str, Held]
    seats: dict[str, int]
    # (until, token) of every hold with an expiry, soonest first; an entry whose token no
    # longer holds that expiry (released, confirmed again) is skipped when it comes up
    due: list[tuple[int, str]] = field(default_factory=list)

    def hold(self, token: str, h: Held) -> None:
        self.held[token] = h
        if h.until_ms is not None:
            heapq.heappush(self.due, (h.until_ms, token))

    def take(self, token: str, h: Held) -> None:
        self.stock -= h.qty
        self.members[h.member] = self.members.get(h.member, 0) + h.qty
        if h.seat:
            self.seats[h.seat] = self.seats.get(h.seat, 0) - 1
        self.hold(token, h)

    def give_back(self, token: str) -> bool:
        h = self.held.pop(token, None)
        if h is None:
            return False
        self.stock += h.qty
        self.members[h.member] = self.members.get(h.member, 0) - h.qty
        if h.seat:
            self.seats[h.seat] = self.seats.get(h.seat, 0) + 1
        return True

    def expire(self, now_ms: int, limit: int) -> int:
        n = 0
        while self.due and self.due[0][0] <= now_ms and n < limit:
            until, token = heapq.heappop(self.due)
            h = self.held.get(token)
            if h is not None and h.until_ms == until:
                self.give_back(token)
                n += 1
        return n
