#!/usr/bin/env python3
"""Chinese product search: today's search (the core's LIKE on title/subtitle) against the
intelligence module's index, on a labelled query set over a generated catalog.

    .venv/bin/python bench/search.py                      # 2,000 products, SQLite
    .venv/bin/python bench/search.py --backend pg --big 100000

The catalog: bench/search_catalog.py (the demo catalog extended to --products, Zipf-skewed
categories and nouns, decoy nouns in 1 subtitle of 12; how it is generated is written
there). The queries: bench/search_queries.tsv, written by hand, six classes (exact noun,
full pinyin, initials, typo, synonym, attribute words such as 「红色 连衣裙 L码」). A query's
relevant products are computed from the generated products' truth (noun, colours, sizes),
never from their texts; bench/search_labels.tsv records them (query → product ids).

Both engines run against the same database through a unit of work: the baseline is
`catalog.service.list_products(keyword=…)` (read cache off), the module is
`IndexedSearch.search` (the provider the chat calls) followed by the cards
(`catalog.service.product_cards`), as flows/shop.py runs them.

Metrics per class over the top 5: recall@5 = relevant found / min(5, relevant), nDCG@5
(binary gains), MRR (1/rank of the first relevant product in the top 5, else 0).
Latency: each query --repeat times after one warm-up pass, p50/p99 per query (ms); the
index's own query time alone too. --big N also builds an in-memory index of N generated
products and times its queries (the issue's < 20 ms at 100,000).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from search_catalog import GenProduct, generate  # noqa: E402
from sqlalchemy import select  # noqa: E402

from social_mall.catalog.service import list_products, product_cards  # noqa: E402
from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall_intelligence import textindex  # noqa: E402
from social_mall_intelligence.search import IndexedSearch  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.models import Category, Product, Sku  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

HERE = Path(__file__).resolve().parent
CLASSES = ("exact", "pinyin", "initials", "typo", "synonym", "attribute")


@dataclass(frozen=True)
class Query:
    cls: str
    text: str
    nouns: frozenset[str]
    colour: str
    size: str


def load_queries() -> list[Query]:
    out = []
    for line in (HERE / "search_queries.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cls, text, nouns, colour, size = (line.split("\t") + ["", ""])[:5]
        out.append(Query(cls, text, frozenset(nouns.split(",")), colour, size))
    return out


def relevant(q: Query, catalog: list[GenProduct], ids: list[int]) -> set[int]:
    return {pid for pid, p in zip(ids, catalog) if p.noun in q.nouns
            and (not q.colour or q.colour in p.colours) and (not q.size or q.size in p.sizes)}


def scores(found: list[int], rel: set[int]) -> tuple[float, float, float]:
    top = found[:5]
    hits = [1 if pid in rel else 0 for pid in top]
    ideal = min(5, len(rel))
    recall = sum(hits) / ideal
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    idcg = sum(1 / math.log2(i + 2) for i in range(ideal))
    mrr = next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
    return recall, dcg / idcg, mrr


async def load_catalog(uows, catalog: list[GenProduct]) -> tuple[int, list[int]]:
    """The demo tenant (its 20 products are the catalog's first) and the rest inserted;
    product id per catalog position."""
    async with uows() as uow:
        tenant = await seed_demo(uow, DemoCredentials("wx_bench", "token", "a" * 43, "secret"))
        await uow.commit()
    async with uows() as uow:
        cats = {c.name: c.id for c in await uow.catalog.categories(tenant.id)}
        demo = {p.title: p.id for p in (await uow.session.scalars(
            select(Product).where(Product.tenant_id == tenant.id))).all()}
        ids: list[int] = []
        for i, g in enumerate(catalog):
            if g.title in demo and i < 20:
                ids.append(demo[g.title])
                continue
            if g.category not in cats:
                cat = Category(tenant_id=tenant.id, name=g.category, sort=len(cats))
                await uow.catalog.add(cat)
                cats[g.category] = cat.id
            p = Product(tenant_id=tenant.id, category_id=cats[g.category], title=g.title, subtitle=g.subtitle,
                        description="", image="", sort=g.sort)
            uow.session.add(p)
            await uow.session.flush()
            uow.session.add_all([Sku(tenant_id=tenant.id, product_id=p.id, spec=spec, price_fen=9900, stock=100)
                                 for spec, _, _ in g.skus])
            ids.append(p.id)
        await uow.commit()
    return tenant.id, ids


async def baseline(uows, tenant: int, q: str) -> list[int]:
    async with uows() as uow:
        return [c.id for c in (await list_products(uow, tenant, keyword=q, page=1, per_page=5)).items]


async def module(uows, provider: IndexedSearch, tenant: int, q: str) -> list[int]:
    async with uows() as uow:
        hits = await provider.search(uow, tenant, q, offset=0, limit=5)
        return [c.id for c in await product_cards(uow, tenant, hits.ids)]


async def evaluate(engines: dict[str, Callable[[str], Awaitable[list[int]]]], evaluated: list[Query],
                   labels: dict[str, set[int]], repeat: int
                   ) -> tuple[dict[str, dict[str, list[tuple[float, float, float]]]], dict[str, list[float]]]:
    """Each engine's (recall@5, nDCG@5, …) per query class, and its query times in ms over
    `repeat` passes of the evaluated queries."""
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    lat: dict[str, list[float]] = {}
    for name, fn in engines.items():
        per: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for q in evaluated:
            per[q.cls].append(scores(await fn(q.text), labels[q.text]))
        results[name] = per
        times = []
        for _ in range(repeat):
            for q in evaluated:
                t = time.perf_counter()
                await fn(q.text)
                times.append((time.perf_counter() - t) * 1000)
        lat[name] = times
    return results, lat


def pct(xs: list[float]) -> str:
    s = sorted(xs)
    return f"p50 {C.percentile(s, 50):6.3f} ms  p99 {C.percentile(s, 99):6.3f} ms  max {s[-1]:6.3f} ms"


async def run(args: argparse.Namespace) -> None:
    queries = load_queries()
    catalog = generate(args.products, args.seed)
    schema = ""
    if args.backend == "pg":
        schema = f"bench_search_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        url = C.PG_URL
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/search.db"
    engine = create_engine(url, schema=schema)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {})
        tenant, ids = await load_catalog(uows, catalog)
        labels = {q.text: relevant(q, catalog, ids) for q in queries}
        with open(HERE / "search_labels.tsv", "w", encoding="utf-8") as f:
            f.write(f"# query\trelevant product ids (fresh database, --products {args.products} --seed {args.seed})\n")
            for q in queries:
                f.write(f"{q.text}\t{' '.join(map(str, sorted(labels[q.text])))}\n")
        evaluated = [q for q in queries if labels[q.text]]
        provider = IndexedSearch()
        t0 = time.perf_counter()
        async with uows() as uow:
            await provider.index(uow, tenant)
        build_ms = (time.perf_counter() - t0) * 1000
        provider.forget(tenant)
        t0 = time.perf_counter()
        async with uows() as uow:
            await provider.index(uow, tenant)
        rebuild_ms = (time.perf_counter() - t0) * 1000

        engines = {"baseline (LIKE)": lambda q: baseline(uows, tenant, q),
                   "intelligence": lambda q: module(uows, provider, tenant, q)}
        results, lat = await evaluate(engines, evaluated, labels, args.repeat)
        entry = await _entry(uows, provider, tenant)
        pure = []
        for _ in range(args.repeat):
            for q in evaluated:
                t = time.perf_counter()
                textindex.search(entry.index, q.text)
                pure.append((time.perf_counter() - t) * 1000)

        print(f"catalog: {len(catalog)} products (seed {args.seed}), backend {args.backend}; "
              f"{len(evaluated)} of {len(queries)} queries have relevant products")
        print(f"index build: first {build_ms:.0f} ms (loads jieba's dictionary), rebuild {rebuild_ms:.0f} ms "
              f"({entry.index.size} products, {len(entry.index.vocab)} terms)")
        print(f"{'class':10} {'n':>4}  " + "  ".join(f"{n:>30}" for n in engines))
        print(f"{'':10} {'':>4}  " + "  ".join(f"{'recall@5  nDCG@5     MRR':>30}" for _ in engines))
        for cls in (*CLASSES, "all"):
            row = []
            n = 0
            for name in engines:
                vals = [v for c, vs in results[name].items() if cls in ("all", c) for v in vs]
                n = len(vals)
                avg = [sum(x[i] for x in vals) / max(1, n) for i in range(3)]
                row.append(f"{avg[0]:10.3f}{avg[1]:10.3f}{avg[2]:10.3f}")
            print(f"{cls:10} {n:>4}  " + "  ".join(f"{r:>30}" for r in row))
        for name in engines:
            print(f"latency {name:16} (search + cards, one unit of work): {pct(lat[name])}")
        print(f"latency index query alone:                         {pct(pure)}")
        if args.big:
            big = generate(args.big, args.seed)
            docs = [textindex.Doc(i + 1, g.title, g.subtitle, g.category, tuple(s for s, _, _ in g.skus), g.sort)
                    for i, g in enumerate(big)]
            t0 = time.perf_counter()
            index = textindex.build(docs)
            build_big = time.perf_counter() - t0
            times = []
            for _ in range(args.repeat):
                for q in evaluated:
                    t = time.perf_counter()
                    textindex.search(index, q.text)
                    times.append((time.perf_counter() - t) * 1000)
            print(f"{args.big} products in memory: build {build_big:.1f} s; index query {pct(times)}")
    finally:
        await engine.dispose()
        if schema:
            await C.pg_drop_schema(C.PG_URL, schema)


async def _entry(uows, provider: IndexedSearch, tenant: int):
    async with uows() as uow:
        return await provider.index(uow, tenant)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--backend", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big", type=int, default=0, help="also time an in-memory index of this many products")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
