"""图文 (mpnews) broadcasts: an article goes out as WeChat's own article card when it can.

A broadcast of an article alone (no added text, no product) whose cover is a picture this
server holds (an image uploaded in the console, `/uploads/<tenant>/…`, or a demo product's
picture, `/media/products/<id>.png`) is sent as `mpnews`: the cover is uploaded as permanent
material (`/cgi-bin/material/add_material`), the article becomes a draft (`/cgi-bin/draft/add`,
the draft box that replaced `material/add_news`) and mass/send takes the draft's media_id. The
draft's 「阅读原文」 is the article's H5 page, where its products are bought. Uploads are kept per
article and official account and made again only when the article changed since.

Anything else (added text, a product, a cover elsewhere on the web, which this server will not
fetch: an admin-typed URL fetched server-side is a request forgery waiting to happen) goes
out as today: a text with the links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from social_mall_content.models import Article, ArticleMedia
from storage.uow import UnitOfWork

UPLOAD = re.compile(r"^/uploads/(\d{1,12})/([0-9a-f]{32}\.(?:png|jpg|gif))$")   # WeChat takes no webp
PRODUCT_PICTURE = re.compile(r"^/media/products/(\d{1,18})\.png$")
IMG = re.compile(r"<img\b[^>]*>", re.I)       # pictures in a draft must be WeChat's own: left out


@dataclass(frozen=True)
class Cover:
    data: bytes
    filename: str


@dataclass(frozen=True)
class Draft:
    """What `draft/add` takes for one article, once the cover is uploaded."""

    title: str
    digest: str
    content: str
    source_url: str
    updated_at: datetime


def cover_of(cover: str, tenant_id: int, data_dir: Path) -> Cover | None:
    """The cover's bytes when this server holds them (never fetched from elsewhere)."""
    m = UPLOAD.match(cover)
    if m and int(m.group(1)) == tenant_id:
        path = data_dir / "uploads" / m.group(1) / m.group(2)
        return Cover(path.read_bytes(), m.group(2)) if path.is_file() else None
    m = PRODUCT_PICTURE.match(cover)
    if m:
        from handlers.health import PALETTE, solid_png

        return Cover(solid_png(360, 200, PALETTE[int(m.group(1)) % len(PALETTE)]), f"product-{m.group(1)}.png")
    return None


def as_card(article_id: int | None, product_id: int | None, text: str) -> bool:
    """Whether the broadcast is an article alone (the only kind a 图文 card can carry)."""
    return article_id is not None and product_id is None and not text.strip()


async def draft_of(uow: UnitOfWork, tenant_id: int, article_id: int, page_url: str) -> tuple[Draft, str] | None:
    """The draft to upload and the article's cover path; None when the article is gone."""
    a = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant_id, Article.id == article_id))
    if a is None:
        return None
    body = IMG.sub("", a.body_html) or f"<p>{a.digest or a.title}</p>"
    return Draft(a.title, a.digest, body, page_url, a.updated_at), a.cover


async def uploaded(uow: UnitOfWork, tenant_id: int, article_id: int, app_id: str, updated_at: datetime) -> str | None:
    """The draft's media_id already made for this version of the article on this account."""
    row = await uow.session.scalar(select(ArticleMedia).where(
        ArticleMedia.tenant_id == tenant_id, ArticleMedia.article_id == article_id, ArticleMedia.app_id == app_id))
    return row.media_id if row is not None and row.article_updated_at >= updated_at else None


async def remember(uow: UnitOfWork, tenant_id: int, article_id: int, app_id: str, thumb: str, media_id: str,
                   updated_at: datetime) -> None:
    row = await uow.session.scalar(select(ArticleMedia).where(
        ArticleMedia.tenant_id == tenant_id, ArticleMedia.article_id == article_id, ArticleMedia.app_id == app_id))
    if row is None:
        row = ArticleMedia(tenant_id=tenant_id, article_id=article_id, app_id=app_id)
        uow.session.add(row)
    row.thumb_media_id, row.media_id, row.article_updated_at = thumb, media_id, updated_at
    uow.audit(tenant_id, "system", "article.uploaded", f"article:{article_id}",
              after={"app_id": app_id, "media_id": media_id})
