"""social_mall's content module (内容管理): articles (图文) written in the console with a
rich-text body stored sanitised (nh3), a cover and linked products; 「最新活动」 in chat shows
the latest as a news card, its H5 page shows the article with its products. Broadcasts (群发)
go to all followers or a segment through the mass-send API (sender.py, broadcasts.py).

A module package: the core finds `MODULE` through the entry-point group
`social_mall.modules` and never imports this package. Its tables live on their own Alembic
branch (`migrations/`, label "content")."""

from __future__ import annotations

from pathlib import Path

from social_mall.plugins import Module, Registry

NAME = "content"
HERE = Path(__file__).resolve().parent


def _setup(reg: Registry) -> None:
    from social_mall_content.module import setup

    setup(reg)


MODULE = Module(
    NAME, _setup, "Content: articles in the console, news cards in chat, H5 article pages with their products, "
    "broadcasts (mass send) to a segment with previews, quota and schedules",
    migrations=HERE / "migrations",
    models="social_mall_content.models",
)
