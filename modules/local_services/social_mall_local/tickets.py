"""Tickets (券码): issued when a pick-up order, a service or a multi-use card (次卡) is paid
(the `order.paid` subscriber), listed in chat (「我的券码」) and on an H5 page with a QR.

Issuing is idempotent: each ticket has a fixed place in its order (seq), unique with the
order, so a repeated or concurrent delivery of the event issues nothing twice. Codes are
12 random digits, unique per tenant (a collision draws again). Each ticket carries its
share of what was paid (`value_fen`, split over the lines and units by the largest
remainder: the shares sum exactly to the amount paid), which a refund of the unused part
uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import load_order
from social_mall_local import products as P
from social_mall_local.codes import new_ticket_code, ticket_code_text
from social_mall_local.events import TicketsIssued
from social_mall_local.models import Ticket
from social_mall_local.repos import LocalRepo
from social_mall_local.stores import stores_by_ids
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

CODE_TRIES = 8


@dataclass(frozen=True)
class TicketView:
    id: int
    code: str
    kind: str
    title: str
    uses_total: int
    uses_left: int
    status: str
    valid_until: datetime
    store_id: int
    store_name: str
    member_id: int
    order_id: int
    value_fen: int
    refund_unused: bool

    @property
    def code_text(self) -> str:
        return ticket_code_text(self.code)


KIND_ZH = {"pickup": "取货码", "service": "服务券", "card": "次卡", "booking": "预约码"}
STATUS_ZH = {"active": "可使用", "used": "已使用", "expired": "已过期", "refunded": "已退款"}


def ticket_view(t: Ticket, store_name: str = "") -> TicketView:
    return TicketView(t.id, t.code, t.kind, t.title, t.uses_total, t.uses_left, t.status, t.valid_until,
                      t.store_id, store_name, t.member_id, t.order_id, t.value_fen, t.refund_unused)


async def views(uow: UnitOfWork, tenant: int, rows: Sequence[Ticket]) -> list[TicketView]:
    names = {i: s.name for i, s in (await stores_by_ids(uow, tenant, list({t.store_id for t in rows}))).items()}
    return [ticket_view(t, names.get(t.store_id, "")) for t in rows]


def split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder: exact, never negative)."""
    w = sum(weights)
    if w <= 0:
        return [0] * len(weights)
    base = [total * x // w for x in weights]
    rest = total - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % w), i))
    for i in order[:rest]:
        base[i] += 1
    return base


@dataclass(frozen=True)
class Planned:
    kind: str
    title: str
    uses: int
    value_fen: int
    valid_until: datetime
    refund_unused: bool
    booking_id: int | None = None


async def plan(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> tuple[int, int, list[Planned]]:
    """(member, store, the tickets) a paid order of a module method should have."""
    repo = LocalRepo(uow.session)
    ful = await repo.fulfilment(tenant, order_id)
    order = await load_order(uow, tenant, order_id)
    if ful is None or order.status != OrderStatus.PAID:
        return 0, 0, []
    if ful.method == "booking":  # one check-in code, for the booked time
        from social_mall_local.geo import SHANGHAI
        from social_mall_local.rules_booking import CHECK_IN_GRACE

        b = await repo.booking_of_order(tenant, order_id)
        if b is None:
            return 0, 0, []
        title = f"{order.lines[0].title} {b.starts_at.astimezone(SHANGHAI):%m-%d %H:%M}"
        return order.member_id, ful.store_id, [Planned("booking", title, 1, order.paid_fen,
                                                       b.ends_at + CHECK_IN_GRACE, False, b.id)]
    found = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant, [ln.sku_id for ln in order.lines])}
    product_of = {ln.sku_id: found[ln.sku_id][1].id for ln in order.lines if ln.sku_id in found}
    rules = await P.settings_for(uow, tenant, list(set(product_of.values())))
    # what each line paid: the order's payment split over the lines by their amounts
    shares = split(order.paid_fen - order.shipping_fen if order.paid_fen > order.shipping_fen else order.paid_fen,
                   [ln.line_fen for ln in order.lines])
    paid_at = order.paid_at or now
    out: list[Planned] = []
    goods: list[tuple[str, int, P.ProductSettings]] = []
    for ln, share in zip(order.lines, shares, strict=True):
        s = rules.get(product_of.get(ln.sku_id, 0), P.ProductSettings(0))
        title = f"{ln.title} {ln.spec}".strip()
        if s.kind in P.TICKETED:
            for unit_share in split(share, [1] * ln.qty):
                uses = s.uses if s.kind == P.CARD else 1
                out.append(Planned(s.kind, title, uses, unit_share, paid_at + timedelta(days=s.valid_days),
                                   s.refund_unused))
        elif s.kind == P.GOODS and ful.method == P.PICKUP:
            goods.append((f"{title} ×{ln.qty}", share, s))
    if goods:  # one pick-up code for the whole parcel, valid the products' shortest validity after the time
        start = max(ful.pickup_at or paid_at, paid_at)
        days = min(s.valid_days for _, _, s in goods)
        out.insert(0, Planned("pickup", "，".join(t for t, _, _ in goods)[:120], 1, sum(v for _, v, _ in goods),
                              start + timedelta(days=days), any(s.refund_unused for _, _, s in goods)))
    return order.member_id, ful.store_id, out


async def issue_tickets(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> list[int]:
    """Issue a paid order's tickets once. The ids issued now ([] when there are none, or
    they were issued already)."""
    repo = LocalRepo(uow.session)
    if await repo.tickets_of_order(tenant, order_id):
        return []
    member, store, planned = await plan(uow, tenant, order_id, now)
    issued: list[int] = []
    for seq, p in enumerate(planned, start=1):
        for _ in range(CODE_TRIES):
            row = Ticket(tenant_id=tenant, code=new_ticket_code(), order_id=order_id, seq=seq, member_id=member,
                         store_id=store, kind=p.kind, title=p.title[:120], uses_total=p.uses, uses_left=p.uses,
                         value_fen=p.value_fen, refund_unused=p.refund_unused, status="active",
                         valid_until=p.valid_until, booking_id=p.booking_id, created_at=now)
            if await repo.add_ticket(row):
                issued.append(row.id)
                break
            if any(t.seq == seq for t in await repo.tickets_of_order(tenant, order_id)):
                return []      # another worker is issuing this order's tickets: its transaction wins
        else:
            raise RuntimeError("no free ticket code")  # 8 collisions in a row: never in practice
    if issued:
        order = await load_order(uow, tenant, order_id)
        uow.emit(TicketsIssued(tenant_id=tenant, member_id=member, order_id=order_id, order_no=order.order_no,
                               ticket_ids=issued))
    return issued


async def member_tickets(uow: UnitOfWork, tenant: int, member: int, *, limit: int = 10) -> list[TicketView]:
    return await views(uow, tenant, await LocalRepo(uow.session).member_tickets(tenant, member, ("active",), limit))


async def order_tickets(uow: UnitOfWork, tenant: int, order_id: int) -> list[TicketView]:
    return await views(uow, tenant, await LocalRepo(uow.session).tickets_of_order(tenant, order_id))


async def get_ticket(uow: UnitOfWork, tenant: int, ticket_id: int) -> TicketView | None:
    row = await LocalRepo(uow.session).ticket(tenant, ticket_id)
    return (await views(uow, tenant, [row]))[0] if row is not None else None


async def tickets_by_ids(uow: UnitOfWork, tenant: int, ids: Sequence[int]) -> list[TicketView]:
    repo = LocalRepo(uow.session)
    rows = [t for t in [await repo.ticket(tenant, i) for i in ids] if t is not None]
    return await views(uow, tenant, rows)
