"""The console's 企业微信 page: the WeCom group bot's token, AES key, robot webhook key and
name, saved without Python. Secrets are write-only, every save is audited (field names,
never values), the page needs the settings permission and CSRF, bad input changes
nothing. Over HTTP, then the bot's callback proves which token and key are in use."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from storage.groupbuy_models import GroupbuyWecom
from storage.models import AuditEntry
from tests.fakes.console_kit import csrf_of, login, make_admin
from tests.fakes.wecom import WeComBotSimulator

TOKEN, KEY = "WecomToken2026", "Z" * 20 + "abcdefghij0123456789XYZ"   # 43 letters and digits
GOOD = {"token": TOKEN, "aes_key": KEY, "webhook_key": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
        "bot_name": "团购小助手"}


def bot_of(mall, token: str, key: str) -> WeComBotSimulator:
    return WeComBotSimulator(mall.client.session, str(mall.client.make_url("/wechat/wecom/demo")),
                             token=token, aes_key=key)


async def row(mall) -> tuple[str, str, str, str] | None:
    async with mall.svc.uows() as uow:
        r = await uow.session.scalar(select(GroupbuyWecom))
        return None if r is None else (r.token, r.aes_key, r.webhook_url, r.bot_name)


async def audits(mall) -> list[AuditEntry]:
    async with mall.svc.uows() as uow:
        return list((await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "groupbuy.wecom_saved").order_by(AuditEntry.id))).all())


async def owner(mall) -> str:
    await make_admin(mall.svc.uows, "boss")
    return await login(mall.client, "boss")


async def post(mall, csrf: str | None, **form: str):
    data = dict(form) if csrf is None else {"_csrf": csrf, **form}
    return await mall.client.post("/console/wecom", data=data, allow_redirects=False)


async def test_an_owner_saves_the_wecom_bot_and_its_callback_uses_them(mall):
    csrf = await owner(mall)
    page = await mall.client.get("/console/wecom")
    html = await page.text()
    assert page.status == 200 and 'name="aes_key"' in html and "未设置" in html
    assert "/console/wecom" in html                                  # in the side panel
    assert (await bot_of(mall, TOKEN, KEY).verify())[0] == 404       # no bot yet

    resp = await post(mall, csrf, **GOOD)
    assert resp.status == 303 and resp.headers["Location"] == "/console/wecom?ok=saved"
    assert await bot_of(mall, TOKEN, KEY).verify("hi") == (200, "hi")
    token, key, webhook, name = await row(mall)
    assert (token, key, name) == (TOKEN, KEY, "团购小助手")
    assert webhook == f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={GOOD['webhook_key']}"

    html = await (await mall.client.get("/console/wecom")).text()     # write-only: never shown again
    assert TOKEN not in html and KEY not in html and GOOD["webhook_key"] not in html and "已设置" in html
    [entry] = await audits(mall)
    assert entry.actor.endswith("boss")
    logged = json.dumps([entry.before, entry.after], ensure_ascii=False)
    assert json.loads(logged)[1]["changed"] == ["aes_key", "bot_name", "token", "webhook_key"]
    assert TOKEN not in logged and KEY not in logged and GOOD["webhook_key"] not in logged

    # a blank secret keeps the stored one
    assert (await post(mall, csrf, token="", aes_key="", webhook_key="", bot_name="小团")).status == 303
    assert await row(mall) == (TOKEN, KEY, webhook, "小团")
    assert await bot_of(mall, TOKEN, KEY).verify("again") == (200, "again")


@pytest.mark.parametrize("field,value", [
    ("aes_key", "tooShort42" * 4 + "ab"),                       # 42 characters
    ("aes_key", "é" * 43),
    ("token", "has space"),
    ("token", "x" * 33),
    ("webhook_key", "http://169.254.169.254/latest/meta-data"),   # a URL is never accepted: only a key
    ("bot_name", "a" * 21),
])
async def test_bad_input_is_a_400_and_changes_nothing(mall, field, value):
    csrf = await owner(mall)
    assert (await post(mall, csrf, **GOOD)).status == 303
    before, n = await row(mall), len(await audits(mall))
    resp = await post(mall, csrf, **{**GOOD, "bot_name": "别的名字", field: value})
    assert resp.status == 400
    assert field in await resp.text()
    assert await row(mall) == before and len(await audits(mall)) == n


async def test_the_first_save_needs_the_token_and_the_key(mall):
    csrf = await owner(mall)
    resp = await post(mall, csrf, token=TOKEN, aes_key="", webhook_key="", bot_name="")
    assert resp.status == 400 and await row(mall) is None and await audits(mall) == []


async def test_without_csrf_or_the_settings_permission_nothing_changes(mall):
    csrf = await owner(mall)
    assert (await post(mall, csrf, **GOOD)).status == 303
    before = await row(mall)
    assert (await post(mall, None, **{**GOOD, "token": "Forged123"})).status == 403
    assert (await post(mall, "wrong-token", **{**GOOD, "token": "Forged123"})).status == 403
    await mall.client.post("/console/logout", data={"_csrf": await csrf_of(mall.client)})

    await make_admin(mall.svc.uows, "ops", role="operator")
    csrf = await login(mall.client, "ops")
    assert (await mall.client.get("/console/wecom")).status == 403
    assert (await post(mall, csrf, **{**GOOD, "token": "Forged123"})).status == 403
    assert "/console/wecom" not in await (await mall.client.get("/console/")).text()
    assert await row(mall) == before and len(await audits(mall)) == 1


async def test_no_session_is_sent_to_the_login_page(mall):
    resp = await mall.client.get("/console/wecom", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")
    resp = await mall.client.post("/console/wecom", data=GOOD, allow_redirects=False)
    assert resp.status == 303 and await row(mall) is None
