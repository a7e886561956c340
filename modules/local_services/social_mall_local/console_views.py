"""Read models for the console lists (tickets, the verification log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from social_mall.views import Page
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import stores_by_ids
from social_mall_local.tickets import TicketView, views
from storage.uow import UnitOfWork

PER_PAGE = 30


async def console_tickets(uow: UnitOfWork, tenant: int, *, code: str, status: str, page: int) -> Page[TicketView]:
    page = max(1, page)
    rows, total = await LocalRepo(uow.session).ticket_page(tenant, code=code, status=status,
                                                           offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    return Page(tuple(await views(uow, tenant, rows)), total, page, PER_PAGE)


@dataclass(frozen=True)
class VerificationRow:
    id: int
    ticket_id: int
    code_text: str
    title: str
    store_name: str
    actor: str
    uses: int
    uses_left: int
    at: datetime
    reversed_at: datetime | None
    reversed_by: str


async def console_verifications(uow: UnitOfWork, tenant: int, *, page: int) -> Page[VerificationRow]:
    page = max(1, page)
    rows, total = await LocalRepo(uow.session).verification_page(tenant, (page - 1) * PER_PAGE, PER_PAGE)
    names = {i: s.name for i, s in (await stores_by_ids(uow, tenant, list({v.store_id for v, _ in rows}))).items()}
    items = []
    for v, t in rows:
        tv = (await views(uow, tenant, [t]))[0]
        items.append(VerificationRow(v.id, t.id, tv.code_text, t.title, names.get(v.store_id, ""), v.actor, v.uses,
                                     v.uses_left, v.at, v.reversed_at, v.reversed_by))
    return Page(tuple(items), total, page, PER_PAGE)
