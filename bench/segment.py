#!/usr/bin/env python3
"""jieba against rjieba (jieba-rs, the segmenter the intelligence module uses) on the
search bench's generated catalog (bench/search_catalog.py: 2,000 products) and its
labelled queries (bench/search_queries.tsv): the same output? how fast?

    .venv/bin/python -m pip install jieba==0.42.1      # the bench only: the module runs on rjieba
    .venv/bin/python bench/segment.py [--products 2000] [--repeat 5]

For each of the module's three cuts (textindex.Segmenter: search mode with HMM for
documents, precise without HMM for queries, precise with HMM for titles' word pairs) it
prints how many texts segment identically and the time per text (the best of --repeat
passes, after a warm-up pass that also loads each dictionary; load times printed apart).
jieba's paddle mode is never used."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from search_catalog import generate  # noqa: E402


def best(fn, texts: list[str], repeat: int) -> float:
    """The best pass's time per text, in µs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        times.append(time.perf_counter() - t0)
    return 1e6 * min(times) / len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    try:
        import jieba
    except ImportError:
        raise SystemExit("jieba is not installed: .venv/bin/python -m pip install jieba==0.42.1 (the bench only)")
    import logging

    import rjieba

    jieba.setLogLevel(logging.WARNING)
    products = generate(args.products)
    docs = [f"{p.title} {p.subtitle}" for p in products]
    queries = [line.split("\t")[1] for line in (HERE / "search_queries.tsv").read_text("utf-8").splitlines()
               if line and not line.startswith("#")]

    t0 = time.perf_counter()
    jieba.initialize()
    t_jieba = time.perf_counter() - t0
    t0 = time.perf_counter()
    rj = rjieba.Jieba()
    rj.cut("预热")
    t_rjieba = time.perf_counter() - t0
    print(f"{len(docs)} product texts, {len(queries)} queries; dictionary load: jieba {t_jieba:.2f} s, "
          f"rjieba {t_rjieba:.2f} s")

    cuts = (("documents: search mode, HMM", docs, lambda t: list(jieba.cut_for_search(t, HMM=True)),
             lambda t: rj.cut_for_search(t, True)),
            ("queries: precise, no HMM", queries, lambda t: list(jieba.cut(t, HMM=False)),
             lambda t: rj.cut(t, False)),
            ("titles: precise, HMM", [p.title for p in products], lambda t: list(jieba.cut(t, HMM=True)),
             lambda t: rj.cut(t, True)))
    for label, texts, py, rs in cuts:
        same = sum(1 for t in texts if py(t) == list(rs(t)))
        us_py, us_rs = best(py, texts, args.repeat), best(rs, texts, args.repeat)
        print(f"  {label:30s} identical {same}/{len(texts)}  jieba {us_py:7.1f} µs  rjieba {us_rs:6.1f} µs  "
              f"({us_py / us_rs:.0f}x)")
        if same != len(texts):
            diff = next(t for t in texts if py(t) != list(rs(t)))
            print(f"    first difference: {diff!r}: {py(diff)} vs {list(rs(diff))}")


if __name__ == "__main__":
    main()
