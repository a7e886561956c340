"""The search provider the module registers (social_mall/search.py's seam): one index per
tenant, built on the first search and kept fresh.

Memory. A worker keeps at most `max_tenants` indexes (64): the least recently searched
tenant's is dropped and rebuilt on its next search (lru.py).

Freshness. An index remembers the process's catalog version (storage/cache.py: bumped when
a unit of work that wrote products, SKUs or categories commits) and a fingerprint of the
tenant's shelf. A search in the process that made an edit sees it at once (the version
moved); other workers compare the fingerprint at most every `recheck` seconds (2 s: on
PostgreSQL it includes the texts' hashes, so any edit is seen; on SQLite only counts and
lengths), and rebuild any index older than `max_age` (60 s) anyway. A rebuild of 2,000 products takes
~60 ms (products' terms are remembered; bench/search.py prints it), in a thread, so a
big catalog's build (100,000 products: ~15 s) doesn't stop the event loop.

No hit: the categories nearest to the words (pinyin and characters) and products to try are
offered, never a dead end: the nearest category's best sellers, then the shop's (by distinct
buyers, the recommendation model's popularity: `BestSellers`), then the merchant's order;
only products in stock (a sold-out product is no suggestion).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from social_mall.search import SearchHits
from social_mall_intelligence import textindex
from social_mall_intelligence.lru import Lru
from social_mall_intelligence.repos import Fingerprint, ShelfRepo
from social_mall_intelligence.textindex import Doc, Index
from storage.uow import UnitOfWork

SUGGEST_CATEGORIES = 3
SUGGEST_PRODUCTS = 5
MAX_TENANTS = 64      # indexes a worker keeps (least recently searched evicted, rebuilt on demand)


@dataclass
class _Entry:
    index: Index
    docs: list[Doc]
    categories: list[str]
    version: int
    fingerprint: Fingerprint
    checked: float
    built: float


#: async (uow, tenant) → the merchant's synonyms (merged over the built-in ones)
SynonymSource = Callable[[UnitOfWork, int], Awaitable[Mapping[str, tuple[str, ...]]]]
#: async (uow, tenant) → (the shop's products, most buyers first; the products in stock on the shelf)
BestSellers = Callable[[UnitOfWork, int], Awaitable[tuple[Sequence[int], frozenset[int]]]]


class IndexedSearch:
    def __init__(self, *, recheck: float = 2.0, max_age: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 synonyms: SynonymSource | None = None, max_tenants: int = MAX_TENANTS,
                 best_sellers: BestSellers | None = None) -> None:
        self.recheck, self.max_age, self.clock = recheck, max_age, clock
        self.synonyms = synonyms
        self.best_sellers = best_sellers
        self.builds = 0            # diagnostics (tests, bench)
        self._entries: Lru[int, _Entry] = Lru(max_tenants)
        self._locks: dict[int, asyncio.Lock] = {}
        self._building = asyncio.Lock()

    def forget(self, tenant: int) -> None:
        """Rebuild this tenant's index on its next search (its synonyms changed)."""
        self._entries.pop(tenant)

    async def index(self, uow: UnitOfWork, tenant: int) -> _Entry:
        entry = self._entries.get(tenant)
        now = self.clock()
        version = uow.cache.version
        if entry is not None and entry.version == version and now - entry.checked < self.recheck:
            return entry
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            entry = self._entries.get(tenant)
            repo = ShelfRepo(uow.session)
            if entry is not None and entry.version == version and now - entry.built < self.max_age:
                if now - entry.checked < self.recheck:
                    return entry
                if await repo.fingerprint(tenant) == entry.fingerprint:
                    entry.checked = now
                    return entry
            fingerprint = await repo.fingerprint(tenant)
            docs, cats = await repo.docs(tenant)
            merchant: Mapping[str, tuple[str, ...]] = {}
            if self.synonyms is not None:
                merchant = await self.synonyms(uow, tenant)
            synonyms = {**textindex.BUILTIN_SYNONYMS, **merchant}
            async with self._building:   # one build at a time (the segmenter is shared), off the event loop
                built = await asyncio.to_thread(textindex.build, docs, synonyms, list(cats.values()))
            entry = _Entry(built, docs, list(dict.fromkeys(cats.values())), version, fingerprint, now, now)
            for old in self._entries.put(tenant, entry):
                lock = self._locks.get(old)
                if lock is not None and not lock.locked():
                    del self._locks[old]
            self.builds += 1
            return entry

    async def search(self, uow: UnitOfWork, tenant: int, keyword: str, *, offset: int, limit: int,
                     hidden: frozenset[int] = frozenset()) -> SearchHits:
        """`hidden`: products kept from the member who searches (the core's visibility
        seam), left out before paging."""
        entry = await self.index(uow, tenant)
        ids, total = textindex.search(entry.index, keyword)
        if total and hidden:
            ids = ids[~np.isin(ids, np.fromiter(hidden, dtype=ids.dtype, count=len(hidden)))]
            total = len(ids)
        if total:
            return SearchHits(tuple(int(i) for i in ids[offset:offset + limit]), total)
        cats = nearest_categories(entry.categories, keyword)
        return SearchHits((), 0, await self._suggested(uow, tenant, entry, cats[:1], hidden), tuple(cats))

    async def _suggested(self, uow: UnitOfWork, tenant: int, entry: _Entry, near: list[str],
                         hidden: frozenset[int]) -> tuple[int, ...]:
        """Products to try when nothing matched: the nearest category's best sellers, then
        the shop's, then the rest in the merchant's order; in stock, never hidden."""
        ranked: Sequence[int] = ()
        in_stock: frozenset[int] | None = None
        if self.best_sellers is not None:
            ranked, in_stock = await self.best_sellers(uow, tenant)
        rank = {p: r for r, p in enumerate(ranked)}
        docs = sorted((d for d in entry.docs if d.id not in hidden and (in_stock is None or d.id in in_stock)),
                      key=lambda d: rank.get(d.id, len(rank)))   # stable: unsold ones in the merchant's order
        picked = [d.id for d in docs if d.category in near][:SUGGEST_PRODUCTS]
        picked += [d.id for d in docs if d.id in rank and d.id not in picked]
        picked += [d.id for d in docs if d.id not in picked]
        return tuple(picked[:SUGGEST_PRODUCTS])


def nearest_categories(names: list[str], keyword: str) -> list[str]:
    """Categories sharing characters or pinyin with the words, nearest first; none alike:
    the shop's first categories."""
    from rapidfuzz import fuzz

    q = textindex.normalize(keyword).replace(" ", "")
    q_pinyin = textindex.pinyin_of(q)[0] if q else ""

    def score(name: str) -> float:
        shared = len(set(q) & set(name)) * 40
        return shared + fuzz.partial_ratio(q_pinyin, textindex.pinyin_of(name)[0]) * 0.5

    ranked = sorted(names, key=lambda n: -score(n))
    close = [n for n in ranked if score(n) >= 50]
    return (close or names)[:SUGGEST_CATEGORIES]
