"""The demo shop's article (DEMO_SHOWCASE, both backends): 「最新活动」 answers with its news
card through the signed endpoint, its H5 page offers the linked demo products, and a later
start of the same shop seeds it no second time."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall_content.demo import TITLE
from social_mall_content.models import Article
from tests.conftest import TEST_APP_ID, TEST_TOKEN, Mall, app_settings

USER = "oUser_content_demo_000001"


async def start(backend, tmp_path, fake_wechat, aiohttp_client) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    settings = app_settings(backend, tmp_path, fake_wechat.base_url, demo_showcase=True)
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, settings, fake_wechat)


async def articles(mall) -> list[tuple[int, list[int]]]:
    async with mall.svc.uows() as uow:
        rows = (await uow.session.execute(select(Article.id, Article.product_ids).where(Article.title == TITLE))).all()
        return [(r.id, list(r.product_ids)) for r in rows]


async def test_the_demo_article_is_the_latest_news_with_buy_buttons(backend, engine, fake_wechat, aiohttp_client,
                                                                   tmp_path):
    mall = await start(backend, tmp_path, fake_wechat, aiohttp_client)
    ((aid, products),) = await articles(mall)
    assert len(products) == 2
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                     app_id=TEST_APP_ID)
    await wx.event(USER, "subscribe")
    card = await wx.text(USER, "最新活动")
    assert card.msg_type == "news", card.text
    (item,) = card.articles
    assert item["Title"] == TITLE and item["Url"].endswith(f"/h5/article/demo/{aid}")
    assert item["PicUrl"].endswith(".png")                      # a demo product's picture as the cover
    page = await (await mall.client.get(f"/h5/article/demo/{aid}")).text()
    for pid in products:
        assert f'href="/h5/product/demo/{pid}"' in page

    again = await start(backend, tmp_path, fake_wechat, aiohttp_client)   # the same database, a later start
    assert await articles(again) == [(aid, products)]
    async with again.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Article)) == 1
