"""The pay module's jobs (I/O around social_mall/payments/reconcile.py):

* `sweep_pending`: payments still unpaid at a real gateway after the notify window are
  queried (lost notifies happen). Paid there → applied exactly like a notify (an order
  closed meanwhile is refunded by the core); unpaid there but closed here → closed there.
* `reconcile_day`: one day's trade bill (APIv3) or per-payment queries (APIv2) against our
  payments and refunds, at each enabled merchant of the tenant (its bill against the orders
  paid to it); one report per merchant (with every mismatch) is stored in pay_reconciliations.

Both stay inside one tenant: a query answer settles only the payment that was asked about,
of the tenant whose account asked; a bill row is matched only with that tenant's payments
and refunds (anything else is reported as unknown).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Any

from handlers.context import Services
from social_mall.errors import MallError, NotFoundError
from social_mall.payments.reconcile import (
    BillRow,
    OurPayment,
    OurRefund,
    SweepAction,
    parse_trade_bill,
    reconcile,
    sweep_action,
)
from social_mall.payments.service import apply_transaction, record_rejected
from social_mall.payments.checks import (
    Merchant, day_records, merchant_payment, merchant_refund, merchants, note_check, overdue_payments, save_report,
    unreconciled,
)

log = logging.getLogger(__name__)

REAL_GATEWAYS = ("wxpay_v3", "wxpay_v2")
CST = timezone(timedelta(hours=8))
MAX_AGE = timedelta(days=2)


async def sweep_pending(svc: Services, *, limit: int = 100) -> int:
    """Query the gateway for overdue unpaid payments; returns how many were looked at."""
    now = svc.clock()
    window = timedelta(seconds=svc.settings.pay_notify_window_seconds)
    async with svc.uows() as uow:
        items = await overdue_payments(uow, REAL_GATEWAYS, now - window, now - MAX_AGE, limit)
    for tenant_id, out_trade_no, order_status, account, merchant in items:
        tenant = await svc.for_order(await svc.tenant_by_id(tenant_id), account, merchant)  # its merchant
        gw: Any = svc.gateway(tenant)
        if not hasattr(gw, "query"):
            continue
        try:
            status = await gw.query(out_trade_no)
        except MallError as exc:
            log.warning("pay.sweep.query_failed", extra={"tenant": tenant.code, "out_trade_no": out_trade_no,
                                                          "error": exc.code})
            continue
        action = sweep_action(status.trade_state, order_status)
        final = action != SweepAction.WAIT
        state = status.trade_state
        if action == SweepAction.CLOSE:
            try:
                await gw.close(out_trade_no)
                state = "CLOSED"
            except MallError as exc:  # e.g. ORDER_PAID in the meantime: the next sweep applies it
                log.warning("pay.sweep.close_failed", extra={"tenant": tenant.code, "out_trade_no": out_trade_no,
                                                              "error": exc.code})
                continue
        async with svc.uows() as uow:
            if action == SweepAction.APPLY and status.transaction is not None:
                try:
                    if status.transaction.out_trade_no != out_trade_no:  # an answer about another payment
                        raise NotFoundError("payment", status.transaction.out_trade_no)
                    # settles only this tenant's payment, and only if the answer names its account
                    outcome = await apply_transaction(uow, status.transaction, tenant=tenant.id, gateway=gw.name,
                                                      mchid=gw.mchid, appid=gw.appid, now=svc.clock(),
                                                      also_appids=svc.bound_appids())
                    log.info("pay.sweep.recovered", extra={"tenant": tenant.code, "out_trade_no": out_trade_no,
                                                            "outcome": outcome.value})
                except MallError as exc:
                    await uow.rollback()
                    await record_rejected(uow, gateway=gw.name, tenant=tenant.id, out_trade_no=out_trade_no,
                                          reason="query:" + exc.code, amount_fen=status.transaction.amount_fen,
                                          event_id=status.transaction.event_id)
                    log.error("pay.sweep.mismatch", extra={"tenant": tenant.code, "out_trade_no": out_trade_no,
                                                           "reason": exc.code})
            await note_check(uow, tenant.id, out_trade_no, state, final=final, now=now)
            await uow.commit()
    if items:
        svc.outbox.kick()
    return len(items)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, dtime(0, 0), CST).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


async def reconcile_day(svc: Services, tenant_id: int, day: date) -> tuple[str, list[dict[str, object]]]:
    """Reconcile one tenant's day (Asia/Shanghai) at every enabled merchant (one report each,
    see `reconcile_merchant_day`); returns the worst status and every mismatch, each naming
    its merchant (`mchid`)."""
    async with svc.uows() as uow:
        found = await merchants(uow, tenant_id)
    worst, everything = "ok", []
    for m in found:
        status, mismatches = await reconcile_merchant_day(svc, m, day)
        worst = max(worst, status, key=_SEVERITY.index)
        everything.extend({**x, "mchid": m.mch_id} for x in mismatches)
    return worst, everything


_SEVERITY = ("ok", "mismatch", "error")


async def reconcile_merchant_day(svc: Services, m: Merchant, day: date) -> tuple[str, list[dict[str, object]]]:
    """One merchant's day: its trade bill (APIv3) or per-payment queries (APIv2) against the
    payments and refunds of the orders paid to it; returns (status, mismatches) as stored."""
    tenant = await svc.for_order(await svc.tenant_by_id(m.tenant_id), 0, m.id)
    gw: Any = svc.gateway(tenant)
    start, end = day_bounds(day)
    bill_date = day.isoformat()
    async with svc.uows() as uow:
        paid, refunds, created = await day_records(uow, m, start, end)
    ours = {p.out_trade_no: OurPayment(p.out_trade_no, p.amount_fen, p.status, p.transaction_id) for p in paid}
    status, mismatches = "error", []
    try:
        bill: list[BillRow]
        if hasattr(gw, "trade_bill"):
            bill = parse_trade_bill(await gw.trade_bill(bill_date))
        else:  # APIv2: ask about each payment of the day
            bill = []
            for p in created:
                st = await gw.query(p.out_trade_no)
                if st.transaction is not None:
                    bill.append(BillRow(p.out_trade_no, st.transaction.transaction_id, "SUCCESS",
                                        st.transaction.amount_fen, "", 0, ""))
        async with svc.uows() as uow:  # bill rows paid on another day here, or still unpaid here
            for row in bill:
                if row.trade_state == "SUCCESS" and row.out_trade_no not in ours:
                    known = await merchant_payment(uow, m, row.out_trade_no)
                    if known is not None:
                        ours[known.out_trade_no] = OurPayment(known.out_trade_no, known.amount_fen, known.status,
                                                              known.transaction_id)
            for row in bill:
                if row.trade_state == "REFUND" and row.out_refund_no and all(
                        r.out_refund_no != row.out_refund_no for r in refunds):
                    r = await merchant_refund(uow, m, row.out_refund_no)
                    if r is not None:
                        refunds.append(r)
        found = reconcile(bill, ours.values(),
                          [OurRefund(r.out_refund_no, r.amount_fen, r.status) for r in refunds])
        mismatches = [x.as_dict() for x in found]
        status = "mismatch" if found else "ok"
    except (MallError, ValueError) as exc:
        log.error("pay.reconcile.failed", extra={"tenant": tenant.code, "merchant": m.id, "bill_date": bill_date,
                                                 "error": getattr(exc, "code", type(exc).__name__)})
    async with svc.uows() as uow:
        await save_report(uow, m, bill_date, status=status, checked=len(ours), mismatches=mismatches,
                          now=svc.clock())
        await uow.commit()
    level = logging.WARNING if status != "ok" else logging.INFO
    log.log(level, "pay.reconcile.done", extra={"tenant": tenant.code, "merchant": m.id, "bill_date": bill_date,
                                                "status": status, "mismatches": len(mismatches)})
    return status, mismatches


BILL_READY_HOUR = 10  # WeChat Pay publishes the previous day's bill after 10:00 (Beijing)


async def reconcile_yesterday(svc: Services) -> int:
    """The daily job (runs hourly, does each enabled merchant's yesterday once, after 10:00
    Beijing); returns how many merchants were due."""
    now_cst = svc.clock().astimezone(CST)
    if now_cst.hour < BILL_READY_HOUR:
        return 0
    day = now_cst.date() - timedelta(days=1)
    async with svc.uows() as uow:
        todo = await unreconciled(uow, day.isoformat())
    for m in todo:
        key = f"pay:reconcile:{m.tenant_id}:{m.id}:{day.isoformat()}"
        if not await svc.kv.set_nx(key, "1", ttl=3600):
            continue  # another worker has it
        await reconcile_merchant_day(svc, m, day)
    return len(todo)
