"""Outbox dispatch: hand pending events to their subscribers, at least once, with
exponential backoff. Safe with several workers: each row is leased by a conditional
UPDATE before it is handed over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from social_mall.plugins import Delivery, Subscriber
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
    """Deliver what is due; returns how many deliveries succeeded."""
    async with uows() as uow:
        ids = await uow.outbox.due(now(), batch)
    done = 0
    for event_id in ids:
        async with uows() as uow:
            row = await uow.outbox.claim(event_id, now(), LEASE)
            await uow.commit()
        if row is None:
            continue  # another worker has it
        delivery = Delivery(row.id, row.tenant_id, row.topic, row.payload, row.attempts)
        fn = subscribers.get((row.topic, row.subscriber))
        error = ""
        if fn is None:
            error = f"no subscriber {row.subscriber!r} for {row.topic!r} (module off?)"
        else:
            try:
                await fn(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a subscriber's failure is retried
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "outbox.retry",
                    extra={"event_id": row.id, "topic": row.topic, "subscriber": row.subscriber,
                           "attempt": row.attempts, "error": error},
                )
        async with uows() as uow:
            if error:
                dead = fn is None or row.attempts >= MAX_ATTEMPTS
                await uow.outbox.retry_later(row.id, error, now() + backoff(row.attempts), dead=dead)
            else:
                await uow.outbox.finish(row.id, now())
                done += 1
            await uow.commit()
    return done


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
