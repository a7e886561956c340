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
the shop's most popular. Never: what the caller excludes (off the shelf, out of stock, bought
within its cycle).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

NEIGHBOURS = 30
SHRINK = 2.0
VIEW_WEIGHT = 0.3


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
              places: Sequence[str] = ()) -> list[int]:
    """The member's `k` products, best first (popularity only when not `personalised`).
    `places`: where the member shops, most specific first: its best sellers come before
    the shop's (a member's location is personal: not used when not `personalised`)."""
    skip = set(exclude)
    out: list[int] = []
    owned = {i for i, w in history.items() if w >= 1}   # bought; a product only viewed may come back
    if personalised:
        scores: dict[int, float] = defaultdict(float)
        for i, w in history.items():
            for j, s in model.neighbours.get(i, ()):
                scores[j] += w * s
        for j, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0])):
            if j not in skip and j not in owned:
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
