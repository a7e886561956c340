#!/usr/bin/env python3
"""Concurrent helps on bargains (砍价), through the module's service on PostgreSQL (or the
embedded SQLite), one process.

    .venv/bin/python bench/bargain.py                    # PostgreSQL: 50 bargains × 10 helps, 100 tasks
    .venv/bin/python bench/bargain.py --backend sqlite

--bargains bargains of one campaign (each needs --helps helps to its floor) are helped by
--helpers distinct followers (old enough, K high enough not to bind) from --tasks concurrent
asyncio tasks; every task takes the next helper and helps a random bargain still open, in a
unit of work of its own + commit (each its own pooled connection), so many helps race for
the same bargain's next cut (compare-and-set on helps and price, a lost one reads again).
Printed: helps/s, p50/p99 of a help (ms), refusals (the bargain reached its floor under the
helper), and the invariants: bargains below their floor (must be 0), helps over N (0),
a bargain's stored price == start − sum of its helps' cuts == start − sum of its first k
precomputed cuts (mismatches 0), help rows == helps counters.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall.members.service import resolve_member  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import MemberIdentity  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

CREDS = DemoCredentials(wechat_app_id="wx0123456789abcdef", wechat_token="bench_token",
                        wechat_aes_key="", wechat_app_secret="bench_secret")


async def main_async(args: argparse.Namespace) -> int:
    from social_mall_bargain import rules, service
    from social_mall_bargain.errors import BargainClosedError
    from social_mall_bargain.models import Bargain, BargainHelp

    schema = ""
    if args.backend == "pg":
        schema = f"bench_bk_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await C.pg_create_schema(args.pg_url, schema)
        engine = create_engine(args.pg_url, schema=schema, pool_size=args.pool)
    else:
        db = Path(f"/tmp/bench_bargain_{os.getpid()}.db")
        db.unlink(missing_ok=True)
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
    now = datetime.now(timezone.utc)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {})
        async with uows() as uow:
            tenant = await seed_demo(uow, CREDS)
            await uow.commit()
        async with uows() as uow:
            products, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=None, offset=0, limit=1)
            sku = (await uow.catalog.skus(tenant.id, products[0].id))[0]
            terms = rules.Terms(floor_fen=max(sku.price_fen // 10, 1), helps_needed=args.helps, min_cut_fen=1,
                                hours=24, stock=10**6, daily_helps=100, helper_min_age_hours=1,
                                starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30))
            c = await service.create_campaign(uow, tenant.id, sku_id=sku.id, title="压测砍价", terms=terms,
                                              actor="bench")
            ids = []
            for i in range(args.bargains + args.helpers):
                m, _ = await resolve_member(uow, tenant.id, "mp", f"o_bench_bk_{i:06d}")
                ids.append(m.id)
            await uow.session.execute(update(MemberIdentity).where(MemberIdentity.tenant_id == tenant.id)
                                      .values(created_at=now - timedelta(days=2)))
            bargains = [await service.start_bargain(uow, tenant.id, m, c.id, now=now) for m in ids[:args.bargains]]
            await uow.commit()
        helpers = ids[args.bargains:]
        open_codes = [b.code for b in bargains]
        lat: list[float] = []
        refused = 0
        rng = random.Random(7)
        queue = list(helpers)

        async def worker() -> None:
            nonlocal refused
            while queue and open_codes:
                helper = queue.pop()
                code = rng.choice(open_codes[: args.window])
                t0 = time.perf_counter()
                async with uows() as uow:
                    try:
                        r = await service.help_bargain(uow, tenant.id, helper, code, now=now)
                        await uow.commit()
                        if r.bargain.status == "reached" and code in open_codes:
                            open_codes.remove(code)
                    except BargainClosedError:
                        await uow.rollback()
                        refused += 1
                        if code in open_codes:
                            open_codes.remove(code)
                        continue
                lat.append((time.perf_counter() - t0) * 1000)

        cpu0, t0 = C.proc_cpu_seconds(os.getpid()), time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(args.tasks)])
        wall, cpu = time.perf_counter() - t0, C.proc_cpu_seconds(os.getpid()) - cpu0

        async with uows() as uow:
            rows = (await uow.session.execute(select(Bargain).where(Bargain.tenant_id == tenant.id))).scalars().all()
            cuts = dict((await uow.session.execute(select(BargainHelp.bargain_id, func.sum(BargainHelp.cut_fen))
                                                   .group_by(BargainHelp.bargain_id))).all())
            counts = dict((await uow.session.execute(select(BargainHelp.bargain_id, func.count())
                                                     .group_by(BargainHelp.bargain_id))).all())
        below = sum(b.price_fen < b.floor_fen for b in rows)
        over = sum(b.helps > b.helps_needed for b in rows)
        mismatch = sum(b.price_fen != b.start_fen - int(cuts.get(b.id, 0) or 0)
                       or b.price_fen != b.start_fen - sum(rules.load_cuts(b.cuts)[:b.helps]) for b in rows)
        rows_vs_counters = sum(int(counts.get(b.id, 0)) != b.helps for b in rows)
        reached = sum(b.status == "reached" for b in rows)
        lat.sort()
        print(f"backend={args.backend} bargains={args.bargains} helps_needed={args.helps} tasks={args.tasks} "
              f"window={args.window}")
        print(f"helps={len(lat)} in {wall:.2f} s → {len(lat) / wall:.0f} helps/s; p50 {C.percentile(lat, 50):.1f} ms, "
              f"p99 {C.percentile(lat, 99):.1f} ms; refused (floor reached meanwhile) {refused}; "
              f"CPU of this process {cpu / max(len(lat), 1) * 1000:.2f} ms/help")
        print(f"reached={reached}/{len(rows)} below_floor={below} over_n={over} price_mismatch={mismatch} "
              f"rows_vs_counters={rows_vs_counters}")
        return 0 if below == over == mismatch == rows_vs_counters == 0 else 1
    finally:
        await engine.dispose()
        if schema:
            await C.pg_drop_schema(args.pg_url, schema)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("pg", "sqlite"), default="pg")
    p.add_argument("--bargains", type=int, default=50)
    p.add_argument("--helps", type=int, default=10)
    p.add_argument("--helpers", type=int, default=600)
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument("--window", type=int, default=5, help="helps go to the first N open bargains (contention)")
    p.add_argument("--pool", type=int, default=20)
    p.add_argument("--pg-url", default=C.PG_URL)
    args = p.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
