#!/usr/bin/env python3
"""Recommendations offline: "most popular" against the module's item-item co-occurrence
(and implicit's ALS matrix factorisation when the library is installed), on generated
purchase and browsing histories; each member's last order held out.

    .venv/bin/python bench/recommend.py
    .venv/bin/python bench/recommend.py --members 5000 --seed 7
    .venv/bin/python bench/recommend.py --consumables 0   # the histories before cycles

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
- each order comes with 0–4 views of products of the same category (browsing);
- time (--consumables 1, the default; its own random stream, so --consumables 0 gives the
  histories, and the figures, from before cycles): a member's first order falls on a day in
  the first 180, the next ones 1 + exponential(mean 20) days apart. In the consumable
  categories (CYCLE_DAYS) 70 % of the products are consumables with a cycle of the
  category's days × uniform(0.7, 1.4); at every later order, each consumable the member
  bought whose cycle (× the member's own pace, uniform(0.8, 1.2)) has passed is bought
  again with probability 0.6 (what real repeat buyers look like: most, not all, come back).
Evaluation: members with ≥ 2 orders; the last order (and its views) held out; a member is
a hit when one of its products is in the top 10 (products bought before never count;
products only viewed may be recommended). The module is measured with views (weight
R.VIEW_WEIGHT in the model and in the member's history), with purchases only, and with
other view weights (--view-weights).
With cycles: the cycles are estimated from the training histories (R.cycles); at the day
of the held-out order, bought durables and consumables within their cycle are excluded, due
consumables come first (R.due); "never again" is the module before cycles, "always again"
lets every bought product back (ranked by the model): the cost shows as slots wasted on
products bought within their cycle (the real one) or on a durable bought before.
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


CYCLE_DAYS = {"水果生鲜": 7, "休闲零食": 14, "母婴": 20, "日用百货": 30, "茶饮冲调": 30, "美妆": 45}


def histories(members: int, seed: int, consumables: bool = True):
    """(catalog, product → category, member → [(items, views)], member → the orders' days,
    product → its true cycle in days (consumables))."""
    rng = random.Random(seed)
    clock = random.Random(seed * 7919 + 1)   # time and repurchases: the other draws stay as they were
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
    cycle: dict[int, float] = {}
    for pid, c in cat_of.items():
        if consumables and names[c] in CYCLE_DAYS and clock.random() < 0.7:
            cycle[pid] = CYCLE_DAYS[names[c]] * clock.uniform(0.7, 1.4)
    days: dict[int, list[float]] = {}
    orders: dict[int, list[tuple[list[int], list[int]]]] = {}
    for m in range(1, members + 1):
        prefs = list(dict.fromkeys(rng.choices(range(len(names)), sizes, k=rng.randint(1, 2))))
        count = 1
        while rng.random() > 0.35 and count < 15:
            count += 1
        bought: list[int] = []
        mine = []
        day = clock.uniform(0, 180)
        pace = clock.uniform(0.8, 1.2)
        last: dict[int, float] = {}
        when: list[float] = []
        for n in range(count):
            if n:
                day += 1 + clock.expovariate(1 / 20)
            def popular() -> int:
                cat = rng.choice(prefs) if rng.random() < 0.9 else rng.randrange(len(names))
                return zipf_pick(rng, by_cat[cat])
            first = rng.choice(companions[rng.choice(bought)]) if bought and rng.random() < 0.45 \
                and companions[bought[-1]] else popular()
            items = [first]
            for _ in range(rng.randint(0, 2)):
                items.append(rng.choice(companions[first]) if companions[first] and rng.random() < 0.6 else popular())
            again = [p for p, at in sorted(last.items()) if p in cycle and day - at >= cycle[p] * pace
                     and clock.random() < 0.6]
            items = list(dict.fromkeys(again + items))
            for p in items:
                last[p] = day
            when.append(day)
            views = [zipf_pick(rng, by_cat[cat_of[first]]) for _ in range(rng.randint(0, 4))]
            mine.append((items, views))
            bought.extend(items)
        orders[m] = mine
        days[m] = when
    return catalog, cat_of, orders, days, cycle


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
    ap.add_argument("--als-factors", default="16,64", help="implicit's ALS (when installed) with these factors")
    ap.add_argument("--consumables", type=int, default=1, help="0: no consumables, no repurchases")
    ap.add_argument("--due-at", default="0.7,0.9", help="also report cycles with consumables due at these shares")
    ap.add_argument("--view-weights", default="0.1,0.3,0.5,1.0",
                    help="also report the module with views at these weights")
    args = ap.parse_args()
    catalog, cat_of, orders, days, true_cycle = histories(args.members, args.seed, bool(args.consumables))
    train, held = split(orders)
    n_orders = sum(len(v) for v in orders.values())
    print(f"{len(catalog)} products ({len(true_cycle)} consumables), {args.members} members, {n_orders} orders; "
          f"{len(held)} members evaluated (last order held out)")
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
        for factors in (int(x) for x in args.als_factors.split(",") if x):
            als(train, held, bought, catalog, k, factors)
    if args.consumables:
        with_cycles(model, train, held, bought, orders, days, true_cycle, cat_of, recs, k, len(catalog),
                    [float(x) for x in args.due_at.split(",") if x])
    s = sorted(times)
    print(f"fit {fit_s:.2f} s; serving one member's top 10 from the neighbour table: "
          f"p50 {C.percentile(s, 50):.3f} ms  p99 {C.percentile(s, 99):.3f} ms")


def with_cycles(model, train, held, bought, orders, days, true_cycle, cat_of, never, k: int, n_products: int,
                due_ats: list[float]) -> None:
    """Repurchase cycles estimated from the training orders; served as the module does."""
    purchases: dict[int, dict[int, list[float]]] = {}
    last: dict[int, dict[int, float]] = {}
    for m, mine in orders.items():
        past = list(zip(mine[:-1], days[m][:-1])) if len(mine) >= 2 else list(zip(mine, days[m]))
        got: dict[int, list[float]] = defaultdict(list)
        for (items, _), day in past:
            for p in items:
                got[p].append(day)
        purchases[m] = got
        last[m] = {p: max(d) for p, d in got.items()}
    t0 = time.perf_counter()
    est = R.cycles(purchases, cat_of)
    est_s = time.perf_counter() - t0
    found = set(est) & set(true_cycle)
    ratio = sorted(est[p] / true_cycle[p] for p in found)
    bought_any = {p for g in purchases.values() for p in g}
    print(f"cycles estimated in {est_s:.2f} s: {len(est)} products marked consumable; of the "
          f"{len(true_cycle & bought_any if isinstance(true_cycle, set) else set(true_cycle) & bought_any)} "
          f"consumables bought in training {len(found)} found "
          f"(estimate / true cycle: median {C.percentile(ratio, 50):.2f}; "
          f"a member rebuys at an order, so later than the need), "
          f"{len(set(est) - set(true_cycle))} durables taken for consumables")
    repurchases = {m for m, want in held.items() if want & bought[m]}
    print(f"{len(repurchases)} of {len(held)} held-out orders hold a repurchase")

    def report(name: str, recs: dict[int, list[int]]) -> None:
        hits = sum(1 for m, want in held.items() if want & set(recs.get(m, [])))
        again = sum(1 for m in repurchases if held[m] & bought[m] & set(recs.get(m, [])))
        slots = wasted = 0
        for m in held:
            today = days[m][-1]
            for p in recs.get(m, []):
                slots += 1
                if p in last[m] and (p not in true_cycle or today - last[m][p] < DUE_TRUE * true_cycle[p]):
                    wasted += 1
        covered = {p for m in held for p in recs.get(m, [])}
        print(f"{name:34} hit-rate@10 {hits / len(held):.3f}   coverage {len(covered) / n_products:.3f}   "
              f"repurchases hit {again / max(1, len(repurchases)):.3f}   slots wasted {wasted / max(1, slots):.3f}")

    report("never again (the module before)", never)
    always = {m: R.recommend(model, train[m], k, category_of=cat_of, back=bought[m]) for m in held}
    report("always again (no cycles)", always)
    for due_at in sorted({R.DUE_AT, *due_ats}):
        times = []
        recs = {}
        for m in held:
            t = time.perf_counter()
            restock, back, held_back = R.due(last[m], est, days[m][-1], due_at=due_at)
            recs[m] = R.recommend(model, train[m], k, exclude=held_back, category_of=cat_of, restock=restock,
                                  back=back)
            times.append((time.perf_counter() - t) * 1000)
        report(f"cycles, due at {due_at:.0%}" + (" (module)" if due_at == R.DUE_AT else ""), recs)
    s = sorted(times)
    print(f"serving with cycles (due() + top 10): p50 {C.percentile(s, 50):.3f} ms  p99 {C.percentile(s, 99):.3f} ms")


DUE_TRUE = 0.8   # "wasted": a durable bought before, or a consumable before 80 % of its true cycle


def als(train, held, bought, catalog, k: int, factors: int) -> None:
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
    model = AlternatingLeastSquares(factors=factors, iterations=15, regularization=0.05, random_state=22)
    model.fit(ui, show_progress=False)
    fit_s = time.perf_counter() - t0
    recs = {}
    for m in held:
        ids, _ = model.recommend(row[m], ui[row[m]], N=k + 20, filter_already_liked_items=False)
        recs[m] = [int(i) + 1 for i in ids if int(i) + 1 not in bought[m]][:k]
    evaluate(f"implicit ALS ({factors} factors, fit {fit_s:.1f} s)", recs, held, len(catalog))


if __name__ == "__main__":
    main()
