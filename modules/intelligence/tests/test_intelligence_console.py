"""The console page 智能搜索 over real HTTP with CSRF: a merchant's synonym is searchable
in chat at once; bad input is refused in Chinese and changes nothing; every change is
audited; roles without the permission can look but not edit."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from social_mall_intelligence.models import Synonym
from storage.models import AuditEntry
from tests.fakes.console_kit import csrf_of, login, make_admin

from intel_kit import add_fashion, listed, say, simulator

USER = "oUser_intel_console_00000001"
PAGE = "/console/intelligence/search"


async def counts(mall) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        syn = await uow.session.scalar(select(func.count()).select_from(Synonym))
        audit = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                         .where(AuditEntry.action.like("intel.%")))
    return int(syn or 0), int(audit or 0)


async def test_a_synonym_saved_in_the_console_is_searchable_at_once_then_deleted(mall):
    await add_fashion(mall)
    wx = simulator(mall)
    assert "没有找到" in await say(wx, USER, "搜 小黑裙")
    await make_admin(mall.svc.uows, "intel_op", "operator")
    csrf = await login(mall.client, "intel_op")
    page = await (await mall.client.get(PAGE)).text()
    assert "智能搜索" in page and "还没有自定义同义词" in page
    resp = await mall.client.post(f"{PAGE}/synonyms", data={"_csrf": csrf, "word": "小黑裙", "alternatives": "连衣裙，半身裙"},
                                  allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{PAGE}?ok=saved"
    reply = await say(wx, USER, "搜 小黑裙")
    assert sorted(listed(reply)) == ["法式碎花连衣裙", "蓝色牛仔连衣裙", "高腰百褶半身裙"], reply
    page = await (await mall.client.get(PAGE)).text()
    assert "连衣裙、半身裙" in page
    assert await counts(mall) == (1, 1)

    sid = re.search(r"/synonyms/(\d+)/delete", page).group(1)
    resp = await mall.client.post(f"{PAGE}/synonyms/{sid}/delete", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert "没有找到" in await say(wx, USER, "搜 小黑裙")
    assert await counts(mall) == (0, 2)


async def test_bad_input_is_refused_in_chinese_and_changes_nothing(mall):
    await make_admin(mall.svc.uows, "intel_owner")
    csrf = await login(mall.client, "intel_owner")
    before = await counts(mall)
    for data, problem in [({"word": "小黑裙", "alternatives": "  "}, "也找这些词：必填"),
                          ({"word": "仙女 裙", "alternatives": "连衣裙"}, "搜索词：只能是一个词"),
                          ({"word": "长" * 21, "alternatives": "连衣裙"}, "搜索词：太长"),
                          ({"word": "裙", "alternatives": " ".join(f"词{i}" for i in range(11))}, "也找这些词：太多了"),
                          ({"word": "裙=", "alternatives": "连衣裙"}, "搜索词：只能是一个词")]:
        resp = await mall.client.post(f"{PAGE}/synonyms", data={"_csrf": csrf, **data}, allow_redirects=False)
        body = await resp.text()
        assert resp.status == 400 and problem in body, (data, body[:500])
    resp = await mall.client.post(f"{PAGE}/synonyms", data={"word": "小黑裙", "alternatives": "连衣裙"},
                                  allow_redirects=False)   # no CSRF token
    assert resp.status == 403
    resp = await mall.client.post(f"{PAGE}/synonyms/999999/delete", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 404
    assert await counts(mall) == before


async def test_the_try_out_box_searches_like_the_chat_and_service_staff_cannot_edit(mall):
    await add_fashion(mall)
    await make_admin(mall.svc.uows, "intel_service", "service")
    await login(mall.client, "intel_service")
    page = await (await mall.client.get(PAGE, params={"q": "lyq"})).text()
    assert "共 2 件" in page and "法式碎花连衣裙" in page and 'id="synonym-form"' not in page
    page = await (await mall.client.get(PAGE, params={"q": "女士皮包"})).text()
    assert "没有找到「女士皮包」" in page and "女装" in page
    csrf = await csrf_of(mall.client, PAGE)
    resp = await mall.client.post(f"{PAGE}/synonyms", data={"_csrf": csrf, "word": "小黑裙", "alternatives": "连衣裙"},
                                  allow_redirects=False)
    assert resp.status == 403
    assert await counts(mall) == (0, 0)
