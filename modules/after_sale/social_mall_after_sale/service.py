"""After-sale services over the caller's unit of work: open a request (claiming the units
with one conditional UPDATE per line), move it (one conditional UPDATE per move, so a
double click, two admins or a timer racing a member apply a move once), refund through
the core's `request_refund`, and the timers' sweeps. Views out are frozen dataclasses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from social_mall.errors import MallError, NotFoundError
from social_mall.orders.service import load_order, return_unshipped_units
from social_mall.payments.service import request_refund
from social_mall.pricing import service as pricing
from social_mall.views import OrderView, Page
from social_mall_after_sale import rules
from social_mall_after_sale.errors import AfterSaleRefusedError
from social_mall_after_sale.events import AfterSaleChanged, AfterSalePhotosSent
from social_mall_after_sale.models import (
    AfterSale, AfterSaleLine, AfterSaleLog, AfterSalePhoto, AfterSaleSettings, AfterSaleUnits,
)
from social_mall_after_sale.rules import Kind, St
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)
PER_PAGE = 20


@dataclass(frozen=True)
class LineView:
    sku_id: int
    title: str
    spec: str
    qty: int
    refund_fen: int


@dataclass(frozen=True)
class RequestView:
    id: int
    order_id: int
    order_no: str
    member_id: int
    kind: str
    status: str
    reason: str
    refund_fen: int
    out_refund_no: str
    reject_reason: str
    return_tracking: str
    resellable: bool
    deadline_at: datetime | None
    created_at: datetime
    lines: tuple[LineView, ...]
    photo_ids: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return rules.LABELS.get(self.status, self.status)

    @property
    def kind_label(self) -> str:
        return rules.LABELS.get(self.kind, self.kind)

    @property
    def is_open(self) -> bool:
        return self.status in rules.OPEN


@dataclass(frozen=True)
class Eligible:
    """An order line as a member may ask for it: `available` units not held by a request."""

    sku_id: int
    title: str
    spec: str
    qty: int
    available: int
    paid_fen: int


@dataclass(frozen=True)
class LogView:
    actor: str
    src: str
    dst: str
    note: str
    at: datetime


@dataclass(frozen=True)
class Settings:
    answer_days: int = rules.DEFAULT_ANSWER_DAYS
    return_days: int = rules.DEFAULT_RETURN_DAYS


# -- reads ------------------------------------------------------------------------------------

async def settings_of(uow: UnitOfWork, tenant: int) -> Settings:
    row = await uow.session.scalar(select(AfterSaleSettings).where(AfterSaleSettings.tenant_id == tenant))
    return Settings(row.answer_days, row.return_days) if row is not None else Settings()


async def save_settings(uow: UnitOfWork, tenant: int, s: Settings, *, actor: str) -> Settings:
    if not (rules.check_days(s.answer_days) and rules.check_days(s.return_days)):
        raise AfterSaleRefusedError("days")
    before = await settings_of(uow, tenant)
    row = await uow.session.scalar(select(AfterSaleSettings).where(AfterSaleSettings.tenant_id == tenant))
    if row is None:
        uow.session.add(AfterSaleSettings(tenant_id=tenant, answer_days=s.answer_days, return_days=s.return_days))
    else:
        row.answer_days, row.return_days = s.answer_days, s.return_days
    await uow.session.flush()
    uow.audit(tenant, actor, "aftersale.settings", "aftersale:settings",
              before={"answer_days": before.answer_days, "return_days": before.return_days},
              after={"answer_days": s.answer_days, "return_days": s.return_days})
    return s


async def _views(uow: UnitOfWork, rows: Sequence[AfterSale]) -> list[RequestView]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    lines: dict[int, list[LineView]] = {i: [] for i in ids}
    for ln in (await uow.session.scalars(
            select(AfterSaleLine).where(AfterSaleLine.request_id.in_(ids)).order_by(AfterSaleLine.id))).all():
        lines[ln.request_id].append(LineView(ln.sku_id, ln.title, ln.spec, ln.qty, ln.refund_fen))
    photos: dict[int, list[int]] = {i: [] for i in ids}
    for pid, rid in (await uow.session.execute(
            select(AfterSalePhoto.id, AfterSalePhoto.request_id).where(AfterSalePhoto.request_id.in_(ids))
            .order_by(AfterSalePhoto.id))).all():
        photos[rid].append(pid)
    return [RequestView(r.id, r.order_id, r.order_no, r.member_id, r.kind, r.status, r.reason, r.refund_fen,
                        r.out_refund_no, r.reject_reason, r.return_tracking, r.resellable, r.deadline_at,
                        r.created_at, tuple(lines[r.id]), tuple(photos[r.id])) for r in rows]


async def get_request(uow: UnitOfWork, tenant: int, request_id: int, *, member_id: int | None = None) -> RequestView:
    """A request of the tenant (with `member_id`: only that member's; others read as not found)."""
    row = await uow.session.scalar(select(AfterSale).where(AfterSale.tenant_id == tenant, AfterSale.id == request_id))
    if row is None or (member_id is not None and row.member_id != member_id):
        raise NotFoundError("aftersale", request_id)
    return (await _views(uow, [row]))[0]


async def list_requests(uow: UnitOfWork, tenant: int, *, status: str = "", kind: str = "", order_no: str = "",
                        page: int = 1) -> Page[RequestView]:
    """The console's queue, newest first, filtered by status (or "open"), kind, order number."""
    page = max(1, page)
    q = select(AfterSale).where(AfterSale.tenant_id == tenant)
    if status == "open":
        q = q.where(AfterSale.status.in_([s.value for s in rules.OPEN]))
    elif status:
        q = q.where(AfterSale.status == status)
    if kind:
        q = q.where(AfterSale.kind == kind)
    if order_no:
        q = q.where(AfterSale.order_no == order_no)
    total = await uow.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = (await uow.session.scalars(q.order_by(AfterSale.id.desc()).offset((page - 1) * PER_PAGE)
                                      .limit(PER_PAGE))).all()
    return Page(tuple(await _views(uow, rows)), total, page, PER_PAGE)


async def member_requests(uow: UnitOfWork, tenant: int, member_id: int, *, limit: int = 10) -> list[RequestView]:
    rows = (await uow.session.scalars(
        select(AfterSale).where(AfterSale.tenant_id == tenant, AfterSale.member_id == member_id)
        .order_by(AfterSale.id.desc()).limit(limit))).all()
    return await _views(uow, rows)


async def timeline(uow: UnitOfWork, tenant: int, request_id: int) -> list[LogView]:
    rows = (await uow.session.scalars(
        select(AfterSaleLog).where(AfterSaleLog.tenant_id == tenant, AfterSaleLog.request_id == request_id)
        .order_by(AfterSaleLog.id))).all()
    return [LogView(r.actor, r.src, r.dst, r.note, r.at) for r in rows]


async def photo(uow: UnitOfWork, tenant: int, photo_id: int) -> tuple[bytes, str]:
    row = await uow.session.scalar(select(AfterSalePhoto).where(AfterSalePhoto.tenant_id == tenant,
                                                                AfterSalePhoto.id == photo_id))
    if row is None or row.data is None:
        raise NotFoundError("photo", photo_id)
    return row.data, row.content_type or "image/jpeg"


async def has_open(uow: UnitOfWork, tenant: int, order_id: int) -> bool:
    """Whether an after-sale request of the order is still being worked on."""
    n = await uow.session.scalar(select(func.count()).select_from(AfterSale).where(
        AfterSale.tenant_id == tenant, AfterSale.order_id == order_id,
        AfterSale.status.in_([s.value for s in rules.OPEN])))
    return bool(n)


async def _line_pays(uow: UnitOfWork, tenant: int, order: OrderView) -> list[int]:
    b = await pricing.breakdown(uow, tenant, order.id)
    pays = None
    if b is not None:
        by_sku = {ln.sku_id: ln.pay_fen for ln in b.lines}
        if all(ln.sku_id in by_sku for ln in order.lines):
            pays = [by_sku[ln.sku_id] for ln in order.lines]
    return rules.line_pays([ln.line_fen for ln in order.lines], order.discount_fen, pays)


async def _units(uow: UnitOfWork, tenant: int, order_id: int) -> dict[int, AfterSaleUnits]:
    rows = (await uow.session.scalars(select(AfterSaleUnits).where(
        AfterSaleUnits.tenant_id == tenant, AfterSaleUnits.order_id == order_id))).all()
    return {r.sku_id: r for r in rows}


async def eligible_orders(uow: UnitOfWork, tenant: int, member_id: int, *, limit: int = 9) -> list[OrderView]:
    """The member's latest orders that take an after-sale request now (paid, shipped or
    completed, with units not yet held by a request)."""
    from social_mall.orders.service import list_orders

    found = await list_orders(uow, tenant, member_id, page=1, per_page=30)
    out: list[OrderView] = []
    for o in found.items:
        if rules.kinds_for(o.status) and any(e.available for e in await eligible_lines(uow, tenant, o)):
            out.append(o)
        if len(out) >= limit:
            break
    return out


async def eligible_lines(uow: UnitOfWork, tenant: int, order: OrderView) -> list[Eligible]:
    units = await _units(uow, tenant, order.id)
    pays = await _line_pays(uow, tenant, order)
    return [Eligible(ln.sku_id, ln.title, ln.spec, ln.qty,
                     ln.qty - (units[ln.sku_id].claimed if ln.sku_id in units else 0), pay)
            for ln, pay in zip(order.lines, pays, strict=True)]


async def member_order(uow: UnitOfWork, tenant: int, member_id: int, order_id: int) -> OrderView:
    order = await load_order(uow, tenant, order_id)
    if order.member_id != member_id:
        raise NotFoundError("order", order_id)
    return order


# -- moves ------------------------------------------------------------------------------------

def _changed(row: AfterSale, status: str, *, note: str = "", by_timer: bool = False) -> AfterSaleChanged:
    return AfterSaleChanged(tenant_id=row.tenant_id, request_id=row.id, member_id=row.member_id,
                            order_no=row.order_no, kind=row.kind, status=status, refund_fen=row.refund_fen,
                            note=note, by_timer=by_timer)


async def _row(uow: UnitOfWork, tenant: int, request_id: int, *, member_id: int | None = None) -> AfterSale:
    row = await uow.session.scalar(select(AfterSale).where(AfterSale.tenant_id == tenant, AfterSale.id == request_id))
    if row is None or (member_id is not None and row.member_id != member_id):
        raise NotFoundError("aftersale", request_id)
    return row


async def _move(uow: UnitOfWork, row: AfterSale, src: St, dst: St, *, actor: str, now: datetime, note: str = "",
                deadline_at: datetime | None = None, by_timer: bool = False, emit: bool = True,
                **values: object) -> None:
    """src → dst with one conditional UPDATE; AfterSaleRefusedError("state") when the
    request is not in `src` any more (someone else moved it)."""
    assert rules.can_move(src, dst), (src, dst)
    res = await uow.session.execute(
        update(AfterSale).where(AfterSale.tenant_id == row.tenant_id, AfterSale.id == row.id,
                                AfterSale.status == src)
        .values(status=dst, updated_at=now, deadline_at=deadline_at, **values)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        current = await uow.session.scalar(select(AfterSale.status).where(AfterSale.id == row.id))
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(current or "", current or ""))
    await uow.session.refresh(row)
    uow.session.add(AfterSaleLog(tenant_id=row.tenant_id, request_id=row.id, actor=actor[:80], src=src, dst=dst,
                                 note=note[:120], at=now))
    uow.audit(row.tenant_id, actor, f"aftersale.{dst}", f"aftersale:{row.id}",
              before={"status": src}, after={"status": dst, "order_no": row.order_no,
                                             **({"note": note} if note else {})})
    if dst in rules.RELEASING:
        await _release(uow, row)
    if emit:
        uow.emit(_changed(row, dst, note=note, by_timer=by_timer))


async def _release(uow: UnitOfWork, row: AfterSale) -> None:
    for ln in (await uow.session.scalars(select(AfterSaleLine).where(AfterSaleLine.request_id == row.id))).all():
        await uow.session.execute(
            update(AfterSaleUnits).where(AfterSaleUnits.tenant_id == row.tenant_id,
                                         AfterSaleUnits.order_id == row.order_id,
                                         AfterSaleUnits.sku_id == ln.sku_id)
            .values(claimed=AfterSaleUnits.claimed - ln.qty).execution_options(synchronize_session=False))


async def _claim(uow: UnitOfWork, tenant: int, order: OrderView, sku_id: int, line_qty: int, qty: int) -> bool:
    """Hold `qty` more units of the line (one conditional UPDATE: `claimed + qty <= qty`)."""
    exists = await uow.session.scalar(select(AfterSaleUnits.id).where(
        AfterSaleUnits.tenant_id == tenant, AfterSaleUnits.order_id == order.id, AfterSaleUnits.sku_id == sku_id))
    if exists is None:
        try:
            async with uow.session.begin_nested():
                uow.session.add(AfterSaleUnits(tenant_id=tenant, order_id=order.id, sku_id=sku_id, qty=line_qty,
                                               claimed=0, refunded_qty=0, refunded_fen=0))
        except IntegrityError:
            pass  # another request made the row first
    res = await uow.session.execute(
        update(AfterSaleUnits).where(AfterSaleUnits.tenant_id == tenant, AfterSaleUnits.order_id == order.id,
                                     AfterSaleUnits.sku_id == sku_id,
                                     AfterSaleUnits.claimed + qty <= AfterSaleUnits.qty)
        .values(claimed=AfterSaleUnits.claimed + qty).execution_options(synchronize_session=False))
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


async def open_request(
    uow: UnitOfWork, tenant: int, member_id: int, order_id: int, picks: Sequence[tuple[int, int]], *,
    kind: str, reason_code: int, photos: Sequence[tuple[str, str]] = (), now: datetime, account: int = 0,
) -> RequestView:
    """The member's request for `picks` ((sku id, units), …) of their order. Refused, with
    nothing written (the caller rolls back), when the order takes no such request now,
    the lines or units are not there, the reason is unknown or there are too many photos."""
    order = await member_order(uow, tenant, member_id, order_id)
    kinds = rules.kinds_for(order.status)
    if not kinds:
        raise AfterSaleRefusedError("order_state", status=order.status)
    if kind not in kinds:
        raise AfterSaleRefusedError("kind")
    reason = rules.reason_text(reason_code)
    if reason is None:
        raise AfterSaleRefusedError("reason")
    if len(photos) > rules.MAX_PHOTOS:
        raise AfterSaleRefusedError("photos")
    wanted: dict[int, int] = {}
    for sku_id, qty in picks:
        wanted[sku_id] = wanted.get(sku_id, 0) + qty
    if not wanted or any(q <= 0 for q in wanted.values()):
        raise AfterSaleRefusedError("no_lines")
    lines = {e.sku_id: e for e in await eligible_lines(uow, tenant, order)}
    for sku_id, qty in wanted.items():
        if sku_id not in lines:
            raise AfterSaleRefusedError("no_lines")
    for sku_id in sorted(wanted):   # a fixed order: two requests never wait on each other's rows
        e = lines[sku_id]
        if not await _claim(uow, tenant, order, sku_id, e.qty, wanted[sku_id]):
            left = (await eligible_lines(uow, tenant, order))
            raise AfterSaleRefusedError("qty", left=next(x.available for x in left if x.sku_id == sku_id))
    s = await settings_of(uow, tenant)
    row = AfterSale(tenant_id=tenant, order_id=order.id, order_no=order.order_no, member_id=member_id, kind=kind,
                    status=St.PENDING, reason_code=reason_code, reason=reason, refund_fen=0, out_refund_no="",
                    reject_reason="", return_tracking="", resellable=False,
                    deadline_at=rules.deadline(now, s.answer_days), created_at=now, updated_at=now)
    uow.session.add(row)
    await uow.session.flush()
    for sku_id in sorted(wanted):
        e = lines[sku_id]
        uow.session.add(AfterSaleLine(tenant_id=tenant, request_id=row.id, sku_id=sku_id, title=e.title[:120],
                                      spec=e.spec[:60], qty=wanted[sku_id], refund_fen=0))
    for media_id, pic_url in photos:
        uow.session.add(AfterSalePhoto(tenant_id=tenant, request_id=row.id, media_id=media_id[:128],
                                       pic_url=pic_url[:512], content_type="", created_at=now))
    uow.session.add(AfterSaleLog(tenant_id=tenant, request_id=row.id, actor=f"member:{member_id}", src="",
                                 dst=St.PENDING, note=reason, at=now))
    await uow.session.flush()
    uow.audit(tenant, f"member:{member_id}", "aftersale.pending", f"aftersale:{row.id}",
              after={"order_no": order.order_no, "kind": kind, "lines": {str(k): v for k, v in wanted.items()}})
    uow.emit(_changed(row, St.PENDING, note=reason))
    if photos:
        uow.emit(AfterSalePhotosSent(tenant_id=tenant, request_id=row.id, account_id=account))
    return await get_request(uow, tenant, row.id)


async def estimate(uow: UnitOfWork, tenant: int, order: OrderView, picks: Sequence[tuple[int, int]]) -> int:
    """What the picked units would refund now (shown before the member submits)."""
    units = await _units(uow, tenant, order.id)
    pays = dict(zip([ln.sku_id for ln in order.lines], await _line_pays(uow, tenant, order), strict=True))
    qtys = {ln.sku_id: ln.qty for ln in order.lines}
    total = 0
    for sku_id, qty in picks:
        if sku_id in pays:
            done = units[sku_id].refunded_qty if sku_id in units else 0
            total += rules.units_refund(pays[sku_id], qtys[sku_id], done, min(qty, qtys[sku_id] - done))
    return total


async def approve(uow: UnitOfWork, tenant: int, request_id: int, *, actor: str, now: datetime,
                  by_timer: bool = False) -> RequestView:
    """待审核 → 待寄回 (a return: the member has `return_days` to send it) or, refund only,
    → 退款中 at once."""
    row = await _row(uow, tenant, request_id)
    if row.status != St.PENDING:
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(row.status, row.status))
    note = "超时自动同意" if by_timer else ""
    if row.kind in (Kind.RETURN, Kind.EXCHANGE):
        s = await settings_of(uow, tenant)
        await _move(uow, row, St.PENDING, St.AWAIT_RETURN, actor=actor, now=now, note=note, by_timer=by_timer,
                    deadline_at=rules.deadline(now, s.return_days))
    else:
        await _refund(uow, row, St.PENDING, actor=actor, now=now, note=note, by_timer=by_timer)
    return await get_request(uow, tenant, request_id)


async def reject(uow: UnitOfWork, tenant: int, request_id: int, *, reason: str, actor: str, now: datetime
                 ) -> RequestView:
    why = " ".join(reason.split())
    if not (2 <= len(why) <= 80):
        raise AfterSaleRefusedError("reject_reason")
    row = await _row(uow, tenant, request_id)
    await _move(uow, row, St.PENDING, St.REJECTED, actor=actor, now=now, note=why, reject_reason=why)
    return await get_request(uow, tenant, request_id)


async def withdraw(uow: UnitOfWork, tenant: int, member_id: int, request_id: int, *, now: datetime) -> RequestView:
    """The member withdraws a request not yet sent back (待审核 or 待寄回)."""
    row = await _row(uow, tenant, request_id, member_id=member_id)
    if row.status not in (St.PENDING, St.AWAIT_RETURN):
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(row.status, row.status))
    await _move(uow, row, St(row.status), St.WITHDRAWN, actor=f"member:{member_id}", now=now)
    return await get_request(uow, tenant, request_id)


async def awaiting_return(uow: UnitOfWork, tenant: int, member_id: int) -> list[int]:
    return list((await uow.session.scalars(select(AfterSale.id).where(
        AfterSale.tenant_id == tenant, AfterSale.member_id == member_id, AfterSale.status == St.AWAIT_RETURN)
        .order_by(AfterSale.id))).all())


async def send_back(uow: UnitOfWork, tenant: int, member_id: int, request_id: int | None, tracking: str, *,
                    now: datetime) -> RequestView:
    """待寄回 → 已寄回 with the return's tracking number (the member's only return waiting,
    or the one named)."""
    no = rules.clean_tracking(tracking)
    if no is None:
        raise AfterSaleRefusedError("tracking")
    if request_id is None:
        waiting = await awaiting_return(uow, tenant, member_id)
        if not waiting:
            raise AfterSaleRefusedError("state", status="没有待寄回的售后")
        if len(waiting) > 1:
            raise AfterSaleRefusedError("ambiguous")
        request_id = waiting[0]
    row = await _row(uow, tenant, request_id, member_id=member_id)
    await _move(uow, row, St.AWAIT_RETURN, St.RETURNED, actor=f"member:{member_id}", now=now, note=no,
                return_tracking=no)
    return await get_request(uow, tenant, request_id)


async def receive(uow: UnitOfWork, tenant: int, request_id: int, *, resellable: bool, actor: str, now: datetime
                  ) -> RequestView:
    """已寄回 → 已收货; goods the merchant marks resellable go back to sellable stock (once:
    the move is conditional)."""
    row = await _row(uow, tenant, request_id)
    await _move(uow, row, St.RETURNED, St.RECEIVED, actor=actor, now=now,
                note="可二次销售，已入库" if resellable else "不可二次销售", resellable=resellable)
    if resellable:
        for ln in (await uow.session.scalars(select(AfterSaleLine).where(AfterSaleLine.request_id == row.id))).all():
            await uow.catalog.restock(tenant, ln.sku_id, ln.qty)
    return await get_request(uow, tenant, request_id)


async def reship(uow: UnitOfWork, tenant: int, request_id: int, *, tracking: str, actor: str, now: datetime
                 ) -> RequestView:
    """An exchange whose goods are back: 已收货 → 已换货, the replacement taken from stock
    (one conditional decrement per line: out of stock refuses and changes nothing) and
    sent with `tracking`. No money moves."""
    no = rules.clean_tracking(tracking)
    if no is None:
        raise AfterSaleRefusedError("tracking")
    row = await _row(uow, tenant, request_id)
    if row.kind != Kind.EXCHANGE or row.status != St.RECEIVED:
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(row.status, row.status))
    await _move(uow, row, St.RECEIVED, St.RESHIPPED, actor=actor, now=now, note=no)
    for ln in (await uow.session.scalars(select(AfterSaleLine).where(AfterSaleLine.request_id == row.id)
                                         .order_by(AfterSaleLine.sku_id))).all():
        if not await uow.catalog.reserve(tenant, ln.sku_id, ln.qty):
            raise AfterSaleRefusedError("stock", left=await uow.catalog.stock(tenant, ln.sku_id))
    return await get_request(uow, tenant, request_id)


async def refund(uow: UnitOfWork, tenant: int, request_id: int, *, actor: str, now: datetime) -> RequestView:
    """已收货 → 退款中 (a return whose goods are back)."""
    row = await _row(uow, tenant, request_id)
    if row.status != St.RECEIVED:
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(row.status, row.status))
    await _refund(uow, row, St.RECEIVED, actor=actor, now=now)
    return await get_request(uow, tenant, request_id)


async def _refund(uow: UnitOfWork, row: AfterSale, src: St, *, actor: str, now: datetime, note: str = "",
                  by_timer: bool = False) -> None:
    """Move to 退款中 and ask the core for the money the units paid (its refund path:
    audited, at most what is left to refund, the gateway called from the outbox with a
    fixed out_refund_no). The units' share is taken under the line's row lock, so requests
    of one line refunded at once each get their own units' cumulative share."""
    tenant = row.tenant_id
    # claim the request first (one conditional UPDATE): a second admin or worker stops here
    await _move(uow, row, src, St.REFUNDING, actor=actor, now=now, note=note, by_timer=by_timer, emit=False)
    order = await load_order(uow, tenant, row.order_id)
    pays = dict(zip([ln.sku_id for ln in order.lines], await _line_pays(uow, tenant, order), strict=True))
    qtys = {ln.sku_id: ln.qty for ln in order.lines}
    lines = (await uow.session.scalars(select(AfterSaleLine).where(AfterSaleLine.request_id == row.id)
                                       .order_by(AfterSaleLine.sku_id))).all()
    total = 0
    for ln in lines:
        u = await uow.session.scalar(select(AfterSaleUnits).where(
            AfterSaleUnits.tenant_id == tenant, AfterSaleUnits.order_id == row.order_id,
            AfterSaleUnits.sku_id == ln.sku_id).with_for_update().execution_options(populate_existing=True))
        assert u is not None
        amount = rules.units_refund(pays.get(ln.sku_id, 0), qtys.get(ln.sku_id, ln.qty), u.refunded_qty, ln.qty)
        await uow.session.execute(
            update(AfterSaleUnits).where(AfterSaleUnits.id == u.id)
            .values(refunded_qty=AfterSaleUnits.refunded_qty + ln.qty,
                    refunded_fen=AfterSaleUnits.refunded_fen + amount).execution_options(synchronize_session=False))
        ln.refund_fen = amount
        total += amount
    if row.kind == Kind.REFUND and order.status == "paid":   # never shipped: the units stay in the warehouse
        for ln in lines:
            await return_unshipped_units(uow, tenant, order.id, ln.sku_id, ln.qty)
        units = {u.sku_id: u for u in (await uow.session.scalars(
            select(AfterSaleUnits).where(AfterSaleUnits.tenant_id == tenant, AfterSaleUnits.order_id == order.id)
            .execution_options(populate_existing=True))).all()}
        if all(sku in units and units[sku].refunded_qty >= q for sku, q in qtys.items()):
            total += max(order.paid_fen - sum(pays.values()), 0)   # never shipped: the shipping fee too
    await uow.session.execute(update(AfterSale).where(AfterSale.id == row.id).values(refund_fen=total)
                              .execution_options(synchronize_session=False))
    await uow.session.flush()
    await uow.session.refresh(row)
    uow.emit(_changed(row, St.REFUNDING, note=note, by_timer=by_timer))
    if total <= 0:   # the units were paid with points or a coupon alone: nothing goes through the gateway
        await _move(uow, row, St.REFUNDING, St.REFUNDED, actor=actor, now=now, note="无需退款金额")
        return
    view = await request_refund(uow, tenant, row.order_id, amount_fen=total, reason=f"售后{row.id}", actor=actor,
                                now=now)
    await uow.session.execute(update(AfterSale).where(AfterSale.id == row.id)
                              .values(out_refund_no=view.out_refund_no).execution_options(synchronize_session=False))


async def refund_failed(uow: UnitOfWork, tenant: int, row_or_view: AfterSale | RequestView) -> bool:
    """Whether the gateway refused or closed the request's refund (it stays 退款中 until
    the merchant asks again)."""
    if row_or_view.status != St.REFUNDING or not row_or_view.out_refund_no:
        return False
    refund = await uow.payments.refund_by_no(tenant, row_or_view.out_refund_no)
    return refund is not None and refund.status == "failed"


async def retry_refund(uow: UnitOfWork, tenant: int, request_id: int, *, actor: str, now: datetime) -> RequestView:
    """Ask the core again for a request's refund the gateway refused (a new out_refund_no:
    the failed one is never reused). The old number is swapped out with one conditional
    UPDATE first, so two admins retrying at once ask once."""
    row = await _row(uow, tenant, request_id)
    if not await refund_failed(uow, tenant, row):
        raise AfterSaleRefusedError("state", status=rules.LABELS.get(row.status, row.status))
    old = row.out_refund_no
    res = await uow.session.execute(
        update(AfterSale).where(AfterSale.id == row.id, AfterSale.status == St.REFUNDING,
                                AfterSale.out_refund_no == old)
        .values(out_refund_no="", updated_at=now).execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise AfterSaleRefusedError("state", status=rules.LABELS[St.REFUNDING])
    view = await request_refund(uow, tenant, row.order_id, amount_fen=row.refund_fen, reason=f"售后{row.id}",
                                actor=actor, now=now)
    await uow.session.execute(update(AfterSale).where(AfterSale.id == row.id)
                              .values(out_refund_no=view.out_refund_no).execution_options(synchronize_session=False))
    uow.session.add(AfterSaleLog(tenant_id=tenant, request_id=row.id, actor=actor[:80], src=St.REFUNDING,
                                 dst=St.REFUNDING, note=f"重新退款（{old} 失败）"[:120], at=now))
    return await get_request(uow, tenant, request_id)


async def on_refunded(uow: UnitOfWork, tenant: int, out_refund_no: str, *, now: datetime) -> bool:
    """The core settled a refund: if one of ours, 退款中 → 已退款 (once)."""
    if not out_refund_no:
        return False
    row = await uow.session.scalar(select(AfterSale).where(AfterSale.tenant_id == tenant,
                                                           AfterSale.out_refund_no == out_refund_no))
    if row is None or row.status != St.REFUNDING:
        return False
    try:
        await _move(uow, row, St.REFUNDING, St.REFUNDED, actor="gateway", now=now)
    except AfterSaleRefusedError:
        return False
    return True


# -- photos -----------------------------------------------------------------------------------

async def photos_to_fetch(uow: UnitOfWork, tenant: int, request_id: int) -> list[tuple[int, str]]:
    return [(p.id, p.media_id) for p in (await uow.session.scalars(select(AfterSalePhoto).where(
        AfterSalePhoto.tenant_id == tenant, AfterSalePhoto.request_id == request_id,
        AfterSalePhoto.data.is_(None)))).all()]


async def keep_photo(uow: UnitOfWork, tenant: int, photo_id: int, data: bytes, content_type: str, *,
                     now: datetime) -> None:
    await uow.session.execute(update(AfterSalePhoto).where(AfterSalePhoto.tenant_id == tenant,
                                                           AfterSalePhoto.id == photo_id,
                                                           AfterSalePhoto.data.is_(None))
                              .values(data=data, content_type=content_type[:40], fetched_at=now)
                              .execution_options(synchronize_session=False))


# -- timers -----------------------------------------------------------------------------------

async def _due(uows: UowFactory, status: St, now: datetime, batch: int) -> list[tuple[int, int]]:
    async with uows() as uow:
        return [(t, i) for t, i in (await uow.session.execute(
            select(AfterSale.tenant_id, AfterSale.id).where(AfterSale.status == status,
                                                            AfterSale.deadline_at <= now)
            .order_by(AfterSale.deadline_at).limit(batch))).all()]


async def approve_unanswered(uows: UowFactory, now: datetime, *, batch: int = 200) -> int:
    """The merchant didn't answer in time: approve (a return waits for the goods; refund
    only asks for the money). One request per transaction; a request someone else moved
    meanwhile is skipped, so several workers may sweep at once."""
    done = 0
    for tenant, rid in await _due(uows, St.PENDING, now, batch):
        async with uows() as uow:
            try:
                await approve(uow, tenant, rid, actor="system:timer", now=now, by_timer=True)
            except MallError as exc:
                log.info("aftersale.auto_approve.skipped", extra={"tenant": tenant, "request": rid,
                                                                  "code": exc.code})
                continue
            await uow.commit()
            done += 1
    return done


async def close_unreturned(uows: UowFactory, now: datetime, *, batch: int = 200) -> int:
    """The goods didn't come back in time: close (the units go back to the order line)."""
    done = 0
    for tenant, rid in await _due(uows, St.AWAIT_RETURN, now, batch):
        async with uows() as uow:
            row = await _row(uow, tenant, rid)
            try:
                await _move(uow, row, St.AWAIT_RETURN, St.CLOSED, actor="system:timer", now=now,
                            note="超时未寄回", by_timer=True)
            except AfterSaleRefusedError:
                continue
            await uow.commit()
            done += 1
    return done
