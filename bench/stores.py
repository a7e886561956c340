#!/usr/bin/env python3
"""Nearest-store lookup with many stores (the local_services module), on PostgreSQL.

    .venv/bin/python bench/stores.py                        # 10,000 stores, 2,000 lookups
    .venv/bin/python bench/stores.py --stores 10000 --lookups 5000 --backends pg sqlite

One tenant gets --stores stores spread over a 70 × 70 km city (Shanghai, GCJ-02), 10:00–22:00
every day, plus --other-stores of another tenant on the same streets. Then --lookups times,
one after the other through the module's service (`stores.nearest_stores`, one unit of work
each, as the chat's location step runs it): a random point in the city, the 5 nearest open
stores. Printed: p50 / p99 / max per lookup (ms), rows read per lookup, and the plan of the
first box query (EXPLAIN ANALYZE).

How it stays fast: a bounding box around the point on the composite index
ix_local_stores_geo (tenant_id, lat_e6, lng_e6) — integer micro-degrees, a range scan on
latitude with the longitude checked inside the index — the exact distances in Python,
and a wider box (2 → 5 → 12 → 30 → 50 km) only while fewer than 5 open stores were found.
No PostGIS needed: at city scale a box of a few km holds a few dozen stores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from sqlalchemy import insert, text  # noqa: E402

from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall_local.geo import Point, bounding_box  # noqa: E402
from social_mall_local.models import Store  # noqa: E402
from social_mall_local.stores import nearest_stores  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import Tenant  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

CENTER = Point(31_230_000, 121_470_000)     # 人民广场
HALF_SPAN = 35_000                          # metres each way
NOON = datetime(2025, 6, 6, 4, 0, tzinfo=timezone.utc)   # Friday 12:00 in Shanghai
HOURS = {str(d): [[600, 1320]] for d in range(1, 8)}


def random_point(rng: random.Random) -> Point:
    dlat = rng.uniform(-HALF_SPAN, HALF_SPAN) / 111_195
    dlng = rng.uniform(-HALF_SPAN, HALF_SPAN) / (111_195 * 0.855)
    return Point(int(CENTER.lat_e6 + dlat * 1e6), int(CENTER.lng_e6 + dlng * 1e6))


async def run(backend: str, args: argparse.Namespace) -> None:
    schema = ""
    if backend == "pg":
        schema = f"bench_stores_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        url = C.PG_URL
    else:
        url = f"sqlite+aiosqlite:///{Path('/tmp') / f'bench_stores_{uuid.uuid4().hex[:8]}.db'}"
    engine = create_engine(url, schema=schema)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {})
        rng = random.Random(19)
        async with uows() as uow:
            tenant = await seed_demo(uow, DemoCredentials("wx_bench", "t", "", "s"))
            other = Tenant(code="bench_other", name="other")
            uow.session.add(other)
            await uow.session.flush()
            for tid, n in ((tenant.id, args.stores), (other.id, args.other_stores)):
                rows = []
                for i in range(n):
                    p = random_point(rng)
                    rows.append(dict(tenant_id=tid, name=f"店{i}", address="上海", phone="", lat_e6=p.lat_e6,
                                     lng_e6=p.lng_e6, hours=HOURS, exceptions={}, pictures=[], active=rng.random() > 0.05,
                                     created_at=NOON))
                for k in range(0, len(rows), 1000):
                    await uow.session.execute(insert(Store), rows[k:k + 1000])
            await uow.commit()
        if backend == "pg":
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE local_stores"))
        # warm the pool and the plan cache
        for _ in range(50):
            async with uows() as uow:
                await nearest_stores(uow, tenant.id, random_point(rng), NOON)
        times, found = [], 0
        cpu0 = C.proc_cpu_seconds(os.getpid())
        pg0 = C.cpu_of_named(("postgres",)).get("postgres", 0.0) if backend == "pg" else 0.0
        for _ in range(args.lookups):
            p = random_point(rng)
            t0 = time.perf_counter()
            async with uows() as uow:
                got = await nearest_stores(uow, tenant.id, p, NOON)
            times.append((time.perf_counter() - t0) * 1000)
            found += len(got)
        cpu = (C.proc_cpu_seconds(os.getpid()) - cpu0) * 1000 / args.lookups
        pg_cpu = ((C.cpu_of_named(("postgres",)).get("postgres", 0.0) - pg0) * 1000 / args.lookups
                  if backend == "pg" else 0.0)
        times.sort()
        print(f"{backend}: {args.stores} stores (+{args.other_stores} of another tenant), {args.lookups} lookups: "
              f"p50 {C.percentile(times, 50):.2f} ms, p99 {C.percentile(times, 99):.2f} ms, "
              f"max {times[-1]:.2f} ms; CPU per lookup: this process {cpu:.2f} ms"
              + (f", PostgreSQL (all backends on the machine) {pg_cpu:.2f} ms" if backend == "pg" else "")
              + f"; {found / args.lookups:.1f} stores answered per lookup; load average {os.getloadavg()[0]:.1f}",
              flush=True)
        if backend == "pg":
            lat_min, lat_max, lng_min, lng_max = bounding_box(CENTER, 2000)
            async with engine.connect() as conn:
                plan = await conn.execute(text(
                    "EXPLAIN ANALYZE SELECT * FROM local_stores WHERE tenant_id = :t AND lat_e6 BETWEEN :a AND :b "
                    "AND lng_e6 BETWEEN :c AND :d AND active"),
                    {"t": tenant.id, "a": lat_min, "b": lat_max, "c": lng_min, "d": lng_max})
                print("  " + "\n  ".join(r[0] for r in plan))
    finally:
        await engine.dispose()
        if schema:
            await C.pg_drop_schema(C.PG_URL, schema)


async def main_async(args: argparse.Namespace) -> None:
    for backend in args.backends:
        await run(backend, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", type=int, default=10_000)
    p.add_argument("--other-stores", type=int, default=2_000)
    p.add_argument("--lookups", type=int, default=2_000)
    p.add_argument("--backends", nargs="+", default=["pg"], choices=("pg", "sqlite"))
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
