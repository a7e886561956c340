#!/usr/bin/env python3
"""A 200-line quick order (the b2b module): parse + price.

    .venv/bin/python bench/b2b_quick_order.py                   # SQLite file, 200 lines, 200 runs
    .venv/bin/python bench/b2b_quick_order.py --backends pg sqlite --lines 200 --runs 300

Prints, per run: the parse of the pasted text alone (rules.parse_quick_order, pure), and
the whole quote through the module's service (`quick.quick_quote`, one unit of work:
codes → SKUs, the member's company, its price lists and tiers, the SKUs' terms, each line
priced at its tier and checked), as the chat's 「快速下单 …」 step runs it. p50 / p99 in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from sqlalchemy import select  # noqa: E402

from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall.members.service import resolve_member  # noqa: E402
from social_mall_b2b import accounts, prices, quick  # noqa: E402
from social_mall_b2b.prices import PRICER  # noqa: E402
from social_mall_b2b.rules import ListKind, parse_quick_order  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import Sku  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

NOW = datetime(2030, 1, 1, 4, tzinfo=timezone.utc)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def run(backend: str, args: argparse.Namespace) -> None:
    schema = ""
    if backend == "pg":
        schema = f"bench_b2b_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        url = C.PG_URL
    else:
        url = f"sqlite+aiosqlite:///{Path('/tmp') / f'bench_b2b_{uuid.uuid4().hex[:8]}.db'}"
    engine = create_engine(url, schema=schema)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {}, pricers=[PRICER])
        async with uows() as uow:
            tenant = await seed_demo(uow, DemoCredentials("wx_bench", "t", "", "s"))
            member, _ = await resolve_member(uow, tenant.id, "mp", "o_bench_b2b")
            c = await accounts.apply(uow, tenant.id, member.id, accounts.Application(
                "基准测试公司", "91350100M000100Y43", "张三", "13800138000"), NOW)
            await accounts.decide(uow, tenant.id, c.id, approve=True, reason="", actor="bench", now=NOW)
            first = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant.id).order_by(Sku.id))
            for i in range(args.lines):       # one SKU per line: every line found, priced and checked
                uow.session.add(Sku(tenant_id=tenant.id, product_id=first.product_id, spec=f"规格{i}",
                                    price_fen=6000, stock=10_000))
            await uow.session.flush()
            sku_ids = list((await uow.session.scalars(select(Sku.id).where(Sku.tenant_id == tenant.id))).all())
            tiers = tuple((s, q, 5000 - q) for s in sku_ids for q in (1, 10, 50))
            await prices.save_list(uow, tenant.id, None, prices.ListInput(
                "批发", ListKind.OVERRIDE, None, c.id, 1000, None, None, True, tiers), "bench")
            for i, s in enumerate(sku_ids):
                await quick.set_code(uow, tenant.id, s, f"A{1000 + i}", "bench")
                await prices.set_terms(uow, tenant.id, s, 1, 1, "bench")
            await uow.commit()
        # 200 distinct codes, one a line, as a buyer pastes them
        body = "\n".join(f"A{1000 + i} x {1 + i % 60}" for i in range(args.lines))
        parse_us: list[float] = []
        quote_us: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            items, bad = parse_quick_order(body)
            t1 = time.perf_counter()
            async with uows() as uow:
                q = await quick.quick_quote(uow, tenant.id, member.id, items, bad, NOW)
            t2 = time.perf_counter()
            parse_us.append((t1 - t0) * 1e6)
            quote_us.append((t2 - t0) * 1e6)
        assert len(q.lines) == args.lines
        print(f"{backend}: {args.lines} lines, {args.runs} runs: parse p50 {statistics.median(parse_us):.0f} µs "
              f"p99 {pct(parse_us, 0.99):.0f} µs; parse + price (quick_quote) p50 {statistics.median(quote_us):.0f} µs "
              f"p99 {pct(quote_us, 0.99):.0f} µs; priced lines {sum(1 for ln in q.lines if ln.label)}")
    finally:
        await engine.dispose()
        if backend == "pg":
            await C.pg_drop_schema(C.PG_URL, schema)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["sqlite"])
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    for b in args.backends:
        asyncio.run(run(b, args))


if __name__ == "__main__":
    main()
