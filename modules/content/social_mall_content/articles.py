"""Articles (图文) over the caller's unit of work: the input checked and the body
sanitised (nh3: an allow-list of tags and attributes, links only http(s)/mailto), saved with
an audit entry; the latest published for the chat; one for its H5 page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import nh3
from sqlalchemy import select

from social_mall.catalog.service import product_detail
from social_mall.catalog.visibility import hidden_products
from social_mall.errors import MallError, NotFoundError
from social_mall.views import ProductDetail
from social_mall_content.models import Article
from storage.uow import UnitOfWork

TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a", "img",
        "span", "hr"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}
SCHEMES = {"http", "https", "mailto"}
MAX_BODY = 50_000
MAX_PRODUCTS = 10


class ArticleRefusedError(MallError):
    """A field the console must ask again for: `field` (title, digest, cover, body, products)."""

    code = "content_refused"

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def sanitize(html: str) -> str:
    """The rich text as it may be stored and shown: scripts, event handlers, styles,
    javascript: links and unknown tags gone (their text kept)."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES, link_rel="noopener noreferrer")


@dataclass(frozen=True)
class ArticleInput:
    title: str
    digest: str
    cover: str
    body: str
    product_ids: tuple[int, ...]
    published: bool


@dataclass(frozen=True)
class ArticleView:
    id: int
    title: str
    digest: str
    cover: str
    body_html: str
    product_ids: tuple[int, ...]
    published: bool
    updated_at: datetime


def _view(a: Article) -> ArticleView:
    return ArticleView(a.id, a.title, a.digest, a.cover, a.body_html,
                       tuple(int(i) for i in (a.product_ids or []) if isinstance(i, int)), a.published, a.updated_at)


def _cover(raw: str) -> str:
    s = raw.strip()
    if s and not (len(s) <= 512 and s.isascii() and s.isprintable() and " " not in s
                  and (s.startswith(("https://", "http://")) or (s.startswith("/") and not s.startswith("//")))):
        raise ArticleRefusedError("cover")
    return s


async def check(uow: UnitOfWork, tenant: int, a: ArticleInput) -> ArticleInput:
    title, digest = " ".join(a.title.split()), " ".join(a.digest.split())
    if not 1 <= len(title) <= 64:
        raise ArticleRefusedError("title")
    if len(digest) > 120:
        raise ArticleRefusedError("digest")
    if len(a.body) > MAX_BODY:
        raise ArticleRefusedError("body")
    ids = tuple(dict.fromkeys(a.product_ids))
    if len(ids) > MAX_PRODUCTS:
        raise ArticleRefusedError("products")
    for pid in ids:
        try:
            await product_detail(uow, tenant, pid)
        except NotFoundError:
            raise ArticleRefusedError("products") from None
    return ArticleInput(title, digest, _cover(a.cover), sanitize(a.body), ids, a.published)


async def save_article(uow: UnitOfWork, tenant: int, article_id: int | None, a: ArticleInput, *, actor: str,
                       now: datetime) -> int:
    clean = await check(uow, tenant, a)
    if article_id is None:
        row = Article(tenant_id=tenant, created_at=now)
        uow.session.add(row)
    else:
        found = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant, Article.id == article_id))
        if found is None:
            raise NotFoundError("article", article_id)
        row = found
    row.title, row.digest, row.cover, row.body_html = clean.title, clean.digest, clean.cover, clean.body
    row.product_ids, row.published, row.updated_at = list(clean.product_ids), clean.published, now
    await uow.session.flush()
    uow.audit(tenant, actor, "article.save", f"article:{row.id}",
              after={"title": clean.title, "published": clean.published, "products": list(clean.product_ids)})
    return row.id


async def set_cover(uow: UnitOfWork, tenant: int, article_id: int, path: str, *, actor: str, now: datetime) -> None:
    row = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant, Article.id == article_id))
    if row is None:
        raise NotFoundError("article", article_id)
    before, row.cover, row.updated_at = row.cover, _cover(path), now
    uow.audit(tenant, actor, "article.cover", f"article:{article_id}", before={"cover": before}, after={"cover": path})


async def list_articles(uow: UnitOfWork, tenant: int, *, limit: int = 50) -> list[ArticleView]:
    rows = (await uow.session.scalars(select(Article).where(Article.tenant_id == tenant)
                                      .order_by(Article.id.desc()).limit(limit))).all()
    return [_view(r) for r in rows]


async def get_article(uow: UnitOfWork, tenant: int, article_id: int, *, published_only: bool = False) -> ArticleView:
    row = await uow.session.scalar(select(Article).where(Article.tenant_id == tenant, Article.id == article_id))
    if row is None or (published_only and not row.published):
        raise NotFoundError("article", article_id)
    return _view(row)


async def latest(uow: UnitOfWork, tenant: int, *, limit: int = 3) -> list[ArticleView]:
    rows = (await uow.session.scalars(select(Article).where(Article.tenant_id == tenant,
                                                            Article.published.is_(True))
                                      .order_by(Article.id.desc()).limit(limit))).all()
    return [_view(r) for r in rows]


async def products_of(uow: UnitOfWork, tenant: int, ids: Sequence[int]) -> list[ProductDetail]:
    """The article's products a visitor may see (on the shelf, none kept from some members:
    the core's visibility seam)."""
    out = []
    hidden = await hidden_products(uow, tenant, None)
    for pid in ids:
        try:
            out.append(await product_detail(uow, tenant, pid, hidden=hidden))
        except NotFoundError:
            continue   # deleted since: left out
    return out
