"""social_mall's intelligence module: Chinese product search (segmentation with a merchant
dictionary, full pinyin and initials, typo tolerance, BM25 ranking, suggestions instead
of a dead end), recommendations, and dynamic pricing (docs/dynamic_pricing.md).

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Importing it costs nothing: rjieba
(jieba's segmentation), pypinyin and the index load in `setup` and on the first search. How it plugs in:
docs/modules.md (the search seam).
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "intelligence"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_intelligence.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "Intelligence: Chinese product search (jieba via rjieba, pinyin, initials, typos, synonyms, BM25), "
    "recommendations (猜你喜欢, 买了它的人还买了) and dynamic pricing (动态定价: rules under guard rails, preview, A/B)",
    migrations=HERE / "migrations",
    models="social_mall_intelligence.models",
)
