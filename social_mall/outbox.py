"""Outbox dispatch: hand pending events to their subscribers, at least once, with
exponential backoff. Safe with several workers: each row is leased by a conditional
UPDATE before it is handed over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone

from social_mall.plugins import Batched, Delivery, Subscriber
from storage.repos import OutboxRow, Owed
from storage.uow import ALL, UnitOfWork, UowFactory

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
    """Deliver what is due; returns how many deliveries succeeded (a fan-out row counts one
    per subscriber it reached).

    The due rows are leased together (one conditional UPDATE, in the transaction that finds
    them) and the delivered ones marked done together (one UPDATE), so a crowd of events
    (first contacts' member.joined) costs three statements per lot, not three transactions
    per row; a `Batched` subscriber gets its rows of the lot in one call. An event of several
    subscribers is one row (`ALL`), handed to each subscriber of its topic in turn; if some
    of them fail (or aren't reached), the row is done and each of those gets a row of its
    own (`OutboxRepo.split`), retried alone from then on, so the others are never repeated.
    A row is only handed over while at least half its lease is left: past that, the rest
    of the lot is given back undelivered, so a slow subscriber never lets another worker's
    claim of an expired lease deliver a row twice."""
    async with uows() as uow:
        ids = await uow.outbox.due(now(), batch)
        if not ids:
            return 0
        claimed_at = now()
        rows = await uow.outbox.claim_many(ids, claimed_at, LEASE)
        await uow.commit()
    done: list[OutboxRow] = []
    failed: list[tuple[OutboxRow, str, bool]] = []
    left: list[OutboxRow] = []
    units = _units(_pieces(rows, subscribers), subscribers)
    try:
        for k, unit in enumerate(units):
            if now() >= claimed_at + LEASE / 2:
                left = [r for u in units[k:] for r in u]
                break
            try:
                await _deliver(unit, subscribers, done, failed)
            except asyncio.CancelledError:
                handled = {(r.id, r.subscriber) for r in done} | {(r.id, r.subscriber) for r, _, _ in failed}
                left = [r for u in units[k:] for r in u if (r.id, r.subscriber) not in handled]
                raise
    finally:
        async with uows() as uow:
            await _settle(uow, rows, done, failed, left, now())
            await uow.commit()
    return len(done)


def _pieces(rows: Sequence[OutboxRow], subscribers: Mapping[tuple[str, str], Subscriber]) -> list[OutboxRow]:
    """The lot's deliveries: a fan-out row once per subscriber of its topic (the row with
    that subscriber's name), any other row as it is."""
    if not any(r.subscriber == ALL for r in rows):
        return list(rows)
    names: dict[str, list[str]] = {}
    for topic, name in subscribers:
        names.setdefault(topic, []).append(name)
    out: list[OutboxRow] = []
    for row in rows:
        if row.subscriber != ALL:
            out.append(row)
        elif row.topic not in names:   # nobody here takes it (module off?): dead below, as a named row
            out.append(row)
        else:
            out.extend(row._replace(subscriber=name) for name in names[row.topic])
    return out


async def _settle(uow: UnitOfWork, rows: Sequence[OutboxRow], done: Sequence[OutboxRow],
                  failed: Sequence[tuple[OutboxRow, str, bool]], left: Sequence[OutboxRow], at: datetime) -> None:
    """Write what the delivery of a lot came to: rows delivered done, failed ones due again
    later (or dead), ones not reached given back; a fan-out row with subscribers still
    owed is done, with a row of its own for each of them (given back whole if none was
    reached and none failed)."""
    fanned = {r.id: r for r in rows if r.subscriber == ALL}
    finished = [r.id for r in done if r.id not in fanned]
    released = [r.id for r in left if r.id not in fanned or r.subscriber == ALL]
    owed: dict[int, list[Owed]] = {}
    for r, error, dead in failed:
        if r.id in fanned and r.subscriber != ALL:
            owed.setdefault(r.id, []).append(Owed(r.subscriber, error, dead))
        else:   # a row of one subscriber, or a fan-out row nobody here takes: it waits whole
            await uow.outbox.retry_later(r.id, error, at + backoff(r.attempts), dead=dead)
            fanned.pop(r.id, None)
    for r in left:
        if r.id in fanned and r.subscriber != ALL:
            owed.setdefault(r.id, []).append(Owed(r.subscriber, "", False))
        else:
            fanned.pop(r.id, None)
    reached = {r.id for r in done} | {r.id for r, _, _ in failed}
    for row_id, row in fanned.items():
        if row_id not in owed:
            finished.append(row_id)
        elif row_id not in reached:
            released.append(row_id)            # nothing delivered yet: the whole row goes back
        else:
            await uow.outbox.split(row, owed[row_id], at, at + backoff(row.attempts))
            finished.append(row_id)
    await uow.outbox.finish_many(finished, at)
    await uow.outbox.release(released)


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
    """The delivery of `row`: its id is the event's first row's (a subscriber's own retry row
    hands over the id its first delivery had)."""
    return Delivery(row.origin_id or row.id, row.tenant_id, row.topic, row.payload, row.attempts)


async def _deliver(unit: list[OutboxRow], subscribers: Mapping[tuple[str, str], Subscriber],
                   done: list[OutboxRow], failed: list[tuple[OutboxRow, str, bool]]) -> None:
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
            done.extend(unit)
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
            done.append(row)


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
