"""A least-recently-used map with a cap: the per-tenant in-memory indexes (search) and
models (recommendations) of a worker serving many tenants stay bounded; an evicted
tenant's is rebuilt from the database on its next request."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("an LRU holds at least one entry")
        self.cap = cap
        self.evictions = 0
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        got = self._d.get(key)
        if got is not None:
            self._d.move_to_end(key)
        return got

    def put(self, key: K, value: V) -> list[K]:
        """Store (most recently used); the keys evicted to stay within the cap."""
        self._d[key] = value
        self._d.move_to_end(key)
        out = []
        while len(self._d) > self.cap:
            old, _ = self._d.popitem(last=False)
            out.append(old)
            self.evictions += 1
        return out

    def pop(self, key: K) -> None:
        self._d.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)
