"""/healthz (liveness), /readyz (database, store, migrations at head) and /metrics (Prometheus,
behind a bearer token), through the real app."""

from __future__ import annotations

import re

from pydantic import SecretStr

from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_APP_ID, TEST_TOKEN

METRICS_TOKEN = "scrape-token-0123456789abcdef"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_readyz_is_ready_at_head_and_not_behind_it(mall, engine, backend, monkeypatch):
    resp = await mall.client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"status": "ready", "db": "ok", "kv": "ok", "migrations": "head", "missing_heads": []}
    # a head the database has not reached (a release whose migration was not run yet)
    import storage.db as db

    real = db._script_heads
    monkeypatch.setattr(db, "_script_heads", lambda modules: (*real(modules), "zz_not_applied_0001"))
    behind = await mall.client.get("/readyz")
    got = await behind.json()
    assert behind.status == 503 and got["migrations"] == "behind"
    assert "zz_not_applied_0001" in got["missing_heads"]
    live = await mall.client.get("/healthz")
    assert live.status == 200  # liveness does not care


async def test_metrics_are_closed_without_the_token(mall):
    assert (await mall.client.get("/metrics")).status == 404  # no METRICS_TOKEN set: closed
    mall.svc.settings.metrics_token = SecretStr(METRICS_TOKEN)
    assert (await mall.client.get("/metrics")).status == 404
    wrong = await mall.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 404


async def test_metrics_count_requests_answers_and_the_outbox(mall):
    mall.svc.settings.metrics_token = SecretStr(METRICS_TOKEN)
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    before = await (await mall.client.get("/metrics", headers=auth)).text()
    wx = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                     token=TEST_TOKEN, app_id=TEST_APP_ID)
    xml = wx.text_xml("oUser_metrics_000000000001", "分类")
    for _ in range(2):  # the message and WeChat's retry of it
        q, body = wx.signed_request(xml, user="oUser_metrics_000000000001")
        assert (await wx.post(q, body)).status == 200
    await mall.client.get("/nope-not-a-route")
    after = await (await mall.client.get("/metrics", headers=auth)).text()
    route = "/wechat/mp/{tenant}"
    assert sample(after, "social_mall_http_requests_total", route=route, status="200") - \
        sample(before, "social_mall_http_requests_total", route=route, status="200") == 2
    assert sample(after, "social_mall_http_request_seconds_count", route=route) - \
        sample(before, "social_mall_http_request_seconds_count", route=route) == 2
    assert sample(after, "social_mall_wechat_answers_total", mode="passive") - \
        sample(before, "social_mall_wechat_answers_total", mode="passive") == 1
    assert sample(after, "social_mall_wechat_answers_total", mode="repeat") - \
        sample(before, "social_mall_wechat_answers_total", mode="repeat") == 1
    assert re.search(r"^social_mall_outbox_due \d+$", after, re.M)
    assert re.search(r"^social_mall_outbox_lag_seconds [\d.]+$", after, re.M)
