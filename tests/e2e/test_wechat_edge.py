"""The official-account and WeCom endpoints against input WeChat's servers never send, and
against an observer who saw one signed request URL (issue 17, items 6, 7, 12, 13): signed
requests into the real app, on both backends."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from flows.runner import conversation_key
from handlers.mp_simulator import MPSimulator
from social_mall.groupbuy import service as groupbuy
from storage.models import MemberIdentity, Order, OutboxEvent, Tenant
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings
from tests.fakes.wecom import WeComBotSimulator

NOT_UNDERSTOOD = "没看懂这条消息。"
BUSY = "系统繁忙"


@pytest.fixture
def plain(mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID)


@pytest.fixture(params=["plain", "safe"])
def sim(request, mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY,
                       safe_mode=request.param == "safe")


async def identities(mall) -> int:
    """Channel identities the tests' messages made (the demo seed has its own)."""
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(MemberIdentity)
                                        .where(MemberIdentity.channel.in_(("mp", "wecom"))))


async def orders(mall) -> int:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Order))


async def conversation(mall, user: str) -> str | None:
    tenant = await mall.svc.tenant("demo")
    return await mall.svc.kv.get(conversation_key(tenant.id, "mp", user))


async def snapshot(mall, *users: str) -> tuple[object, ...]:
    """What a message could change: members, orders, the users' conversations."""
    return (await identities(mall), await orders(mall), *[await conversation(mall, u) for u in users])


# -- item 6: a signed query string is good for one message ---------------------------------------

async def test_a_replayed_query_with_another_body_is_refused_and_changes_nothing(mall, plain):
    victim, other = "oVictim_000000000000000001", "oOther_0000000000000000001"
    await plain.event(victim, "subscribe")
    await plain.text(victim, "买")  # a conversation in some state
    query, body = plain.signed_request(plain.text_xml(victim, "帮助"), user=victim)
    assert (await plain.post(query, body)).status == 200           # the observed request
    before = await snapshot(mall, victim, other)
    for forged in (plain.text_xml(other, "我的订单"),                   # another user
                   plain.text_xml(victim, "我的订单"),                  # the same user, another message
                   plain.event_xml(other, "subscribe")):
        answer = await plain.post(query, forged.encode())
        assert answer.status == 403, answer.body
    assert await snapshot(mall, victim, other) == before


async def test_a_retry_with_the_same_query_and_message_is_a_duplicate(mall, sim):
    user = "oRetry_0000000000000000001"
    query, body = sim.signed_request(sim.event_xml(user, "subscribe", created=int(time.time())), user=user)
    first = await sim.post(query, body)
    assert first.status == 200 and first.content
    after_first = await snapshot(mall, user)
    for _ in range(2):  # WeChat's own retries, should they reuse the query string
        again = await sim.post(query, body)
        assert (again.status, again.body) == (200, "success")
    assert await snapshot(mall, user) == after_first
    assert after_first[0] == 1


async def test_parallel_replays_of_one_query_have_one_effect(mall, plain):
    """Ten different bodies race on one signed query: one is handled, nine refused."""
    query, _ = plain.signed_request("<xml/>", user="x")
    users = [f"oRace_{i:02d}_00000000000000001" for i in range(10)]
    answers = await asyncio.gather(*(plain.post(query, plain.event_xml(u, "subscribe").encode()) for u in users))
    assert sorted(a.status for a in answers) == [200] + [403] * 9
    assert await identities(mall) == 1


async def test_a_query_used_on_one_worker_is_refused_on_another(backend, engine, fake_wechat, aiohttp_client,
                                                                tmp_path):
    from bot import build_app
    from handlers.context import SERVICES

    s1 = app_settings(backend, tmp_path, fake_wechat.base_url)
    apps = [build_app(s1, auto_setup=True),
            build_app(s1.model_copy(update={"data_dir": tmp_path / "var2"}), auto_setup=True)]
    clients = [await aiohttp_client(a) for a in apps]
    if not backend.redis_url:  # the embedded store is per process: share it to model two workers
        apps[1][SERVICES].kv = apps[1][SERVICES].runner.kv = apps[0][SERVICES].kv
    sims = [MPSimulator(c.session, str(c.make_url("/wechat/mp/demo")), token=TEST_TOKEN, app_id=TEST_APP_ID)
            for c in clients]
    query, body = sims[0].signed_request(sims[0].text_xml("oWorkerA_00000000000000001", "帮助"), user="a")
    assert (await sims[0].post(query, body)).status == 200
    forged = sims[1].event_xml("oWorkerB_00000000000000001", "subscribe").encode()
    assert (await sims[1].post(query, forged)).status == 403
    assert (await sims[1].post(query, body)).body == "success"   # the same message: a duplicate
    async with apps[0][SERVICES].uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(MemberIdentity)
                                        .where(MemberIdentity.channel == "mp")) == 1


# -- item 7: safe mode for a tenant without an AES key ---------------------------------------------

async def test_safe_mode_without_an_aes_key_is_refused_and_logged_once(mall, caplog):
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Tenant).where(Tenant.code == "demo").values(wechat_aes_key=""))
        await uow.commit()
    mall.svc.forget_tenants()
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    caplog.set_level(logging.INFO)
    for i in range(3):
        answer = await sim.event(f"oNoKey_{i}_0000000000000000001", "subscribe")
        assert 400 <= answer.status < 500, (answer.status, answer.body)
        assert "aes" in answer.body.lower()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["wechat.safe_mode_without_aes_key"]
    assert await identities(mall) == 0
    # plaintext messages to the same tenant still work
    plain = MPSimulator(mall.client.session, sim.url, token=TEST_TOKEN, app_id=TEST_APP_ID)
    assert (await plain.text("oNoKey_plain_00000000000001", "帮助")).status == 200


# -- item 12: empty fields are messages the bot doesn't understand --------------------------------

def envelope(user: str, msg_type: str, body: str) -> str:
    return (f"<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>{user}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{msg_type}</MsgType>{body}</xml>")


@pytest.mark.parametrize("content", ["<Content></Content>", "<Content/>", "", "<Content>   </Content>"])
async def test_a_text_without_content_is_answered_as_a_message_the_bot_does_not_understand(sim, content):
    """As a picture is (the bot reads no pictures): at the start the help, inside a flow
    「没看懂这条消息。」 and the same step again."""
    user = "oEmpty_0000000000000000001"

    async def post(msg_type: str, fields: str):
        xml = envelope(user, msg_type, f"{fields}<MsgId>{time.time_ns()}</MsgId>")
        answer = await sim.post(*sim.signed_request(xml, user=user))
        assert answer.status == 200, answer.body
        return answer.content

    picture = "<PicUrl>http://mmbiz.qpic.cn/x</PicUrl><MediaId>m1</MediaId>"
    assert await post("text", content) == await post("image", picture)
    await sim.text(user, "分类")
    empty = await post("text", content)
    await sim.text(user, "分类")
    assert empty.startswith(NOT_UNDERSTOOD) and empty == await post("image", picture), empty


@pytest.mark.parametrize("msg_type, fields", [
    ("image", "<PicUrl></PicUrl><MediaId></MediaId><MsgId>{id}</MsgId>"),
    ("event", "<Event></Event>"),
    ("event", ""),
    ("event", "<Event>CLICK</Event><EventKey></EventKey>"),
    ("event", "<Event>SCAN</Event><EventKey></EventKey>"),
    ("event", "<Event>LOCATION</Event><Latitude></Latitude><Longitude></Longitude>"),
    ("", "<Content>hi</Content><MsgId>{id}</MsgId>"),
])
async def test_other_kinds_with_empty_fields_get_an_answer_not_an_error(plain, msg_type, fields):
    user = "oEmptyKind_000000000000001"
    xml = envelope(user, msg_type, fields.format(id=time.time_ns()))
    query, body = plain.signed_request(xml, user=user)
    answer = await plain.post(query, body)
    assert answer.status == 200, answer.body
    assert BUSY not in answer.body


# -- item 13: the same class of input, at the signed endpoints ------------------------------------

@pytest.mark.parametrize("mode, field", [("plain", "signature"), ("plain", "timestamp"), ("plain", "nonce"),
                                         ("safe", "signature"), ("safe", "msg_signature"), ("safe", "timestamp"),
                                         ("safe", "nonce")])
async def test_a_non_ascii_query_value_is_403(mall, mode, field):
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")), token=TEST_TOKEN,
                      app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=mode == "safe")
    user = "oNonAscii_0000000000000001"
    query, body = sim.signed_request(sim.event_xml(user, "subscribe"), user=user)
    query[field] = "签名²" * 5
    answer = await sim.post(query, body)
    assert answer.status == 403, (answer.status, answer.body)
    assert await identities(mall) == 0


async def test_url_verification_with_a_non_ascii_signature_is_403(mall):
    from handlers.mp_simulator import sign

    ts, nonce = str(int(time.time())), "n1"
    query = {"signature": sign(TEST_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "e123"}
    assert (await mall.client.get("/wechat/mp/demo", params=query)).status == 200
    resp = await mall.client.get("/wechat/mp/demo", params={**query, "signature": "签名²"})
    assert resp.status == 403


@pytest.mark.parametrize("sender", [
    "<FromUserName>oTwice_A_000000000000001</FromUserName><FromUserName>oTwice_B_000000000000001</FromUserName>",
    "<FromUserName>o" + "x" * 300 + "</FromUserName>",
    "<FromUserName>o用户_000000000000000001</FromUserName>",
    "<FromUserName><a>oNested_00000000000001</a></FromUserName>",
    "<FromUserName></FromUserName>",
])
async def test_a_malformed_sender_is_400_on_both_backends(sim, mall, sender):
    xml = (f"<xml><ToUserName>gh_0123456789ab</ToUserName>{sender}<CreateTime>{int(time.time())}</CreateTime>"
           f"<MsgType>event</MsgType><Event>subscribe</Event></xml>")
    query, body = sim.signed_request(xml, user="x")
    answer = await sim.post(query, body)
    assert answer.status == 400, (answer.status, answer.body[:200])
    assert await identities(mall) == 0


@pytest.mark.parametrize("field", [
    "<MsgId>{id}</MsgId><MsgId>{id}1</MsgId><Content>帮助</Content>",
    "<MsgId>{id}</MsgId><Content>帮助</Content><Content>我的订单</Content>",
    "<MsgId>{id}</MsgId><Content><b>帮助</b></Content>",
])
async def test_a_repeated_or_nested_field_is_400(plain, mall, field):
    user = "oRepeat_000000000000000001"
    query, body = plain.signed_request(envelope(user, "text", field.format(id=time.time_ns())), user=user)
    answer = await plain.post(query, body)
    assert answer.status == 400, (answer.status, answer.body[:200])
    assert await identities(mall) == 0


async def deliveries_failed(mall) -> list[tuple[str, str]]:
    async with mall.svc.uows() as uow:
        rows = (await uow.session.execute(
            select(OutboxEvent.subscriber, OutboxEvent.last_error).where(OutboxEvent.status != "done"))).all()
    return [(r.subscriber, r.last_error[:80]) for r in rows]


@pytest.mark.parametrize("scene", ["gb_²", "gb_٣", "gb_" + "9" * 30, "ref_²", "ref_\u212aabc", "gb_1²",
                                   "s" * 100, "gb_" + "1" * 70])
async def test_an_unusable_qr_scene_gets_a_clear_answer_and_no_retrying_job(mall, plain, scene):
    user = "oScene_0000000000000000001"
    followed = await plain.event(user, "subscribe", f"qrscene_{scene}")
    assert followed.status == 200 and followed.content and BUSY not in followed.content, followed.body
    scanned = await plain.event(user, "SCAN", scene)
    assert scanned.status == 200 and BUSY not in scanned.body, scanned.body
    await mall.settle()
    assert await deliveries_failed(mall) == []
    assert await identities(mall) == 1


# -- item 13 at the WeCom callback ------------------------------------------------------------------

WECOM_TOKEN, WECOM_KEY = "wecom_token_1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
async def bot(mall):
    tenant = await mall.svc.tenant("demo")
    async with mall.svc.uows() as uow:
        await groupbuy.save_wecom_settings(uow, groupbuy.WecomSettings(
            tenant.id, WECOM_TOKEN, WECOM_KEY, "", "", "机器人"), actor="test", now=datetime.now(timezone.utc))
        await uow.commit()
    return WeComBotSimulator(mall.client.session, str(mall.client.make_url("/wechat/wecom/demo")),
                             token=WECOM_TOKEN, aes_key=WECOM_KEY)


@pytest.mark.parametrize("field", ["msg_signature", "timestamp", "nonce"])
async def test_wecom_non_ascii_query_value_is_403(bot, mall, field):
    query, body = bot.envelope(bot.group_text("wrRoom0001", "leader", "@机器人 开团 草莓"))
    query[field] = "签名²" * 5
    assert (await bot.post(query, body)).status == 403
    assert await identities(mall) == 0


@pytest.mark.parametrize("sender", ["u" * 65, "用户", "a\u0000b", "a\ud800b", "", "a b"])
async def test_wecom_malformed_userid_is_400_and_changes_nothing(bot, mall, sender):
    msg = bot.group_text("wrRoom0001", "x", "@机器人 开团 草莓")
    msg["from"] = {"userid": sender}
    answer = await bot.post(*bot.envelope(msg))
    assert answer.status == 400, (answer.status, answer.raw[:200])
    assert await identities(mall) == 0


@pytest.mark.parametrize("chat", ["c" * 65, "群\u0000", "r\ud800"])
async def test_wecom_malformed_chatid_is_400_and_changes_nothing(bot, mall, chat):
    msg = bot.group_text(chat, "leader", "@机器人 开团 草莓")
    answer = await bot.post(*bot.envelope(msg))
    assert answer.status == 400, (answer.status, answer.raw[:200])
    assert await identities(mall) == 0


@pytest.mark.parametrize("text", ["@机器人 开团 草\ud800莓", "@机器人 开团 草\u0000莓"])
async def test_wecom_text_the_database_cannot_store_is_answered_alike_on_both_backends(bot, mall, text):
    answer = await bot.post(*bot.envelope(bot.group_text("wrRoom0001", "leader", text)))
    assert answer.status == 200, answer.raw[:200]
    assert "草莓" in answer.content and BUSY not in answer.content, answer.content


async def test_wecom_single_chat_of_a_long_userid_finds_its_team_again(bot, mall):
    tenant = await mall.svc.tenant("demo")
    from tests.fakes.groupbuy_kit import make_campaign

    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=2)
        await uow.commit()
    user = "u" * 64
    msg = bot.group_text("", user, "@机器人 开团 丹东草莓")
    msg.pop("chatid")
    msg["chattype"] = "single"
    answer = await bot.post(*bot.envelope(msg))
    assert answer.status == 200 and "开团成功" in answer.content, answer.content
    msg = bot.group_text("", user, "参团")  # the team is found again in this single chat
    msg.pop("chatid")
    msg["chattype"] = "single"
    again = await bot.post(*bot.envelope(msg))
    assert "已经在团" in again.content, again.content


async def test_wecom_replayed_request_without_msgid_has_one_effect(bot, mall):
    tenant = await mall.svc.tenant("demo")
    from tests.fakes.groupbuy_kit import make_campaign

    async with mall.svc.uows() as uow:
        await make_campaign(uow, tenant.id, start=datetime.now(timezone.utc), title="丹东草莓", size=3)
        await uow.commit()
    msg = bot.group_text("wrRoom0001", "leader", "@机器人 开团 丹东草莓")
    msg.pop("msgid")
    query, body = bot.envelope(msg)
    seeded = await orders(mall)
    first = await bot.post(query, body)
    assert first.status == 200 and "开团成功" in first.content, first.content
    again = await bot.post(query, body)
    assert (again.status, again.content) == (200, "")
    assert (await identities(mall), await orders(mall)) == (1, seeded + 1)


async def test_wecom_body_that_is_json_but_not_an_object_is_400(bot):
    query, _ = bot.envelope({})
    assert (await bot.post(query, json.dumps(["encrypt"]).encode())).status == 400
