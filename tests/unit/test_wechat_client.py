"""WeChatClient against the fake api.weixin.qq.com (tests/fakes/wechat_api.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.wechat_client import WeChatAPIError, WeChatClient, jsapi_signature, qrcode_image_url
from storage.kv import KVStore, MemoryKV, RedisKV
from tests.fakes.wechat_api import FakeWeChatAPI

APP_ID, SECRET = "wx_test_app", "s3cr3t-do-not-log-0123456789abcdef"
SEND = "/cgi-bin/message/custom/send"
STABLE = "/cgi-bin/stable_token"
REDIS_URL = "redis://127.0.0.1:6379/15"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

MakeClient = Callable[..., WeChatClient]


@pytest.fixture
def fake() -> FakeWeChatAPI:
    return FakeWeChatAPI(app_id=APP_ID, app_secret=SECRET)


@pytest.fixture
async def server(fake: FakeWeChatAPI, aiohttp_server: Any) -> TestServer:
    srv: TestServer = await aiohttp_server(fake.app())
    return srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def kv() -> MemoryKV:
    return MemoryKV()


@pytest.fixture
def make_client(server: TestServer, session: aiohttp.ClientSession) -> MakeClient:
    def make(kv: KVStore, tenant: str = "t1", **kw: Any) -> WeChatClient:
        return WeChatClient(session, kv, api_base=str(server.make_url("")), app_id=APP_ID,
                            app_secret=SECRET, tenant=tenant, **kw)
    return make


@pytest.fixture
def client(make_client: MakeClient, kv: MemoryKV) -> WeChatClient:
    return make_client(kv)


async def _redis_kv(prefix: str) -> RedisKV:
    store = RedisKV(REDIS_URL, prefix=prefix)
    if not await store.ping():
        await store.close()
        pytest.fail("Redis unreachable at " + REDIS_URL)  # a real service, never skipped
    return store


def _stable_calls(fake: FakeWeChatAPI) -> list[dict[str, Any]]:
    return [c.json for c in fake.calls_to(STABLE)]


# -- access token -----------------------------------------------------------------------


async def test_fifty_concurrent_sends_fetch_one_token(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV) -> None:
    await asyncio.gather(*(client.send_text(f"o_user{i}", "hi") for i in range(50)))

    assert fake.token_requests == 1
    assert len(fake.sent_messages()) == 50
    tokens = {c.query["access_token"] for c in fake.calls_to(SEND)}
    assert tokens == {await kv.get("wxtoken:t1")}
    assert _stable_calls(fake) == [{"grant_type": "client_credential", "appid": APP_ID,
                                    "secret": SECRET, "force_refresh": False}]


async def test_token_cached_five_minutes_short_of_its_lifetime(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV) -> None:
    await client.send_text("o_a", "1")
    await client.send_text("o_a", "2")

    assert fake.token_requests == 1
    _, expires = kv._data["wxtoken:t1"]
    assert expires is not None
    assert 7200 - 300 - 5 < expires - time.monotonic() <= 7200 - 300


async def test_token_error_forces_one_refresh_and_retries(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV) -> None:
    await client.send_text("o_a", "first")
    old = await kv.get("wxtoken:t1")
    fake.fail_next(SEND, 40001)

    await client.send_text("o_a", "second")

    sends = fake.calls_to(SEND)
    assert len(sends) == 3
    assert sends[1].query["access_token"] == old
    new = sends[2].query["access_token"]
    assert new != old and new == await kv.get("wxtoken:t1")
    # WeChat still called `old` current, so the client had to force it.
    assert [c["force_refresh"] for c in _stable_calls(fake)] == [False, False, True]
    assert not fake.valid_token(old or "")
    assert [m["text"]["content"] for m in fake.sent_messages()] == ["first", "second"]


async def test_token_rotated_elsewhere_is_reread_without_forcing(
        client: WeChatClient, fake: FakeWeChatAPI, session: aiohttp.ClientSession,
        server: TestServer) -> None:
    await client.send_text("o_a", "first")
    other = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET,
             "force_refresh": True}
    async with session.post(server.make_url(STABLE), json=other) as resp:
        rotated = (await resp.json())["access_token"]

    await client.send_text("o_a", "second")

    assert fake.calls_to(SEND)[-1].query["access_token"] == rotated
    assert [c["force_refresh"] for c in _stable_calls(fake)] == [False, True, False]


async def test_expired_token_is_replaced(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    await client.send_text("o_a", "first")
    fake.expire_tokens()

    await client.send_text("o_a", "second")

    sends = fake.calls_to(SEND)
    assert len(sends) == 3
    assert sends[1].query["access_token"] != sends[2].query["access_token"]
    assert [c["force_refresh"] for c in _stable_calls(fake)] == [False, False]
    assert len(fake.sent_messages()) == 2


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_repeated_token_error_raises_after_one_retry(
        client: WeChatClient, fake: FakeWeChatAPI, errcode: int) -> None:
    for _ in range(5):
        fake.fail_next(SEND, errcode)

    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o_a", "hi")

    assert err.value.errcode == errcode
    assert len(fake.calls_to(SEND)) == 2
    assert fake.sent_messages() == []


async def test_two_clients_sharing_redis_fetch_one_token(
        fake: FakeWeChatAPI, server: TestServer) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    kv_a, kv_b = await _redis_kv(prefix), await _redis_kv(prefix)
    base = str(server.make_url(""))
    try:
        async with aiohttp.ClientSession() as s1, aiohttp.ClientSession() as s2:
            a = WeChatClient(s1, kv_a, api_base=base, app_id=APP_ID, app_secret=SECRET,
                             tenant="t9")
            b = WeChatClient(s2, kv_b, api_base=base, app_id=APP_ID, app_secret=SECRET,
                             tenant="t9")
            await asyncio.gather(*(c.send_text(f"o_{i}", "hi")
                                   for i in range(25) for c in (a, b)))
        assert fake.token_requests == 1
        assert len(fake.sent_messages()) == 50
        token = await kv_a.get("wxtoken:t9")
        assert token is not None and fake.valid_token(token)
        assert 0 < await kv_a.redis.ttl(prefix + "wxtoken:t9") <= 6900
    finally:
        keys = await kv_a.redis.keys(prefix + "*")
        if keys:
            await kv_a.redis.delete(*keys)
        await kv_a.close()
        await kv_b.close()


# -- messages ---------------------------------------------------------------------------


async def test_chinese_text_arrives_as_utf8(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    text = "拼团成功！还差 2 人成团 🎉"

    await client.send_text("o_a", text)

    [msg] = fake.sent_messages("o_a")
    assert msg == {"touser": "o_a", "msgtype": "text", "text": {"content": text}}
    assert text.encode("utf-8") in fake.calls_to(SEND)[0].raw


async def test_fake_shows_unicode_escapes_literally_like_wechat(
        client: WeChatClient, fake: FakeWeChatAPI, server: TestServer,
        session: aiohttp.ClientSession) -> None:
    token = await client.access_token()
    body = json.dumps({"touser": "o_a", "msgtype": "text", "text": {"content": "你好"}})

    async with session.post(server.make_url(SEND), params={"access_token": token}, data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        assert (await resp.json())["errcode"] == 0

    assert fake.sent_messages()[0]["text"]["content"] == "\\u4f60\\u597d"


async def test_news_sends_one_article(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    article = {"title": "团长推荐", "description": "今日特价", "url": "https://h5.example/p/1",
               "picurl": "https://img.example/1.jpg"}

    await client.send_news("o_a", [article])
    with pytest.raises(WeChatAPIError) as err:
        await client.send_news("o_a", [article, article])

    assert fake.sent_messages() == [{"touser": "o_a", "msgtype": "news",
                                     "news": {"articles": [article]}}]
    assert err.value.errcode == 45008


async def test_outside_48h_window_raises_45015(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.outside_48h.add("o_quiet")

    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o_quiet", "hello")
    await client.send_text("o_active", "hello")

    assert err.value.errcode == 45015
    assert fake.sent_messages("o_quiet") == []
    assert len(fake.sent_messages("o_active")) == 1


async def test_template_send_returns_msgid(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    msgid = await client.send_template(
        "o_a", "TPL_PAID", {"thing1": "苹果 x2", "amount2": {"value": "¥12.00", "color": "#f00"}},
        url="https://h5.example/o/9")

    [sent] = fake.sent_templates("o_a")
    assert msgid == sent["msgid"] and isinstance(msgid, int)
    assert sent["data"] == {"thing1": {"value": "苹果 x2"},
                            "amount2": {"value": "¥12.00", "color": "#f00"}}
    assert sent["url"] == "https://h5.example/o/9"


async def test_template_send_unknown_template_raises(
        client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.template_ids = {"TPL_PAID"}

    with pytest.raises(WeChatAPIError) as err:
        await client.send_template("o_a", "TPL_NOPE", {"k": "v"})

    assert err.value.errcode == 40037


# -- QR codes and media -----------------------------------------------------------------


@pytest.mark.parametrize(("scene", "expire", "action"), [
    (123, 1800, "QR_SCENE"),
    (100_000, None, "QR_LIMIT_SCENE"),
    ("team:42", 600, "QR_STR_SCENE"),
    ("ref:o_abc", None, "QR_LIMIT_STR_SCENE"),
])
async def test_qrcode_picks_action_by_scene_type_and_expiry(
        client: WeChatClient, fake: FakeWeChatAPI, scene: str | int, expire: int | None,
        action: str) -> None:
    qr = await client.create_qrcode(scene, expire)

    [call] = fake.calls_to("/cgi-bin/qrcode/create")
    assert call.json["action_name"] == action
    assert ("expire_seconds" in call.json) is (expire is not None)
    assert qr["expire_seconds"] == expire
    assert fake.scene_for_ticket(qr["ticket"]) == scene
    assert qr["url"].startswith("http://weixin.qq.com/q/")
    assert qrcode_image_url("a+b/c=") == \
        "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=a%2Bb%2Fc%3D"


@pytest.mark.parametrize(("scene", "expire"), [
    (100_001, None), (0, 60), (-5, None), ("", 60), ("x" * 65, None), (1, 2_592_001), (1, 0),
])
async def test_qrcode_rejects_scenes_wechat_refuses(
        client: WeChatClient, fake: FakeWeChatAPI, scene: str | int, expire: int | None) -> None:
    with pytest.raises(ValueError):
        await client.create_qrcode(scene, expire)
    assert fake.calls == []


async def test_fake_refuses_out_of_range_permanent_scene(
        client: WeChatClient, fake: FakeWeChatAPI) -> None:
    body = {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}}

    with pytest.raises(WeChatAPIError) as err:
        await client.call("POST", "/cgi-bin/qrcode/create", json=body)

    assert err.value.errcode == 40097


async def test_upload_image_returns_media_id_usable_in_send_image(
        client: WeChatClient, fake: FakeWeChatAPI) -> None:
    media_id = await client.upload_image(PNG, "poster.png")
    await client.send_image("o_a", media_id)

    assert fake.media[media_id] == PNG
    assert fake.calls_to("/cgi-bin/media/upload")[0].query["type"] == "image"
    assert fake.sent_messages() == [{"touser": "o_a", "msgtype": "image",
                                     "image": {"media_id": media_id}}]


async def test_upload_retries_with_fresh_form_after_token_error(
        client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.fail_next("/cgi-bin/media/upload", 42001)

    media_id = await client.upload_image(PNG, "poster.jpg")

    assert fake.media == {media_id: PNG}


async def test_send_image_with_unknown_media_raises(client: WeChatClient) -> None:
    with pytest.raises(WeChatAPIError) as err:
        await client.send_image("o_a", "never-uploaded")
    assert err.value.errcode == 40007


# -- failures and secrets ---------------------------------------------------------------


async def test_server_error_raises_minus_one(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.fail_next(SEND, -1, "busy", status=502)

    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o_a", "hi")

    assert err.value.errcode == -1
    assert len(fake.calls_to(SEND)) == 1


async def test_unreachable_server_raises_minus_one(
        session: aiohttp.ClientSession, kv: MemoryKV) -> None:
    c = WeChatClient(session, kv, api_base="http://127.0.0.1:9", app_id=APP_ID,
                     app_secret=SECRET, tenant="t1", timeout=2)

    with pytest.raises(WeChatAPIError) as err:
        await c.send_text("o_a", "hi")

    assert err.value.errcode == -1


async def test_bad_secret_raises_wechat_error(make_client: MakeClient, kv: MemoryKV) -> None:
    c = make_client(kv)
    c._secret = "wrong"  # noqa: SLF001

    with pytest.raises(WeChatAPIError) as err:
        await c.send_text("o_a", "hi")

    assert err.value.errcode == 40125
    assert await kv.get("wxtoken:t1") is None


async def test_token_and_secret_never_logged(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.send_text("o_a", "hi")
    token = await kv.get("wxtoken:t1")
    fake.fail_next(SEND, 40001)
    await client.send_text("o_a", "again")
    fake.fail_next(SEND, 45015, f"echo {SECRET} and access_token={token}")
    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o_a", "third")

    # aiohttp.access is the fake WeChat server's own access log, i.e. WeChat's side.
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]
    seen = repr(err.value) + str(err.value) + repr(client) + "".join(
        r.getMessage() + repr(r.__dict__) for r in ours)
    assert token and token not in seen
    assert SECRET not in seen
    assert "wechat.token.fetched" in seen and "wechat.api.error" in seen


# -- the fake's OAuth -------------------------------------------------------------------


async def test_fake_oauth_code_is_one_shot(
        fake: FakeWeChatAPI, server: TestServer, session: aiohttp.ClientSession) -> None:
    code = fake.mint_code("o_buyer", "snsapi_userinfo", nickname="小王", unionid="u_1")

    async def exchange(c: str) -> dict[str, Any]:
        params = {"appid": APP_ID, "secret": SECRET, "code": c,
                  "grant_type": "authorization_code"}
        async with session.get(server.make_url("/sns/oauth2/access_token"),
                               params=params) as resp:
            data: dict[str, Any] = await resp.json()
            return data

    first = await exchange(code)
    assert first["openid"] == "o_buyer" and first["unionid"] == "u_1"
    assert (await exchange(code))["errcode"] == 40163
    assert (await exchange("nope"))["errcode"] == 40029

    q = {"access_token": first["access_token"], "openid": "o_buyer", "lang": "zh_CN"}
    async with session.get(server.make_url("/sns/userinfo"), params=q) as resp:
        info = await resp.json()
    assert info["nickname"] == "小王" and info["unionid"] == "u_1"


async def test_fake_basic_token_kills_previous_basic_token(
        fake: FakeWeChatAPI, server: TestServer, session: aiohttp.ClientSession) -> None:
    params = {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}

    async def fetch() -> str:
        async with session.get(server.make_url("/cgi-bin/token"), params=params) as resp:
            token: str = (await resp.json())["access_token"]
            return token

    first, second = await fetch(), await fetch()

    assert not fake.valid_token(first)
    assert fake.valid_token(second)
    assert fake.token_requests == 2



# -- JS-SDK: the jsapi_ticket and the wx.config signature ---------------------------------

GETTICKET = "/cgi-bin/ticket/getticket"


def test_jsapi_signature_matches_the_known_answer() -> None:
    """wechatpy's test vector (WECHAT.md §1 JS-SDK); a #fragment is not signed."""
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    url = "http://mp.weixin.qq.com?params=value"
    want = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, url) == want
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", url + "#wechat_redirect") == want


async def test_twenty_concurrent_configs_fetch_one_ticket_shared_through_the_store(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV, make_client: MakeClient) -> None:
    tickets = await asyncio.gather(*(client.jsapi_ticket() for _ in range(20)))
    assert set(tickets) == {fake.jsapi_ticket}
    assert await make_client(kv).jsapi_ticket() == fake.jsapi_ticket  # another worker, same store
    calls = fake.calls_to(GETTICKET)
    assert len(calls) == 1 and calls[0].query["type"] == "jsapi"
    assert fake.valid_token(calls[0].query["access_token"])
    _, expires = kv._data["wxticket:t1"]
    assert expires is not None and 7200 - 300 - 5 < expires - time.monotonic() <= 7200 - 300


async def test_a_rejected_token_is_refreshed_for_the_ticket(
        client: WeChatClient, fake: FakeWeChatAPI) -> None:
    await client.access_token()
    fake.revoke_tokens()
    assert await client.jsapi_ticket() == fake.jsapi_ticket
    calls = fake.calls_to(GETTICKET)
    assert [c.query["access_token"] != calls[0].query["access_token"] for c in calls] == [False, True]


async def test_a_refused_or_malformed_ticket_answer_raises_and_caches_nothing(
        client: WeChatClient, fake: FakeWeChatAPI, kv: MemoryKV) -> None:
    fake.fail_next(GETTICKET, 48001)
    with pytest.raises(WeChatAPIError) as err:
        await client.jsapi_ticket()
    assert err.value.errcode == 48001
    assert await kv.get("wxticket:t1") is None
    assert await client.jsapi_ticket() == fake.jsapi_ticket  # the next call tries again


# -- media a member sent ---------------------------------------------------------------------


async def test_download_media_returns_the_bytes_a_member_sent(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.media["MEDIA_sent_1"] = PNG
    data, ctype = await client.download_media("MEDIA_sent_1")
    assert (data, ctype) == (PNG, "image/jpeg")
    assert fake.calls_to("/cgi-bin/media/get")[0].query["media_id"] == "MEDIA_sent_1"


async def test_download_media_unknown_or_too_large_raises(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as err:
        await client.download_media("never-sent")
    assert err.value.errcode == 40007
    fake.media["MEDIA_big"] = b"x" * 2048
    with pytest.raises(WeChatAPIError) as err:
        await client.download_media("MEDIA_big", max_bytes=1024)
    assert err.value.errcode == -1


async def test_download_media_retries_once_with_a_fresh_token(client: WeChatClient, fake: FakeWeChatAPI) -> None:
    fake.media["MEDIA_sent_2"] = PNG
    fake.fail_next("/cgi-bin/media/get", 42001)
    data, _ = await client.download_media("MEDIA_sent_2")
    assert data == PNG and len(fake.calls_to("/cgi-bin/media/get")) == 2
