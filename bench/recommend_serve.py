#!/usr/bin/env python3
"""「猜你喜欢」 per request through the module's service (Recommender.for_member: the member's
setting, purchases with their last dates, the merchant's cycle marks, recent views,
ranking from the in-memory model with repurchase cycles, the sellable check), against a
database holding bench/recommend.py's generated histories.

    .venv/bin/python bench/recommend_serve.py                   # SQLite
    .venv/bin/python bench/recommend_serve.py --backend pg

Loaded: the generator's 2,000 products (one SKU each, in stock), its purchases up to --day
as the module's purchase rows (dated by the generated days) and views, then the nightly
retrain (model, popularity, cycles) on that day. Timed: --members members' requests, one unit of work each,
after one warm-up pass: cold (each member's state read from the database: their setting,
purchases, views; the model and the shop's shelf already in memory) and warm (served from
the worker's cache, Recommender.fresh: no database read); the ranking alone
(bench/recommend.py) is the in-memory part.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from recommend import histories  # noqa: E402
from search_catalog import CATEGORIES  # noqa: E402

from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall_intelligence.models import Interaction, MemberView  # noqa: E402
from social_mall_intelligence.recommendations import Recommender, retrain  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import Category, Product, Sku  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


async def run(args: argparse.Namespace) -> None:
    catalog, cat_of, orders, days, _ = histories(args.generated, args.seed)
    schema = ""
    if args.backend == "pg":
        schema = f"bench_rec_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        url = C.PG_URL
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/rec.db"
    engine = create_engine(url, schema=schema)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {})
        async with uows() as uow:
            tenant = (await seed_demo(uow, DemoCredentials("wx_bench", "token", "a" * 43, "secret"))).id
            await uow.commit()
        async with uows() as uow:
            cats = {}
            for n, name in enumerate(CATEGORIES):
                cats[n] = Category(tenant_id=tenant, name=f"{name}·bench", sort=50 + n)
                await uow.catalog.add(cats[n])
            pid: dict[int, int] = {}
            for i, g in enumerate(catalog):
                p = Product(tenant_id=tenant, category_id=cats[cat_of[i + 1]].id, title=g.title, subtitle="",
                            description="", image="", sort=g.sort)
                uow.session.add(p)
                await uow.session.flush()
                uow.session.add(Sku(tenant_id=tenant, product_id=p.id, spec="标准", price_fen=9900, stock=100))
                pid[i + 1] = p.id
            await uow.commit()
        now = EPOCH + timedelta(days=args.day)   # later purchases are left out (not yet made)
        async with uows() as uow:
            order = 0
            rows, seen = [], {}
            for m, mine in orders.items():
                for (items, views), day in zip(mine, days[m]):
                    if day > args.day:
                        break
                    order += 1
                    at = EPOCH + timedelta(days=day)
                    rows.extend({"tenant_id": tenant, "member_id": m, "product_id": pid[p], "order_id": order,
                                 "qty": 1, "at": at, "places": ""} for p in items)
                    for v in views:
                        seen[(m, pid[v])] = at
            for chunk in range(0, len(rows), 2000):
                await uow.session.execute(Interaction.__table__.insert(), rows[chunk:chunk + 2000])
            views = [{"tenant_id": tenant, "member_id": m, "product_id": p, "views": 1,
                      "last_at": max(at, now - timedelta(days=60))} for (m, p), at in seen.items()]
            for chunk in range(0, len(views), 2000):
                await uow.session.execute(MemberView.__table__.insert(), views[chunk:chunk + 2000])
            await uow.commit()
        t0 = time.perf_counter()
        async with uows() as uow:
            await retrain(uow, tenant, now)
            await uow.commit()
        fit_s = time.perf_counter() - t0
        rec = Recommender(now=lambda: now)
        members = sorted({r["member_id"] for r in rows})[:args.members]
        restocked = 0
        for m in members:   # warm-up: loads the model once
            async with uows() as uow:
                restocked += bool((await rec.for_member(uow, tenant, m, 6)).restock)

        async def timed(forget: bool) -> tuple[list[float], list[float]]:
            """Per request: wall time, and this thread's CPU time (what the request itself cost:
            on a busy machine the wall time's tail is mostly the process waiting for a core)."""
            wall, cpu = [], []
            for m in members:
                if forget:   # cold: the member's state read again (the model and the shop's shelf stay)
                    rec.forget_member(tenant, m)
                t, c = time.perf_counter(), time.thread_time()
                async with uows() as uow:
                    await rec.for_member(uow, tenant, m, 6)
                cpu.append((time.thread_time() - c) * 1000)
                wall.append((time.perf_counter() - t) * 1000)
            return sorted(wall), sorted(cpu)

        cold = await timed(True)
        warm = await timed(False)   # within the cache's `fresh` seconds of the cold pass
        print(f"{args.backend}: {len(catalog)} products, {len(rows)} purchase rows, {len(views)} view rows; "
              f"retrain {fit_s:.1f} s; {restocked} lists led by 「该补货了」; load average {os.getloadavg()[0]:.2f}")
        for name, (s, c) in (("cold (member's state from the database)", cold),
                             ("warm (from the worker's cache)", warm)):
            print(f"for_member (6 products, one unit of work) over {len(members)} members, {name}: "
                  f"p50 {C.percentile(s, 50):.3f} ms  p99 {C.percentile(s, 99):.3f} ms  "
                  f"({sum(t < 1 for t in s) / len(s):.1%} under 1 ms); "
                  f"CPU p50 {C.percentile(c, 50):.3f} ms  p99 {C.percentile(c, 99):.3f} ms")
    finally:
        await engine.dispose()
        if schema:
            await C.pg_drop_schema(C.PG_URL, schema)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--generated", type=int, default=3000, help="members generated")
    ap.add_argument("--members", type=int, default=500, help="members timed")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--day", type=float, default=200, help="the day of the requests (the generated days run 0–~450)")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
