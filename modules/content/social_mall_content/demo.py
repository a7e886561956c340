"""The module's part of the demo shop (DEMO_SHOWCASE): one published article (图文) linking
two demo products, so that 「最新活动」 shows a news card and its H5 page has buy buttons
(idempotent: found by its title)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from social_mall.tenants import TenantView
from social_mall_content import articles
from social_mall_content.models import Article
from storage.uow import UnitOfWork

TITLE = "本周上新：当季水果尝鲜"
PRODUCTS = ("阳光玫瑰葡萄", "赣南脐橙")
BODY = ("<p>这周的水果刚到店，挑了两样当季的给你：</p>"
        "<h2>阳光玫瑰葡萄</h2><p>脆甜多汁，三人拼团更划算（回复「拼团」参加）。</p>"
        "<h2>赣南脐橙</h2><p>果园直发，晚上的秒杀场次限量抢购（回复「秒杀」看场次）。</p>"
        "<p>下方可直接购买，或在聊天里回复「逛逛」。</p>")


async def seed(uow: UnitOfWork, tenant: TenantView, now: datetime) -> None:
    if (await uow.session.execute(select(Article.id).where(Article.tenant_id == tenant.id,
                                                           Article.title == TITLE))).first() is not None:
        return
    ids: list[int] = []
    cover = ""
    for keyword in PRODUCTS:
        found, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=keyword, offset=0, limit=1)
        if found:
            ids.append(found[0].id)
            cover = cover or found[0].image
    await articles.save_article(uow, tenant.id, None,
                                articles.ArticleInput(TITLE, "阳光玫瑰葡萄拼团、赣南脐橙秒杀，本周尝鲜指南", cover, BODY,
                                                      tuple(ids), True),
                                actor="system:demo", now=now)
