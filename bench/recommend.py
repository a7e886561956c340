#!/usr/bin/env python3
"""Recommendations offline: "most popular" against the module's item-item co-occurrence
(and implicit's ALS matrix factorisation when the library is installed), on generated
purchase and browsing histories; each member's last order held out.

    /work/venvs/intel22/bin/python bench/recommend.py
    /work/venvs/intel22/bin/python bench/recommend.py --members 5000 --seed 7

How the histories are generated (deterministic for a seed), with the skew of a real shop:
- the catalog of bench/search_catalog.py (2,000 products, Zipf-sized categories); inside
  a category, products have a fixed popularity rank and are drawn Zipf(1.05) by it;
- every product has 3 companions bought with it (60 % from its own category, else from a
  linked one: 女装↔鞋靴/美妆, 水果生鲜/茶饮冲调↔休闲零食, 日用百货↔母婴, 男装↔数码配件);
- --members members, each preferring 1–2 categories (drawn by category size); orders per
  member 1 + geometric(0.35), at most 15 (a few heavy buyers, many one-off ones);
- an order holds 1–3 products: with probability 0.45 its first is a companion of something
  the member bought before, else a popular product of a preferred category (10 % of the
  time any category); later ones are the first's companions (60 %) or popular ones;
- each order comes with 0–4 views of products of the same category (browsing).
Evaluation: members with ≥ 2 orders; the last order (and its views) held out; a member is
a hit when one of its products is in the top 10 (products bought before never count;
products only viewed may be recommended). The module is measured with views (weight
R.VIEW_WEIGHT in the model and in the member's history), with purchases only, and with
other view weights (--view-weights).
Coverage: distinct products recommended to anyone / products in the catalog.
Latency: one member's top 10 from the precomputed neighbour table in memory.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # implicit asks for it
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

from search_catalog import CATEGORIES, generate  # noqa: E402

from social_mall_intelligence import recommend as R  # noqa: E402

LINKED = {"女装": ["鞋靴", "美妆"], "鞋靴": ["女装", "男装"], "美妆": ["女装"], "水果生鲜": ["休闲零食"],
          "茶饮冲调": ["休闲零食"], "休闲零食": ["水果生鲜", "茶饮冲调"], "日用百货": ["母婴"], "母婴": ["日用百货"],
          "男装": ["数码配件", "鞋靴"], "数码配件": ["男装"]}


def zipf_pick(rng: random.Random, pool: list[int], s: float = 1.05) -> int:
    weights = [1 / (r + 1) ** s for r in range(len(pool))]
    return rng.choices(pool, weights)[0]


def histories(members: int, seed: int):
    rng = random.Random(seed)
    catalog = generate(2000, seed=22)
    names = list(CATEGORIES)
    cat_of = {i + 1: names.index(p.category) for i, p in enumerate(catalog)}
    by_cat: dict[int, list[int]] = defaultdict(list)
    for pid, c in cat_of.items():
        by_cat[c].append(pid)
    for c in by_cat:
        rng.shuffle(by_cat[c])          # the fixed popularity rank inside the category
    sizes = [len(by_cat[c]) for c in range(len(names))]
    companions: dict[int, list[int]] = {}
    for pid, c in cat_of.items():
        comp = []
        for _ in range(3):
            if rng.random() < 0.6 or names[c] not in LINKED:
                comp.append(zipf_pick(rng, by_cat[c]))
            else:
                other = names.index(rng.choice(LINKED[names[c]]))
                comp.append(zipf_pick(rng, by_cat[other]))
        companions[pid] = [x for x in comp if x != pid]
    orders: dict[int, list[tuple[list[int], list[int]]]] = {}
    for m in range(1, members + 1):
        prefs = list(dict.fromkeys(rng.choices(range(len(names)), sizes, k=rng.randint(1, 2))))
        count = 1
        while rng.random() > 0.35 and count < 15:
            count += 1
        bought: list[int] = []
        mine = []
        for _ in range(count):
            def popular() -> int:
                cat = rng.choice(prefs) if rng.random() < 0.9 else rng.randrange(len(names))
                return zipf_pick(rng, by_cat[cat])
            first = rng.choice(companions[rng.choice(bought)]) if bought and rng.random() < 0.45 \
                and companions[bought[-1]] else popular()
            items = [first]
            for _ in range(rng.randint(0, 2)):
                items.append(rng.choice(companions[first]) if companions[first] and rng.random() < 0.6 else popular())
            items = list(dict.fromkeys(items))
            views = [zipf_pick(rng, by_cat[cat_of[first]]) for _ in range(rng.randint(0, 4))]
            mine.append((items, views))
            bought.extend(items)
        orders[m] = mine
    return catalog, cat_of, orders


def split(orders, with_views: bool = True, view_weight: float = R.VIEW_WEIGHT):
    train: dict[int, dict[int, float]] = {}
    held: dict[int, set[int]] = {}
    for m, mine in orders.items():
        hist: dict[int, float] = {}
        past = mine[:-1] if len(mine) >= 2 else mine
        for items, views in past:
            for v in views if with_views else ():
                hist[v] = max(hist.get(v, 0.0), view_weight)
            for i in items:
                hist[i] = 1.0
        train[m] = hist
        if len(mine) >= 2:
            held[m] = set(mine[-1][0])
    return train, held


def evaluate(name: str, recs: dict[int, list[int]], held: dict[int, set[int]], n_products: int) -> None:
    hits = sum(1 for m, want in held.items() if want & set(recs.get(m, [])))
    covered = {p for m in held for p in recs.get(m, [])}
    print(f"{name:34} hit-rate@10 {hits / len(held):.3f}   coverage {len(covered) / n_products:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--view-weights", default="0.1,0.3,0.5,1.0",
                    help="also report the module with views at these weights")
    args = ap.parse_args()
    catalog, cat_of, orders = histories(args.members, args.seed)
    train, held = split(orders)
    n_orders = sum(len(v) for v in orders.values())
    print(f"{len(catalog)} products, {args.members} members, {n_orders} orders; {len(held)} members evaluated "
          f"(last order held out)")
    bought = {m: {p for p, w in h.items() if w >= 1} for m, h in train.items()}
    t0 = time.perf_counter()
    model = R.fit(train, cat_of)
    fit_s = time.perf_counter() - t0
    k = 10
    pop = {m: R.recommend(model, train[m], k, exclude=bought[m], personalised=False) for m in held}
    evaluate("most popular (not personalised)", {m: [p for p in pop[m] if p not in bought[m]] for m in held},
             held, len(catalog))
    popcat = {m: R.recommend(R.Model({}, model.popular, model.popular_by_category), train[m], k,
                             exclude=bought[m], category_of=cat_of) for m in held}
    evaluate("most popular of the member's cats", popcat, held, len(catalog))
    times = []
    recs = {}
    for m in held:
        t = time.perf_counter()
        recs[m] = R.recommend(model, train[m], k, exclude=bought[m], category_of=cat_of)
        times.append((time.perf_counter() - t) * 1000)
    evaluate(f"item-item, views (w {R.VIEW_WEIGHT}) (module)", recs, held, len(catalog))
    plain, _ = split(orders, with_views=False)   # purchases only: what the module fitted before views
    plain_model = R.fit(plain, cat_of)
    evaluate("item-item, purchases only", {m: R.recommend(plain_model, plain[m], k, exclude=bought[m],
                                                          category_of=cat_of) for m in held}, held, len(catalog))
    for w in (float(x) for x in args.view_weights.split(",") if x):
        if w == R.VIEW_WEIGHT:
            continue
        tw, _ = split(orders, view_weight=w)
        mw = R.fit(tw, cat_of)
        evaluate(f"item-item, views (w {w})", {m: R.recommend(mw, tw[m], k, exclude=bought[m], category_of=cat_of)
                                               for m in held}, held, len(catalog))
    try:
        import implicit  # noqa: F401
    except ImportError:
        print("implicit (ALS) not installed: skipped")
    else:
        als(train, held, bought, catalog, k)
    s = sorted(times)
    print(f"fit {fit_s:.2f} s; serving one member's top 10 from the neighbour table: "
          f"p50 {C.percentile(s, 50):.3f} ms  p99 {C.percentile(s, 99):.3f} ms")


def als(train, held, bought, catalog, k: int) -> None:
    import numpy as np
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    members = sorted(train)
    row = {m: i for i, m in enumerate(members)}
    rows, cols, vals = [], [], []
    for m, hist in train.items():
        for p, w in hist.items():
            rows.append(row[m])
            cols.append(p - 1)
            vals.append(1 + 20 * w)
    ui = csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(members), len(catalog)))
    t0 = time.perf_counter()
    model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, random_state=22)
    model.fit(ui, show_progress=False)
    fit_s = time.perf_counter() - t0
    recs = {}
    for m in held:
        ids, _ = model.recommend(row[m], ui[row[m]], N=k + 20, filter_already_liked_items=False)
        recs[m] = [int(i) + 1 for i in ids if int(i) + 1 not in bought[m]][:k]
    evaluate(f"implicit ALS (64 factors, fit {fit_s:.1f} s)", recs, held, len(catalog))


if __name__ == "__main__":
    main()
