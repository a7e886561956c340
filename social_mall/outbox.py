"""Outbox dispatch: hand pending events to their subscribers, at least once, with
exponential backoff. Safe with several workers: each row is leased by a conditional
UPDATE before it is handed over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone

from social_mall.plugins import Batched, Delivery, Subscriber
from storage.repos import OutboxRow
from storage.uow import UowFactory

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
LOT = 500          # rows leased and delivered together (a crowd's joins: ~2 rows a member)
COALESCE = 0.25    # seconds between kicked runs while kicks keep coming
MAX_ATTEMPTS = 15


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at one hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempt - 1, 0), 3600))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def dispatch_due(
    uows: UowFactory,
    subscribers: Mapping[tuple[str, str], Subscriber],
    *,
    now: Callable[[], datetime] = utcnow,
    batch: int = LOT,
) -> int:
    """Deliver what is due; returns how many deliveries succeeded.

    The due rows are leased together (one conditional UPDATE, in the transaction that finds
    them) and the delivered ones marked done together (one UPDATE), so a crowd of events
    (first contacts' member.joined) costs three statements per lot, not three transactions
    per row; a `Batched` subscriber gets its rows of the lot in one call. A row is only handed over while at least half its lease is left: past that, the
    rest of the lot is given back undelivered, so a slow subscriber never lets another
    worker's claim of an expired lease deliver a row twice."""
    async with uows() as uow:
        ids = await uow.outbox.due(now(), batch)
        if not ids:
            return 0
        claimed_at = now()
        rows = await uow.outbox.claim_many(ids, claimed_at, LEASE)
        await uow.commit()
    done: list[int] = []
    failed: list[tuple[OutboxRow, str, bool]] = []
    left: list[int] = []
    units = _units(rows, subscribers)
    try:
        for k, unit in enumerate(units):
            if now() >= claimed_at + LEASE / 2:
                left = [r.id for u in units[k:] for r in u]
                break
            try:
                await _deliver(unit, subscribers, done, failed)
            except asyncio.CancelledError:
                handled = {*done, *(r.id for r, _, _ in failed)}
                left = [r.id for u in units[k:] for r in u if r.id not in handled]
                raise
    finally:
        async with uows() as uow:
            await uow.outbox.finish_many(done, now())
            for row, error, dead in failed:
                await uow.outbox.retry_later(row.id, error, now() + backoff(row.attempts), dead=dead)
            await uow.outbox.release(left)
            await uow.commit()
    return len(done)


def _units(rows: Sequence[OutboxRow], subscribers: Mapping[tuple[str, str], Subscriber]) -> list[list[OutboxRow]]:
    """The lot in delivery units: the rows of a `Batched` subscriber together (in the place
    of the first), every other row alone."""
    units: list[list[OutboxRow]] = []
    batched: dict[tuple[str, str], list[OutboxRow]] = {}
    for row in rows:
        key = (row.topic, row.subscriber)
        if isinstance(subscribers.get(key), Batched):
            if key in batched:
                batched[key].append(row)
                continue
            batched[key] = [row]
            units.append(batched[key])
        else:
            units.append([row])
    return units


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(row.id, row.tenant_id, row.topic, row.payload, row.attempts)


async def _deliver(unit: list[OutboxRow], subscribers: Mapping[tuple[str, str], Subscriber],
                   done: list[int], failed: list[tuple[OutboxRow, str, bool]]) -> None:
    """Hand one unit over: a batched subscriber's rows in one call (then, should that fail,
    one by one), any other row alone. Successes go to `done`, failures to `failed`."""
    fn = subscribers.get((unit[0].topic, unit[0].subscriber))
    if fn is None:
        for row in unit:
            failed.append((row, f"no subscriber {row.subscriber!r} for {row.topic!r} (module off?)", True))
        return
    if isinstance(fn, Batched) and len(unit) > 1:
        try:
            await fn.many([_delivery(r) for r in unit])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the lot fails as a whole: each row alone below
            log.info("outbox.batch_retried_singly", extra={"topic": unit[0].topic, "size": len(unit),
                                                           "error": type(exc).__name__})
        else:
            done.extend(r.id for r in unit)
            return
    for row in unit:
        try:
            await fn(_delivery(row))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a subscriber's failure is retried
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "outbox.retry",
                extra={"event_id": row.id, "topic": row.topic, "subscriber": row.subscriber,
                       "attempt": row.attempts, "error": error},
            )
            failed.append((row, error, row.attempts >= MAX_ATTEMPTS))
        else:
            done.append(row.id)


class OutboxWorker:
    """Runs dispatch now when kicked (after a commit that emitted events), and on schedule.
    At most one run at a time in this process, with one more queued behind it."""

    def __init__(self, uows: UowFactory, subscribers: Mapping[tuple[str, str], Subscriber],
                 coalesce: float = COALESCE) -> None:
        """`coalesce`: when kicks came in during a run, wait this long before the next, so
        a stream of commits (a crowd's first contacts, each batch of them a kick) is
        delivered in lots rather than a few rows per run. A lone kick runs at once."""
        self.uows, self.subscribers, self.coalesce = uows, subscribers, coalesce
        self._running: asyncio.Task[None] | None = None
        self._again = False

    def kick(self) -> None:
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self._again = False
            delivered = 0
            try:
                delivered = await dispatch_due(self.uows, self.subscribers, batch=LOT)
            except Exception:  # noqa: BLE001 - the scheduled run will try again
                log.exception("outbox.dispatch_failed")
            if delivered >= LOT:  # a full lot: more is likely waiting
                continue
            if not self._again:
                return
            await asyncio.sleep(self.coalesce)

    async def run_once(self) -> int:
        return await dispatch_due(self.uows, self.subscribers)

    async def drain(self) -> None:
        """Wait for the kicked run (tests and graceful shutdown)."""
        while self._running is not None and not self._running.done():
            await asyncio.shield(self._running)
