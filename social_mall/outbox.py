"""Outbox dispatch: hand pending events to their subscribers, at least once, with
exponential backoff. Safe with several workers: each row is leased by a conditional
UPDATE before it is handed over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from social_mall.plugins import Delivery, Subscriber
from storage.repos import OutboxRow
from storage.uow import UowFactory

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
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
    batch: int = 100,
) -> int:
    """Deliver what is due; returns how many deliveries succeeded.

    The due rows are leased together (one conditional UPDATE, in the transaction that finds
    them) and the delivered ones marked done together (one UPDATE), so a crowd of events
    (first contacts' member.joined) costs three statements per lot, not three transactions
    per row. A row is only handed over while at least half its lease is left: past that, the
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
    try:
        for i, row in enumerate(rows):
            if now() >= claimed_at + LEASE / 2:
                left = [r.id for r in rows[i:]]
                break
            delivery = Delivery(row.id, row.tenant_id, row.topic, row.payload, row.attempts)
            fn = subscribers.get((row.topic, row.subscriber))
            if fn is None:
                failed.append((row, f"no subscriber {row.subscriber!r} for {row.topic!r} (module off?)", True))
                continue
            try:
                await fn(delivery)
            except asyncio.CancelledError:
                left = [r.id for r in rows[i:]]
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
    finally:
        async with uows() as uow:
            await uow.outbox.finish_many(done, now())
            for row, error, dead in failed:
                await uow.outbox.retry_later(row.id, error, now() + backoff(row.attempts), dead=dead)
            await uow.outbox.release(left)
            await uow.commit()
    return len(done)


class OutboxWorker:
    """Runs dispatch now when kicked (after a commit that emitted events), and on schedule.
    At most one run at a time in this process, with one more queued behind it."""

    def __init__(self, uows: UowFactory, subscribers: Mapping[tuple[str, str], Subscriber]) -> None:
        self.uows, self.subscribers = uows, subscribers
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
            try:
                await dispatch_due(self.uows, self.subscribers)
            except Exception:  # noqa: BLE001 - the scheduled run will try again
                log.exception("outbox.dispatch_failed")
            if not self._again:
                return

    async def run_once(self) -> int:
        return await dispatch_due(self.uows, self.subscribers)

    async def drain(self) -> None:
        """Wait for the kicked run (tests and graceful shutdown)."""
        while self._running is not None and not self._running.done():
            await asyncio.shield(self._running)
