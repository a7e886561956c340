"""图文 (mpnews) broadcasts end to end (both backends): an article alone whose cover is a
picture this server holds goes out as WeChat's article card — its cover uploaded as permanent
material, the article a draft (draft/add) whose 「阅读原文」 is its H5 page, mass/send given the
draft's media_id (the fake refuses any other: 40007) — once per version of the article; a
preview shows the same card; an article with added text, or a cover elsewhere on the web
(never fetched by this server), still goes as a text with its link; WeChat refusing the draft
fails the broadcast with nothing sent and the month's quota given back."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import func, select

from handlers.health import solid_png
from social_mall_content.models import Article
from tests.fakes.console_kit import csrf_of

from social_mall_content.models import ArticleMedia, BroadcastRecipient

from test_content_articles import post
from test_content_broadcasts import form_key, shop


async def article(mall, title: str, cover: str, pid: int | None = None, aid: int | None = None) -> int:
    path = f"/console/content/{aid}" if aid else "/console/content/new"
    saved = await post(mall, path, title=title, digest="当季上新", cover=cover, body='<p>新品<img src="/x.png"></p>',
                       products=str(pid or ""), published="1")
    assert saved.status == 303, await saved.text()
    return aid or int(re.search(r"/console/content/(\d+)", saved.headers["Location"]).group(1))


async def send(mall, **form: str):
    answer = await post(mall, "/console/content/broadcasts", key=await form_key(mall), segment="all", **form)
    assert answer.status == 303, await answer.text()
    return answer.headers["Location"]


async def uploads(mall) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(ArticleMedia)))


async def test_an_article_alone_goes_out_as_a_card_uploaded_once_per_version(backend, engine, tmp_path, fake_wechat,
                                                                             aiohttp_client):
    mall, wx, tenant, category, _ = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    aid = await article(mall, "秋季上新", "/media/products/3.png")

    assert (await send(mall, article=str(aid), text="")).endswith("notice=sent")
    job = fake_wechat.mass_sent[-1]
    assert job["msgtype"] == "mpnews" and "text" not in job
    (draft,) = fake_wechat.drafts[job["mpnews"]["media_id"]]
    assert draft["title"] == "秋季上新" and draft["digest"] == "当季上新"
    assert draft["content_source_url"].endswith(f"/h5/article/demo/{aid}")      # 阅读原文: where it is bought
    assert "新品" in draft["content"] and "<img" not in draft["content"]        # pictures must be WeChat's own
    assert fake_wechat.materials[draft["thumb_media_id"]].startswith(b"\x89PNG")
    assert len(fake_wechat.drafts) == 1 and len(fake_wechat.materials) == 1

    assert (await send(mall, article=str(aid), text="")).endswith("notice=sent")  # unchanged: the same draft
    assert fake_wechat.mass_sent[-1]["mpnews"] == job["mpnews"] and len(fake_wechat.drafts) == 1

    await article(mall, "秋季上新（补货）", "/media/products/3.png", aid=aid)     # edited: a new draft
    assert (await send(mall, article=str(aid), text="")).endswith("notice=sent")
    newer = fake_wechat.mass_sent[-1]["mpnews"]["media_id"]
    assert newer != job["mpnews"]["media_id"] and fake_wechat.drafts[newer][0]["title"] == "秋季上新（补货）"
    assert await uploads(mall) == 1                                             # one row per article and account

    page = await (await post(mall, "/console/content/broadcasts/bind")).text()
    code = re.search(r"预览绑定 ([0-9A-Z]{5}-[0-9A-Z]{5})", page).group(1)
    assert "已绑定" in (await wx.text("oAdmin_content_bc_000000001", f"预览绑定 {code}")).text
    ok = await post(mall, "/console/content/broadcasts/preview", article=str(aid), text="", segment="all")
    assert ok.status == 303, await ok.text()
    assert fake_wechat.mass_previews[-1]["mpnews"] == {"media_id": newer}


async def test_added_text_or_a_cover_elsewhere_goes_as_text(backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall, wx, tenant, category, _ = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    ours = await article(mall, "冬季上新", "/media/products/3.png")
    elsewhere = await article(mall, "外链封面", "https://example.com/cover.png")
    await send(mall, article=str(ours), text="今晚 8 点开抢")
    await send(mall, article=str(elsewhere), text="")
    assert [j["msgtype"] for j in fake_wechat.mass_sent] == ["text", "text"]
    assert f"/h5/article/demo/{elsewhere}" in fake_wechat.mass_sent[-1]["text"]["content"]
    assert fake_wechat.drafts == {} and fake_wechat.materials == {} and await uploads(mall) == 0
    assert not fake_wechat.calls_to("/cgi-bin/material/add_material")           # nothing fetched or uploaded


async def test_a_refused_draft_sends_nothing_and_gives_the_quota_back(backend, engine, tmp_path, fake_wechat,
                                                                     aiohttp_client):
    mall, wx, tenant, category, _ = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    aid = await article(mall, "春季上新", "/media/products/3.png")
    fake_wechat.fail_next("/cgi-bin/draft/add", 45009)
    assert (await send(mall, article=str(aid), text="")).endswith("notice=failed")
    assert fake_wechat.mass_sent == [] and fake_wechat.drafts == {} and await uploads(mall) == 0
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(BroadcastRecipient)) == 0
    assert (await send(mall, article=str(aid), text="")).endswith("notice=sent")   # the next try goes through
    assert fake_wechat.mass_sent[-1]["msgtype"] == "mpnews"


async def test_a_cover_uploaded_in_the_console_is_the_cards_cover(backend, engine, tmp_path, fake_wechat,
                                                                  aiohttp_client):
    mall, wx, tenant, category, _ = await shop(backend, tmp_path, fake_wechat, aiohttp_client)
    aid = await article(mall, "上新", "https://example.com/cover.png")
    picture = solid_png(40, 30, (1, 2, 3))

    async def upload(csrf: str):
        form = aiohttp.FormData()
        form.add_field("_csrf", csrf)
        form.add_field("image", picture, filename="c.png", content_type="image/png")
        return await mall.client.post(f"/console/content/{aid}/cover", data=form, allow_redirects=False)

    forged = await upload("forged")
    assert forged.status == 403
    async with mall.svc.uows() as uow:
        assert (await uow.session.get(Article, aid)).cover == "https://example.com/cover.png"   # nothing changed
    ok = await upload(await csrf_of(mall.client))
    assert ok.status == 303, await ok.text()
    async with mall.svc.uows() as uow:
        cover = (await uow.session.get(Article, aid)).cover
    assert cover.startswith(f"/uploads/{tenant.id}/") and cover.endswith(".png")
    assert (await mall.client.get(cover)).status == 200
    assert (await send(mall, article=str(aid), text="")).endswith("notice=sent")
    job = fake_wechat.mass_sent[-1]
    assert job["msgtype"] == "mpnews"
    (draft,) = fake_wechat.drafts[job["mpnews"]["media_id"]]
    assert fake_wechat.materials[draft["thumb_media_id"]] == picture
