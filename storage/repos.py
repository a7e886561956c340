"""Repositories: every SQL statement the core needs, scoped by tenant.

State changes that must never happen twice (order moves, stock, payment status,
outbox claims) are single conditional UPDATEs whose rowcount says who won.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (BigInteger, Integer, Select, String, Table, Text, and_, any_, bindparam, case, delete, func, null,
                        or_, select, update)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import among, on_postgresql
from storage.models import (
    Address,
    CartItem,
    Category,
    Member,
    MemberIdentity,
    Order,
    OrderLine,
    OutboxEvent,
    Payment,
    PayNotification,
    Product,
    Refund,
    Sku,
    Tenant,
)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class AddressRow(NamedTuple):
    """An address as an order copies it."""

    id: int
    member_id: int
    name: str
    phone: str
    detail: str


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Select[Any]) -> list[Any]:
        return list((await self.session.scalars(stmt)).all())


class TenantRepo(_Repo):
    async def by_code(self, code: str) -> Tenant | None:
        return await self.session.scalar(select(Tenant).where(Tenant.code == code))

    async def get(self, tenant_id: int) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def auto_complete_days(self) -> dict[int, int | None]:
        """Every tenant's auto-confirm period (None: the deployment's default)."""
        rows = await self.session.execute(select(Tenant.id, Tenant.auto_complete_days))
        return {int(t): (int(d) if d is not None else None) for t, d in rows.all()}

    async def set_auto_complete_days(self, tenant_id: int, days: int | None) -> None:
        await self.session.execute(update(Tenant).where(Tenant.id == tenant_id).values(auto_complete_days=days)
                                   .execution_options(synchronize_session=False))

    async def max_order_fen(self, tenant_id: int) -> int | None:
        """The tenant's cap on one order's total (None: no such tenant)."""
        found = await self.session.scalar(select(Tenant.max_order_fen).where(Tenant.id == tenant_id))
        return int(found) if found is not None else None

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant


_MEMBERS, _IDENTITIES = cast(Table, Member.__table__), cast(Table, MemberIdentity.__table__)


# A crowd's first sights on PostgreSQL: statements of one shape whatever the crowd's size
# (the values travel as one array per column, unnest()ed by the server), so each is parsed,
# planned and prepared once per connection rather than once per batch size, and neither
# SQLAlchemy nor PostgreSQL handles a VALUES row (5 parameters) per newcomer.
_PG_ROWS_BY_IDENTITIES = (
    select(_IDENTITIES.c.external_id, _MEMBERS.c.id, _MEMBERS.c.tenant_id, _MEMBERS.c.nickname,
           _MEMBERS.c.unionid, _MEMBERS.c.entry_source)
    .join(_MEMBERS, _IDENTITIES.c.member_id == _MEMBERS.c.id)
    .where(_IDENTITIES.c.tenant_id == bindparam("tenant", type_=Integer()),
           _IDENTITIES.c.channel == bindparam("channel", type_=String()),
           _IDENTITIES.c.external_id == any_(bindparam("ids", type_=ARRAY(String()))))
)
_PG_NEW_SOURCES = func.unnest(bindparam("sources", type_=ARRAY(String()))).table_valued("src").render_derived()
_PG_INSERT_MEMBERS = (
    _MEMBERS.insert()
    .from_select(["tenant_id", "nickname", "unionid", "entry_source", "created_at"],
                 select(bindparam("tenant", type_=Integer()), bindparam("nickname", type_=String()), null(),
                        _PG_NEW_SOURCES.c.src, bindparam("now", type_=_MEMBERS.c.created_at.type))
                 .select_from(_PG_NEW_SOURCES),
                 include_defaults=False)
    .returning(_MEMBERS.c.id, _MEMBERS.c.entry_source)
)
_PG_NEW_PAIRS = func.unnest(bindparam("externals", type_=ARRAY(String())),
                            bindparam("members", type_=ARRAY(BigInteger()))).table_valued("ext", "mid").render_derived()
_PG_CLAIM_IDENTITIES = (
    pg_insert(_IDENTITIES)
    .from_select(["tenant_id", "member_id", "channel", "external_id", "created_at"],
                 select(bindparam("tenant", type_=Integer()), _PG_NEW_PAIRS.c.mid,
                        bindparam("channel", type_=String()), _PG_NEW_PAIRS.c.ext,
                        bindparam("now", type_=_IDENTITIES.c.created_at.type))
                 .select_from(_PG_NEW_PAIRS)
                 .order_by(_PG_NEW_PAIRS.c.ext),  # one lock order for every worker
                 include_defaults=False)
    .on_conflict_do_nothing(index_elements=["tenant_id", "channel", "external_id"])
    .returning(_IDENTITIES.c.external_id)
)


def _id_in(session: AsyncSession, col: Any, ids: Sequence[int]) -> Any:
    """`col IN ids`; on PostgreSQL `col = ANY(array)`, one statement text whatever the
    number of ids (an IN list is a statement of its own per length, each prepared anew)."""
    if on_postgresql(session):
        return col == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger())))
    return col.in_(list(ids))


_OUTBOX = cast(Table, OutboxEvent.__table__)
# The member behind a channel identity, as plain columns (no ORM row): built once, and
# plain Core, so a lookup costs neither expression building nor the ORM's loading.
_VIEW_BY_IDENTITY = (
    select(_MEMBERS.c.id, _MEMBERS.c.tenant_id, _MEMBERS.c.nickname, _MEMBERS.c.unionid,
           _MEMBERS.c.entry_source)
    .join(_IDENTITIES, _IDENTITIES.c.member_id == _MEMBERS.c.id)
    .where(_IDENTITIES.c.tenant_id == bindparam("tenant"), _IDENTITIES.c.channel == bindparam("channel"),
           _IDENTITIES.c.external_id == bindparam("external_id"))
)


class MemberRow(NamedTuple):
    id: int
    tenant_id: int
    nickname: str
    unionid: str | None
    entry_source: str


class MemberRepo(_Repo):
    async def row_by_identity(self, tenant: int, channel: str, external_id: str) -> MemberRow | None:
        """The member behind a channel identity as plain columns (one Core SELECT)."""
        row = (await self.session.execute(
            _VIEW_BY_IDENTITY, {"tenant": tenant, "channel": channel, "external_id": external_id})).first()
        return MemberRow(*row) if row is not None else None

    async def insert(self, tenant: int, *, nickname: str, unionid: str | None, entry_source: str,
                     now: datetime) -> int:
        """A new member row (one INSERT … RETURNING); its id."""
        stmt = (_MEMBERS.insert()
                .values(tenant_id=tenant, nickname=nickname, unionid=unionid, entry_source=entry_source,
                        created_at=now)
                .returning(_MEMBERS.c.id))
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim_identity(self, tenant: int, member_id: int, channel: str, external_id: str,
                             now: datetime) -> bool:
        """Give the member this channel identity unless someone has it: one INSERT … ON
        CONFLICT DO NOTHING on the unique (tenant, channel, external id). False when the
        identity was taken first (on PostgreSQL a concurrent insert of it waits for the other
        transaction and does nothing once that one commits); nothing fails, so the
        transaction goes on."""
        bind = self.session.bind
        insert = pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert
        stmt = (insert(_IDENTITIES)
                .values(tenant_id=tenant, member_id=member_id, channel=channel, external_id=external_id,
                        created_at=now)
                .on_conflict_do_nothing(index_elements=["tenant_id", "channel", "external_id"])
                .returning(_IDENTITIES.c.id))
        return (await self.session.execute(stmt)).first() is not None

    # many at once (social_mall/members/desk.py: a crowd of first messages in one transaction)
    async def rows_by_identities(self, tenant: int, channel: str,
                                 external_ids: Sequence[str]) -> dict[str, MemberRow]:
        """External id → its member, for those of `external_ids` on `channel` that have one."""
        if on_postgresql(self.session):
            found = await self.session.execute(_PG_ROWS_BY_IDENTITIES,
                                               {"tenant": tenant, "channel": channel, "ids": list(external_ids)})
            return {r[0]: MemberRow(*r[1:]) for r in found.all()}
        stmt = (
            select(_IDENTITIES.c.external_id, _MEMBERS.c.id, _MEMBERS.c.tenant_id, _MEMBERS.c.nickname,
                   _MEMBERS.c.unionid, _MEMBERS.c.entry_source)
            .join(_MEMBERS, _IDENTITIES.c.member_id == _MEMBERS.c.id)
            .where(_IDENTITIES.c.tenant_id == tenant, _IDENTITIES.c.channel == channel,
                   _IDENTITIES.c.external_id.in_(bindparam("ids", expanding=True)))
        )
        rows = (await self.session.execute(stmt, {"ids": list(external_ids)})).all()
        return {r[0]: MemberRow(*r[1:]) for r in rows}

    async def insert_many(self, tenant: int, entry_sources: Sequence[str], now: datetime) -> list[int]:
        """New member rows (no nickname, no unionid), one per entry source, in one INSERT …
        RETURNING; their ids, each in the place of a row with its entry source. The rows
        differ in nothing else, so which of two alike gets which id doesn't matter: no
        ordering of RETURNING is asked for (SQLite can't promise one, and SQLAlchemy would
        then insert row by row)."""
        ids: dict[str, list[int]] = {}
        if on_postgresql(self.session):
            found = await self.session.execute(
                _PG_INSERT_MEMBERS, {"tenant": tenant, "nickname": "", "sources": list(entry_sources), "now": now})
            for member_id, src in found.all():
                ids.setdefault(src, []).append(int(member_id))
            return [ids[src].pop() for src in entry_sources]
        stmt = _MEMBERS.insert().returning(_MEMBERS.c.id, _MEMBERS.c.entry_source)
        rows = [{"tenant_id": tenant, "nickname": "", "unionid": None, "entry_source": src, "created_at": now}
                for src in entry_sources]
        for member_id, src in (await self.session.execute(stmt, rows)).all():
            ids.setdefault(src, []).append(int(member_id))
        return [ids[src].pop() for src in entry_sources]

    async def claim_identities(self, tenant: int, channel: str, pairs: Sequence[tuple[str, int]],
                               now: datetime) -> set[str]:
        """`claim_identity` for many (external id, member id) pairs in one INSERT … ON
        CONFLICT DO NOTHING; the external ids this one claimed. Rows go in external-id order,
        so two workers claiming overlapping crowds take the unique index's locks in one order."""
        if on_postgresql(self.session):
            ordered = sorted(pairs)
            found = await self.session.execute(_PG_CLAIM_IDENTITIES, {
                "tenant": tenant, "channel": channel, "now": now,
                "externals": [e for e, _ in ordered], "members": [m for _, m in ordered]})
            return {r[0] for r in found.all()}
        stmt = (sqlite_insert(_IDENTITIES)
                .on_conflict_do_nothing(index_elements=["tenant_id", "channel", "external_id"])
                .returning(_IDENTITIES.c.external_id))
        rows = [{"tenant_id": tenant, "member_id": m, "channel": channel, "external_id": e, "created_at": now}
                for e, m in sorted(pairs)]
        return {r[0] for r in (await self.session.execute(stmt, rows)).all()}

    async def delete_new_many(self, tenant: int, member_ids: Sequence[int]) -> None:
        """`delete_new` for many rows."""
        if member_ids:
            await self.session.execute(
                delete(_MEMBERS).where(_MEMBERS.c.tenant_id == tenant, _MEMBERS.c.id.in_(list(member_ids))))

    async def delete_new(self, tenant: int, member_id: int) -> None:
        """Take back a member row inserted in this transaction that nothing refers to (its
        identity went to a concurrent first message)."""
        await self.session.execute(
            delete(_MEMBERS).where(_MEMBERS.c.tenant_id == tenant, _MEMBERS.c.id == member_id))

    async def by_identity(self, tenant: int, channel: str, external_id: str) -> Member | None:
        stmt = (
            select(Member)
            .join(MemberIdentity, MemberIdentity.member_id == Member.id)
            .where(
                MemberIdentity.tenant_id == tenant,
                MemberIdentity.channel == channel,
                MemberIdentity.external_id == external_id,
            )
        )
        return await self.session.scalar(stmt)

    async def by_unionid(self, tenant: int, unionid: str) -> Member | None:
        stmt = select(Member).where(Member.tenant_id == tenant, Member.unionid == unionid)
        return await self.session.scalar(stmt.limit(1))

    async def get(self, tenant: int, member_id: int) -> Member | None:
        stmt = select(Member).where(Member.tenant_id == tenant, Member.id == member_id)
        return await self.session.scalar(stmt)

    async def add(self, member: Member) -> Member:
        self.session.add(member)
        await self.session.flush()
        return member

    async def add_identity(self, tenant: int, member_id: int, channel: str, external_id: str) -> None:
        self.session.add(
            MemberIdentity(
                tenant_id=tenant, member_id=member_id, channel=channel, external_id=external_id
            )
        )
        await self.session.flush()

    async def note_identity_account(self, tenant: int, channel: str, external_id: str, account: int) -> bool:
        """Remember the channel account an identity belongs to, once (while it names none)."""
        stmt = update(MemberIdentity).where(
            MemberIdentity.tenant_id == tenant, MemberIdentity.channel == channel,
            MemberIdentity.external_id == external_id, MemberIdentity.account_id == 0,
        ).values(account_id=account)
        return _rowcount(await self.session.execute(stmt)) == 1

    async def identities(self, tenant: int, member_id: int) -> list[MemberIdentity]:
        stmt = select(MemberIdentity).where(
            MemberIdentity.tenant_id == tenant, MemberIdentity.member_id == member_id
        ).order_by(MemberIdentity.id)
        return await self._all(stmt)

    # birthday
    async def set_birthday(
        self, tenant: int, member_id: int, month: int | None, day: int | None, year: int | None, *,
        only_if_unset: bool,
    ) -> bool:
        """One UPDATE; with `only_if_unset`, it wins only while no birthday is set (the
        member's own entry: two quick messages can't both set it)."""
        stmt = update(Member).where(Member.tenant_id == tenant, Member.id == member_id)
        if only_if_unset:
            stmt = stmt.where(Member.birth_month.is_(None))
        stmt = stmt.values(birth_month=month, birth_day=day, birth_year=year)
        return _rowcount(await self.session.execute(stmt.execution_options(synchronize_session=False))) == 1

    async def birthday(self, tenant: int, member_id: int) -> tuple[int, int, int | None] | None:
        stmt = select(Member.birth_month, Member.birth_day, Member.birth_year).where(
            Member.tenant_id == tenant, Member.id == member_id)
        row = (await self.session.execute(stmt)).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return int(row[0]), int(row[1]), int(row[2]) if row[2] is not None else None

    async def with_birthday(
        self, tenant: int, days: Sequence[tuple[int, int]], *, after_id: int, limit: int
    ) -> list[int]:
        """Ids of members whose birthday is one of `days` ((month, day) pairs), by id."""
        if not days:
            return []
        stmt = (select(Member.id)
                .where(Member.tenant_id == tenant, Member.id > after_id,
                       or_(*(and_(Member.birth_month == m, Member.birth_day == d) for m, d in days)))
                .order_by(Member.id).limit(limit))
        return [int(i) for i in (await self.session.scalars(stmt)).all()]

    # addresses
    async def addresses(self, tenant: int, member_id: int) -> list[Address]:
        stmt = (
            select(Address)
            .where(Address.tenant_id == tenant, Address.member_id == member_id)
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
        return await self._all(stmt)

    async def addresses_of(self, tenant: int, member_ids: Sequence[int]) -> dict[int, list[AddressRow]]:
        """Several members' address books (each ordered as `addresses`) in one query, as
        plain rows: a batch reads hundreds and only copies them onto orders."""
        stmt = (
            select(Address.id, Address.member_id, Address.name, Address.phone, Address.detail)
            .where(Address.tenant_id == tenant, among(self.session, Address.member_id, member_ids))
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
        books: dict[int, list[AddressRow]] = {m: [] for m in member_ids}
        for row in (await self.session.execute(stmt)).all():
            books[row.member_id].append(AddressRow(row.id, row.member_id, row.name, row.phone, row.detail))
        return books

    async def address(self, tenant: int, member_id: int, address_id: int) -> Address | None:
        stmt = select(Address).where(
            Address.tenant_id == tenant, Address.member_id == member_id, Address.id == address_id
        )
        return await self.session.scalar(stmt)

    async def add_address(self, address: Address) -> Address:
        if address.is_default:
            await self.session.execute(
                update(Address)
                .where(Address.tenant_id == address.tenant_id, Address.member_id == address.member_id)
                .values(is_default=False)
            )
        self.session.add(address)
        await self.session.flush()
        return address

    async def make_default_address(self, tenant: int, member_id: int, address_id: int) -> None:
        """`address_id` the member's only default address; rows already right are not touched."""
        mine = Address.id == address_id
        await self.session.execute(
            update(Address)
            .where(Address.tenant_id == tenant, Address.member_id == member_id,
                   or_(and_(mine, Address.is_default.is_(False)), and_(~mine, Address.is_default.is_(True))))
            .values(is_default=case((mine, True), else_=False))
        )

    # cart
    async def cart(self, tenant: int, member_id: int) -> list[tuple[CartItem, Sku, Product]]:
        stmt = (
            select(CartItem, Sku, Product)
            .join(Sku, Sku.id == CartItem.sku_id)
            .join(Product, Product.id == Sku.product_id)
            .where(CartItem.tenant_id == tenant, CartItem.member_id == member_id)
            .order_by(CartItem.id)
        )
        return [(c, s, p) for c, s, p in (await self.session.execute(stmt)).all()]

    async def cart_item(self, tenant: int, member_id: int, sku_id: int) -> CartItem | None:
        stmt = select(CartItem).where(
            CartItem.tenant_id == tenant, CartItem.member_id == member_id, CartItem.sku_id == sku_id
        )
        return await self.session.scalar(stmt)

    async def put_cart_item(self, tenant: int, member_id: int, sku_id: int, qty: int) -> None:
        item = await self.cart_item(tenant, member_id, sku_id)
        if item is None:
            self.session.add(CartItem(tenant_id=tenant, member_id=member_id, sku_id=sku_id, qty=qty))
        else:
            item.qty = qty
        await self.session.flush()

    async def remove_cart_items(self, tenant: int, member_id: int, sku_ids: Sequence[int] | None) -> int:
        stmt = delete(CartItem).where(CartItem.tenant_id == tenant, CartItem.member_id == member_id)
        if sku_ids is not None:
            stmt = stmt.where(CartItem.sku_id.in_(sku_ids))
        return _rowcount(await self.session.execute(stmt))


class CatalogRepo(_Repo):
    async def categories(self, tenant: int) -> list[Category]:
        stmt = select(Category).where(Category.tenant_id == tenant).order_by(Category.sort, Category.id)
        return await self._all(stmt)

    async def category(self, tenant: int, category_id: int) -> Category | None:
        stmt = select(Category).where(Category.tenant_id == tenant, Category.id == category_id)
        return await self.session.scalar(stmt)

    def _shelf(self, tenant: int) -> Select[Any]:
        return select(Product).where(Product.tenant_id == tenant, Product.on_shelf.is_(True))

    async def products(
        self, tenant: int, *, category_id: int | None, keyword: str | None, offset: int, limit: int,
        exclude: Collection[int] = (),
    ) -> tuple[list[Product], int]:
        stmt = self._shelf(tenant)
        if exclude:
            stmt = stmt.where(Product.id.not_in(sorted(exclude)))
        if category_id is not None:
            stmt = stmt.where(Product.category_id == category_id)
        if keyword:
            like = f"%{keyword.replace('%', '').replace('_', '')}%"
            stmt = stmt.where(or_(Product.title.like(like), Product.subtitle.like(like)))
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        page = stmt.order_by(Product.sort, Product.id).offset(offset).limit(limit)
        return await self._all(page), int(total or 0)

    async def product(self, tenant: int, product_id: int) -> Product | None:
        stmt = select(Product).where(Product.tenant_id == tenant, Product.id == product_id)
        return await self.session.scalar(stmt)

    async def skus(self, tenant: int, product_id: int) -> list[Sku]:
        stmt = select(Sku).where(Sku.tenant_id == tenant, Sku.product_id == product_id).order_by(Sku.id)
        return await self._all(stmt)

    async def skus_by_ids(self, tenant: int, ids: Sequence[int]) -> list[tuple[Sku, Product]]:
        stmt = (
            select(Sku, Product)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.tenant_id == tenant, Sku.id.in_(ids))
        )
        return [(s, p) for s, p in (await self.session.execute(stmt)).all()]

    async def shelf_by_ids(self, tenant: int, product_ids: Sequence[int]) -> list[Product]:
        """These products, those still on the shelf (any order: the caller orders them)."""
        if not product_ids:
            return []
        return await self._all(self._shelf(tenant).where(Product.id.in_(product_ids)))

    async def shelf_skus(self, tenant: int, product_ids: Sequence[int]) -> list[Sku]:
        """The SKUs on sale of these products (one query for a whole list page)."""
        if not product_ids:
            return []
        stmt = (select(Sku).where(Sku.tenant_id == tenant, Sku.product_id.in_(product_ids), Sku.on_shelf.is_(True))
                .order_by(Sku.id))
        return await self._all(stmt)

    async def min_prices(self, tenant: int, product_ids: Sequence[int]) -> dict[int, int]:
        stmt = (
            select(Sku.product_id, func.min(Sku.price_fen))
            .where(Sku.tenant_id == tenant, Sku.product_id.in_(product_ids), Sku.on_shelf.is_(True))
            .group_by(Sku.product_id)
        )
        return {pid: int(p) for pid, p in (await self.session.execute(stmt)).all()}

    async def reserve(self, tenant: int, sku_id: int, qty: int) -> bool:
        """Take `qty` off the shelf if that many are left: one conditional UPDATE."""
        stmt = (
            update(Sku)
            .where(Sku.tenant_id == tenant, Sku.id == sku_id, Sku.stock >= qty, Sku.on_shelf.is_(True))
            .values(stock=Sku.stock - qty)
            .execution_options(stock_only=True)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def restock(self, tenant: int, sku_id: int, qty: int) -> None:
        stmt = (update(Sku).where(Sku.tenant_id == tenant, Sku.id == sku_id).values(stock=Sku.stock + qty)
                .execution_options(stock_only=True))
        await self.session.execute(stmt)

    async def stock(self, tenant: int, sku_id: int) -> int:
        return int(await self.session.scalar(select(Sku.stock).where(Sku.tenant_id == tenant, Sku.id == sku_id)) or 0)

    async def add(self, *rows: Category | Product | Sku) -> None:
        self.session.add_all(rows)
        await self.session.flush()


class OrderRepo(_Repo):
    async def add(self, order: Order, lines: Sequence[OrderLine]) -> Order:
        self.session.add(order)
        await self.session.flush()
        for line in lines:
            line.order_id = order.id
        self.session.add_all(lines)
        await self.session.flush()
        return order

    async def add_many(self, placed: Sequence[tuple[Order, Sequence[OrderLine]]]) -> None:
        """Several orders in two statements (one multi-row INSERT per table)."""
        self.session.add_all([order for order, _ in placed])
        await self.session.flush()
        for order, lines in placed:
            for line in lines:
                line.order_id = order.id
            self.session.add_all(lines)
        await self.session.flush()

    async def get(self, tenant: int, order_id: int, *, for_update: bool = False) -> Order | None:
        """The order, fresh; `for_update` locks its row until the transaction ends (PostgreSQL;
        SQLite has one writer at a time anyway), so money moves on one order go one at a time."""
        stmt = select(Order).where(Order.tenant_id == tenant, Order.id == order_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def by_no(self, tenant: int, order_no: str) -> Order | None:
        stmt = select(Order).where(Order.tenant_id == tenant, Order.order_no == order_no)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def lines(self, tenant: int, order_id: int) -> list[OrderLine]:
        stmt = (
            select(OrderLine)
            .where(OrderLine.tenant_id == tenant, OrderLine.order_id == order_id)
            .order_by(OrderLine.id)
        )
        return await self._all(stmt)

    async def for_member(self, tenant: int, member_id: int, offset: int, limit: int) -> tuple[list[Order], int]:
        base = select(Order).where(Order.tenant_id == tenant, Order.member_id == member_id)
        total = await self.session.scalar(select(func.count()).select_from(base.subquery()))
        page = base.order_by(Order.id.desc()).offset(offset).limit(limit)
        return await self._all(page), int(total or 0)

    async def take_back(self, tenant: int, line_id: int, qty: int) -> bool:
        """Count `qty` more units of an order line as put back into stock, if that keeps the
        line's count within its qty. True for the one caller that may restock them."""
        stmt = (
            update(OrderLine)
            .where(OrderLine.tenant_id == tenant, OrderLine.id == line_id,
                   OrderLine.restocked_qty + qty <= OrderLine.qty)
            .values(restocked_qty=OrderLine.restocked_qty + qty)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def move(self, tenant: int, order_id: int, src: str, dst: str, **values: object) -> bool:
        """Apply one transition if the order is still in `src`. True for the one winner."""
        stmt = (
            update(Order)
            .where(Order.tenant_id == tenant, Order.id == order_id, Order.status == src)
            .values(status=dst, **values)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def ship_to(self, tenant: int, order_id: int, name: str, phone: str, address: str) -> bool:
        """Copy another address onto the order if it is still unpaid. True when it was."""
        stmt = (
            update(Order)
            .where(Order.tenant_id == tenant, Order.id == order_id, Order.status == "pending_payment")
            .values(ship_name=name, ship_phone=phone, ship_address=address)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def add_refunded(self, tenant: int, order_id: int, amount_fen: int) -> bool:
        """Count a successful refund; never lets refunded exceed paid."""
        stmt = (
            update(Order)
            .where(Order.tenant_id == tenant, Order.id == order_id,
                   Order.refunded_fen + amount_fen <= Order.paid_fen)
            .values(refunded_fen=Order.refunded_fen + amount_fen)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def expired_unpaid(self, now: datetime, limit: int) -> list[tuple[int, int]]:
        stmt = (
            select(Order.tenant_id, Order.id)
            .where(Order.status == "pending_payment", Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(limit)
        )
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def shipped_before(self, cutoff: datetime, limit: int, *, tenant: int | None = None,
                             unreminded: bool = False) -> list[tuple[int, int]]:
        """Shipped orders shipped at or before `cutoff` (of one tenant; only those not yet
        told they will be confirmed)."""
        stmt = select(Order.tenant_id, Order.id).where(Order.status == "shipped", Order.shipped_at <= cutoff)
        if tenant is not None:
            stmt = stmt.where(Order.tenant_id == tenant)
        if unreminded:
            stmt = stmt.where(Order.receipt_reminded_at.is_(None))
        stmt = stmt.order_by(Order.shipped_at).limit(limit)
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def mark_receipt_reminded(self, tenant: int, order_id: int, now: datetime) -> bool:
        """Once per order (a conditional UPDATE): True for the caller that marked it."""
        stmt = (update(Order).where(Order.tenant_id == tenant, Order.id == order_id, Order.status == "shipped",
                                    Order.receipt_reminded_at.is_(None))
                .values(receipt_reminded_at=now).execution_options(synchronize_session=False))
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def count_by_status(self, tenant: int) -> dict[str, int]:
        stmt = select(Order.status, func.count()).where(Order.tenant_id == tenant).group_by(Order.status)
        return {s: int(n) for s, n in (await self.session.execute(stmt)).all()}


class PaymentRepo(_Repo):
    """Payments and refunds. Every lookup by a gateway's number is scoped by tenant: a
    number named in a notify, a query answer or a bill only ever finds that tenant's row."""

    async def by_out_trade_no(self, tenant: int, out_trade_no: str) -> Payment | None:
        stmt = select(Payment).where(Payment.tenant_id == tenant, Payment.out_trade_no == out_trade_no)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def for_order(self, tenant: int, order_id: int) -> Payment | None:
        stmt = select(Payment).where(Payment.tenant_id == tenant, Payment.order_id == order_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def merchant_mchid(self, tenant: int, order_id: int) -> str | None:
        """The mch_id of the merchant that takes this order's payment: the merchant the order
        names, else the tenant's default; "" when the merchant it names is gone; None when the
        tenant has no merchant on file (the sandbox, whose one mchid is the tenant's)."""
        from storage.pay_models import TenantPayAccount

        named = await self.session.scalar(select(Order.pay_account_id).where(
            Order.tenant_id == tenant, Order.id == order_id))
        q = select(TenantPayAccount.mch_id).where(TenantPayAccount.tenant_id == tenant)
        if named:
            return await self.session.scalar(q.where(TenantPayAccount.id == named)) or ""
        return await self.session.scalar(
            q.order_by(TenantPayAccount.is_default.desc(), TenantPayAccount.id).limit(1))

    async def open(self, tenant: int, order_id: int, out_trade_no: str, *, gateway: str,
                   amount_fen: int) -> Payment | None:
        """The order's payment, created unless it exists: INSERT … ON CONFLICT DO NOTHING on
        the payment number, then read. Parallel openers (two 确认支付 clicks, two workers)
        all get the one row; none fails on the unique number. None only if the number
        belongs to a row of another order."""
        existing = await self.for_order(tenant, order_id)
        if existing is not None:
            return existing
        bind = self.session.bind
        insert = pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(Payment)
            .values(tenant_id=tenant, order_id=order_id, out_trade_no=out_trade_no, gateway=gateway,
                    amount_fen=amount_fen, status="created")
            .on_conflict_do_nothing(index_elements=[Payment.out_trade_no])
        )
        return await self.for_order(tenant, order_id)

    async def settle(self, payment_id: int, src: str, dst: str, **values: object) -> bool:
        stmt = update(Payment).where(Payment.id == payment_id, Payment.status == src).values(status=dst, **values)
        return _rowcount(await self.session.execute(stmt)) == 1

    def record_notify(self, row: PayNotification) -> None:
        self.session.add(row)

    async def notifications(self, out_trade_no: str) -> list[PayNotification]:
        stmt = select(PayNotification).where(PayNotification.out_trade_no == out_trade_no).order_by(PayNotification.id)
        return await self._all(stmt)

    async def add_refund(self, refund: Refund) -> Refund:
        self.session.add(refund)
        await self.session.flush()
        return refund

    async def refunds_for(self, tenant: int, order_id: int) -> list[Refund]:
        stmt = select(Refund).where(Refund.tenant_id == tenant, Refund.order_id == order_id).order_by(Refund.id)
        return await self._all(stmt.execution_options(populate_existing=True))

    async def refund_by_no(self, tenant: int, out_refund_no: str) -> Refund | None:
        stmt = select(Refund).where(Refund.tenant_id == tenant, Refund.out_refund_no == out_refund_no)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def settle_refund(self, refund_id: int, src: str, dst: str, **values: object) -> bool:
        stmt = update(Refund).where(Refund.id == refund_id, Refund.status == src).values(status=dst, **values)
        return _rowcount(await self.session.execute(stmt)) == 1


# built once: the outbox runs it after every commit that emitted events
_DUE = (
    select(_OUTBOX.c.id)
    .where(_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= bindparam("now"),
           or_(_OUTBOX.c.locked_until.is_(None), _OUTBOX.c.locked_until < bindparam("now")))
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("limit"))
)


# a subscriber's own row, copied from the fan-out row it was owed by (OutboxRepo.split)
_SPLIT = _OUTBOX.insert().from_select(
    ["tenant_id", "topic", "event_uid", "subscriber", "payload", "status", "attempts", "next_attempt_at",
     "locked_until", "last_error", "created_at", "done_at", "origin_id"],
    select(_OUTBOX.c.tenant_id, _OUTBOX.c.topic, _OUTBOX.c.event_uid,
           bindparam("subscriber", type_=String()), _OUTBOX.c.payload, bindparam("status", type_=String()),
           bindparam("attempts", type_=Integer()), bindparam("next_at", type_=_OUTBOX.c.next_attempt_at.type),
           null(), bindparam("error", type_=Text()), _OUTBOX.c.created_at, null(), _OUTBOX.c.id)
    .where(_OUTBOX.c.id == bindparam("row")),
    include_defaults=False,
)


class OutboxRow(NamedTuple):
    id: int
    tenant_id: int
    topic: str
    subscriber: str
    payload: dict[str, Any]
    attempts: int
    origin_id: int | None = None


class Owed(NamedTuple):
    """A subscriber still owed an event of a fan-out row after its delivery: `error` (it
    failed; `dead` when out of attempts) or none (it wasn't reached: due again at once)."""

    subscriber: str
    error: str
    dead: bool


class OutboxRepo(_Repo):
    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Rows pending and due by `now` (leased ones too), and the oldest one's due time."""
        t = _OUTBOX
        row = (await self.session.execute(
            select(func.count(), func.min(t.c.next_attempt_at))
            .where(t.c.status == "pending", t.c.next_attempt_at <= now))).one()
        return int(row[0]), row[1]

    async def due(self, now: datetime, limit: int) -> list[int]:
        return [int(i) for i in (await self.session.scalars(_DUE, {"now": now, "limit": limit})).all()]

    async def claim(self, event_id: int, now: datetime, lease: timedelta) -> OutboxEvent | None:
        """Lease one row for this worker; a second worker's claim finds it taken."""
        stmt = (
            update(OutboxEvent)
            .where(
                OutboxEvent.id == event_id,
                OutboxEvent.status == "pending",
                or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until < now),
            )
            .values(locked_until=now + lease, attempts=OutboxEvent.attempts + 1)
        )
        if _rowcount(await self.session.execute(stmt)) != 1:
            return None
        return await self.session.scalar(
            select(OutboxEvent).where(OutboxEvent.id == event_id).execution_options(populate_existing=True)
        )

    async def claim_many(self, event_ids: Sequence[int], now: datetime, lease: timedelta) -> list[OutboxRow]:
        """`claim` for many rows in one conditional UPDATE … RETURNING: the rows this worker
        leased (another worker's claim of the same rows finds them taken), by id."""
        if not event_ids:
            return []
        t = _OUTBOX
        stmt = (
            update(t)
            .where(_id_in(self.session, t.c.id, event_ids), t.c.status == "pending",
                   or_(t.c.locked_until.is_(None), t.c.locked_until < now))
            .values(locked_until=now + lease, attempts=t.c.attempts + 1)
            .returning(t.c.id, t.c.tenant_id, t.c.topic, t.c.subscriber, t.c.payload, t.c.attempts,
                       t.c.origin_id)
        )
        rows = [OutboxRow(*r) for r in (await self.session.execute(stmt)).all()]
        return sorted(rows, key=lambda r: r.id)

    async def release(self, event_ids: Sequence[int]) -> None:
        """Give leased rows back undelivered (due again at once, the claim's attempt undone)."""
        if event_ids:
            t = _OUTBOX
            await self.session.execute(
                update(t).where(_id_in(self.session, t.c.id, event_ids), t.c.status == "pending")
                .values(locked_until=None, attempts=t.c.attempts - 1))

    async def finish_many(self, event_ids: Sequence[int], now: datetime) -> None:
        """`finish` for many rows in one UPDATE."""
        if event_ids:
            t = _OUTBOX
            await self.session.execute(
                update(t).where(_id_in(self.session, t.c.id, event_ids))
                .values(status="done", done_at=now, locked_until=None, last_error=""))

    async def split(self, row: OutboxRow, owed: Sequence[Owed], now: datetime, retry_at: datetime) -> None:
        """A fan-out row delivered to some of its subscribers and not others: a row of its own
        for each one still owed (a failure due at `retry_at`, its attempt counted; one not
        reached due at once, its attempt not), copied from the fan-out row in the database
        (event, payload, time) with it as origin. The fan-out row is then finished by the caller."""
        for o in owed:
            await self.session.execute(_SPLIT, {
                "row": row.id, "subscriber": o.subscriber, "status": "dead" if o.dead else "pending",
                "attempts": row.attempts if o.error else row.attempts - 1,
                "next_at": retry_at if o.error else now, "error": o.error[:2000]})

    async def finish(self, event_id: int, now: datetime) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(status="done", done_at=now, locked_until=None, last_error="")
        )

    async def retry_later(self, event_id: int, error: str, at: datetime, *, dead: bool) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(
                status="dead" if dead else "pending",
                next_attempt_at=at,
                locked_until=None,
                last_error=error[:2000],
            )
        )

    async def count(self, topic: str, *, status: str | None = None) -> int:
        """How many events of `topic` were emitted (an event has one row per subscriber)."""
        stmt = select(func.count(func.distinct(OutboxEvent.event_uid))).where(OutboxEvent.topic == topic)
        if status:
            stmt = stmt.where(OutboxEvent.status == status)
        return int(await self.session.scalar(stmt) or 0)

    async def pending_count(self) -> int:
        stmt = select(func.count()).select_from(OutboxEvent).where(and_(OutboxEvent.status == "pending"))
        return int(await self.session.scalar(stmt) or 0)
