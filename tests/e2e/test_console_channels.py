"""The console's 渠道与商户 page over HTTP (issue 25): channel accounts and pay merchants
added and edited without Python, secrets write-only and audited as "***", one default
merchant, an account linked to its merchant, 「测试连接」 against the fake WeChat / WeCom /
WeChat Pay with WeChat's errcode in the verdict, the official-account menu saved and
published (menu/create), WeCom rows used by /wechat/wecom/{tenant}; refusals (forged CSRF,
another tenant's admin, a role without the settings permission, bad input) change nothing."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from handlers.mp_simulator import MPSimulator
from social_mall.channels import service as channels
from social_mall.groupbuy import service as groupbuy
from social_mall.payments import wxpay_v3
from storage.channel_models import ChannelAccount
from storage.models import AuditEntry
from storage.pay_models import TenantPayAccount
from tests.fakes.console_kit import login, make_admin, make_tenant
from tests.fakes.wechat_pay import FakeWeChatPay
from tests.fakes.wecom import FakeWeComRobot, WeComBotSimulator

APP2, SECRET2, TOKEN2 = "wx2222222222222222", "second_secret_0000000000000000", "SecondAccountToken2"
AES43 = "Q" * 20 + "abcdefghij0123456789XYZ"
APIV3 = "B" * 32


async def rows(mall) -> tuple[list[tuple], list[tuple], int]:
    """Every channel account and merchant (all columns that matter) and how many of their audits."""
    async with mall.svc.uows() as uow:
        accts = [(r.id, r.tenant_id, r.kind, r.code, r.name, r.app_id, r.app_secret, r.token, r.aes_key,
                  r.webhook_key, r.pay_account_id, r.enabled, r.menu)
                 for r in (await uow.session.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all()]
        merch = [(r.id, r.tenant_id, r.name, r.mch_id, r.app_id, r.apiv3_key, r.private_key_path, r.is_default,
                  r.enabled)
                 for r in (await uow.session.scalars(select(TenantPayAccount).order_by(TenantPayAccount.id))).all()]
        n = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.like("channel.%") | AuditEntry.action.like("merchant.%")))
    return accts, merch, n


async def audits(mall, action: str) -> list[AuditEntry]:
    async with mall.svc.uows() as uow:
        return list((await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))).all())


async def pay_fake(mall, aiohttp_server, mchid: str = "1900000222", appid: str = APP2):
    merchant = wxpay_v3.generate_keypair()
    fake = FakeWeChatPay(mchid=mchid, appid=appid, apiv3_key=APIV3, merchant_serial=merchant.serial,
                         merchant_public_pem=merchant.public_pem)
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    mall.svc.settings.pay_api_base = fake.base_url
    return fake, merchant


def merchant_form(csrf: str, fake: FakeWeChatPay, merchant, **over: str) -> dict[str, str]:
    return {"_csrf": csrf, "name": "第二商户", "api_version": "v3", "mch_id": fake.mchid, "app_id": fake.appid,
            "apiv3_key": APIV3, "serial_no": merchant.serial, "platform_mode": "public_key",
            "platform_key_id": fake.platform.serial, "v2_sign_type": "MD5",
            "private_key": merchant.private_pem.decode(), "platform_key": fake.platform.public_pem.decode(), **over}


def verdict(html: str) -> str:
    m = re.search(r'id="verdict">([^<]*)<', html)
    assert m, html[:2000]
    return m.group(1)


async def owner(mall) -> str:
    await make_admin(mall.svc.uows, "boss")
    return await login(mall.client, "boss")


async def test_an_owner_adds_a_merchant_and_an_account_linked_to_it_and_tests_both(mall, aiohttp_server):
    csrf = await owner(mall)
    html = await (await mall.client.get("/console/channels")).text()
    assert "主账号" in html and 'href="/console/channels"' in html            # the demo's primary account, in the side panel
    fake, merchant = await pay_fake(mall, aiohttp_server)

    resp = await mall.client.post("/console/merchants/new", data=merchant_form(csrf, fake, merchant),
                                  allow_redirects=False)
    assert resp.status == 303, await resp.text()
    _, [m], _ = await rows(mall)
    merchant_id = m[0]
    assert m[3:6] == (fake.mchid, APP2, APIV3) and m[7] is True                 # the first merchant is the default
    html = await (await mall.client.get(f"/console/merchants/{merchant_id}")).text()
    assert APIV3 not in html and "PRIVATE KEY" not in html and "已设置" in html
    [created] = await audits(mall, "merchant.create")
    logged = json.dumps([created.before, created.after])
    assert APIV3 not in logged and "PRIVATE" not in logged and created.after["apiv3_key"] == "***"

    resp = await mall.client.post(f"/console/merchants/{merchant_id}/test", data={"_csrf": csrf})
    assert "连接成功" in verdict(await resp.text()) and "APIv3 密钥都通过" in verdict(await resp.text())
    assert [c.path for c in fake.calls if c.auth_ok] == ["/v3/certificates"]

    resp = await mall.client.post("/console/channels/new", allow_redirects=False, data={
        "_csrf": csrf, "kind": "mp", "code": "shop2", "name": "第二个公众号", "subtype": "service", "app_id": APP2,
        "app_secret": SECRET2, "token": TOKEN2, "aes_key": "", "pay_account_id": str(merchant_id)})
    assert resp.status == 303, await resp.text()
    async with mall.svc.uows() as uow:
        acct = await channels.account_by_code(uow, 1, "shop2")
    assert (acct.app_id, acct.app_secret, acct.token, acct.pay_account_id) == (APP2, SECRET2, TOKEN2, merchant_id)
    html = await (await mall.client.get(f"/console/channels/{acct.id}")).text()
    assert SECRET2 not in html and TOKEN2 not in html and "已设置" in html
    [entry] = await audits(mall, "channel.create")
    assert SECRET2 not in json.dumps(entry.after) and entry.after["app_secret"] == "***"
    assert entry.after["pay_account_id"] == merchant_id

    # its own URL answers with its own token at once (the tenant cache was dropped)
    wx2 = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo/shop2")), token=TOKEN2,
                      app_id=APP2)
    assert (await wx2.text("oUser_console_channel_0001", "帮助")).status == 200

    # test connection: WeChat refuses the unknown app id, then takes it
    resp = await mall.client.post(f"/console/channels/{acct.id}/test", data={"_csrf": csrf})
    text = verdict(await resp.text())
    assert "AppID 无效" in text and "40013" in text
    mall.fake.more_apps[APP2] = SECRET2
    resp = await mall.client.post(f"/console/channels/{acct.id}/test", data={"_csrf": csrf})
    assert "连接成功" in verdict(await resp.text())
    assert mall.fake.calls_to("/cgi-bin/stable_token")[-1].json["force_refresh"] is False

    # a blank secret keeps the stored one; a new one is audited by name, before/after masked
    resp = await mall.client.post(f"/console/channels/{acct.id}", allow_redirects=False, data={
        "_csrf": csrf, "name": "二号店", "app_id": APP2, "app_secret": "wrong_secret_000", "token": "",
        "aes_key": "", "subtype": "service", "pay_account_id": str(merchant_id), "enabled": "1"})
    assert resp.status == 303
    async with mall.svc.uows() as uow:
        after = await channels.account(uow, 1, acct.id)
    assert (after.name, after.token, after.app_secret) == ("二号店", TOKEN2, "wrong_secret_000")
    [upd] = await audits(mall, "channel.update")
    assert upd.before["name"] == "第二个公众号" and upd.after["name"] == "二号店"
    assert upd.after["changed"] == ["app_secret", "name"] and "wrong_secret" not in json.dumps(upd.after)
    resp = await mall.client.post(f"/console/channels/{acct.id}/test", data={"_csrf": csrf})
    assert "AppSecret 无效" in verdict(await resp.text()) and "40125" in verdict(await resp.text())

    # a mini-program's credentials are checked the same way (its own app id at the token endpoint)
    resp = await mall.client.post("/console/channels/new", allow_redirects=False, data={
        "_csrf": csrf, "kind": "mini", "code": "mini1", "name": "小程序", "app_id": mall.fake.mini_app_id,
        "app_secret": mall.fake.mini_app_secret})
    assert resp.status == 303
    async with mall.svc.uows() as uow:
        mini = await channels.account_by_code(uow, 1, "mini1")
    resp = await mall.client.post(f"/console/channels/{mini.id}/test", data={"_csrf": csrf})
    assert "连接成功" in verdict(await resp.text())


async def test_the_default_merchant_moves_and_cannot_be_disabled(mall, aiohttp_server):
    csrf = await owner(mall)
    fake, merchant = await pay_fake(mall, aiohttp_server)
    for name, mchid in (("一号", "1900000111"), ("二号", "1900000222")):
        resp = await mall.client.post("/console/merchants/new", allow_redirects=False,
                                      data=merchant_form(csrf, fake, merchant, name=name, mch_id=mchid))
        assert resp.status == 303
    _, [first, second], _ = await rows(mall)
    assert (first[7], second[7]) == (True, False)

    before = await rows(mall)
    resp = await mall.client.post(f"/console/merchants/{first[0]}", data={**merchant_form(csrf, fake, merchant),
                                                                          "private_key": "", "platform_key": ""})
    assert resp.status == 400 and "默认商户不能停用" in await resp.text()        # enabled unticked
    assert await rows(mall) == before

    resp = await mall.client.post(f"/console/merchants/{second[0]}/default", data={"_csrf": csrf},
                                  allow_redirects=False)
    assert resp.status == 303
    _, [first, second], _ = await rows(mall)
    assert (first[7], second[7]) == (False, True)
    [moved] = await audits(mall, "merchant.default")
    assert (moved.before, moved.after) == ({"default": first[0]}, {"default": second[0]})
    # the first can be disabled now; a disabled merchant can't become the default
    resp = await mall.client.post(f"/console/merchants/{first[0]}", allow_redirects=False, data={
        **merchant_form(csrf, fake, merchant), "private_key": "", "platform_key": "", "apiv3_key": ""})
    assert resp.status == 303
    resp = await mall.client.post(f"/console/merchants/{first[0]}/default", data={"_csrf": csrf})
    assert resp.status == 400
    _, [first, second], _ = await rows(mall)
    assert (first[7], first[8], second[7]) == (False, False, True)


async def test_the_menu_is_saved_within_wechats_limits_and_published_with_the_result_audited(mall):
    csrf = await owner(mall)
    async with mall.svc.uows() as uow:
        primary = next(a for a in await channels.accounts(uow, 1) if a.is_primary)
    form = {"_csrf": csrf, "b0_name": "购物车", "b0_type": "click", "b0_key": "CART",
            "b1_name": "更多", "b1_s0_name": "官网", "b1_s0_type": "view", "b1_s0_url": "https://shop.example.com/",
            "b1_s1_name": "小程序", "b1_s1_type": "miniprogram", "b1_s1_appid": "wx_fake_mini",
            "b1_s1_pagepath": "pages/index/index", "b1_s1_url": "https://shop.example.com/m"}
    too_long = {**form, "b0_name": "我的购物车啊"}                       # 18 bytes: over WeChat's 16
    resp = await mall.client.post(f"/console/channels/{primary.id}/menu", data=too_long)
    assert resp.status == 400 and "菜单名称太长" in await resp.text()
    no_url = {**form, "b1_s0_url": "javascript:alert(1)"}
    resp = await mall.client.post(f"/console/channels/{primary.id}/menu", data=no_url)
    assert resp.status == 400
    async with mall.svc.uows() as uow:
        assert (await channels.account(uow, 1, primary.id)).menu == ""        # nothing saved

    resp = await mall.client.post(f"/console/channels/{primary.id}/menu", data=form, allow_redirects=False)
    assert resp.status == 303
    html = await (await mall.client.get(f"/console/channels/{primary.id}/menu")).text()
    assert 'value="购物车"' in html and 'value="pages/index/index"' in html
    [saved] = await audits(mall, "channel.menu")
    assert saved.after["menu"]["button"][0] == {"type": "click", "name": "购物车", "key": "CART"}

    mall.fake.fail_next("/cgi-bin/menu/create", 40018)
    resp = await mall.client.post(f"/console/channels/{primary.id}/menu/publish", data={"_csrf": csrf})
    assert resp.status == 502 and "40018" in verdict(await resp.text()) and "菜单名称太长" in verdict(await resp.text())
    assert mall.fake.menus == {}
    resp = await mall.client.post(f"/console/channels/{primary.id}/menu/publish", data={"_csrf": csrf})
    assert resp.status == 200 and "菜单已发布" in verdict(await resp.text())
    published = mall.fake.menus[mall.fake.app_id]
    assert published["button"][1]["sub_button"][1] == {"type": "miniprogram", "name": "小程序", "appid": "wx_fake_mini",
                                                       "url": "https://shop.example.com/m",
                                                       "pagepath": "pages/index/index"}
    failed, ok = await audits(mall, "channel.menu_publish")
    assert (failed.after["errcode"], ok.after["errcode"]) == (40018, 0)
    assert ok.after["menu"] == published
    async with mall.svc.uows() as uow:
        assert (await channels.account(uow, 1, primary.id)).menu_published_at is not None


async def test_a_wecom_robot_row_is_what_the_callback_and_announcements_use(mall, aiohttp_server):
    csrf = await owner(mall)
    robot = FakeWeComRobot(corps={"ww0123456789abcdef": {"corp_secret_1": "1000002"}})
    server = await aiohttp_server(robot.app())
    robot.base_url = str(server.make_url("")).rstrip("/")
    mall.svc.settings.wecom_api_base = robot.base_url
    env_token = mall.settings.wecom_token.get_secret_value()
    env_key = mall.settings.wecom_aes_key.get_secret_value()
    async with mall.svc.uows() as uow:  # what the demo seed copies from the environment (showcase off here)
        await groupbuy.save_wecom_settings(uow, groupbuy.WecomSettings(1, env_token, env_key, "", "", "拼团助手"),
                                           actor="settings", now=mall.svc.clock())
        await uow.commit()
    url = str(mall.client.make_url("/wechat/wecom/demo"))
    assert (await WeComBotSimulator(mall.client.session, url, token=env_token, aes_key=env_key).verify("a"))[0] == 200

    resp = await mall.client.post("/console/channels/new", allow_redirects=False, data={
        "_csrf": csrf, "kind": "wecom_bot", "code": "group1", "name": "团购群机器人", "token": "RobotToken42",
        "aes_key": AES43, "webhook_key": robot.key})
    assert resp.status == 303, await resp.text()
    assert await WeComBotSimulator(mall.client.session, url, token="RobotToken42", aes_key=AES43).verify("b") == (200, "b")
    assert (await WeComBotSimulator(mall.client.session, url, token=env_token, aes_key=env_key).verify("c"))[0] == 403
    async with mall.svc.uows() as uow:                                         # announcements go to its webhook
        in_use = await groupbuy.wecom_settings(uow, 1, webhook_base=robot.base_url)
    assert (in_use.webhook_url, in_use.bot_name, in_use.receive_id) == (robot.webhook_url, "团购群机器人", "")
    html = await (await mall.client.get("/console/wecom")).text()              # the 企业微信 page says so
    assert 'id="wecom-overridden"' in html and "RobotToken42" not in html
    async with mall.svc.uows() as uow:
        bot = await channels.account_by_code(uow, 1, "group1")
    resp = await mall.client.post(f"/console/channels/{bot.id}/test", data={"_csrf": csrf})
    assert "测试消息已发到群里" in verdict(await resp.text()) and robot.texts()[-1].startswith("【连接测试】")

    resp = await mall.client.post("/console/channels/new", allow_redirects=False, data={
        "_csrf": csrf, "kind": "wecom_app", "code": "corp", "name": "企业应用", "app_id": "ww0123456789abcdef",
        "agent_id": "1000002", "app_secret": "not_the_secret"})
    assert resp.status == 303
    async with mall.svc.uows() as uow:
        corp = await channels.account_by_code(uow, 1, "corp")
    resp = await mall.client.post(f"/console/channels/{corp.id}/test", data={"_csrf": csrf})
    assert "Secret 不对" in verdict(await resp.text()) and "40001" in verdict(await resp.text())

    # disabled (the corp app too): the environment's bot answers again
    for acct, name in ((bot, "团购群机器人"), (corp, "企业应用")):
        resp = await mall.client.post(f"/console/channels/{acct.id}", allow_redirects=False,
                                      data={"_csrf": csrf, "name": name})
        assert resp.status == 303
    assert 'id="wecom-overridden"' not in await (await mall.client.get("/console/wecom")).text()
    assert (await WeComBotSimulator(mall.client.session, url, token=env_token, aes_key=env_key).verify("d")) == (200, "d")


# -- refusals: nothing changes ---------------------------------------------------------------

async def test_a_forged_csrf_token_changes_nothing(mall):
    csrf = await owner(mall)
    async with mall.svc.uows() as uow:
        primary = next(a for a in await channels.accounts(uow, 1) if a.is_primary)
    before = await rows(mall)
    forged = "x" * len(csrf)
    for path, form in (("/console/channels/new", {"kind": "mp", "code": "evil", "app_id": "wx_evil"}),
                       (f"/console/channels/{primary.id}", {"app_secret": "stolen", "name": "evil"}),
                       (f"/console/channels/{primary.id}/menu", {"b0_name": "x", "b0_type": "click", "b0_key": "K"}),
                       (f"/console/channels/{primary.id}/menu/publish", {})):
        for token in (forged, None):
            data = dict(form) if token is None else {"_csrf": token, **form}
            resp = await mall.client.post(path, data=data, allow_redirects=False)
            assert resp.status == 403, (path, token)
    assert await rows(mall) == before and mall.fake.menus == {}


async def test_another_tenants_admin_and_a_clerk_cannot_touch_the_accounts(mall, aiohttp_server):
    csrf = await owner(mall)
    fake, merchant = await pay_fake(mall, aiohttp_server)
    assert (await mall.client.post("/console/merchants/new", data=merchant_form(csrf, fake, merchant),
                                   allow_redirects=False)).status == 303
    async with mall.svc.uows() as uow:
        primary = next(a for a in await channels.accounts(uow, 1) if a.is_primary)
    _, [m], _ = await rows(mall)
    await mall.client.post("/console/logout", data={"_csrf": csrf})

    await make_tenant(mall.svc.uows, "other")
    await make_admin(mall.svc.uows, "other_boss", tenant_code="other")
    csrf2 = await login(mall.client, "other_boss")
    before = await rows(mall)
    html = await (await mall.client.get("/console/channels")).text()
    assert primary.app_id not in html and fake.mchid not in html
    for path in (f"/console/channels/{primary.id}", f"/console/merchants/{m[0]}", f"/console/channels/{primary.id}/menu"):
        assert (await mall.client.get(path)).status == 404, path
    for path, form in ((f"/console/channels/{primary.id}", {"name": "evil", "app_secret": "stolen"}),
                       (f"/console/channels/{primary.id}/test", {}),
                       (f"/console/channels/{primary.id}/menu", {"b0_name": "x", "b0_type": "click", "b0_key": "K"}),
                       (f"/console/merchants/{m[0]}", {"name": "evil", "enabled": "1"}),
                       (f"/console/merchants/{m[0]}/default", {}), (f"/console/merchants/{m[0]}/test", {})):
        resp = await mall.client.post(path, data={"_csrf": csrf2, **form}, allow_redirects=False)
        assert resp.status == 404, path
    # linking its own account to the demo's merchant is refused too
    resp = await mall.client.post("/console/channels/new", data={"_csrf": csrf2, "kind": "mp", "code": "mine",
                                                                  "app_id": "wx_mine", "pay_account_id": str(m[0])})
    assert resp.status == 400 and "收款商户" in await resp.text()
    assert await rows(mall) == before
    await mall.client.post("/console/logout", data={"_csrf": csrf2})

    await make_admin(mall.svc.uows, "clerk", role="operator")
    csrf3 = await login(mall.client, "clerk")
    assert (await mall.client.get("/console/channels")).status == 403
    resp = await mall.client.post("/console/channels/new", data={"_csrf": csrf3, "kind": "mp", "code": "x2",
                                                                  "app_id": "wx_x"})
    assert resp.status == 403 and await rows(mall) == before


@pytest.mark.parametrize("kind,field,value", [
    ("mp", "aes_key", "tooShort42" * 4 + "ab"),          # 42 characters
    ("mp", "token", "has space"),
    ("mp", "code", "main"),                                # the primary's code
    ("mp", "code", "Bad Code"),
    ("mp", "app_id", "wx<script>"),
    ("mp", "pay_account_id", "999999"),                    # no such merchant
    ("mp", "pay_account_id", "１"),
    ("wecom_bot", "webhook_key", "http://169.254.169.254/latest/meta-data"),
    ("wecom_app", "agent_id", "12ab"),
])
async def test_bad_account_input_is_a_400_and_changes_nothing(mall, kind, field, value):
    csrf = await owner(mall)
    before = await rows(mall)
    form = {"_csrf": csrf, "kind": kind, "code": "newone", "name": "新账号", field: value}
    resp = await mall.client.post("/console/channels/new", data=form)
    assert resp.status == 400, await resp.text()
    assert 'class="error"' in await resp.text()
    assert await rows(mall) == before


@pytest.mark.parametrize("field,value", [
    ("mch_id", "19000abc"), ("apiv3_key", "short"), ("private_key", "-----BEGIN PRIVATE KEY-----\nnope\n"),
    ("platform_key", "not a pem"), ("serial_no", "XYZ"), ("api_version", "v4"), ("platform_key_id", ""),
])
async def test_bad_merchant_input_is_a_400_and_changes_nothing(mall, aiohttp_server, field, value):
    csrf = await owner(mall)
    fake, merchant = await pay_fake(mall, aiohttp_server)
    before = await rows(mall)
    resp = await mall.client.post("/console/merchants/new", data=merchant_form(csrf, fake, merchant, **{field: value}))
    assert resp.status == 400, (field, resp.status)
    assert await rows(mall) == before
    assert not (mall.settings.data_dir / "pay_keys").exists() or not any((mall.settings.data_dir / "pay_keys").rglob("*.pem"))


async def test_a_replaced_merchant_key_leaves_no_old_file_on_disk(mall, aiohttp_server):
    csrf = await owner(mall)
    fake, merchant = await pay_fake(mall, aiohttp_server)
    resp = await mall.client.post("/console/merchants/new", allow_redirects=False,
                                  data=merchant_form(csrf, fake, merchant))
    assert resp.status == 303
    _, [m], _ = await rows(mall)
    folder = mall.svc.settings.data_dir / "pay_keys" / str(m[1])
    first = sorted(p.name for p in folder.iterdir())
    assert len(first) == 2                                    # the private key and the platform key
    fresh = wxpay_v3.generate_keypair()
    resp = await mall.client.post(f"/console/merchants/{m[0]}", allow_redirects=False, data={
        **merchant_form(csrf, fake, fresh), "platform_key": "", "enabled": "1"})
    assert resp.status == 303, await resp.text()
    _, [m], _ = await rows(mall)
    now = sorted(p.name for p in folder.iterdir())
    assert len(now) == 2 and m[6].endswith(tuple(n for n in now if "private_key" in n))
    assert [n for n in first if "platform_key" in n] == [n for n in now if "platform_key" in n]
    assert not set(n for n in first if "private_key" in n) & set(now)   # the old private key is gone


async def test_the_apiv2_connection_test_passes_only_with_the_right_key(mall, aiohttp_server, tmp_path):
    """An APIv2 merchant's 「测试连接」 queries an order that does not exist: ORDERNOTEXIST
    proves the signature; a key the platform does not hold is refused (签名错误)."""
    from storage.pay_repos import PayAccountRepo
    from tests.fakes.wechat_pay import attach_real_pay

    csrf = await owner(mall)
    fake = await attach_real_pay(mall, aiohttp_server, tmp_path, api_version="v2", v2_key="K" * 32)
    async with mall.svc.uows() as uow:
        merchant_id = (await PayAccountRepo(uow.session).for_tenant((await mall.svc.tenant("demo")).id)).id
    resp = await mall.client.post(f"/console/merchants/{merchant_id}/test", data={"_csrf": csrf})
    assert verdict(await resp.text()).endswith("连接成功：APIv2 签名通过")
    asked = [c for c in fake.calls if c.path == "/pay/orderquery"]
    assert len(asked) == 1 and asked[0].auth_ok and asked[0].body["out_trade_no"].startswith("SMCHECK")

    fake.v2_key = "W" * 32                      # the platform holds another key now
    before = await rows(mall)
    resp = await mall.client.post(f"/console/merchants/{merchant_id}/test", data={"_csrf": csrf})
    said = verdict(await resp.text())
    assert "连接成功" not in said and said, said
    assert await rows(mall) == before           # a test changes nothing
