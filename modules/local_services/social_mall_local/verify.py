"""Verification (核销): a staff member (or an admin in the console) redeems a ticket.

* Look-up: only staff may look codes up, only within their stores, and only below the
  guessing limit (attempts.py). Unknown codes, another tenant's, another store's, expired,
  used and refunded ones are refused with a reason and change nothing but the failure
  count (which must survive the refusal: the look-up answers, it doesn't raise).
* Verify: one conditional UPDATE takes the uses (active, valid, enough uses left, the
  staff member's store): of two staff redeeming the same code at once exactly one wins;
  a multi-use card never goes below zero (also a CHECK constraint). Every verification is
  logged (who, store, when, uses, uses left). When no usable ticket of the order is left,
  the order is completed (`hand_over`). Verifying never changes the order's store.
* Reverse: an admin, within REVERSE_WINDOW, gives the uses back (audited).
* Expiry (job): an unverified ticket past its validity expires; when its product says so
  the unused part is refunded through the core's refund path (proportional for cards).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.errors import MallError
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import hand_over, load_order
from social_mall.payments.service import request_refund
from social_mall_local import attempts
from social_mall_local.codes import parse_ticket_code
from social_mall_local.errors import LocalError
from social_mall_local.events import TicketVerified
from social_mall_local.models import Verification
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import get_store
from social_mall_local.tickets import TicketView, views
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

REVERSE_WINDOW = timedelta(hours=24)
SYSTEM = "system:local_services"


class VerifyRefusedError(LocalError):
    """A verification refused (console): `reason` is one of REASONS."""

    code = "local_verify_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReverseRefusedError(LocalError):
    code = "local_reverse_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REASONS = ("not_staff", "too_many", "bad_code", "unknown", "wrong_store", "expired", "used", "refunded")


@dataclass(frozen=True)
class Refusal:
    reason: str
    ticket: TicketView | None = None


def staff_subject(member: int) -> str:
    return f"staff:{member}"


async def staff_stores(uow: UnitOfWork, tenant: int, member: int) -> list[int]:
    return await LocalRepo(uow.session).staff_stores(tenant, member)


def _state(t: TicketView, now: datetime) -> str | None:
    """Why this ticket can't be redeemed now (None: it can)."""
    if t.status == "refunded":
        return "refunded"
    if t.status == "used" or t.uses_left <= 0:
        return "used"
    if t.status == "expired" or t.valid_until <= now:
        return "expired"
    return None


async def lookup(uow: UnitOfWork, tenant: int, raw: str, now: datetime, *, staff: int | None
                 ) -> TicketView | Refusal:
    """The ticket a staff member (`staff`: their member id; None: an admin) may redeem, or why not.
    A staff member's refusals count against the guessing limit (the caller commits)."""
    stores: list[int] | None = None
    if staff is not None:
        stores = await staff_stores(uow, tenant, staff)
        if not stores:
            await attempts.record_failure(uow, tenant, f"member:{staff}", "not_staff", now)
            return Refusal("not_staff")
        if await attempts.locked(uow, tenant, staff_subject(staff), attempts.STAFF_LIMIT, now):
            log.warning("local.verify_locked", extra={"tenant": tenant, "staff": staff})
            return Refusal("too_many")
    code = parse_ticket_code(raw)
    row = await LocalRepo(uow.session).ticket_by_code(tenant, code) if code else None
    ticket = (await views(uow, tenant, [row]))[0] if row is not None else None
    reason = "bad_code" if code is None else "unknown" if ticket is None else None
    if ticket is not None and stores is not None and ticket.store_id not in stores:
        reason = "wrong_store"
    if reason is None and ticket is not None:
        reason = _state(ticket, now)
    if reason is None and ticket is not None:
        return ticket
    if staff is not None:
        await attempts.record_failure(uow, tenant, staff_subject(staff), reason or "unknown", now)
    # another store's ticket: say which store, never whose or what
    shown = ticket if reason in ("wrong_store", "expired", "used", "refunded") else None
    return Refusal(reason or "unknown", shown)


@dataclass(frozen=True)
class Verified:
    ticket: TicketView
    uses: int
    uses_left: int
    verification_id: int
    order_completed: bool


async def verify(uow: UnitOfWork, tenant: int, ticket_id: int, now: datetime, *, staff: int | None, actor: str,
                 uses: int = 1) -> Verified | Refusal:
    """Redeem `uses` uses of the ticket: exactly once under concurrency (one conditional
    UPDATE). A staff member only within their stores. The loser is told why."""
    repo = LocalRepo(uow.session)
    stores = await staff_stores(uow, tenant, staff) if staff is not None else None
    if stores is not None and not stores:
        return Refusal("not_staff")
    left = await repo.use_ticket(tenant, ticket_id, uses, now, stores)
    row = await repo.ticket(tenant, ticket_id)
    if row is None:
        return Refusal("unknown")
    await uow.session.refresh(row)
    ticket = (await views(uow, tenant, [row]))[0]
    if left is None:
        if stores is not None and ticket.store_id not in stores:
            return Refusal("wrong_store", ticket)
        return Refusal(_state(ticket, now) or "used", ticket)
    v = Verification(tenant_id=tenant, ticket_id=ticket_id, store_id=ticket.store_id, staff_member_id=staff,
                     actor=actor, uses=uses, uses_left=left, at=now)
    await repo.add(v)
    store = await get_store(uow, tenant, ticket.store_id)
    uow.emit(TicketVerified(tenant_id=tenant, member_id=ticket.member_id, ticket_id=ticket_id, title=ticket.title,
                            store_name=store.name, uses=uses, uses_left=left))
    log.info("local.verified", extra={"tenant": tenant, "ticket": ticket_id, "uses_left": left, "actor": actor})
    if row.kind == "booking":  # an appointment's code: the member checked in
        from social_mall_local.bookings import check_in

        await check_in(uow, tenant, row.booking_id, now)
    completed = await complete_if_done(uow, tenant, ticket.order_id, now)
    return Verified(ticket, uses, left, v.id, completed)


async def complete_if_done(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> bool:
    """A paid order none of whose tickets can be used any more, one of them redeemed, is
    complete (handed over in person)."""
    repo = LocalRepo(uow.session)
    tickets = await repo.tickets_of_order(tenant, order_id)
    if not tickets or any(t.status == "active" for t in tickets):
        return False
    if not any(t.uses_left < t.uses_total for t in tickets):
        return False  # nothing was ever redeemed (expired unused: refunded or kept per the rule)
    order = await load_order(uow, tenant, order_id)
    if order.status != OrderStatus.PAID or order.fulfilment == "express":
        return False
    return await hand_over(uow, tenant, order_id, now=now)


async def reverse(uow: UnitOfWork, tenant: int, verification_id: int, actor: str, now: datetime) -> TicketView:
    """Give a verification's uses back (an admin, within REVERSE_WINDOW; audited). The
    order, if the verification completed it, stays completed."""
    repo = LocalRepo(uow.session)
    v = await repo.verification(tenant, verification_id)
    if v is None:
        raise ReverseRefusedError("unknown")
    if not await repo.mark_reversed(tenant, verification_id, actor, now, now - REVERSE_WINDOW):
        raise ReverseRefusedError("reversed" if v.reversed_at is not None else "too_late")
    if not await repo.give_back(tenant, v.ticket_id, v.uses):
        raise ReverseRefusedError("ticket_closed")
    row = await repo.ticket(tenant, v.ticket_id)
    assert row is not None
    await uow.session.refresh(row)
    uow.audit(tenant, actor, "local.verification.reverse", f"verification:{verification_id}",
              before={"ticket": v.ticket_id, "uses": v.uses, "uses_left": v.uses_left},
              after={"uses_left": row.uses_left, "status": row.status})
    return (await views(uow, tenant, [row]))[0]


# -- expiry ---------------------------------------------------------------------------------------

async def expire_one(uow: UnitOfWork, tenant: int, ticket_id: int, now: datetime, *, refund: bool = True) -> bool:
    """Expire one ticket past its validity (conditional: once); per its product's rule
    request the refund of its unused part, proportional to the uses left."""
    repo = LocalRepo(uow.session)
    t = await repo.expire_ticket(tenant, ticket_id, now)
    if t is None:
        return False
    amount = t.value_fen * t.uses_left // t.uses_total if t.uses_total else 0
    if refund and t.refund_unused and amount > 0:
        order = await load_order(uow, tenant, t.order_id)
        await request_refund(uow, tenant, t.order_id, amount_fen=amount, reason="券码过期未使用", actor=SYSTEM,
                             now=now)
        log.info("local.ticket_expired_refund", extra={"tenant": tenant, "ticket": ticket_id, "order": order.order_no,
                                                       "refund_fen": amount})
    await complete_if_done(uow, tenant, t.order_id, now)
    return True


async def expire_tickets(uows: UowFactory, now: datetime, batch: int = 200) -> int:
    """The sweeper: each due ticket in a unit of work of its own (a refusal of one refund
    doesn't hold the rest back: that ticket still expires, without a refund, logged)."""
    async with uows() as uow:
        due = await LocalRepo(uow.session).due_tickets(now, batch)
    done = 0
    for tenant, ticket_id in due:
        try:
            async with uows() as uow:
                if await expire_one(uow, tenant, ticket_id, now):
                    done += 1
                await uow.commit()
        except MallError as exc:
            log.warning("local.expiry_refund_refused", extra={"tenant": tenant, "ticket": ticket_id, "code": exc.code})
            async with uows() as uow:
                if await expire_one(uow, tenant, ticket_id, now, refund=False):
                    done += 1
                await uow.commit()
    return done


async def on_order_closed(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> int:
    """A refunded order's tickets can't be used any more."""
    return await LocalRepo(uow.session).close_order_tickets(tenant, order_id, "refunded", now)


async def ticket_log(uow: UnitOfWork, tenant: int, ticket_id: int) -> Sequence[Verification]:
    return await LocalRepo(uow.session).verifications_of(tenant, ticket_id)
