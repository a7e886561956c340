"""The key-value store port: what the core, flows and handlers may ask of it. Implemented by
storage/kv.py (`MemoryKV`, the embedded default; `RedisKV`, many workers); a handler gets the
store from the composition root (`Services.kv`), and names only these types."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class LockTimeoutError(Exception):
    """The lock was still held by someone else when the wait ran out."""


class Claimed(IntEnum):
    """What `claim_and_cas` did."""

    REPEAT = 0  # the claim was taken before: nothing claimed, nothing written
    WROTE = 1   # claimed (when a claim was given) and written
    STALE = 2   # the value was not the expected one: nothing claimed, nothing written
    SPENT = 3   # the ticket was spent on another claim: nothing claimed, nothing written
    LEASED = 4  # the claim is a lease another handler holds (its step still running): nothing done


# A claim's value: a lease (provisional, short-lived: the step is running) or done (confirmed
# by the commit, kept for the de-duplication window).
LEASE = "0"
DONE = "1"


class KVStore(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    async def set_nx(self, key: str, value: str, ttl: float) -> bool:
        """Set only if absent; True when this call set it (the de-duplication primitive)."""
        ...
    async def delete(self, key: str) -> None: ...
    async def delete_if(self, key: str, value: str) -> None:
        """Delete `key` only while it holds `value` (give back a lease this caller holds)."""
        ...
    async def incr(self, key: str, ttl: float) -> int:
        """Count up; the TTL starts at the first increment (a fixed rate-limit window)."""
        ...
    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        """Write `value` only if the current value equals `expected` (None: absent)."""
        ...
    async def claim_and_get(self, claim: str, claim_ttl: float, key: str, ticket: str = "",
                            ticket_ttl: float = 0.0) -> tuple[Claimed, str | None]:
        """`set_nx(claim)` and, when this call set it, `get(key)`, in one round trip: a
        message's de-duplication and its conversation load. The claim is provisional: a
        lease for `claim_ttl` seconds (keep it short) that `confirm` turns into the long
        claim once the message's work is committed; if the handler dies first, the lease
        runs out and a retry claims the message again. (WROTE, value) when claimed,
        (LEASED, None) while another handler's lease holds it, (REPEAT, None) for a repeat
        of a confirmed claim.

        A `ticket` (a key a request may spend on one claim only: the signed query of a
        WeChat request) is checked first and spent on `claim` for `ticket_ttl` seconds:
        (SPENT, None) when it was spent on another claim (nothing claimed, nothing written).
        A repeat of the same claim spends it too."""
        ...
    async def claim_and_cas(self, claim: str, claim_ttl: float, key: str, expected: str | None,
                            value: str, ttl: float, ticket: str = "", ticket_ttl: float = 0.0) -> Claimed:
        """`set_nx(claim)` and `cas(key, expected, value)` as one atomic step, in one round
        trip: both happen or neither. The claim is taken confirmed (the write is the step's
        only effect). SPENT when the `ticket` was spent on another claim (checked first; see
        `claim_and_get`), REPEAT when `claim` is confirmed, LEASED when another handler holds
        it as a lease (the ticket is spent on it either way), STALE when `key` does not hold
        `expected` (the ticket is not spent). An empty `claim` claims nothing (a plain `cas`;
        no ticket then)."""
        ...
    async def cas_and_confirm(self, key: str, expected: str | None, value: str, ttl: float,
                              claim: str, claim_ttl: float) -> bool:
        """`cas(key, expected, value)` and, when it wrote, `confirm(claim)`, as one atomic
        step in one round trip (a step with nothing to commit after its state write)."""
        ...
    async def confirm(self, claim: str, ttl: float) -> None:
        """Turn a claim (a lease from `claim_and_get`) into the long claim: `ttl` seconds
        during which a repeat of the message is REPEAT."""
        ...
    def lock(self, key: str, ttl: float = 10.0, wait: float = 10.0) -> "KVLock": ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class KVLock(Protocol):
    async def __aenter__(self) -> None: ...
    async def __aexit__(self, *exc: object) -> None: ...
