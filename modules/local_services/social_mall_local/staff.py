"""Staff (核销员): members bound to a store by a one-time code from the console.

The console makes a code (10 characters, ~50 bits; only its SHA-256 is stored), valid for
BIND_HOURS; the staff member sends 「绑定核销员 ABCDE-FGHJK」 in chat. A code binds once
(conditional UPDATE); wrong codes count against the member's guessing limit and the
tenant's (attempts.py); every binding and unbinding is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.errors import NotFoundError
from social_mall_local import attempts
from social_mall_local.codes import bind_code_text, digest, new_bind_code, parse_bind_code
from social_mall_local.models import BindCode, Staff
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import StoreView, active_store, get_store, stores_by_ids
from storage.uow import UnitOfWork

BIND_HOURS = 24
TENANT_BIND_LIMIT = 100   # wrong bind codes per tenant per window (many members guessing together)


@dataclass(frozen=True)
class NewBindCode:
    code: str             # shown once
    store: StoreView
    expires_at: datetime


async def create_bind_code(uow: UnitOfWork, tenant: int, store_id: int, actor: str, now: datetime) -> NewBindCode:
    store = await active_store(uow, tenant, store_id)
    code = new_bind_code()
    await LocalRepo(uow.session).add(BindCode(
        tenant_id=tenant, store_id=store.id, digest=digest(code), hint=code[:3], role="verifier", created_by=actor,
        expires_at=now + timedelta(hours=BIND_HOURS), created_at=now))
    uow.audit(tenant, actor, "local.staff.code", f"store:{store.id}", after={"hint": code[:3]})
    return NewBindCode(bind_code_text(code), store, now + timedelta(hours=BIND_HOURS))


@dataclass(frozen=True)
class BindRefusal:
    reason: str        # too_many | bad_code | unknown | expired | used


async def bind(uow: UnitOfWork, tenant: int, member: int, raw: str, now: datetime) -> StoreView | BindRefusal:
    subject = f"bind:{member}"
    if (await attempts.locked(uow, tenant, subject, attempts.BIND_LIMIT, now)
            or await attempts.locked(uow, tenant, "bind:*", TENANT_BIND_LIMIT, now)):
        return BindRefusal("too_many")
    code = parse_bind_code(raw)
    repo = LocalRepo(uow.session)
    row = await repo.bind_code(tenant, digest(code)) if code else None
    reason = "bad_code" if code is None else "unknown" if row is None else None
    if row is not None and reason is None:
        if row.used_at is not None:
            reason = "used"
        elif row.expires_at <= now:
            reason = "expired"
        elif not await repo.use_bind_code(tenant, row.id, member, now):
            reason = "used"   # another member's message took it first
    if reason is not None or row is None:
        await attempts.record_failure(uow, tenant, subject, reason or "unknown", now)
        await attempts.record_failure(uow, tenant, "bind:*", reason or "unknown", now)
        return BindRefusal(reason or "unknown")
    store = await get_store(uow, tenant, row.store_id)
    existing = await repo.staff_row(tenant, member, store.id)
    if existing is None:
        await repo.add(Staff(tenant_id=tenant, member_id=member, store_id=store.id, role=row.role, active=True,
                             created_at=now))
    else:
        existing.active, existing.role = True, row.role
    uow.audit(tenant, f"member:{member}", "local.staff.bind", f"store:{store.id}", after={"member": member})
    return store


@dataclass(frozen=True)
class StaffRow:
    id: int
    member_id: int
    store_id: int
    store_name: str
    role: str
    active: bool
    created_at: datetime


async def staff_list(uow: UnitOfWork, tenant: int) -> list[StaffRow]:
    rows = await LocalRepo(uow.session).staff_page(tenant)
    names = {i: s.name for i, s in (await stores_by_ids(uow, tenant, list({r.store_id for r in rows}))).items()}
    return [StaffRow(r.id, r.member_id, r.store_id, names.get(r.store_id, ""), r.role, r.active, r.created_at)
            for r in rows]


async def set_active(uow: UnitOfWork, tenant: int, staff_id: int, active: bool, actor: str) -> None:
    row = await LocalRepo(uow.session).set_staff_active(tenant, staff_id, active)
    if row is None:
        raise NotFoundError("staff", staff_id)
    uow.audit(tenant, actor, "local.staff." + ("enable" if active else "disable"), f"staff:{staff_id}",
              after={"member": row.member_id, "store": row.store_id})


def is_staff(row: Staff | None) -> bool:
    return row is not None and row.active
