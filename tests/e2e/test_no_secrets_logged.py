"""Planted secrets never reach a log line, whatever the app logs along the way."""

import logging
import time

from handlers.mp_simulator import MPSimulator
from social_mall.logs import _Formatter
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_APP_SECRET, TEST_TOKEN


async def test_tokens_keys_and_secrets_never_appear_in_logs(mall, caplog):
    caplog.set_level(logging.INFO)  # the production level; driver DEBUG logs carry SQL parameters
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    await sim.event("o_logwatch_0000000000000001", "subscribe")
    await sim.text("o_logwatch_0000000000000001", "分类")
    tenant = await mall.svc.tenant("demo")
    # a refused pay notify logs its reason, never its body or keys
    headers, body = mall.svc.gateway(tenant).pay_notify(out_trade_no="x", amount_fen=1, payer="o", now=time.time() - 999)
    await mall.client.post("/pay/notify/demo", data=body, headers=headers)
    # the outbound client fetches a token from the fake and pushes a message
    await mall.svc.wechat(tenant).send_text("o_logwatch_0000000000000001", "你好")
    await mall.settle()

    fmt = _Formatter("json")
    lines = "\n".join(fmt.format(r) for r in caplog.records)
    assert lines, "nothing was logged: the test would prove nothing"
    token = await mall.svc.kv.get("wxtoken:demo")
    planted = [TEST_TOKEN, TEST_APP_SECRET, TEST_AES_KEY, tenant.pay_apiv3_key, "test-secret"]
    if token:
        planted.append(token)
    for secret in planted:
        assert secret not in lines
    assert "o_logwatch_0000000000000001" not in lines


async def test_chat_log_lines_carry_request_tenant_and_member_and_no_openid(mall, caplog):
    """A message's JSON log lines name the request, the tenant and the member (its id, never
    the openid); WeChat's retry of it logs its verdict the same way."""
    import json

    caplog.set_level(logging.INFO)
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID)
    user = "o_logwatch_0000000000000002"
    await sim.text(user, "分类")
    xml = sim.text_xml(user, "1")
    for _ in range(2):  # the message and WeChat's retry of it (a repeat, logged as one)
        q, body = sim.signed_request(xml, user=user)
        assert (await sim.post(q, body)).status == 200
    fmt = _Formatter("json")
    docs = [json.loads(fmt.format(r)) for r in caplog.records]
    dup = [d for d in docs if d["event"] == "flow.duplicate"]
    assert dup, [d["event"] for d in docs]
    async with mall.svc.uows() as uow:
        from social_mall.members.service import resolve_member

        member, _ = await resolve_member(uow, (await mall.svc.tenant("demo")).id, "mp", user)
    for d in dup:
        assert d["request_id"] != "-" and d["tenant"] in ("demo", 1) and d["member"] == member.id, d
    text = "\n".join(fmt.format(r) for r in caplog.records)
    assert user not in text and TEST_TOKEN not in text
