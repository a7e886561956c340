"""The official-account endpoint's defences, through the real app with signed requests."""

import asyncio
import time

import pytest
from wechatpy.crypto import WeChatCrypto

from handlers.mp_simulator import MPSimulator, sign
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN


@pytest.fixture(params=["plain", "safe"])
def sim(request, mall):
    return MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                       token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY,
                       safe_mode=request.param == "safe")


async def outbox_total(mall) -> int:
    """Members known through the official account: what a message's side effect creates."""
    from sqlalchemy import func, select

    from storage.models import MemberIdentity

    async with mall.svc.uows() as uow:
        return await uow.session.scalar(
            select(func.count()).select_from(MemberIdentity).where(MemberIdentity.channel == "mp"))


async def test_url_verification_echoes_only_when_signed(mall):
    ts, nonce = str(int(time.time())), "n1"
    good = {"signature": sign(TEST_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "e123"}
    resp = await mall.client.get("/wechat/mp/demo", params=good)
    assert (resp.status, await resp.text()) == (200, "e123")
    resp = await mall.client.get("/wechat/mp/demo", params={**good, "signature": "0" * 40})
    assert resp.status == 403


async def test_unknown_tenant_is_404(mall):
    resp = await mall.client.post("/wechat/mp/nobody", data=b"<xml/>")
    assert resp.status == 404


async def test_signed_text_gets_a_passive_reply_addressed_back(sim):
    answer = await sim.text("o_reply_user_000000000001", "帮助")
    assert answer.status == 200
    assert answer.msg_type == "text"
    assert answer.content  # the help text
    assert "o_reply_user" not in answer.content


async def test_forged_signature_is_403_and_changes_nothing(sim, mall):
    query, body = sim.signed_request(sim.event_xml("o_forger_0000000000000001", "subscribe"), user="o_forger")
    query["signature"] = "f" * 40
    answer = await sim.post(query, body)
    assert answer.status == 403
    assert await outbox_total(mall) == 0


async def test_missing_signature_is_403(sim):
    query, body = sim.signed_request(sim.text_xml("o_nosig_00000000000000001", "hi"), user="o_nosig")
    query.pop("signature")
    assert (await sim.post(query, body)).status == 403


async def test_stale_timestamp_is_refused(sim, mall):
    old = int(time.time()) - 600
    query, body = sim.signed_request(sim.event_xml("o_stale_000000000000000001", "subscribe"),
                                     user="o_stale", timestamp=old)
    assert (await sim.post(query, body)).status == 403
    assert await outbox_total(mall) == 0


async def test_safe_mode_with_a_wrong_msg_signature_is_403(mall):
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    query, body = sim.signed_request(sim.text_xml("o_safe_00000000000000000001", "帮助"), user="o_safe")
    query["msg_signature"] = "0" * 40
    assert (await sim.post(query, body)).status == 403


async def test_body_over_64k_is_413(sim):
    query, body = sim.signed_request(sim.text_xml("o_big_000000000000000000001", "长" * 30000), user="o_big")
    assert (await sim.post(query, body)).status == 413


async def test_a_chunked_body_over_64k_is_413_too(sim, mall):
    """No Content-Length to refuse up front: the streamed read stops at the cap."""
    query, body = sim.signed_request(sim.text_xml("o_big_chunked_000000000001", "长" * 30000), user="o_big")

    async def chunks():
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    async with mall.client.session.post(sim.url, params=query, data=chunks(),
                                        headers={"Content-Type": "text/xml"}) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 413


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>1</MsgId></xml>",
    b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>',
    b"<xml><ToUserName>gh</ToUserName><FromUserName>o_x",
    b"not xml at all",
    b"",
    b"<xml><MsgType>text</MsgType></xml>",
    # well-formed, but a field wechatpy's converters can't read
    b"<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>soon</CreateTime>"
    b"<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",
    b"<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>text</MsgType><Content>hi</Content><MsgId>x1</MsgId></xml>",
])
async def test_hostile_or_malformed_xml_is_400_without_side_effects(mall, body):
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID)
    query, _ = sim.signed_request("<xml/>", user="o_x")
    answer = await asyncio.wait_for(sim.post(query, body), 5)
    assert answer.status == 400
    assert await outbox_total(mall) == 0


async def test_hostile_xml_inside_safe_mode_encryption_is_400(mall):
    crypto = WeChatCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_APP_ID)
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    inner = '<!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>o_x</FromUserName><MsgType>text</MsgType></xml>'
    query, body = sim.signed_request(inner, user="o_x")
    assert crypto is not None
    assert (await sim.post(query, body)).status == 400


async def test_retried_message_has_exactly_one_effect(sim, mall):
    xml = sim.event_xml("o_retry_000000000000000001", "subscribe", created=int(time.time()))
    answers = []
    for _ in range(3):  # WeChat's retries carry the same FromUserName + CreateTime
        query, body = sim.signed_request(xml, user="o_retry")
        answers.append(await sim.post(query, body))
    assert answers[0].content
    assert [a.body for a in answers[1:]] == ["success", "success"]
    assert await outbox_total(mall) == 1


async def test_echoed_user_text_cannot_break_the_reply_xml(sim):
    nasty = "搜 ]]></Content><MsgType>hack</MsgType><![CDATA[ & < >"
    answer = await sim.text("o_nasty_000000000000000001", nasty)
    assert answer.status == 200
    assert answer.msg_type == "text"
    assert "hack" not in answer.msg_type


async def test_an_outage_is_answered_503_for_wechat_to_retry(mall, monkeypatch):
    """PostgreSQL or Redis unreachable mid-step: no 「系统繁忙」 reply, a 503 (WeChat retries
    the message 5 s later; its claim was only a lease, so the retry runs it)."""
    from flows.runner import Unavailable
    from handlers.mp_simulator import MPSimulator
    from tests.conftest import TEST_APP_ID, TEST_TOKEN

    async def outage(*args, **kw):
        raise Unavailable

    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    monkeypatch.setattr(mall.svc.runner, "handle_once", outage)
    answer = await wx.text("oUser_outage_0000000000001", "分类")
    assert answer.status == 503 and "系统繁忙" not in answer.body
    monkeypatch.undo()
    answer = await wx.text("oUser_outage_0000000000001", "分类")
    assert answer.status == 200 and "水果生鲜" in answer.text
