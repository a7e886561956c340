#!/usr/bin/env python3
"""Place-and-pay throughput through the commerce core (no HTTP), on both backends.

    .venv/bin/python bench/orders.py                       # sqlite and pg, ~10 s per scenario
    .venv/bin/python bench/orders.py --backends pg --seconds 5 --buyers 32

N concurrent buyers (asyncio tasks in this one process, pinned to core 0) each loop:

  place   one unit of work: place_order (address check, SKU read, conditional stock
          UPDATE, order + line INSERT, OrderPlaced outbox row), commit
  open    one unit of work: open_payment (the pay page's step), commit
  pay     one unit of work: apply_transaction with a verified Transaction (what the notify
          handler does after the RSA/AES-GCM checks), commit

Scenarios per backend:
  hot      every buyer orders the same SKU (stock big enough not to run out)
  spread   each order picks one of --skus SKUs at random
  sellout  the same SKU with only --sellout-stock units: exactly that many orders may
           succeed, the rest must be refused as out of stock

Printed per scenario: orders/s (placed and paid), p50/p99 of place, pay and the whole cycle
(ms), CPU of this process and of PostgreSQL per order, and sanity lines (stock conservation
placed == initial − final stock, every paid order paid once, outbox rows == events).
The unit-of-work factory uses the app's real outbox topic map (bot.build_app's registry).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from sqlalchemy import func, select  # noqa: E402

from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall.errors import OutOfStockError  # noqa: E402
from social_mall.members.service import add_address, resolve_member  # noqa: E402
from social_mall.orders.desk import DESK, PlaceRequest, place_plain  # noqa: E402
from social_mall.orders.service import place_order  # noqa: E402
from social_mall.payments.gateway import Transaction  # noqa: E402
from social_mall.payments.desk import ApplyRequest, OpenRequest, apply_now, open_now  # noqa: E402
from social_mall.payments.service import PayOutcome, apply_transaction, open_payment  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import Order, OrderLine, OutboxEvent, Payment, Sku  # noqa: E402
from storage.uow import UowFactory  # noqa: E402

CREDS = DemoCredentials(wechat_app_id="wx0123456789abcdef", wechat_token="bench_token",
                        wechat_aes_key="", wechat_app_secret="bench_secret")
TIMEOUT = timedelta(minutes=30)
PRICE = 1999


def topic_map() -> dict[str, list[str]]:
    """The outbox subscribers the running app would have (so rows are written as in production)."""
    from bot import build_app
    from handlers.context import SERVICES
    from social_mall.settings import Settings

    app = build_app(Settings(scheduler_enabled=False), auto_setup=False)  # not started: no I/O
    return {k: list(v) for k, v in app[SERVICES].registry.topic_map().items()}


SQL: dict[str, int] = {}
_SQL_SHAPE = re.compile(r"^\s*(\w+)(?:.*?\b(?:FROM|INTO|UPDATE)\s+([\w\".]+))?", re.S | re.I)


def count_sql(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
    """Statements by verb and table (a counter bump per statement: cheap)."""
    m = _SQL_SHAPE.match(statement)
    key = f"{m.group(1).upper()} {(m.group(2) or '').strip(chr(34))}".rstrip() if m else "?"
    SQL[key] = SQL.get(key, 0) + 1
    SQL["(all)"] = SQL.get("(all)", 0) + 1


@dataclass
class Stats:
    placed: int = 0
    paid: int = 0
    sold_out: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    place_lat: list[float] = field(default_factory=list)
    pay_lat: list[float] = field(default_factory=list)
    cycle_lat: list[float] = field(default_factory=list)
    paid_fen: int = 0
    per_buyer: dict[int, int] = field(default_factory=dict)


async def setup_backend(uows: UowFactory, buyers: int) -> tuple[Any, list[tuple[int, int]]]:
    async with uows() as uow:
        tenant = await seed_demo(uow, CREDS)
        await uow.commit()
    people = []
    async with uows() as uow:
        for i in range(buyers):
            member, _ = await resolve_member(uow, tenant.id, "mp", f"o_bench_buyer_{i:04d}")
            address = await add_address(uow, tenant.id, member.id, "李四", "13912345678", "北京市朝阳区建国路88号")
            people.append((member.id, address.id))
        await uow.commit()
    return tenant, people


async def make_skus(uows: UowFactory, tenant: Any, count: int, stock: int) -> list[int]:
    async with uows() as uow:
        page, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=None, offset=0, limit=20)
        skus = [Sku(tenant_id=tenant.id, product_id=page[i % len(page)].id, spec=f"压测款{i}",
                    price_fen=PRICE, stock=stock) for i in range(count)]
        await uow.catalog.add(*skus)
        await uow.commit()
        return [s.id for s in skus]


async def stock_total(uows: UowFactory, sku_ids: list[int]) -> int:
    async with uows() as uow:
        return int(await uow.session.scalar(select(func.sum(Sku.stock)).where(Sku.id.in_(sku_ids))) or 0)


async def census(uows: UowFactory, sku_ids: list[int]) -> dict[str, int]:
    """What the database says about the orders on these SKUs."""
    async with uows() as uow:
        s = uow.session
        order_ids = select(OrderLine.order_id).where(OrderLine.sku_id.in_(sku_ids)).scalar_subquery()
        return {
            "orders": int(await s.scalar(select(func.count()).select_from(Order).where(Order.id.in_(order_ids))) or 0),
            "units": int(await s.scalar(select(func.sum(OrderLine.qty)).where(OrderLine.sku_id.in_(sku_ids))) or 0),
            "paid_orders": int(await s.scalar(select(func.count()).select_from(Order).where(
                Order.id.in_(order_ids), Order.status == "paid")) or 0),
            "paid_fen": int(await s.scalar(select(func.sum(Order.paid_fen)).where(
                Order.id.in_(order_ids), Order.status == "paid")) or 0),
            "payments_paid": int(await s.scalar(select(func.count()).select_from(Payment).where(
                Payment.order_id.in_(order_ids), Payment.status == "paid")) or 0),
            "outbox_placed": int(await s.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.topic == "order.placed")) or 0),
            "outbox_paid": int(await s.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.topic == "order.paid")) or 0),
        }


async def buyer_loop(uows: UowFactory, tenant: Any, member_id: int, address_id: int, pick: Any,
                     deadline: float, budget: list[int], st: Stats, pay: bool, quit_on_sold_out: bool,
                     mode: str = "desk") -> None:
    perf = time.perf_counter
    while perf() < deadline and budget[0] > 0:
        budget[0] -= 1
        sku_id = pick()
        t0 = perf()
        now = datetime.now(timezone.utc)
        try:
            async with uows() as uow:
                try:
                    if mode == "desk":   # the order desk: queued, written in lots, committed there
                        order = await place_plain(uow, PlaceRequest(tenant.id, member_id, ((sku_id, 1),),
                                                                    address_id, now, TIMEOUT))
                    else:                # one transaction per order
                        order = await place_order(uow, tenant.id, member_id, [(sku_id, 1)],
                                                  address_id=address_id, now=now, timeout=TIMEOUT)
                except OutOfStockError:
                    await uow.rollback()
                    st.sold_out += 1
                    if quit_on_sold_out:
                        return
                    continue
                await uow.commit()
        except Exception as exc:  # noqa: BLE001 - counted and shown
            key = type(exc).__name__
            st.errors[key] = st.errors.get(key, 0) + 1
            st.examples.setdefault(key, str(exc).splitlines()[0][:160] if str(exc) else "")
            continue
        t1 = perf()
        st.placed += 1
        st.per_buyer[member_id] = st.per_buyer.get(member_id, 0) + 1
        st.place_lat.append(t1 - t0)
        if not pay:
            st.cycle_lat.append(t1 - t0)
            continue
        try:
            async with uows() as uow:
                if mode == "desk":
                    payment = await open_now(uow, OpenRequest(order, "sandbox"))
                else:
                    payment = await open_payment(uow, order, gateway="sandbox")
                await uow.commit()
            tx = Transaction(
                event_id=uuid.uuid4().hex, out_trade_no=payment.out_trade_no,
                transaction_id="42000" + uuid.uuid4().hex[:24], trade_state="SUCCESS",
                amount_fen=payment.amount_fen, mchid=CREDS.pay_mch_id, appid=CREDS.wechat_app_id,
                payer=f"o_bench_buyer_{member_id}", success_time=now.isoformat(),
            )
            async with uows() as uow:
                if mode == "desk":
                    outcome = await apply_now(uow, ApplyRequest(tx, tenant.id, "sandbox", CREDS.pay_mch_id,
                                                                CREDS.wechat_app_id, datetime.now(timezone.utc)))
                else:
                    outcome = await apply_transaction(uow, tx, tenant=tenant.id, gateway="sandbox",
                                                      mchid=CREDS.pay_mch_id, appid=CREDS.wechat_app_id,
                                                      now=datetime.now(timezone.utc))
                await uow.commit()
        except Exception as exc:  # noqa: BLE001
            key = "pay:" + type(exc).__name__
            st.errors[key] = st.errors.get(key, 0) + 1
            st.examples.setdefault(key, str(exc).splitlines()[0][:160] if str(exc) else "")
            continue
        t2 = perf()
        if outcome == PayOutcome.APPLIED:
            st.paid += 1
            st.paid_fen += payment.amount_fen
        else:
            st.errors[f"pay:{outcome}"] = st.errors.get(f"pay:{outcome}", 0) + 1
        st.pay_lat.append(t2 - t1)
        st.cycle_lat.append(t2 - t0)


async def run_scenario(name: str, uows: UowFactory, tenant: Any, people: list[tuple[int, int]],
                       args: argparse.Namespace) -> list[str]:
    if args.quiet_wait > 0:
        busy = await asyncio.to_thread(C.wait_quiet, args.quiet_wait)
        if busy > 0.3:
            print(f"# machine still busy ({busy:.2f} cores) after {args.quiet_wait:g}s: figures are noisy",
                  flush=True)
    if name == "hot":
        sku_ids = await make_skus(uows, tenant, 1, args.hot_stock)
    elif name == "spread":
        sku_ids = await make_skus(uows, tenant, args.skus, args.hot_stock // args.skus + 1000)
    else:
        sku_ids = await make_skus(uows, tenant, 1, args.sellout_stock)
    rng = random.Random(7)
    pick = (lambda: sku_ids[0]) if len(sku_ids) == 1 else (lambda: rng.choice(sku_ids))
    initial = await stock_total(uows, sku_ids)
    before = await census(uows, sku_ids)
    st = Stats()
    budget = [args.max_orders if name != "sellout" else 10**9]
    seconds = args.seconds if name != "sellout" else max(args.seconds, 60)  # sellout: until sold out
    SQL.clear()
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
    busy0 = C.machine_busy()["cpu"]
    pg = C.BackendCpu(args.pg_url, os.getpid())
    if args.backend_name == "pg":
        await pg.begin()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    desk = uows().shared.get(DESK)
    lots0 = (desk.batches, desk.done) if desk is not None else (0, 0)
    await asyncio.gather(*(buyer_loop(uows, tenant, m, a, pick, t0 + seconds, budget, st, not args.no_pay,
                                      quit_on_sold_out=name == "sellout", mode=args.mode) for m, a in people))
    elapsed = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    pg_s = await pg.end() if args.backend_name == "pg" else 0.0
    busy1 = C.machine_busy()["cpu"]
    session = profiler.stop() if profiler is not None else None
    sql = dict(SQL)
    final = await stock_total(uows, sku_ids)
    after = await census(uows, sku_ids)

    n = max(st.placed, 1)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    pct = C.percentile
    for lat in (st.place_lat, st.pay_lat, st.cycle_lat):
        lat.sort()
    desk = uows().shared.get(DESK)
    lots = (desk.batches - lots0[0], desk.done - lots0[1]) if desk is not None else (0, 0)
    per_buyer = sorted(st.per_buyer.values())
    lines = [
        f"{args.mode:<6} {name:<8} {st.placed / elapsed:8.1f} {st.paid / elapsed:8.1f} "
        f"{1000 * pct(st.place_lat, 50):7.1f} {1000 * pct(st.place_lat, 99):7.1f} "
        f"{1000 * pct(st.pay_lat, 99):7.1f} {1000 * pct(st.cycle_lat, 99):8.1f} "
        f"{1e6 * cpu / n:8.0f} {100 * cpu / elapsed:5.0f}% {1e6 * pg_s / n:7.0f}  "
        f"{st.placed:6d} {st.sold_out:6d} {elapsed:5.1f}s "
        f"{sql.get('(all)', 0) / n:5.1f} {max(0.0, busy1 - busy0 - cpu - pg_s) / elapsed:5.2f}"
    ]
    shapes = sorted(((k, v) for k, v in sql.items() if k != "(all)"), key=lambda kv: -kv[1])
    if lots[0]:
        lines.append(f"    desk: {lots[0]} transactions, {lots[1] / lots[0]:.1f} orders per transaction")
    if per_buyer:
        lines.append(f"    fairness: orders per buyer min {per_buyer[0]} / median {per_buyer[len(per_buyer) // 2]}"
                     f" / max {per_buyer[-1]} ({len(per_buyer)} of {len(people)} buyers placed; "
                     f"place max {1000 * max(st.place_lat):.0f} ms)")
    lines.append("    SQL per placed order: " + ", ".join(f"{k} {v / n:.2f}" for k, v in shapes[:12]))
    n_placed = len(args.topics.get("order.placed") or [])  # one row per event, whatever the subscribers
    n_paid = len(args.topics.get("order.paid") or [])
    checks = [
        ("placed == initial − final stock", st.placed == initial - final,
         f"{st.placed} == {initial} − {final} = {initial - final}"),
        ("units on order lines == placed", after["units"] - before["units"] == st.placed,
         f"{after['units'] - before['units']} vs {st.placed}"),
        ("orders in the database == placed", after["orders"] - before["orders"] == st.placed,
         f"{after['orders'] - before['orders']} vs {st.placed}"),
        (f"outbox order.placed rows == placed (one row per event, {n_placed} subscriber(s))",
         after["outbox_placed"] - before["outbox_placed"] == st.placed,
         f"{after['outbox_placed'] - before['outbox_placed']} vs {st.placed}"),
    ]
    if not args.no_pay:
        checks += [
            ("paid orders == payments paid == applied notifies",
             after["paid_orders"] - before["paid_orders"] == st.paid
             and after["payments_paid"] - before["payments_paid"] == st.paid,
             f"{after['paid_orders'] - before['paid_orders']} / "
             f"{after['payments_paid'] - before['payments_paid']} / {st.paid}"),
            ("money in == Σ paid_fen", after["paid_fen"] - before["paid_fen"] == st.paid_fen,
             f"{after['paid_fen'] - before['paid_fen']} vs {st.paid_fen}"),
            (f"outbox order.paid rows == paid (one row per event, {n_paid} subscriber(s))",
             after["outbox_paid"] - before["outbox_paid"] == st.paid,
             f"{after['outbox_paid'] - before['outbox_paid']} vs {st.paid}"),
        ]
    if name == "sellout":
        checks += [
            ("sold exactly the stock, never more", st.placed == args.sellout_stock and final == 0,
             f"placed {st.placed} of {args.sellout_stock}, final stock {final}"),
            ("late buyers were refused", st.sold_out > 0, f"{st.sold_out} refused"),
        ]
    if st.errors:
        checks.append(("no unexpected errors", False, f"{st.errors} e.g. {st.examples}"))
    for label, ok, detail in checks:
        lines.append(f"    {'ok  ' if ok else 'FAIL'} {label}: {detail}")
    if session is not None:
        lines.append("    profile (this process, timed window):")
        lines += ["      " + x for x in C.profile_summary(session, top_functions=20).splitlines()]
    return lines


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> list[str]:
    schema = ""
    if backend == "pg":
        schema = f"bench_orders_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await C.pg_create_schema(args.pg_url, schema)
        engine = create_engine(args.pg_url, schema=schema, **({"pool_size": args.what_if_pool}
                                                              if args.what_if_pool else {}))
        if args.what_if_no_pre_ping:
            engine.sync_engine.pool._pre_ping = False
    else:
        engine = create_engine(f"sqlite+aiosqlite:///{workdir / 'orders.db'}")
    out = []
    try:
        await migrate(engine)
        from sqlalchemy import event

        from storage.uow import uow_factory

        event.listen(engine.sync_engine, "before_cursor_execute", count_sql)

        args.topics = topic_map()
        uows = uow_factory(session_factory(engine), args.topics)
        tenant, people = await setup_backend(uows, args.buyers)
        # warm up (unmeasured): fills the connection pool, caches statements
        warm_sku = await make_skus(uows, tenant, 1, 10**6)
        for mode in args.mode.split(","):
            t_end = time.perf_counter() + args.warmup
            await asyncio.gather(*(buyer_loop(uows, tenant, m, a, lambda: warm_sku[0], t_end, [10**9], Stats(),
                                              not args.no_pay, quit_on_sold_out=False, mode=mode)
                                   for m, a in people))
        args.backend_name = backend
        modes = args.mode.split(",")
        for r in range(args.rounds):
            for name in args.scenarios.split(","):
                for mode in modes:
                    args_r = argparse.Namespace(**{**vars(args), "mode": mode})
                    lines = await run_scenario(name, uows, tenant, people, args_r)
                    lines[0] = f"{backend:<7}" + lines[0]
                    for line in lines:
                        print(line, flush=True)
                    out += lines
    finally:
        await engine.dispose()
        if schema:
            await C.pg_drop_schema(args.pg_url, schema)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="per scenario (10); sellout runs until sold out")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured place+pay per backend first (3 s)")
    p.add_argument("--buyers", type=int, default=64, help="concurrent buyers (64)")
    p.add_argument("--backends", default="sqlite,pg")
    p.add_argument("--scenarios", default="hot,spread,sellout")
    p.add_argument("--skus", type=int, default=50, help="SKUs in the spread scenario (50)")
    p.add_argument("--hot-stock", type=int, default=1_000_000)
    p.add_argument("--sellout-stock", type=int, default=300)
    p.add_argument("--max-orders", type=int, default=200_000, help="cap per scenario")
    p.add_argument("--no-pay", action="store_true", help="place only")
    p.add_argument("--mode", default="single,desk",
                   help="how orders are placed, comma-separated, each measured in turn (single,desk):"
                        " single = place_order in a transaction per order; desk = the order desk"
                        " (social_mall/orders/desk.py: queued, written in lots)")
    p.add_argument("--rounds", type=int, default=1, help="repeat every scenario × mode (1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin this process to core 0")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="before each scenario wait up to this long for other load to stop (120; 0: don't)")
    p.add_argument("--profile", action="store_true", help="profile each scenario with pyinstrument")
    p.add_argument("--what-if-pool", type=int, default=0, metavar="N",
                   help="experiment: PostgreSQL pool_size N (app default 10, +2N overflow)")
    p.add_argument("--what-if-no-pre-ping", action="store_true",
                   help="experiment: PostgreSQL pool without pool_pre_ping (app default: on)")
    p.add_argument("--pg-url", default=C.PG_URL)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (schema) when stopped
    if args.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            print("--profile needs pyinstrument: .venv/bin/pip install pyinstrument", file=sys.stderr)
            return 2
    if not args.no_pin:
        C.pin(0)
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(f"# orders bench: {args.buyers} concurrent buyers in one process"
          f"{'' if args.no_pin else ' (pinned to core 0)'}, {args.seconds:g}s per scenario, "
          f"{'place only' if args.no_pay else 'place + open payment + apply pay notify'}; "
          f"{os.cpu_count()} cores", flush=True)
    if args.what_if_pool or args.what_if_no_pre_ping:
        print(f"# EXPERIMENT, not the app's configuration: "
              f"{f'pool_size={args.what_if_pool} ' if args.what_if_pool else ''}"
              f"{'pool_pre_ping off' if args.what_if_no_pre_ping else ''}", flush=True)
    print(f"{'backend':<7}{'mode':<7}{'scenario':<8} {'placed/s':>8} {'paid/s':>8} {'plc p50':>7} {'plc p99':>7} "
          f"{'pay p99':>7} {'cyc p99':>8} {'µs/order':>8} {'cpu':>6} {'pg µs':>7}  {'placed':>6} "
          f"{'sold-out':>6} {'time':>6} {'sql/o':>5} {'other':>5}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_orders_"))
    try:
        for backend in args.backends.split(","):
            asyncio.run(run_backend(backend, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("  placed/s, paid/s: completed per second; plc/pay/cyc: place, pay (open + apply) and whole"
          " cycle latency in ms;\n  µs/order, cpu: this process's CPU per placed order and share of a"
          " core; pg µs: CPU of the PostgreSQL backends serving this process, per placed order;\n  sql/o: SQL statements per placed order"
          " (all three units of work); other: cores busy with load that is not ours (noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
