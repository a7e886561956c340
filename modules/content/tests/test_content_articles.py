"""Articles end to end (both backends): written in the console over HTTP (CSRF), the body
stored sanitised (scripts, handlers, javascript: links gone: XSS), refused fields answered
in Chinese with nothing saved; 「最新活动」 in chat (signed endpoint) shows the latest
published one as a news card linking to its H5 page, which renders it with its products;
a draft shows nowhere. Switched off, 「最新活动」 is not understood, as without the package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.catalog.service import list_products
from social_mall_content.articles import sanitize
from social_mall_content.models import Article
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, Mall, app_settings
from tests.fakes.console_kit import csrf_of, login, make_admin

USER = "oUser_content_article_00001"
EVIL = ('<p onclick="steal()">春季上新<script>alert(1)</script></p><a href="javascript:alert(2)">点我</a>'
        '<img src="/media/a.png" onerror="alert(3)"><iframe src="//evil"></iframe><style>p{}</style>'
        '<h2>限时折扣</h2><a href="https://example.com/x">详情</a>')


async def make(backend, tmp_path, fake_wechat, aiohttp_client, disabled=()) -> Mall:
    from bot import build_app
    from handlers.context import SERVICES

    app = build_app(app_settings(backend, tmp_path, fake_wechat.base_url, disabled_modules=list(disabled)),
                    auto_setup=True)
    client = await aiohttp_client(app)
    app[SERVICES].public_base_url = str(client.make_url("")).rstrip("/")
    return Mall(client, app, app[SERVICES].settings, fake_wechat)


def wx_of(mall) -> MPSimulator:
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                       app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)


async def post(mall, path: str, **form: str):
    return await mall.client.post(path, data={"_csrf": await csrf_of(mall.client), **form}, allow_redirects=False)


async def count(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Article))


def test_the_sanitiser_keeps_the_text_and_drops_what_runs():
    clean = sanitize(EVIL)
    for bad in ("script", "onclick", "onerror", "javascript:", "iframe", "<style", "alert(1)"):
        assert bad not in clean, (bad, clean)
    assert "<p>春季上新</p>" in clean and "<h2>限时折扣</h2>" in clean
    assert '<a href="https://example.com/x" rel="noopener noreferrer">详情</a>' in clean


async def test_an_article_from_the_console_to_the_chat_and_its_h5_page(backend, engine, tmp_path, fake_wechat,
                                                                      aiohttp_client):
    mall = await make(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = wx_of(mall)
    await wx.event(USER, "subscribe")
    assert "暂时没有新活动" in (await wx.text(USER, "最新活动")).text
    await make_admin(mall.svc.uows, "editor", role="owner")
    await login(mall.client, "editor")
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        mango = (await list_products(uow, tenant.id, keyword="芒果干")).items[0].id

    bad = await post(mall, "/console/content/new", title="", body="x")
    assert bad.status == 400 and "标题须为 1–64 字" in await bad.text()
    bad = await post(mall, "/console/content/new", title="春季上新", products="999999")
    assert bad.status == 400 and "关联商品须为本店存在的商品" in await bad.text()
    bad = await post(mall, "/console/content/new", title="春季上新", cover="javascript:alert(1)")
    assert bad.status == 400 and "封面须为" in await bad.text()
    assert await count(mall) == 0

    draft = await post(mall, "/console/content/new", title="草稿一篇", body="<p>未发布</p>")
    assert draft.status == 303
    assert "暂时没有新活动" in (await wx.text(USER, "最新活动")).text          # a draft shows nowhere
    saved = await post(mall, "/console/content/new", title="春季上新", digest="芒果干限时折扣",
                       cover="/media/spring.png", body=EVIL, products=f"{mango}", published="1")
    assert saved.status == 303
    aid = int(re.search(r"/console/content/(\d+)", saved.headers["Location"]).group(1))
    async with mall.svc.uows() as uow:
        stored = await uow.session.scalar(select(Article).where(Article.id == aid))
    assert stored.body_html == sanitize(EVIL) and "script" not in stored.body_html

    card = await wx.text(USER, "最新活动")
    assert card.msg_type == "news"
    (item,) = card.articles
    assert item["Title"] == "春季上新" and item["Description"] == "芒果干限时折扣"
    assert item["Url"].endswith(f"/h5/article/demo/{aid}") and item["PicUrl"].endswith("/media/spring.png")
    page = await (await mall.client.get(f"/h5/article/demo/{aid}")).text()
    assert "<h2>限时折扣</h2>" in page and "<script>alert" not in page and "onerror" not in page
    assert f'href="/h5/product/demo/{mango}"' in page and "发送「搜索 芒果干」" in page
    draft_id = aid - 1
    assert (await mall.client.get(f"/h5/article/demo/{draft_id}")).status == 404
    assert (await mall.client.get("/h5/article/demo/abc")).status == 404


async def test_switched_off_latest_news_is_not_a_word(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    off = await make(backend, tmp_path, fake_wechat, aiohttp_client, disabled=["content"])
    wx = wx_of(off)
    await wx.event(USER, "subscribe")
    assert (await wx.text(USER, "最新活动")).text.startswith("没看懂「最新活动」")
    assert (await off.client.get("/h5/article/demo/1")).status == 404


def test_the_module_passes_mypy_strict() -> None:
    package = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(package.parents[1] / ".mypy_cache" / "modules"),
         str(package / "social_mall_content")],
        cwd=package.parents[1], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
