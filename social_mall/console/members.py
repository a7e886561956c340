"""Members for admins: search (nickname, id, an openid or unionid), identities, orders,
the birthday (admins may set or correct it; the member can set it only once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from social_mall.console.auth import AdminView
from social_mall.console.errors import InvalidInputError
from social_mall.errors import InvalidBirthdayError, NotFoundError
from social_mall.members.rules import Birthday, parse_birthday
from social_mall.members.service import change_birthday, member_birthday
from social_mall.orders.service import list_orders
from social_mall.parsing import parse_id
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
    birthday: Birthday | None = None


async def search_members(uow: UnitOfWork, tenant: int, query: str, *, page: int, per_page: int,
                         tag_ids: Sequence[int] = ()) -> Page[MemberRow]:
    """Members matching `query` (nickname, id, openid, unionid) and holding every tag in `tag_ids`."""
    repo = ConsoleRepo(uow.session)
    q = query[:64].strip()
    rows, total = await repo.members(tenant, query=q, member_id=parse_id(q), tag_ids=tag_ids,
                                     offset=(page - 1) * per_page, limit=per_page)
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
                        identities, orders, await member_birthday(uow, tenant, m.id))


async def set_member_birthday(uow: UnitOfWork, tenant: int, admin: AdminView, member_id: int, text: str, *,
                              today: date) -> Birthday | None:
    """「05-01」 or 「1990-05-01」; empty clears it. Audited."""
    typed = text.strip()[:20]
    b = None
    if typed:
        try:
            b = parse_birthday(typed, today)
        except InvalidBirthdayError:
            raise InvalidInputError("birthday", "birthday_format") from None
    if await uow.members.get(tenant, member_id) is None:
        raise NotFoundError("member", member_id)
    await change_birthday(uow, tenant, member_id, b, actor=admin.actor)
    return b
