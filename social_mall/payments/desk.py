"""Payments in batches: opening payments and applying pay notifies under a crowd
(social_mall/desk.py). After a flash of orders come as many pay pages and, seconds later,
as many notifies; one transaction each spends a pool connection, a commit and ~3
statements (open) or ~6 (apply) through the ORM per order.

`open_many`: INSERT … ON CONFLICT DO NOTHING of the lot's payments (one statement), then
one SELECT of them by number: what `service.open_payment` answers, for a lot.

`apply_many`: what `service.apply_transaction` does for a lot of verified notifies: one
SELECT of their payments; the checks in memory (same errors, nothing written for a
refused one); the payments moved created → paid with one conditional UPDATE and their
orders pending → paid with another (PostgreSQL: arrays unnest()ed, one statement shape);
every notify's verdict in pay_notifications (one INSERT, the audit trail); order.paid
outbox rows (one INSERT). A second notify of one payment in the same lot is a duplicate,
as it would be one after the other. Anything unusual (a payment settled by another worker
meanwhile, an order closed before its money came: refunded by the single path) makes the
lot fail as a whole: rolled back, each notify then goes through `apply_transaction` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, DateTime, String, Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from social_mall.desk import BatchFailed, Desk, desk_of
from social_mall.errors import AmountMismatchError, MallError, MerchantMismatchError, NotFoundError
from social_mall.events import OrderPaid
from social_mall.orders.rules import OrderStatus
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import PaymentView, PayOutcome, apply_transaction, open_payment
from social_mall.views import OrderView
from storage.channel_repos import ChannelRepo
from storage.models import Order, Payment, PayNotification, utcnow
from storage.uow import UnitOfWork, UowFactory

OPEN_DESK, APPLY_DESK = "payments.open", "payments.apply"
_PAY, _ORDERS = cast(Table, Payment.__table__), cast(Table, Order.__table__)
_NOTES = cast(Table, PayNotification.__table__)


@dataclass(frozen=True)
class OpenRequest:
    order: OrderView
    gateway: str


@dataclass(frozen=True)
class ApplyRequest:
    tx: Transaction
    tenant: int
    gateway: str
    mchid: str
    appid: str
    now: datetime
    also_appids: tuple[str, ...] = ()   # other apps bound to the merchant (apply_transaction's)


_BY_NUMBERS = (
    select(_PAY.c.id, _PAY.c.tenant_id, _PAY.c.order_id, _PAY.c.out_trade_no, _PAY.c.amount_fen, _PAY.c.status,
           _PAY.c.gateway)
    .where(_PAY.c.out_trade_no.in_(bindparam("nos", expanding=True)))
)
_TS = DateTime(timezone=True)
_PG_SETTLE = text(
    "UPDATE payments SET status = 'paid', transaction_id = w.txid, payer = w.payer, paid_at = w.at "
    "FROM unnest(:ids, :txids, :payers, :ats) AS w(id, txid, payer, at) "
    "WHERE payments.id = w.id AND payments.status = 'created' RETURNING payments.id"
).bindparams(bindparam("ids", type_=ARRAY(BigInteger())), bindparam("txids", type_=ARRAY(String())),
             bindparam("payers", type_=ARRAY(String())), bindparam("ats", type_=ARRAY(_TS)))
_PG_PAY_ORDERS = text(
    "UPDATE orders SET status = 'paid', paid_at = w.at, paid_fen = w.fen "
    "FROM unnest(:ids, :fens, :ats) AS w(id, fen, at) "
    "WHERE orders.id = w.id AND orders.tenant_id = :tenant AND orders.status = 'pending_payment' "
    "RETURNING orders.id, orders.order_no, orders.member_id, orders.channel, orders.fulfilment"
).bindparams(bindparam("ids", type_=ARRAY(BigInteger())), bindparam("fens", type_=ARRAY(BigInteger())),
             bindparam("ats", type_=ARRAY(_TS)))
_SETTLE = (update(_PAY).where(_PAY.c.id == bindparam("pid"), _PAY.c.status == "created")
           .values(status="paid", transaction_id=bindparam("txid"), payer=bindparam("payer"),
                   paid_at=bindparam("at")))
_PAY_ORDER = (update(_ORDERS).where(_ORDERS.c.id == bindparam("oid"), _ORDERS.c.tenant_id == bindparam("tenant"),
                                    _ORDERS.c.status == OrderStatus.PENDING_PAYMENT)
              .values(status=OrderStatus.PAID, paid_at=bindparam("at"), paid_fen=bindparam("fen"))
              .returning(_ORDERS.c.id, _ORDERS.c.order_no, _ORDERS.c.member_id, _ORDERS.c.channel,
                         _ORDERS.c.fulfilment))


def _pg(uow: UnitOfWork) -> bool:
    bind = uow.session.bind
    return bind is not None and bind.dialect.name == "postgresql"


async def open_many(uow: UnitOfWork, reqs: Sequence[OpenRequest]) -> list[PaymentView | MallError]:
    """The lot's payments, created unless they exist, in the caller's transaction."""
    s = uow.session
    rows, seen = [], set()
    now = utcnow()
    for q in reqs:
        o = q.order
        if o.order_no not in seen:
            seen.add(o.order_no)
            rows.append({"tenant_id": o.tenant_id, "order_id": o.id, "out_trade_no": o.order_no,
                         "gateway": q.gateway, "amount_fen": o.total_fen, "status": "created",
                         "transaction_id": "", "payer": "", "created_at": now, "paid_at": None})
    insert = pg_insert if _pg(uow) else sqlite_insert
    await s.execute(insert(_PAY).on_conflict_do_nothing(index_elements=["out_trade_no"]), rows)
    found = {r.out_trade_no: r for r in (await s.execute(_BY_NUMBERS, {"nos": sorted(seen)})).all()}
    out: list[PaymentView | MallError] = []
    for q in reqs:
        r = found.get(q.order.order_no)
        if r is None or r.order_id != q.order.id or r.tenant_id != q.order.tenant_id:
            out.append(NotFoundError("payment", q.order.order_no))
        else:
            out.append(PaymentView(r.out_trade_no, r.amount_fen, r.status, r.gateway))
    return out


async def apply_many(uow: UnitOfWork, reqs: Sequence[ApplyRequest]) -> list[PayOutcome | MallError]:
    """`apply_transaction` for a lot, in the caller's transaction (uncommitted).
    Raises BatchFailed when the lot can't be written as a whole (then roll back)."""
    s = uow.session
    nos = sorted({q.tx.out_trade_no for q in reqs})
    pays = {r.out_trade_no: r for r in (await s.execute(_BY_NUMBERS, {"nos": nos})).all()}
    out: list[PayOutcome | MallError] = []
    notes: list[dict[str, Any]] = []
    settle: dict[int, tuple[ApplyRequest, Any]] = {}   # payment id → its applying notify
    for q in reqs:
        tx = q.tx
        if tx.mchid != q.mchid:
            out.append(MerchantMismatchError("mchid"))
            continue
        if tx.appid != q.appid and (not tx.appid or (tx.appid not in q.also_appids
                                                     and not await ChannelRepo(s).has_app_id(q.tenant, tx.appid))):
            out.append(MerchantMismatchError("appid"))   # as apply_transaction: the tenant's own apps pass
            continue
        p = pays.get(tx.out_trade_no)
        if p is None or p.tenant_id != q.tenant:
            out.append(NotFoundError("payment", tx.out_trade_no))
            continue
        if tx.amount_fen != p.amount_fen:
            out.append(AmountMismatchError(tx.out_trade_no, p.amount_fen, tx.amount_fen))
            continue
        # as apply_transaction: another merchant of the same tenant never pays this order
        if await uow.payments.merchant_mchid(q.tenant, p.order_id) not in (None, tx.mchid):
            out.append(MerchantMismatchError("merchant"))
            continue
        if tx.trade_state != "SUCCESS":
            verdict, reason = PayOutcome.NOT_SUCCESS, tx.trade_state
        elif p.status != "created" or p.id in settle:
            verdict, reason = PayOutcome.DUPLICATE, ""
        else:
            verdict, reason = PayOutcome.APPLIED, ""
            settle[p.id] = (q, p)
        out.append(verdict)
        notes.append({"tenant_id": q.tenant, "gateway": q.gateway, "event_id": tx.event_id[:64],
                      "out_trade_no": tx.out_trade_no, "amount_fen": tx.amount_fen, "verdict": verdict,
                      "reason": reason, "received_at": utcnow()})
    if settle:
        await _settle(uow, settle)
    if notes:
        await s.execute(_NOTES.insert(), notes)
    return out


async def _settle(uow: UnitOfWork, settle: dict[int, tuple[ApplyRequest, Any]]) -> None:
    s = uow.session
    ids = sorted(settle)
    paid: list[Any] = []
    if _pg(uow):
        got = (await s.execute(_PG_SETTLE, {
            "ids": ids, "txids": [settle[i][0].tx.transaction_id for i in ids],
            "payers": [settle[i][0].tx.payer for i in ids], "ats": [settle[i][0].now for i in ids]})).all()
        if len(got) != len(ids):
            raise BatchFailed("a payment was settled meanwhile")
        by_tenant: dict[int, list[int]] = {}
        for i in ids:
            by_tenant.setdefault(settle[i][0].tenant, []).append(i)
        for tenant, pids in by_tenant.items():
            paid += (await s.execute(_PG_PAY_ORDERS, {
                "tenant": tenant, "ids": [settle[i][1].order_id for i in pids],
                "fens": [settle[i][0].tx.amount_fen for i in pids], "ats": [settle[i][0].now for i in pids]})).all()
    else:
        for i in ids:
            q, p = settle[i]
            settled = await s.execute(_SETTLE, {"pid": i, "txid": q.tx.transaction_id, "payer": q.tx.payer,
                                                 "at": q.now})
            if cast(Any, settled).rowcount != 1:
                raise BatchFailed("a payment was settled meanwhile")
            paid += (await s.execute(_PAY_ORDER, {"oid": p.order_id, "tenant": q.tenant, "at": q.now,
                                                  "fen": q.tx.amount_fen})).all()
    if len(paid) != len(ids):
        raise BatchFailed("an order closed before its money came (the single path refunds it)")
    fen = {settle[i][1].order_id: (settle[i][0].tenant, settle[i][0].tx.amount_fen) for i in ids}
    await uow.emit_many([
        OrderPaid(tenant_id=fen[o.id][0], order_id=o.id, order_no=o.order_no, member_id=o.member_id,
                  paid_fen=fen[o.id][1], channel=o.channel, fulfilment=o.fulfilment)
        for o in sorted(paid, key=lambda o: o.id)])


async def open_alone(uow: UnitOfWork, q: OpenRequest) -> PaymentView:
    return await open_payment(uow, q.order, gateway=q.gateway)


async def apply_alone(uow: UnitOfWork, q: ApplyRequest) -> PayOutcome:
    return await apply_transaction(uow, q.tx, tenant=q.tenant, gateway=q.gateway, mchid=q.mchid, appid=q.appid,
                                   now=q.now, also_appids=q.also_appids)


class OpenDesk(Desk[OpenRequest, PaymentView]):
    def __init__(self, uows: UowFactory) -> None:
        super().__init__("payments.open", uows, open_many, open_alone)


class ApplyDesk(Desk[ApplyRequest, PayOutcome]):
    def __init__(self, uows: UowFactory) -> None:
        super().__init__("payments.apply", uows, apply_many, apply_alone)


async def open_now(uow: UnitOfWork, q: OpenRequest) -> PaymentView:
    """`open_payment` through this deployment's desk, committed in the desk's transaction
    (a unit of work made outside a factory: in it, uncommitted)."""
    desk = desk_of(uow, OPEN_DESK, OpenDesk)
    return await (open_alone(uow, q) if desk is None else desk.submit(q))


async def apply_now(uow: UnitOfWork, q: ApplyRequest) -> PayOutcome:
    """`apply_transaction` through this deployment's desk, committed in the desk's
    transaction (a unit of work made outside a factory: in it, uncommitted)."""
    desk = desk_of(uow, APPLY_DESK, ApplyDesk)
    return await (apply_alone(uow, q) if desk is None else desk.submit(q))
