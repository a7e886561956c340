#!/usr/bin/env python3
"""PostgreSQL full-text search against the module's bm25s index, on the labelled query set
of bench/search.py (the issue: "BM25 ranking (bm25s …) or PostgreSQL full-text: measure
and pick").

    .venv/bin/python bench/search_pg.py                  # 2,000 and 100,000 products
    .venv/bin/python bench/search_pg.py --sizes 2000 --repeat 10

Stock PostgreSQL has no Chinese parser (zhparser / pg_jieba are extensions this box does
not have), so the text is segmented in Python by the module's own jieba (rjieba) segmenter
and stored as exact lexemes (array_to_tsvector: the 'simple' configuration's behaviour with
no re-parsing), one row per product in a schema of its own, GIN-indexed:

- words: the title's search-mode tokens and joined neighbours (weight A), the subtitle's,
  category's and specs' tokens (B), each Chinese character of title/subtitle/category as
  `#字` (D) — the same terms the module's index holds (textindex._terms);
- pinyin: `p:lianyiqun` (the full pinyin of every Chinese word, C) and `i:lyq` (its
  initials, D).
The GIN index is on `words || pinyin` (the expression the query matches).

A query (built in Python, timed with the SQL): the query is split at spaces into parts,
each a slot. A Chinese part is met by itself, its built-in synonyms or its pinyin (`p:`: a
homophone typo such as 连衣群 meets 连衣裙), or else by each of its jieba tokens (precise
mode), a token met the same ways (a single character also by `#字`); a Latin part is met
by `p:` or `i:` of itself, or the word itself (sizes, T恤's t). SQL: products meeting any slot, ordered by
slots met, then ts_rank over the OR of the slots, then the merchant's order — the module's
"more words met first, then BM25" with PostgreSQL's ranking. What PostgreSQL alone does not
do (and this query does not try): rapidfuzz's near spellings, splitting run-together pinyin
(hongselianyiqun), the character fallback for unknown words.

The module: textindex.build / textindex.search on the same products (category names as
the merchant's words, built-in synonyms), as IndexedSearch runs them.

Metrics as bench/search.py: recall@5 and nDCG@5 per class over the queries with relevant
products (labels from the generated truth, ids 1..N), and p50/p99 per query: for the module
the index query in memory; for PostgreSQL the query's building plus its round trip through
asyncpg on 127.0.0.1 (one connection, statements prepared by asyncpg's cache).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from search import CLASSES, evaluate, load_queries, relevant  # noqa: E402
from search_catalog import CATEGORIES, generate  # noqa: E402

from social_mall_intelligence import textindex as T  # noqa: E402


def doc_rows(catalog) -> list[tuple[int, int, list[str], list[str], list[str], list[str], list[str]]]:
    """(id, rank, title terms, other terms, characters, full pinyin, initials) per product."""
    seg = T.segmenter()
    seg.add_words(list(CATEGORIES))
    seg.add_words((*T.BUILTIN_SYNONYMS, *(a for alts in T.BUILTIN_SYNONYMS.values() for a in alts)))
    rows = []
    for i, g in enumerate(catalog):
        title, sub, cat = T.normalize(g.title), T.normalize(g.subtitle), T.normalize(g.category)
        head = seg.title_terms(title)
        other = seg.doc_tokens(sub) + seg.doc_tokens(cat)
        for spec, _, _ in g.skus:
            other.extend(seg.doc_tokens(T.normalize(spec)))
        chars = ["#" + c for c in title + sub + cat if T._CJK.match(c)]
        words = {w for w in head + other if T._CJK.search(w)}
        full = [f"p:{T.pinyin_of(w)[0]}" for w in words]
        first = [f"i:{T.pinyin_of(w)[1]}" for w in words if len(w) >= 2]
        rows.append((i + 1, g.sort, sorted(set(head)), sorted(set(other)), sorted(set(chars)), sorted(set(full)),
                     sorted(set(first))))
    return rows


def _lex(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def pg_query(text: str) -> list[str]:
    """The query's slots, each a tsquery text (an OR of lexemes)."""
    seg = T.segmenter()
    slots: list[str] = []
    for part in (p for p in T._SPLIT.split(T.normalize(text[:T.MAX_QUERY])) if p):
        if T._LETTERS.match(part):
            slots.append(" | ".join(_lex(x) for x in (f"p:{part}", f"i:{part}", part)))
            continue
        if not T._CJK.search(part):
            slots.append(_lex(part))
            continue
        groups = []
        for tok in seg.query_tokens(part):
            if not T._CJK.search(tok):
                groups.append(_lex(tok))
                continue
            alts = [tok, *T.BUILTIN_SYNONYMS.get(tok, ()), f"p:{T.pinyin_of(tok)[0]}"]
            if len(tok) == 1:
                alts.append(f"#{tok}")
            groups.append(" | ".join(_lex(a) for a in dict.fromkeys(alts)))
        if len(groups) == 1:
            slots.append(groups[0])
        else:   # the part whole (连衣群 → p:lianyiqun), or each of its words
            whole = [part, *T.BUILTIN_SYNONYMS.get(part, ()), f"p:{T.pinyin_of(part)[0]}"]
            slots.append(" | ".join([*(_lex(a) for a in dict.fromkeys(whole)),
                                     "(" + " & ".join(f"({g})" for g in groups) + ")"]))
    return slots[:T.MAX_PARTS * 2]


SQL = """
SELECT id FROM {table}
WHERE (words || pinyin) @@ $1::tsquery
ORDER BY ({met}) DESC, ts_rank(words || pinyin, $1::tsquery) DESC, rank, id
LIMIT 5
"""


async def pg_search(conn, table: str, text: str) -> list[int]:
    slots = pg_query(text)
    if not slots:
        return []
    anyq = " | ".join(f"({s})" for s in slots)
    met = " + ".join(f"((words || pinyin) @@ ${n + 2}::tsquery)::int" for n in range(len(slots)))
    rows = await conn.fetch(SQL.format(table=table, met=met), anyq, *slots)
    return [r["id"] for r in rows]


def pct(xs: list[float]) -> str:
    s = sorted(xs)
    return f"p50 {C.percentile(s, 50):7.3f} ms  p99 {C.percentile(s, 99):7.3f} ms"


async def run_size(conn, schema: str, n: int, args, queries) -> None:
    catalog = generate(n, args.seed)
    ids = list(range(1, n + 1))
    labels = {q.text: relevant(q, catalog, ids) for q in queries}
    evaluated = [q for q in queries if labels[q.text]]

    t0 = time.perf_counter()
    docs = [T.Doc(i + 1, g.title, g.subtitle, g.category, tuple(s for s, _, _ in g.skus), g.sort)
            for i, g in enumerate(catalog)]
    index = T.build(docs, T.BUILTIN_SYNONYMS, list(CATEGORIES))
    bm_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows = doc_rows(catalog)
    prep = time.perf_counter() - t0
    table = f'"{schema}".fts_{n}'
    t0 = time.perf_counter()
    await conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, rank int, head text[], other text[], "
                       "chars text[], full_py text[], initials text[], words tsvector, pinyin tsvector)")
    await conn.copy_records_to_table(f"fts_{n}", schema_name=schema, records=rows,
                                     columns=["id", "rank", "head", "other", "chars", "full_py", "initials"])
    await conn.execute(f"""UPDATE {table} SET
        words = setweight(array_to_tsvector(head), 'A') || setweight(array_to_tsvector(other), 'B')
                || setweight(array_to_tsvector(chars), 'D'),
        pinyin = setweight(array_to_tsvector(full_py), 'C') || setweight(array_to_tsvector(initials), 'D')""")
    await conn.execute(f"CREATE INDEX ON {table} USING gin ((words || pinyin))")
    await conn.execute(f"ANALYZE {table}")
    pg_build = time.perf_counter() - t0

    engines = {"bm25s index (module)": lambda q: _module(index, q),
               "PostgreSQL full-text": lambda q: pg_search(conn, table, q)}
    results, lat = await evaluate(engines, evaluated, labels, args.repeat)

    print(f"\n{n} products (seed {args.seed}); {len(evaluated)} of {len(queries)} queries have relevant products")
    print(f"build: bm25s index {bm_build:.1f} s; PostgreSQL: segmenting + pinyin {prep:.1f} s, "
          f"COPY + tsvectors + GIN {pg_build:.1f} s")
    print(f"{'class':10} {'n':>4}  " + "  ".join(f"{name:>22}" for name in engines))
    print(f"{'':10} {'':>4}  " + "  ".join(f"{'recall@5   nDCG@5':>22}" for _ in engines))
    for cls in (*CLASSES, "all"):
        row, count = [], 0
        for name in engines:
            vals = [v for c, vs in results[name].items() if cls in ("all", c) for v in vs]
            count = len(vals)
            recall, ndcg = (sum(v[i] for v in vals) / max(1, count) for i in (0, 1))
            row.append(f"{recall:11.3f}{ndcg:11.3f}")
        print(f"{cls:10} {count:>4}  " + "  ".join(f"{r:>22}" for r in row))
    for name in engines:
        print(f"query time {name:22}: {pct(lat[name])}")


async def _module(index: T.Index, q: str) -> list[int]:
    found, _ = T.search(index, q)
    return [int(i) for i in found[:5]]


async def main_async(args) -> None:
    import asyncpg

    queries = load_queries()
    schema = f"bench_fts_{uuid.uuid4().hex[:8]}"
    dsn = C.PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        for n in (int(x) for x in args.sizes.split(",")):
            await run_size(conn, schema, n, args, queries)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,100000")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--repeat", type=int, default=5)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
