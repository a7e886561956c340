"""What the module registers with the core's registry: the keyword search provider
(social_mall/search.py's seam), its console page 智能搜索 (synonyms, try-out) and its
templates. Writes to the synonyms table count as catalog writes for the core's read cache
(storage.cache.watch), so a saved synonym rebuilds the index on the next search."""

from __future__ import annotations

from social_mall.plugins import Registry
from social_mall_intelligence import HERE, web_console
from social_mall_intelligence.models import Synonym
from social_mall_intelligence.search import IndexedSearch
from social_mall_intelligence.synonyms import merchant_synonyms
from storage.cache import watch


def setup(reg: Registry) -> None:
    watch(Synonym)
    provider = IndexedSearch(synonyms=merchant_synonyms)
    reg.set_search(provider)
    reg.add_templates(HERE / "templates")
    web_console.register(reg, provider)
