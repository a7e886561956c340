"""social_mall's insights module (数据洞察): an append-only record of what every customer
does on every channel (fed by the core's activity sinks and the outbox's domain events,
written in batches off the chat path), daily rollups, console analytics (funnel, retention
cohorts, LTV, RFM, attribution, a member's timeline), segments by rules and campaigns
pushed to them.

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Its tables live on their own
Alembic branch (`migrations/`, label "insights"). How it works: docs/insights.md.
"""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "insights"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_insights.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup,
    "Insights: customer events, funnel, cohorts, LTV, RFM, attribution, segments and campaigns",
    migrations=HERE / "migrations",
    models="social_mall_insights.models",
)
