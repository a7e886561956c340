"""social_mall's content module (内容管理): articles (图文) written in the console with a
rich-text body stored sanitised (nh3), a cover and linked products; 「最新活动」 in chat shows
the latest as a news card, its H5 page shows the article with its products.

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
    NAME, _setup, "Content: articles in the console, news cards in chat, H5 article pages with their products",
    migrations=HERE / "migrations",
    models="social_mall_content.models",
)
