"""The module's SQL (the one place in the package that builds queries). Constructed from
a unit of work's session: `LocalRepo(uow.session)`. State changes are conditional
UPDATEs whose rowcount says who won; counters move by atomic increments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from social_mall_local.models import (
    AddressPoint, Attempt, BindCode, Booking, LocalSettings, MemberStore, OrderFulfilment, ProductRule, Resource,
    ResourceCell, ResourceService, ServiceSpec, ShipTemplate, SlotTemplate, SlotUse, Staff, Store, Ticket,
    Verification, Zone,
)
from storage.models import Order, Product


def rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class LocalRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # -- stores ---------------------------------------------------------------------------------

    async def store(self, tenant: int, store_id: int) -> Store | None:
        return await self.session.scalar(select(Store).where(Store.tenant_id == tenant, Store.id == store_id))

    async def stores(self, tenant: int, ids: Sequence[int]) -> list[Store]:
        if not ids:
            return []
        return list(await self.session.scalars(select(Store).where(Store.tenant_id == tenant, Store.id.in_(list(ids)))))

    async def stores_in_box(self, tenant: int, box: tuple[int, int, int, int]) -> list[Any]:
        """The switched-on stores inside the box (ix_local_stores_geo: tenant, a latitude
        range, longitude checked in the index) as plain rows with Store's columns (not ORM
        objects: a lookup reads dozens and keeps five)."""
        lat_min, lat_max, lng_min, lng_max = box
        stmt = select(*Store.__table__.columns).where(
            Store.tenant_id == tenant, Store.lat_e6.between(lat_min, lat_max), Store.lng_e6.between(lng_min, lng_max),
            Store.active.is_(True))
        return list((await self.session.execute(stmt)).all())

    async def count_stores(self, tenant: int) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(Store).where(Store.tenant_id == tenant)) or 0)

    async def store_page(self, tenant: int, offset: int, limit: int) -> list[Store]:
        return list(await self.session.scalars(
            select(Store).where(Store.tenant_id == tenant).order_by(Store.id).offset(offset).limit(limit)))

    async def add(self, row: Any) -> Any:
        self.session.add(row)
        await self.session.flush()
        return row

    async def add_all(self, rows: Sequence[Any]) -> None:
        """Rows in one flush (SQLAlchemy batches their INSERTs)."""
        self.session.add_all(rows)
        await self.session.flush()

    async def set_member_store(self, tenant: int, member: int, store_id: int, now: datetime) -> None:
        moved = await self.session.execute(
            update(MemberStore).where(MemberStore.tenant_id == tenant, MemberStore.member_id == member)
            .values(store_id=store_id, updated_at=now))
        if rowcount(moved) == 0:
            await self.add(MemberStore(tenant_id=tenant, member_id=member, store_id=store_id, updated_at=now))

    async def member_store(self, tenant: int, member: int) -> Store | None:
        return await self.session.scalar(
            select(Store).join(MemberStore, MemberStore.store_id == Store.id)
            .where(MemberStore.tenant_id == tenant, MemberStore.member_id == member, Store.active.is_(True)))

    # -- product rules ---------------------------------------------------------------------------

    async def product_rules(self, tenant: int, product_ids: Sequence[int]) -> dict[int, ProductRule]:
        if not product_ids:
            return {}
        rows = await self.session.scalars(select(ProductRule).where(
            ProductRule.tenant_id == tenant, ProductRule.product_id.in_(list(set(product_ids)))))
        return {r.product_id: r for r in rows}

    async def product_rule(self, tenant: int, product_id: int) -> ProductRule | None:
        return await self.session.scalar(select(ProductRule).where(
            ProductRule.tenant_id == tenant, ProductRule.product_id == product_id))

    async def rule_page(self, tenant: int, offset: int, limit: int) -> list[tuple[Product, ProductRule | None]]:
        stmt = (select(Product, ProductRule)
                .outerjoin(ProductRule, (ProductRule.product_id == Product.id) & (ProductRule.tenant_id == tenant))
                .where(Product.tenant_id == tenant).order_by(Product.id).offset(offset).limit(limit))
        return [(p, r) for p, r in (await self.session.execute(stmt)).all()]

    async def count_products(self, tenant: int) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(Product).where(Product.tenant_id == tenant)) or 0)

    async def product(self, tenant: int, product_id: int) -> Product | None:
        return await self.session.scalar(select(Product).where(Product.tenant_id == tenant, Product.id == product_id))

    # -- attempts (guessing limits) ------------------------------------------------------------

    async def attempts(self, tenant: int, subject: str, window: int) -> int:
        return int(await self.session.scalar(select(Attempt.failures).where(
            Attempt.tenant_id == tenant, Attempt.subject == subject, Attempt.window == window)) or 0)

    async def add_failure(self, tenant: int, subject: str, window: int, reason: str, now: datetime) -> int:
        """One more failure in the window, atomically (INSERT … ON CONFLICT DO UPDATE)."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        values = insert(Attempt).values(tenant_id=tenant, subject=subject, window=window, failures=1,
                                        last_reason=reason, updated_at=now)
        upsert = values.on_conflict_do_update(
            index_elements=["tenant_id", "subject", "window"],
            set_={"failures": Attempt.failures + 1, "last_reason": reason, "updated_at": now},
        ).returning(Attempt.failures)
        return int((await self.session.execute(upsert)).scalar_one())

    # -- order fulfilment ---------------------------------------------------------------------

    async def fulfilment(self, tenant: int, order_id: int) -> OrderFulfilment | None:
        return await self.session.scalar(select(OrderFulfilment).where(
            OrderFulfilment.tenant_id == tenant, OrderFulfilment.order_id == order_id))

    async def move_fulfilment(self, tenant: int, order_id: int, src: str, dst: str, **values: Any) -> bool:
        result = await self.session.execute(
            update(OrderFulfilment).where(OrderFulfilment.tenant_id == tenant, OrderFulfilment.order_id == order_id,
                                          OrderFulfilment.status == src)
            .values(status=dst, **values).execution_options(synchronize_session=False))
        return rowcount(result) == 1

    # -- tickets ---------------------------------------------------------------------------------

    async def tickets_of_order(self, tenant: int, order_id: int) -> list[Ticket]:
        return list(await self.session.scalars(select(Ticket).where(
            Ticket.tenant_id == tenant, Ticket.order_id == order_id).order_by(Ticket.seq)))

    async def ticket(self, tenant: int, ticket_id: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.tenant_id == tenant, Ticket.id == ticket_id))

    async def ticket_by_code(self, tenant: int, code: str) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.tenant_id == tenant, Ticket.code == code))

    async def member_tickets(self, tenant: int, member: int, statuses: Sequence[str], limit: int) -> list[Ticket]:
        return list(await self.session.scalars(select(Ticket).where(
            Ticket.tenant_id == tenant, Ticket.member_id == member, Ticket.status.in_(list(statuses)))
            .order_by(Ticket.valid_until, Ticket.id).limit(limit)))

    async def add_ticket(self, row: Ticket) -> bool:
        """Insert in a savepoint: False when a unique key (code, or order + seq) is taken."""
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def use_ticket(self, tenant: int, ticket_id: int, uses: int, now: datetime,
                         stores: Sequence[int] | None) -> int | None:
        """Take `uses` uses if the ticket is active, valid, has them and (for staff) belongs to
        one of `stores`: one conditional UPDATE. The uses left, or None (nothing changed)."""
        cond = [Ticket.tenant_id == tenant, Ticket.id == ticket_id, Ticket.status == "active",
                Ticket.uses_left >= uses, Ticket.valid_until > now]
        if stores is not None:
            cond.append(Ticket.store_id.in_(list(stores)))
        left = Ticket.uses_left - uses
        stmt = (update(Ticket).where(*cond)
                .values(uses_left=left, status=case((left == 0, "used"), else_=Ticket.status),
                        closed_at=case((left == 0, now), else_=Ticket.closed_at))
                .returning(Ticket.uses_left).execution_options(synchronize_session=False))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def give_back(self, tenant: int, ticket_id: int, uses: int) -> bool:
        stmt = (update(Ticket).where(Ticket.tenant_id == tenant, Ticket.id == ticket_id,
                                     Ticket.status.in_(("active", "used")), Ticket.uses_left + uses <= Ticket.uses_total)
                .values(uses_left=Ticket.uses_left + uses, status="active", closed_at=None)
                .execution_options(synchronize_session=False))
        return rowcount(await self.session.execute(stmt)) == 1

    async def due_tickets(self, now: datetime, limit: int) -> list[tuple[int, int]]:
        stmt = (select(Ticket.tenant_id, Ticket.id).where(Ticket.status == "active", Ticket.valid_until <= now)
                .order_by(Ticket.valid_until).limit(limit))
        return [(t, i) for t, i in (await self.session.execute(stmt)).all()]

    async def expire_ticket(self, tenant: int, ticket_id: int, now: datetime) -> Ticket | None:
        stmt = (update(Ticket).where(Ticket.tenant_id == tenant, Ticket.id == ticket_id, Ticket.status == "active",
                                     Ticket.valid_until <= now)
                .values(status="expired", closed_at=now).returning(Ticket.id)
                .execution_options(synchronize_session=False))
        if (await self.session.execute(stmt)).scalar_one_or_none() is None:
            return None
        return await self.session.scalar(select(Ticket).where(Ticket.id == ticket_id)
                                          .execution_options(populate_existing=True))

    async def close_order_tickets(self, tenant: int, order_id: int, status: str, now: datetime) -> int:
        stmt = (update(Ticket).where(Ticket.tenant_id == tenant, Ticket.order_id == order_id, Ticket.status == "active")
                .values(status=status, closed_at=now).execution_options(synchronize_session=False))
        return rowcount(await self.session.execute(stmt))

    async def ticket_page(self, tenant: int, *, code: str, status: str, offset: int, limit: int
                          ) -> tuple[list[Ticket], int]:
        cond = [Ticket.tenant_id == tenant]
        if code:
            cond.append(Ticket.code == code)
        if status:
            cond.append(Ticket.status == status)
        total = int(await self.session.scalar(select(func.count()).select_from(Ticket).where(*cond)) or 0)
        rows = await self.session.scalars(select(Ticket).where(*cond).order_by(Ticket.id.desc())
                                          .offset(offset).limit(limit))
        return list(rows), total

    async def verifications_of(self, tenant: int, ticket_id: int) -> list[Verification]:
        return list(await self.session.scalars(select(Verification).where(
            Verification.tenant_id == tenant, Verification.ticket_id == ticket_id).order_by(Verification.id)))

    async def verification_page(self, tenant: int, offset: int, limit: int
                                ) -> tuple[list[tuple[Verification, Ticket]], int]:
        total = int(await self.session.scalar(select(func.count()).select_from(Verification)
                                              .where(Verification.tenant_id == tenant)) or 0)
        stmt = (select(Verification, Ticket).join(Ticket, Ticket.id == Verification.ticket_id)
                .where(Verification.tenant_id == tenant).order_by(Verification.id.desc()).offset(offset).limit(limit))
        return [(v, t) for v, t in (await self.session.execute(stmt)).all()], total

    async def verification(self, tenant: int, vid: int) -> Verification | None:
        return await self.session.scalar(select(Verification).where(
            Verification.tenant_id == tenant, Verification.id == vid))

    async def mark_reversed(self, tenant: int, vid: int, actor: str, now: datetime, since: datetime) -> bool:
        stmt = (update(Verification).where(Verification.tenant_id == tenant, Verification.id == vid,
                                           Verification.reversed_at.is_(None), Verification.at > since)
                .values(reversed_at=now, reversed_by=actor).execution_options(synchronize_session=False))
        return rowcount(await self.session.execute(stmt)) == 1

    # -- staff -----------------------------------------------------------------------------------

    async def staff_stores(self, tenant: int, member: int) -> list[int]:
        return list(await self.session.scalars(select(Staff.store_id).where(
            Staff.tenant_id == tenant, Staff.member_id == member, Staff.active.is_(True))))

    async def staff_row(self, tenant: int, member: int, store_id: int) -> Staff | None:
        return await self.session.scalar(select(Staff).where(
            Staff.tenant_id == tenant, Staff.member_id == member, Staff.store_id == store_id))

    async def staff_page(self, tenant: int) -> list[Staff]:
        return list(await self.session.scalars(select(Staff).where(Staff.tenant_id == tenant)
                                               .order_by(Staff.store_id, Staff.id).limit(500)))

    async def set_staff_active(self, tenant: int, staff_id: int, active: bool) -> Staff | None:
        row = await self.session.scalar(select(Staff).where(Staff.tenant_id == tenant, Staff.id == staff_id))
        if row is not None:
            row.active = active
            await self.session.flush()
        return row

    async def bind_code(self, tenant: int, digest: str) -> BindCode | None:
        return await self.session.scalar(select(BindCode).where(BindCode.tenant_id == tenant, BindCode.digest == digest))

    async def use_bind_code(self, tenant: int, code_id: int, member: int, now: datetime) -> bool:
        stmt = (update(BindCode).where(BindCode.tenant_id == tenant, BindCode.id == code_id, BindCode.used_at.is_(None),
                                       BindCode.expires_at > now)
                .values(used_at=now, used_by=member).execution_options(synchronize_session=False))
        return rowcount(await self.session.execute(stmt)) == 1

    async def bind_codes(self, tenant: int, limit: int = 50) -> list[BindCode]:
        return list(await self.session.scalars(select(BindCode).where(BindCode.tenant_id == tenant)
                                               .order_by(BindCode.id.desc()).limit(limit)))

    # -- shipping templates ----------------------------------------------------------------------

    async def ship_templates(self, tenant: int) -> list[ShipTemplate]:
        return list(await self.session.scalars(select(ShipTemplate).where(ShipTemplate.tenant_id == tenant)
                                               .order_by(ShipTemplate.id)))

    async def ship_template(self, tenant: int, template_id: int) -> ShipTemplate | None:
        return await self.session.scalar(select(ShipTemplate).where(
            ShipTemplate.tenant_id == tenant, ShipTemplate.id == template_id))

    async def clear_default_template(self, tenant: int, keep: int) -> None:
        await self.session.execute(update(ShipTemplate).where(ShipTemplate.tenant_id == tenant, ShipTemplate.id != keep)
                                   .values(is_default=False).execution_options(synchronize_session=False))

    # -- delivery --------------------------------------------------------------------------------

    async def active_zones(self, tenant: int) -> list[tuple[Zone, Store]]:
        stmt = (select(Zone, Store).join(Store, Store.id == Zone.store_id)
                .where(Zone.tenant_id == tenant, Zone.active.is_(True), Store.active.is_(True)))
        return [(z, s) for z, s in (await self.session.execute(stmt)).all()]

    async def zones(self, tenant: int) -> list[Zone]:
        return list(await self.session.scalars(select(Zone).where(Zone.tenant_id == tenant).order_by(Zone.id)))

    async def zone(self, tenant: int, zone_id: int) -> Zone | None:
        return await self.session.scalar(select(Zone).where(Zone.tenant_id == tenant, Zone.id == zone_id))

    async def slot_templates(self, tenant: int, store_id: int | None = None) -> list[SlotTemplate]:
        cond = [SlotTemplate.tenant_id == tenant]
        if store_id is not None:
            cond += [SlotTemplate.store_id == store_id, SlotTemplate.active.is_(True)]
        return list(await self.session.scalars(select(SlotTemplate).where(*cond)
                                               .order_by(SlotTemplate.store_id, SlotTemplate.weekday,
                                                         SlotTemplate.start_min)))

    async def slot_template(self, tenant: int, tid: int) -> SlotTemplate | None:
        return await self.session.scalar(select(SlotTemplate).where(SlotTemplate.tenant_id == tenant,
                                                                    SlotTemplate.id == tid))

    async def slot_uses(self, tenant: int, store_id: int, days: Sequence[str]) -> dict[tuple[str, int], SlotUse]:
        rows = await self.session.scalars(select(SlotUse).where(
            SlotUse.tenant_id == tenant, SlotUse.store_id == store_id, SlotUse.day.in_(list(days))))
        return {(u.day, u.start_min): u for u in rows}

    async def take_slot(self, tenant: int, store_id: int, day: str, start: int, end: int, capacity: int) -> int | None:
        """One place in the slot: the row is made if missing (INSERT … ON CONFLICT DO
        NOTHING), then `taken < capacity` is the condition of the increment. The row's id,
        or None when it is full."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        await self.session.execute(insert(SlotUse).values(
            tenant_id=tenant, store_id=store_id, day=day, start_min=start, end_min=end, capacity=capacity, taken=0,
        ).on_conflict_do_nothing(index_elements=["tenant_id", "store_id", "day", "start_min"]))
        stmt = (update(SlotUse).where(SlotUse.tenant_id == tenant, SlotUse.store_id == store_id, SlotUse.day == day,
                                      SlotUse.start_min == start, SlotUse.taken < SlotUse.capacity)
                .values(taken=SlotUse.taken + 1).returning(SlotUse.id).execution_options(synchronize_session=False))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def give_slot_back(self, tenant: int, use_id: int) -> bool:
        stmt = (update(SlotUse).where(SlotUse.tenant_id == tenant, SlotUse.id == use_id, SlotUse.taken > 0)
                .values(taken=SlotUse.taken - 1).execution_options(synchronize_session=False))
        return rowcount(await self.session.execute(stmt)) == 1

    async def address_points(self, tenant: int, member: int) -> dict[int, AddressPoint]:
        rows = await self.session.scalars(select(AddressPoint).where(
            AddressPoint.tenant_id == tenant, AddressPoint.member_id == member))
        return {r.address_id: r for r in rows}

    async def deliveries(self, tenant: int, statuses: Sequence[str], limit: int = 100
                         ) -> list[tuple[OrderFulfilment, Order]]:
        stmt = (select(OrderFulfilment, Order).join(Order, Order.id == OrderFulfilment.order_id)
                .where(OrderFulfilment.tenant_id == tenant, OrderFulfilment.method == "delivery",
                       Order.status.in_(("paid", "completed")), OrderFulfilment.status.in_(list(statuses)))
                .order_by(OrderFulfilment.id.desc()).limit(limit))
        return [(f, o) for f, o in (await self.session.execute(stmt)).all()]

    # -- appointments ----------------------------------------------------------------------------

    async def service_spec(self, tenant: int, product_id: int) -> ServiceSpec | None:
        return await self.session.scalar(select(ServiceSpec).where(
            ServiceSpec.tenant_id == tenant, ServiceSpec.product_id == product_id))

    async def booking_products(self, tenant: int) -> list[tuple[Product, ServiceSpec]]:
        stmt = (select(Product, ServiceSpec).join(ServiceSpec, ServiceSpec.product_id == Product.id)
                .join(ProductRule, (ProductRule.product_id == Product.id) & (ProductRule.tenant_id == tenant))
                .where(Product.tenant_id == tenant, ServiceSpec.tenant_id == tenant, ProductRule.kind == "booking",
                       Product.on_shelf.is_(True)).order_by(Product.sort, Product.id))
        return [(p, s) for p, s in (await self.session.execute(stmt)).all()]

    async def resources_for(self, tenant: int, product_id: int, store_id: int | None = None) -> list[Resource]:
        stmt = (select(Resource).join(ResourceService, ResourceService.resource_id == Resource.id)
                .where(Resource.tenant_id == tenant, Resource.active.is_(True), ResourceService.product_id == product_id))
        if store_id is not None:
            stmt = stmt.where(Resource.store_id == store_id)
        return list(await self.session.scalars(stmt.order_by(Resource.id)))

    async def resources(self, tenant: int) -> list[Resource]:
        return list(await self.session.scalars(select(Resource).where(Resource.tenant_id == tenant)
                                               .order_by(Resource.store_id, Resource.id)))

    async def resource(self, tenant: int, rid: int) -> Resource | None:
        return await self.session.scalar(select(Resource).where(Resource.tenant_id == tenant, Resource.id == rid))

    async def resource_products(self, tenant: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for r, p in (await self.session.execute(select(ResourceService.resource_id, ResourceService.product_id)
                                                .where(ResourceService.tenant_id == tenant))).all():
            out.setdefault(r, []).append(p)
        return out

    async def held_cells(self, resource_ids: Sequence[int], first: int, last: int) -> set[tuple[int, int]]:
        if not resource_ids:
            return set()
        rows = await self.session.execute(select(ResourceCell.resource_id, ResourceCell.cell).where(
            ResourceCell.resource_id.in_(list(resource_ids)), ResourceCell.cell >= first, ResourceCell.cell < last))
        return {(r, c) for r, c in rows.all()}

    async def hold_cells(self, tenant: int, resource_id: int, booking_id: int, cells: Sequence[int]) -> bool:
        """All of `cells` for the booking, or none (a savepoint: another booking holds one)."""
        try:
            async with self.session.begin_nested():
                self.session.add_all([ResourceCell(tenant_id=tenant, resource_id=resource_id, cell=c,
                                                   booking_id=booking_id) for c in cells])
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def free_cells(self, tenant: int, booking_id: int) -> int:
        result = await self.session.execute(delete(ResourceCell).where(
            ResourceCell.tenant_id == tenant, ResourceCell.booking_id == booking_id))
        return rowcount(result)

    async def booking(self, tenant: int, booking_id: int) -> Booking | None:
        return await self.session.scalar(select(Booking).where(Booking.tenant_id == tenant, Booking.id == booking_id))

    async def booking_of_order(self, tenant: int, order_id: int) -> Booking | None:
        return await self.session.scalar(select(Booking).where(Booking.tenant_id == tenant, Booking.order_id == order_id))

    async def member_bookings(self, tenant: int, member: int, statuses: Sequence[str], limit: int) -> list[Booking]:
        return list(await self.session.scalars(select(Booking).where(
            Booking.tenant_id == tenant, Booking.member_id == member, Booking.status.in_(list(statuses)))
            .order_by(Booking.starts_at).limit(limit)))

    async def move_booking(self, tenant: int, booking_id: int, src: Sequence[str], dst: str, **values: Any) -> bool:
        result = await self.session.execute(
            update(Booking).where(Booking.tenant_id == tenant, Booking.id == booking_id, Booking.status.in_(list(src)))
            .values(status=dst, **values).execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def due_reminders(self, now: datetime, limit: int) -> list[tuple[Booking, ServiceSpec]]:
        stmt = (select(Booking, ServiceSpec).join(ServiceSpec, (ServiceSpec.product_id == Booking.product_id)
                                                  & (ServiceSpec.tenant_id == Booking.tenant_id))
                .where(Booking.status == "booked", Booking.reminded_at.is_(None), Booking.starts_at > now)
                .order_by(Booking.starts_at).limit(limit))
        return [(b, s) for b, s in (await self.session.execute(stmt)).all()]

    async def mark_reminded(self, tenant: int, booking_id: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(Booking).where(Booking.tenant_id == tenant, Booking.id == booking_id, Booking.reminded_at.is_(None),
                                  Booking.status == "booked")
            .values(reminded_at=now).execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def overdue_bookings(self, before: datetime, limit: int) -> list[tuple[int, int]]:
        rows = await self.session.execute(select(Booking.tenant_id, Booking.id).where(
            Booking.status == "booked", Booking.ends_at < before).limit(limit))
        return [(t, i) for t, i in rows.all()]

    async def booking_page(self, tenant: int, since: datetime, limit: int = 200) -> list[Booking]:
        return list(await self.session.scalars(select(Booking).where(
            Booking.tenant_id == tenant, Booking.ends_at >= since).order_by(Booking.starts_at).limit(limit)))

    async def settings(self, tenant: int) -> LocalSettings | None:
        return await self.session.scalar(select(LocalSettings).where(LocalSettings.tenant_id == tenant))
