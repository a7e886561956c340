"""Recommendations, pure (no I/O): item-item co-occurrence over members' histories, and
popularity for cold start and for members who switched personalisation off (PIPL Art. 24).

Model. Each member's history (products bought, weight 1; products viewed, weight
`VIEW_WEIGHT`) is one basket; two products co-occur once per member who has both.
similarity(i, j) = co(i, j) / sqrt(n_i · n_j) · co / (co + SHRINK)  (cosine, shrunk towards
0 when few members share the pair). Each product keeps its `NEIGHBOURS` most similar ones:
that table is what the nightly job stores and serving reads.

A member's candidates: the sum of the similarities from every product in their history
(weighted: a view counts VIEW_WEIGHT of a purchase; a product only viewed may itself be
recommended, one bought is not),
then (to fill `k`) the most popular products of the categories they bought from, then the
best sellers where the member shops (their store, their city: cold start by location), then
the shop's most popular. Never: what the caller excludes (off the shelf, out of stock).

Repurchase cycles. A product is a consumable when enough of its buyers bought it again
(`MIN_SUPPORT` members, and `MIN_REPEAT_SHARE` of its buyers); its cycle is the median over
those members of each member's median interval between two purchases (purchases within
`SAME_NEED_DAYS` are one need). A product with too few buyers to tell (fewer than
MIN_SUPPORT / MIN_REPEAT_SHARE) takes its category's cycle when the category qualifies
(every repurchase of one of its products counts); anything else is a durable. The
merchant's mark overrides both. Serving: a durable the member bought never comes back; a
consumable is held until `DUE_AT` of its cycle has passed since the member's last purchase
(`DECLARED_DUE_AT` of a cycle the merchant set), then it comes first (「该补货了」, at most
`RESTOCK_FIRST`, the most overdue first) until `LAPSED` cycles have passed (the member
went elsewhere: it may still be recommended, not pushed).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

NEIGHBOURS = 30
SHRINK = 2.0
VIEW_WEIGHT = 0.3
MIN_SUPPORT = 3          # members who bought a product again before its cycle is believed
MIN_REPEAT_SHARE = 0.1   # ... and at least this share of its buyers
SAME_NEED_DAYS = 1.0     # two purchases this close are one need (a second order for a forgotten size)
DUE_AT = 0.5             # a consumable comes back at half its estimated cycle: members rebuy at their next
                         # order, so the estimate runs late (bench/recommend.py: 1.8× the need; 0.5–0.9 measured)
DECLARED_DUE_AT = 0.9    # ... and at 90 % of a cycle the merchant declared (no such lag in it)
LAPSED = 3.0             # ... and is pushed first until this many cycles have passed
RESTOCK_FIRST = 3        # due consumables shown first, at most


@dataclass(frozen=True)
class Model:
    neighbours: Mapping[int, tuple[tuple[int, float], ...]]   # product → (product, similarity) best first
    popular: tuple[int, ...]                                   # the shop's products, most buyers first
    popular_by_category: Mapping[int, tuple[int, ...]]
    popular_by_place: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # "store:3", "city:深圳"


def fit(histories: Mapping[int, Mapping[int, float]], category_of: Mapping[int, int],
        neighbours: int = NEIGHBOURS, places: Mapping[int, Iterable[str]] | None = None) -> Model:
    """histories: member → product → weight (1 bought, VIEW_WEIGHT viewed; max of both);
    places: member → where they bought (popularity per place counts each buyer once)."""
    n: Counter[int] = Counter()
    co: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    buyers: Counter[int] = Counter()
    for items in histories.values():
        ids = sorted(items)
        for i in ids:
            n[i] += 1
            if items[i] >= 1:
                buyers[i] += 1
        for a_pos, a in enumerate(ids):
            wa = items[a]
            for b in ids[a_pos + 1:]:
                w = wa * items[b]
                co[a][b] += w
                co[b][a] += w
    table: dict[int, tuple[tuple[int, float], ...]] = {}
    for i, row in co.items():
        sims = []
        for j, c in row.items():
            s = c / math.sqrt(n[i] * n[j]) * (c / (c + SHRINK))
            if s > 0:
                sims.append((j, s))
        sims.sort(key=lambda x: (-x[1], x[0]))
        table[i] = tuple(sims[:neighbours])
    popular = tuple(p for p, _ in sorted(buyers.items(), key=lambda x: (-x[1], x[0])))
    by_cat: dict[int, list[int]] = defaultdict(list)
    for p in popular:
        if p in category_of:
            by_cat[category_of[p]].append(p)
    by_place: dict[str, Counter[int]] = defaultdict(Counter)
    for member, where in (places or {}).items():
        bought = [i for i, w in histories.get(member, {}).items() if w >= 1]
        for pl in set(where):
            by_place[pl].update(bought)
    return Model(table, popular, {c: tuple(v) for c, v in by_cat.items()},
                 {pl: tuple(p for p, _ in sorted(c.items(), key=lambda x: (-x[1], x[0]))) for pl, c in by_place.items()})


def recommend(model: Model, history: Mapping[int, float], k: int, *, exclude: Iterable[int] = (),
              category_of: Mapping[int, int] | None = None, personalised: bool = True,
              places: Sequence[str] = (), restock: Sequence[int] = (), back: Iterable[int] = ()) -> list[int]:
    """The member's `k` products, best first (popularity only when not `personalised`).
    `places`: where the member shops, most specific first: its best sellers come before
    the shop's (a member's location is personal: not used when not `personalised`).
    `restock`: consumables the member bought that are due again (due()), shown first;
    `back`: other bought consumables whose cycle lapsed, recommended like any product."""
    skip = set(exclude)
    out: list[int] = []
    # bought; a product only viewed may come back, a bought consumable once its cycle passed
    owned = {i for i, w in history.items() if w >= 1} - set(restock) - set(back)
    if personalised:
        for p in restock:
            if len(out) >= min(k, RESTOCK_FIRST):
                break
            if p not in skip:
                out.append(p)
    if personalised:
        scores: dict[int, float] = defaultdict(float)
        for i, w in history.items():
            for j, s in model.neighbours.get(i, ()):
                scores[j] += w * s
        for j, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0])):
            if j not in skip and j not in owned and j not in out:
                out.append(j)
                if len(out) >= k:
                    return out
        if category_of:
            cats = Counter(category_of[i] for i in history if i in category_of)
            for cat, _ in cats.most_common():
                _fill(out, model.popular_by_category.get(cat, ()), skip | owned, k)
        for pl in places:
            _fill(out, model.popular_by_place.get(pl, ()), skip | owned, k)
    _fill(out, model.popular, skip | (owned if personalised else set()), k)
    return out[:k]


def also_bought(model: Model, product: int, k: int, *, exclude: Iterable[int] = ()) -> list[int]:
    """「买了它的人还买了」: the product's nearest neighbours."""
    skip = set(exclude) | {product}
    return [j for j, _ in model.neighbours.get(product, ()) if j not in skip][:k]


def _fill(out: list[int], pool: Sequence[int], skip: set[int], k: int) -> None:
    seen = set(out)
    for p in pool:
        if len(out) >= k:
            return
        if p not in skip and p not in seen:
            out.append(p)
            seen.add(p)


def cycles(purchases: Mapping[int, Mapping[int, Sequence[float]]], category_of: Mapping[int, int], *,
           min_support: int = MIN_SUPPORT, min_share: float = MIN_REPEAT_SHARE) -> dict[int, float]:
    """purchases: member → product → the days (any epoch) it was bought. The consumables'
    repurchase cycles in days (product → days); a product not in the answer is a durable."""
    per_member: dict[int, list[float]] = defaultdict(list)     # product → each repurchaser's median interval
    buyers: Counter[int] = Counter()
    for bought in purchases.values():
        for p, days in bought.items():
            buyers[p] += 1
            gaps = _gaps(days)
            if gaps:
                per_member[p].append(_median(gaps))
    out: dict[int, float] = {}
    cat_medians: dict[int, list[float]] = defaultdict(list)
    cat_buyers: Counter[int] = Counter()
    for p, n in buyers.items():
        if p in category_of:
            cat_buyers[category_of[p]] += n
            cat_medians[category_of[p]].extend(per_member.get(p, ()))
    for p, meds in per_member.items():
        if len(meds) >= min_support and len(meds) >= min_share * buyers[p]:
            out[p] = _median(meds)
    by_cat = {c: _median(m) for c, m in cat_medians.items()
              if len(m) >= min_support and len(m) >= min_share * cat_buyers[c]}
    too_few = min_support / min_share if min_share > 0 else float("inf")   # buyers to tell a durable apart
    for p, n in buyers.items():
        if p not in out and category_of.get(p) in by_cat and n < too_few:
            out[p] = by_cat[category_of[p]]
    return out


def due(last_bought: Mapping[int, float], cycle: Mapping[int, float], today: float, *,
        due_at: float = DUE_AT, declared: Collection[int] = ()) -> tuple[list[int], set[int], set[int]]:
    """last_bought: product → the day the member last bought it; `declared`: products whose
    cycle the merchant set (due at DECLARED_DUE_AT of it). (restock: consumables due again,
    the most overdue first; back: consumables whose cycle lapsed; held: everything else
    bought: durables and consumables within their cycle)."""
    ready: list[tuple[float, int]] = []
    back: set[int] = set()
    held: set[int] = set()
    for p, day in last_bought.items():
        c = cycle.get(p)
        if c is None or today - day < (DECLARED_DUE_AT if p in declared else due_at) * c:
            held.add(p)
        elif today - day <= LAPSED * c:
            ready.append((-(today - day) / c, p))
        else:
            back.add(p)
    return [p for _, p in sorted(ready)], back, held


def _gaps(days: Sequence[float]) -> list[float]:
    """Intervals between needs (purchases closer than SAME_NEED_DAYS are one)."""
    out: list[float] = []
    last: float | None = None
    for d in sorted(days):
        if last is None:
            last = d
        elif d - last >= SAME_NEED_DAYS:
            out.append(d - last)
            last = d
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
