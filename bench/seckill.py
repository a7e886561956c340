#!/usr/bin/env python3
"""A seckill crowd: --members members × --attempts attempts for --stock units (one item, a
limit of one each), in one process, on PostgreSQL + Redis (default) or the embedded
default (--backend sqlite: an SQLite file and the in-process store).

    .venv/bin/python bench/seckill.py                      # 10,000 × 3 for 100, PostgreSQL + Redis
    .venv/bin/python bench/seckill.py --backend sqlite

Measured at the flow level: the real app (bot.build_app, every module, its lifecycle run
by aiohttp's AppRunner, no socket), and one attempt is what the chat path does when a
member in the quantity step of an item (「回复购买数量」) sends 「1」 — FlowRunner.handle: the
message's de-duplication claim and the conversation from the store, the seckill flow's
step, the attempt (session cached, rate limit, one-in-flight lease, the admission step;
the admitted write their order at the seckill price in lots with the other admitted
orders of the moment: buying.Desk.orders, the core's batched order write and the lot's
guard, docs/seckill.md), the reply rendered, the conversation written
back. Not included: the WeChat endpoint's XML, signature and AES (measured by
bench/wechat_endpoint.py: ~0.2 ms of CPU a message) and the HTTP server.

Clients are --concurrency asyncio tasks in the same process (so the CPU figures include
them: a few µs an attempt). Each member's conversation is put in the quantity step before
the window; a winner's is put back there before its next attempt.

Printed: attempts answered/s, p50/p99 of every attempt and of the winning ones, the
invariants (exactly --stock orders, nobody over the limit, memory == database), and what
bounds it: this process's CPU per rejected attempt (a run where every attempt is refused)
and per admitted order (a run where every attempt is admitted), with PostgreSQL's
backends' CPU per order.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import func, select  # noqa: E402


PROFILE = [0]
ORDER_NO = re.compile(r"订单号：(\d+)")


async def _seed(svc, tenant: int, n_members: int, stock: int, now: datetime, prefix: str):
    from social_mall.members.service import add_address, resolve_member
    from social_mall_seckill import service
    from storage.models import Sku

    async with svc.uows() as uow:
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant).order_by(Sku.id))
        sku.stock = 10**7
        sid = await service.create_session(uow, tenant, "压测场", now - timedelta(minutes=1), now + timedelta(hours=1),
                                           5, now)
        item = await service.add_item(uow, tenant, sid, sku.id, max(1, sku.price_fen // 2), stock, 1)
        await uow.commit()
    people: list[tuple[str, int]] = []
    async with svc.uows() as uow:
        for i in range(n_members):
            openid = f"o_{prefix}_{i:06d}"
            m, _ = await resolve_member(uow, tenant, "mp", openid)
            await add_address(uow, tenant, m.id, "李四", "13912345678", "北京市朝阳区建国路88号")
            people.append((openid, m.id))
            if i % 500 == 499:
                await uow.commit()
        await uow.commit()
    return item, people


async def _run(svc, tenant, code: str, item: int, attempts: list[tuple[str, int]], concurrency: int,
               now: datetime, rate: float = 0.0) -> dict[str, object]:
    from flows.engine import Conv
    from flows.runner import conv_key
    from flows.types import Inbound, Kind

    def inbound(openid: str, k: int) -> Inbound:
        return Inbound(tenant, code, "mp", openid, Kind.TEXT, text="1", msg_id=f"{openid}-{k}-{uuid.uuid4().hex[:6]}",
                       at=now)

    async def ready(openid: str, member: int) -> None:
        conv = Conv("seckill", "qty", {"item": item}, member=member)
        await svc.kv.set(conv_key(inbound(openid, 0)), conv.dump(), 1800)

    await asyncio.gather(*(ready(o, m) for o, m in {a for a in attempts}))
    won: set[str] = set()
    times: list[float] = []
    wins: list[float] = []
    said: dict[str, int] = {}
    orders: set[str] = set()
    queue = iter(enumerate(attempts))

    async def one(k: int, openid: str, member: int, t0: float) -> None:
        if openid in won:
            await ready(openid, member)
        replies = await svc.runner.handle(inbound(openid, k))
        dt = (time.perf_counter() - t0) * 1000   # from when it was due (open loop) or sent
        note(openid, replies, dt)

    async def open_loop() -> None:
        """Attempts arrive at `rate` a second whatever the answers (a crowd does not wait)."""
        start = time.perf_counter()
        running: set[asyncio.Task[None]] = set()
        for k, (openid, member) in queue:
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(k, openid, member, due))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)

    async def client() -> None:
        for k, (openid, member) in queue:
            # a request through a server reaches the loop from a socket: at least one turn of
            # the loop each (with the in-process store a refusal never waits on I/O, and
            # without this the clients held the loop: the lot's SQLite write, whose results
            # come back from aiosqlite's thread, waited for the whole crowd)
            await asyncio.sleep(0)
            t0 = time.perf_counter()
            if openid in won:
                await ready(openid, member)
            replies = await svc.runner.handle(inbound(openid, k))
            dt = (time.perf_counter() - t0) * 1000
            note(openid, replies, dt)

    def note(openid: str, replies, dt: float) -> None:
        text = replies[0].text if replies else ""
        times.append(dt)
        kind = "抢到了" if "抢到了" in text else "已抢光" if "已抢光" in text else \
            "限购" if "限购" in text else text[:16]
        said[kind] = said.get(kind, 0) + 1
        if kind == "抢到了":
            m = ORDER_NO.search(text)
            if m is not None and m.group(1) not in orders:   # a repeat shows the same order again
                orders.add(m.group(1))
                won.add(openid)
                wins.append(dt)

    gc.collect()
    cpu0 = C.proc_cpu_seconds(os.getpid())
    pg = C.BackendCpu(C.PG_URL, os.getpid()) if svc.settings.database_url.startswith("postgresql") else None
    if pg is not None:
        await pg.begin()
    busy0 = C.machine_busy()["cpu"]
    t0 = time.perf_counter()
    prof = None
    if PROFILE[0]:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    if rate:
        await open_loop()
    else:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    if prof is not None:
        import pstats

        prof.disable()
        pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "tottime")).print_stats(PROFILE[0])
    cpu = C.proc_cpu_seconds(os.getpid()) - cpu0
    busy = C.machine_busy()["cpu"] - busy0
    pg_cpu = await pg.end() if pg is not None else 0.0
    await svc.outbox.drain()
    times.sort()
    wins.sort()
    return {"elapsed": elapsed, "cpu": cpu, "pg_cpu": pg_cpu, "busy": busy, "times": times, "wins": wins,
            "said": said, "n": len(attempts), "orders": len(orders)}


async def main_async(args: argparse.Namespace) -> int:
    from bot import build_app
    from handlers.context import SERVICES
    from social_mall.settings import Settings
    from social_mall_seckill import service
    from social_mall_seckill.models import SeckillClaim, SeckillItem
    from social_mall_seckill.rules import pool
    from storage.models import Order, Tenant

    tmp = Path(tempfile.mkdtemp(prefix="bench_sk_"))
    schema = f"bench_sk_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    prefix = f"bench_sk:{uuid.uuid4().hex[:8]}:"
    pg = args.backend == "pg"
    if pg:
        await C.pg_create_schema(args.pg_url, schema)
        settings = Settings(database_url=args.pg_url, database_schema=schema, redis_url=args.redis_url,
                            kv_prefix=prefix, data_dir=tmp, scheduler_enabled=False, demo_showcase=False)
    else:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'bench.db'}", redis_url="", data_dir=tmp,
                            scheduler_enabled=False, demo_showcase=False)
    now = datetime.now(timezone.utc)
    app = build_app(settings, auto_setup=True, clock=lambda: now)
    runner = web.AppRunner(app)
    await runner.setup()
    svc = app[SERVICES]
    try:
        async with svc.uows() as uow:
            t = await uow.session.scalar(select(Tenant).where(Tenant.code == "demo"))
            tenant, code = t.id, t.code
        print(f"seeding {args.members} members (+{args.calib} for the calibration runs)…", flush=True)
        item, people = await _seed(svc, tenant, args.members, args.stock, now, "sk")
        random.seed(7)
        order = people[:]
        attempts = []
        for _ in range(args.attempts):
            random.shuffle(order)
            attempts += order
        other = C.wait_quiet(args.quiet_wait)
        main = await _run(svc, tenant, code, item, attempts, args.concurrency, now, args.rate)

        # calibration: every attempt refused (the item is sold out) / every attempt admitted
        fresh_item, fresh = await _seed(svc, tenant, args.calib, args.calib, now, "skc")
        refused = await _run(svc, tenant, code, item, [(o, m) for o, m in fresh], args.concurrency, now)
        admitted = await _run(svc, tenant, code, fresh_item, [(o, m) for o, m in fresh], args.concurrency, now)

        async with svc.uows() as uow:
            it = await uow.session.get(SeckillItem, item, populate_existing=True)
            orders = int(await uow.session.scalar(select(func.count()).select_from(Order).where(
                Order.source == f"seckill:{item}")) or 0)
            worst = int(await uow.session.scalar(select(func.max(SeckillClaim.qty)).where(
                SeckillClaim.item_id == item)) or 0)
            dup = (await uow.session.execute(select(Order.member_id).where(Order.source == f"seckill:{item}")
                                             .group_by(Order.member_id).having(func.count() > 1))).all()
            truth = await service.truth(uow, tenant, item)
        drift = await svc.admission.reconcile(tenant, pool(item), truth)

        backend = "PostgreSQL + Redis" if pg else "embedded default (SQLite + in-process store)"
        e, n = float(main["elapsed"]), int(main["n"])  # type: ignore[arg-type]
        times, wins = main["times"], main["wins"]
        load = f"open loop at {args.rate:.0f} attempts/s offered" if args.rate else \
            f"closed loop, {args.concurrency} concurrent clients in it"
        print(f"seckill ({backend}; flow level: FlowRunner.handle of 「1」 in the quantity step; one process, {load})")
        print(f"  {args.members} members × {args.attempts} attempts = {n} attempts for {args.stock} units "
              f"(limit 1 each), {e:.1f} s; machine {os.cpu_count()} cores, busy {float(main['busy']) / e:.2f} "
              f"during the run, this process {float(main['cpu']) / e:.2f}; other load before {other:.2f} cores")
        print(f"  answered/s      {n / e:9.0f}   replies: {main['said']}")
        print(f"  attempt p50/p99 {C.percentile(times, 50):9.2f} / {C.percentile(times, 99):.2f} ms   "
              f"(max {times[-1]:.1f})")
        print(f"  winner p50/p99  {C.percentile(wins, 50):9.2f} / {C.percentile(wins, 99):.2f} ms   "
              f"({main['orders']} distinct orders answered 「抢到了」)")
        print(f"  CPU this proc   {float(main['cpu']) / n * 1000:9.3f} ms per attempt (all kinds)")
        rn, an = int(refused["n"]), int(admitted["n"])  # type: ignore[arg-type]
        print(f"  CPU per rejected attempt  {float(refused['cpu']) / rn * 1000:7.3f} ms   "
              f"({rn} attempts on the sold-out item: {refused['said']})")
        pg_note = f", PostgreSQL backends {float(admitted['pg_cpu']) / an * 1000:.2f} ms" if pg else ""
        print(f"  CPU per admitted order    {float(admitted['cpu']) / an * 1000:7.3f} ms   "
              f"({an} attempts, each admitted: {admitted['said']}{pg_note}; "
              f"{an / float(admitted['elapsed']):.0f} orders/s)")
        ok = orders == args.stock == it.sold and worst <= 1 and not dup and drift.clean
        print(f"  orders {orders} (sold {it.sold} of {it.stock}); members over the limit: {len(dup)} "
              f"(max claim {worst}); memory == database: {drift.clean}  → {'correct' if ok else 'WRONG'}")
        from social_mall_seckill.flow import HOLDER
        lots = HOLDER.desk.orders
        print(f"  order lots (all runs): {lots.batches} written whole, {lots.done} orders in them, largest "
              f"{lots.largest}; {lots.retried} refused by the database and written one by one")
        target = n / e >= 2000 and C.percentile(times, 99) < 100
        print(f"  target (>= 2,000 attempts/s, p99 < 100 ms): {'met' if target else 'NOT met'}")
        return 0 if ok else 1
    finally:
        await runner.cleanup()
        if pg:
            await C.redis_drop_prefix(args.redis_url, prefix)
            await C.pg_drop_schema(args.pg_url, schema)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("pg", "sqlite"), default="pg")
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--attempts", type=int, default=3)
    p.add_argument("--stock", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=200, help="closed loop: client tasks")
    p.add_argument("--rate", type=float, default=0.0,
                   help="open loop instead: attempts arrive at this rate a second (latency counted from when due)")
    p.add_argument("--calib", type=int, default=1000, help="members of each calibration run")
    p.add_argument("--quiet-wait", type=float, default=30.0)
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--redis-url", default=C.REDIS_URL)
    p.add_argument("--cpu", type=int, default=None, help="pin to this core")
    p.add_argument("--profile", type=int, default=0, help="print the top N functions of the main run (cProfile)")
    args = p.parse_args(argv)
    PROFILE[0] = args.profile
    C.pin(args.cpu)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
