"""What the module registers with the core's registry: the keyword search provider
(social_mall/search.py's seam). The composition root's `Services` (reg.services) is the
only handle it keeps."""

from __future__ import annotations

from social_mall.plugins import Registry
from social_mall_intelligence.search import IndexedSearch


def setup(reg: Registry) -> None:
    reg.set_search(IndexedSearch())
