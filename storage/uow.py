"""Unit of work: one AsyncSession, the repositories over it, and the outbox.

    async with uow_factory() as uow:
        view = await place_order(uow, ...)
        await uow.commit()

Events emitted with `uow.emit` are written as outbox rows in the same transaction, one
row per subscriber registered for the topic (so a failing subscriber retries alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from social_mall.events import DomainEvent
from storage.models import AuditEntry, OutboxEvent
from storage.repos import CatalogRepo, MemberRepo, OrderRepo, OutboxRepo, PaymentRepo, TenantRepo

RECORD_ONLY = "-"  # subscriber name for an event nobody listens to: kept as a record


class UnitOfWork:
    def __init__(self, session: AsyncSession, subscribers: Mapping[str, Sequence[str]]) -> None:
        self.session = session
        self._subscribers = subscribers
        self.tenants = TenantRepo(session)
        self.members = MemberRepo(session)
        self.catalog = CatalogRepo(session)
        self.orders = OrderRepo(session)
        self.payments = PaymentRepo(session)
        self.outbox = OutboxRepo(session)
        self.emitted: list[DomainEvent] = []

    def emit(self, event: DomainEvent) -> None:
        self.emitted.append(event)
        names = self._subscribers.get(event.topic) or [RECORD_ONLY]
        uid = uuid.uuid4().hex
        for name in names:
            self.session.add(
                OutboxEvent(
                    tenant_id=event.tenant_id,
                    topic=event.topic,
                    event_uid=uid,
                    subscriber=name,
                    payload=event.payload(),
                    status="done" if name == RECORD_ONLY else "pending",
                )
            )

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

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            await self.session.rollback()
        await self.session.close()


UowFactory = Callable[[], UnitOfWork]


def uow_factory(
    sessions: async_sessionmaker[AsyncSession], subscribers: Mapping[str, Sequence[str]]
) -> UowFactory:
    return lambda: UnitOfWork(sessions(), subscribers)
