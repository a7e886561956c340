"""Delivery across workers and past WeChat's 5-second window."""

import asyncio
import time

from bot import build_app
from flows.types import Reply
from handlers.context import SERVICES
from handlers.mp_simulator import MPSimulator
from tests.conftest import TEST_AES_KEY, TEST_APP_ID, TEST_TOKEN, app_settings


async def test_a_retry_reaching_a_second_worker_is_dropped_there_too(backend, engine, fake_wechat, aiohttp_client, tmp_path):
    """Two app instances sharing one store (Redis on the pg backend, one process's memory
    store otherwise would not be shared, so the sqlite run shares the first app's store)."""
    s1 = app_settings(backend, tmp_path, fake_wechat.base_url)
    s2 = s1.model_copy(update={"data_dir": tmp_path / "var2"})
    app1, app2 = build_app(s1, auto_setup=True), build_app(s2, auto_setup=True)
    c1 = await aiohttp_client(app1)
    c2 = await aiohttp_client(app2)
    if not backend.redis_url:  # embedded default is one worker; share its store to model two
        app2[SERVICES].kv = app2[SERVICES].runner.kv = app1[SERVICES].kv
    sims = [MPSimulator(c.session, str(c.make_url("/wechat/mp/demo")), token=TEST_TOKEN, app_id=TEST_APP_ID)
            for c in (c1, c2)]
    xml = sims[0].text_xml("o_two_workers_000000000001", "帮助", msg_id=987654321)
    q1, b1 = sims[0].signed_request(xml, user="o_two_workers")
    q2, b2 = sims[1].signed_request(xml, user="o_two_workers")
    first, second = await asyncio.gather(sims[0].post(q1, b1), sims[1].post(q2, b2))
    bodies = sorted([first.body == "success", second.body == "success"])
    assert bodies == [False, True], (first.body[:80], second.body[:80])


class SlowRunner:
    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def handle_once(self, inbound, dedupe_key, *ticket):
        replies = await self.inner.handle_once(inbound, dedupe_key, *ticket)
        await asyncio.sleep(self.delay)
        return replies


async def test_over_budget_answers_success_and_the_reply_arrives_by_customer_service_api(mall):
    svc = mall.svc
    svc.settings = svc.settings.model_copy(update={"reply_budget_seconds": 0.05})
    svc.runner = SlowRunner(svc.runner, 0.3)
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID, aes_key=TEST_AES_KEY, safe_mode=True)
    user = "o_slow_user_00000000000001"
    started = time.monotonic()
    query, body = sim.signed_request(sim.text_xml(user, "帮助"), user=user)
    async with mall.client.session.post(sim.url, params=query, data=body) as resp:
        assert await resp.text() == "success"
        assert resp.headers.get("X-Request-Id", "-") != "-"  # answered in the request's context
    assert time.monotonic() - started < 0.3
    await mall.settle()
    pushed = mall.fake.sent_messages(user)
    assert len(pushed) == 1
    assert pushed[0]["msgtype"] == "text" and pushed[0]["text"]["content"]


async def test_a_failed_push_is_retried_from_the_outbox(mall):
    svc = mall.svc
    svc.settings = svc.settings.model_copy(update={"reply_budget_seconds": 0.01})
    svc.runner = SlowRunner(svc.runner, 0.1)
    mall.fake.fail_next("/cgi-bin/message/custom/send", -1)
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID)
    user = "o_retry_push_0000000000001"
    assert (await sim.text(user, "帮助")).body == "success"
    await mall.settle()
    assert mall.fake.sent_messages(user) == []
    async with svc.uows() as uow:
        ids = await uow.outbox.due(svc.clock() + __import__("datetime").timedelta(minutes=5), 10)
        assert len(ids) == 1
    from social_mall.outbox import dispatch_due
    later = svc.clock() + __import__("datetime").timedelta(minutes=5)
    await dispatch_due(svc.uows, svc.registry.subscribers, now=lambda: later)
    assert len(mall.fake.sent_messages(user)) == 1


async def test_a_push_that_cannot_be_queued_past_the_budget_is_logged(mall, monkeypatch, caplog):
    """"success" went out already: a failure to queue the push is logged, not turned into
    a second answer on the same request."""
    import handlers.wechat_mp as endpoint

    async def broken(*args, **kw):
        raise RuntimeError("database gone")

    svc = mall.svc
    svc.settings = svc.settings.model_copy(update={"reply_budget_seconds": 0.01})
    svc.runner = SlowRunner(svc.runner, 0.1)
    monkeypatch.setattr(endpoint, "queue_push", broken)
    sim = MPSimulator(mall.client.session, str(mall.client.make_url("/wechat/mp/demo")),
                      token=TEST_TOKEN, app_id=TEST_APP_ID)
    with caplog.at_level("ERROR", logger="handlers.wechat_mp"):
        assert (await sim.text("o_no_queue_0000000000001", "帮助")).body == "success"
        await mall.settle()
    assert [r.message for r in caplog.records if r.name == "handlers.wechat_mp"] == ["wechat.push_not_queued"]
