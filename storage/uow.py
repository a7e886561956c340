"""Unit of work: one AsyncSession, the repositories over it, and the outbox.

    async with uow_factory() as uow:
        view = await place_order(uow, ...)
        await uow.commit()

Events emitted with `uow.emit` are written as outbox rows in the same transaction, one
row per event whatever the number of subscribers registered for the topic (the outbox
hands it to each; a failing subscriber then retries alone, on a row of its own).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, cast

from sqlalchemy import JSON, Integer, String, Table, Text, bindparam, cast as sql_cast, func, null, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from social_mall.events import DomainEvent
from storage.cache import DISABLED, WROTE_CATALOG, ReadCache
from storage.models import AuditEntry, OutboxEvent, utcnow
from storage.repos import CatalogRepo, MemberRepo, OrderRepo, OutboxRepo, PaymentRepo, TenantRepo

if TYPE_CHECKING:
    from social_mall.catalog.visibility import ProductVisibility
    from social_mall.pricing.unit import UnitPricer
    from social_mall.orders.notes import OrderNote
    from social_mall.payments.methods import PaymentMethod

UowFactory = Callable[[], "UnitOfWork"]
log = logging.getLogger(__name__)

RECORD_ONLY = "-"  # subscriber name for an event nobody listens to: kept as a record
ALL = "*"          # subscriber name for an event of several subscribers: each is handed it in turn


def row_subscriber(names: Sequence[str] | None) -> str:
    """The outbox row's subscriber for an event of a topic with these subscribers: the
    one's name, `ALL` for several, `RECORD_ONLY` for none (one row per event either way)."""
    if not names:
        return RECORD_ONLY
    return names[0] if len(names) == 1 else ALL

_OUTBOX = cast(Table, OutboxEvent.__table__)
# emit_many on PostgreSQL: one statement of one shape whatever the number of rows (one
# array per column, unnest()ed by the server; the payloads as JSON text), so it is
# prepared once per connection and no VALUES row is built per event (the member desk's
# crowd of member.joined).
_PG_ROWS = func.unnest(
    bindparam("tenants", type_=ARRAY(Integer())), bindparam("topics", type_=ARRAY(String())),
    bindparam("uids", type_=ARRAY(String())), bindparam("subscribers", type_=ARRAY(String())),
    bindparam("payloads", type_=ARRAY(Text())), bindparam("statuses", type_=ARRAY(String())),
).table_valued("tenant_id", "topic", "event_uid", "subscriber", "payload", "status").render_derived()
_PG_EMIT_MANY = _OUTBOX.insert().from_select(
    ["tenant_id", "topic", "event_uid", "subscriber", "payload", "status", "attempts", "next_attempt_at",
     "locked_until", "last_error", "created_at", "done_at"],
    select(_PG_ROWS.c.tenant_id, _PG_ROWS.c.topic, _PG_ROWS.c.event_uid, _PG_ROWS.c.subscriber,
           sql_cast(_PG_ROWS.c.payload, JSON), _PG_ROWS.c.status, bindparam("attempts", type_=Integer()),
           bindparam("now", type_=_OUTBOX.c.next_attempt_at.type), null(), bindparam("last_error", type_=Text()),
           bindparam("now", type_=_OUTBOX.c.created_at.type), null()).select_from(_PG_ROWS),
    include_defaults=False,
)


class UnitOfWork:
    """The session opens on first use: a step served from caches costs no session at all."""

    def __init__(self, sessions: Callable[[], AsyncSession], subscribers: Mapping[str, Sequence[str]],
                 cache: ReadCache = DISABLED, *, modules: Collection[str] | None = None,
                 factory: UowFactory | None = None, shared: dict[str, object] | None = None,
                 pricers: Sequence[UnitPricer] = (), payment_methods: Sequence[PaymentMethod] = (),
                 order_notes: Sequence[OrderNote] = (), visibility: Sequence[ProductVisibility] = ()) -> None:
        self._sessions = sessions
        # who hides products from some members (social_mall/catalog/visibility.py)
        self.visibility: tuple[ProductVisibility, ...] = tuple(visibility)
        # answers the core's seams remember for this unit of work (the products hidden from a member…)
        self.memo: dict[str, object] = {}
        # lines the enabled modules add under an order's pages (social_mall/orders/notes.py)
        self.order_notes: tuple[OrderNote, ...] = tuple(order_notes)
        # ways of paying besides WeChat Pay from the enabled modules (social_mall/payments/methods.py)
        self.payment_methods: tuple[PaymentMethod, ...] = tuple(payment_methods)
        # unit prices from the enabled modules (social_mall/pricing/unit.py)
        self.pricers: tuple[UnitPricer, ...] = tuple(pricers)
        # The factory that made this unit of work (None when built by hand), for a core
        # service that needs transactions of its own, and what such services keep across
        # units of work of one deployment (the group-buy join desk).
        self.factory = factory
        self.shared: dict[str, object] = {} if shared is None else shared
        self._session: AsyncSession | None = None
        self._after_rollback: list[Callable[[], Awaitable[None]]] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._subscribers = subscribers
        self._modules = modules if modules is None or isinstance(modules, frozenset) else frozenset(modules)
        self.cache = cache  # catalog reads (storage/cache.py); cleared by a commit that wrote the catalog
        self.emitted: list[DomainEvent] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions()
        return self._session

    @cached_property
    def tenants(self) -> TenantRepo:
        return TenantRepo(self.session)

    @cached_property
    def members(self) -> MemberRepo:
        return MemberRepo(self.session)

    @cached_property
    def catalog(self) -> CatalogRepo:
        return CatalogRepo(self.session)

    @cached_property
    def orders(self) -> OrderRepo:
        return OrderRepo(self.session)

    @cached_property
    def payments(self) -> PaymentRepo:
        return PaymentRepo(self.session)

    @cached_property
    def outbox(self) -> OutboxRepo:
        return OutboxRepo(self.session)

    def enabled(self, module: str) -> bool:
        """Is `module` switched on in this deployment? (A unit of work built without the
        registry's module list, by a tool or a test, has every module on.)"""
        return self._modules is None or module in self._modules

    def emit(self, event: DomainEvent) -> None:
        self.emitted.append(event)
        name = row_subscriber(self._subscribers.get(event.topic))
        self.session.add(
            OutboxEvent(
                tenant_id=event.tenant_id,
                topic=event.topic,
                event_uid=uuid.uuid4().hex,
                subscriber=name,
                payload=event.payload(),
                status="done" if name == RECORD_ONLY else "pending",
            )
        )

    def emitted_elsewhere(self, event: DomainEvent) -> None:
        """`event` was written, with its outbox rows, by another transaction on this unit of
        work's behalf (a batching desk): it counts as emitted here (the caller's outbox is
        kicked after its commit) but writes nothing."""
        self.emitted.append(event)

    async def emit_many(self, events: Sequence[DomainEvent]) -> None:
        """`emit` for a crowd of events (the member desk's member.joined): their outbox rows
        go in now, with one INSERT whatever their number, instead of one ORM row each at
        the flush (on SQLite the ORM inserts those one by one, to read their ids back). In
        the transaction like `emit`'s, so a rollback takes them back too."""
        if not events:
            return
        rows = []
        now = utcnow()
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            cols: tuple[list[object], ...] = ([], [], [], [], [], [])
            for event in events:
                self.emitted.append(event)
                payload = json.dumps(event.payload())  # as SQLAlchemy's JSON type would write it
                name = row_subscriber(self._subscribers.get(event.topic))
                for col, v in zip(cols, (event.tenant_id, event.topic, uuid.uuid4().hex, name, payload,
                                         "done" if name == RECORD_ONLY else "pending")):
                    col.append(v)
            await self.session.execute(_PG_EMIT_MANY, dict(
                zip(("tenants", "topics", "uids", "subscribers", "payloads", "statuses"), cols),
                attempts=0, now=now, last_error=""))
            return
        for event in events:
            self.emitted.append(event)
            name = row_subscriber(self._subscribers.get(event.topic))
            rows.append({"tenant_id": event.tenant_id, "topic": event.topic, "event_uid": uuid.uuid4().hex,
                         "subscriber": name, "payload": event.payload(),
                         "status": "done" if name == RECORD_ONLY else "pending", "attempts": 0,
                         "next_attempt_at": now, "locked_until": None, "last_error": "",
                         "created_at": now, "done_at": None})
        await self.session.execute(_OUTBOX.insert(), rows)

    def audit(
        self,
        tenant_id: int,
        actor: str,
        action: str,
        subject: str,
        before: dict[str, object] | None = None,
        after: dict[str, object] | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(
                tenant_id=tenant_id, actor=actor, action=action, subject=subject,
                before=before, after=after,
            )
        )

    def after_rollback(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` once after this unit of work's transaction is rolled back (a refused step
        that still records what was refused, in a transaction of its own: the rolled-back
        one holds no locks by then). Dropped by a commit. A failing `fn` is logged."""
        self._after_rollback.append(fn)

    def after_commit(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` once after this unit of work's transaction commits (memory that may only
        learn of a write once it is durable, e.g. a cache primed with the rows just written).
        Dropped by a rollback. A failing `fn` is logged: the commit stands."""
        self._after_commit.append(fn)

    async def _run_after_commit(self) -> None:
        todo, self._after_commit = self._after_commit, []
        for fn in todo:
            try:
                await fn()
            except Exception:   # the write stands; memory catches up on its own (a rebuild)
                log.exception("uow.after_commit_failed")

    async def _run_after_rollback(self) -> None:
        todo, self._after_rollback = self._after_rollback, []
        for fn in todo:
            try:
                await fn()
            except Exception:   # the refusal stands; what it would have recorded is logged
                log.exception("uow.after_rollback_failed")

    async def commit(self) -> None:
        if self._session is None:
            self._after_rollback = []
            await self._run_after_commit()
            return
        try:
            await self._session.commit()   # a failed commit rolled back: its after_rollback still runs
        except BaseException:
            self._after_commit = []
            raise
        self._after_rollback = []
        if self._session.info.pop(WROTE_CATALOG, False):
            self.cache.clear()
        await self._run_after_commit()

    async def rollback(self) -> None:
        self._after_commit = []
        if self._session is None:
            await self._run_after_rollback()
            return
        await self._session.rollback()
        self._session.info.pop(WROTE_CATALOG, None)
        await self._run_after_rollback()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._after_commit = []   # not committed since: nothing to follow
        if self._session is None:
            if exc_type is not None:   # nothing of ours to roll back; what others wrote for us is undone
                await self._run_after_rollback()
            return
        if exc_type is not None:
            await self._session.rollback()
            await self._session.close()
            await self._run_after_rollback()
            return
        await self._session.close()




def uow_factory(
    sessions: async_sessionmaker[AsyncSession], subscribers: Mapping[str, Sequence[str]],
    cache: ReadCache = DISABLED, *, modules: Collection[str] | None = None,
    pricers: Sequence[UnitPricer] = (), payment_methods: Sequence[PaymentMethod] = (),
    order_notes: Sequence[OrderNote] = (), visibility: Sequence[ProductVisibility] = (),
) -> UowFactory:
    """`modules`: the enabled modules (the registry's list); None: all of them.
    `pricers`: the enabled modules' unit pricers (registry.pricers); `payment_methods`:
    their ways of paying besides WeChat Pay (registry.payment_methods); `order_notes`: their
    lines under an order's pages (registry.order_notes); `visibility`: who hides products
    from some members (registry.visibility)."""
    enabled = frozenset(modules) if modules is not None else None
    shared: dict[str, object] = {}

    def make() -> UnitOfWork:
        return UnitOfWork(sessions, subscribers, cache, modules=enabled, factory=make, shared=shared,
                          pricers=pricers, payment_methods=payment_methods, order_notes=order_notes,
                          visibility=visibility)

    return make
