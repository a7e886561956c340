"""Members for admins: search (nickname, id, an openid or unionid), identities, orders."""

from __future__ import annotations

from dataclasses import dataclass

from social_mall.errors import NotFoundError
from social_mall.orders.service import list_orders
from social_mall.views import OrderView, Page
from storage.console_repos import ConsoleRepo
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class MemberRow:
    id: int
    nickname: str
    unionid: str | None
    entry_source: str
    orders: int
    paid_fen: int


@dataclass(frozen=True)
class IdentityRow:
    channel: str
    external_id: str


@dataclass(frozen=True)
class MemberDetail:
    member: MemberRow
    identities: tuple[IdentityRow, ...]
    orders: Page[OrderView]


async def search_members(uow: UnitOfWork, tenant: int, query: str, *, page: int, per_page: int) -> Page[MemberRow]:
    repo = ConsoleRepo(uow.session)
    rows, total = await repo.members(tenant, query=query[:64], offset=(page - 1) * per_page, limit=per_page)
    stats = await repo.member_order_stats(tenant, [m.id for m in rows])
    return Page(tuple(MemberRow(m.id, m.nickname, m.unionid, m.entry_source, *stats.get(m.id, (0, 0)))
                      for m in rows), total, page, per_page)


async def member_detail(uow: UnitOfWork, tenant: int, member_id: int, *, page: int = 1,
                        per_page: int = 20) -> MemberDetail:
    m = await uow.members.get(tenant, member_id)
    if m is None:
        raise NotFoundError("member", member_id)
    stats = await ConsoleRepo(uow.session).member_order_stats(tenant, [m.id])
    identities = tuple(IdentityRow(i.channel, i.external_id) for i in await uow.members.identities(tenant, m.id))
    orders = await list_orders(uow, tenant, m.id, page=page, per_page=per_page)
    return MemberDetail(MemberRow(m.id, m.nickname, m.unionid, m.entry_source, *stats.get(m.id, (0, 0))),
                        identities, orders)
