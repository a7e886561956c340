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
