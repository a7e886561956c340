"""A message's de-duplication claim is a lease until its step is committed (flows/runner.py):
a worker that dies between claim and commit leaves WeChat's retry (on any worker) its go,
and a retry that comes while the first handler is still at work waits for it."""

from __future__ import annotations

import asyncio

import pytest

from flows.runner import BUSY, Unavailable, conv_key
from storage.kv import KVStore
from tests.integration.test_flows_state import Chat, at_confirmation, make_runner, order_count

LEASE = 0.5  # s (4 s in production: under WeChat's 5 s retry spacing)


class StallingKV:
    """Holds the step at its state write (after the step's work, before its commit) while armed."""

    def __init__(self, inner: KVStore) -> None:
        self.inner, self.armed = inner, False
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        if self.armed:
            self.reached.set()
            await self.release.wait()
        return await self.inner.cas(key, expected, value, ttl)


async def test_a_worker_dying_mid_checkout_leaves_the_retry_its_go(uows, kv, demo):
    stalling = StallingKV(kv)
    a = Chat(make_runner(uows, stalling, claim_lease=LEASE), demo)  # type: ignore[arg-type]
    b = Chat(make_runner(uows, kv, claim_lease=LEASE), demo)
    await at_confirmation(a)
    state = await kv.get(conv_key(a.inbound()))
    stalling.armed = True
    first = asyncio.create_task(a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-1"))
    await stalling.reached.wait()  # the order is placed in A's unit of work, not committed
    retry = asyncio.create_task(b.runner.handle_once(b.inbound("确认"), "dedupe:t:confirm-1"))
    await asyncio.sleep(0.05)
    assert not retry.done()  # the lease holds: B waits for A
    first.cancel()  # A dies (its unit of work rolls back, it never confirms)
    await asyncio.gather(first, return_exceptions=True)
    assert await order_count(uows, demo) == 0
    assert await kv.get(conv_key(a.inbound())) == state
    replies = await retry  # the lease ran out: B runs the step
    assert replies is not None and "下单成功" in replies[0].text
    assert await order_count(uows, demo) == 1
    # from now on the message is a repeat, on any worker, long after the lease
    await asyncio.sleep(LEASE + 0.1)
    assert await b.runner.handle_once(b.inbound("确认"), "dedupe:t:confirm-1") is None
    assert await a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-1") is None
    assert await order_count(uows, demo) == 1


async def test_a_retry_while_the_first_is_at_work_waits_and_is_a_repeat(uows, kv, demo):
    stalling = StallingKV(kv)
    a = Chat(make_runner(uows, stalling, claim_lease=LEASE), demo)  # type: ignore[arg-type]
    b = Chat(make_runner(uows, kv, claim_lease=LEASE), demo)
    await at_confirmation(a)
    stalling.armed = True
    first = asyncio.create_task(a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-2"))
    await stalling.reached.wait()
    retry = asyncio.create_task(b.runner.handle_once(b.inbound("确认"), "dedupe:t:confirm-2"))
    await asyncio.sleep(0.05)
    assert not retry.done()
    stalling.armed = False
    stalling.release.set()  # A goes on: state written, order committed, claim confirmed
    replies = await first
    assert replies is not None and "下单成功" in replies[0].text
    assert await retry is None  # B answers the retry as a repeat ("success")
    assert await order_count(uows, demo) == 1


async def test_a_confirmed_message_is_never_run_again_by_a_quick_path(uows, kv, demo):
    """The one-round-trip path (a worker's own copy) meets a lease as the claim-first path
    does: it waits, and after a confirmation does nothing."""
    a = Chat(make_runner(uows, kv, claim_lease=LEASE), demo)
    assert "1. 水果生鲜" in "".join(r.text for r in await a.runner.handle(a.inbound("分类")))
    await a.runner.handle_once(a.inbound("分类"), "dedupe:t:warm")  # a's copy is current
    held, _ = await kv.claim_and_get("dedupe:t:quick", 60, "x")  # another worker's lease
    waiting = asyncio.create_task(a.runner.handle_once(a.inbound("1"), "dedupe:t:quick"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    before = await kv.get(conv_key(a.inbound()))
    await kv.confirm("dedupe:t:quick", 60)
    assert await waiting is None
    assert await kv.get(conv_key(a.inbound())) == before


class DownKV(StallingKV):
    """Redis goes away at the step's state write, once (a restart)."""

    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        if self.armed:
            self.armed = False
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("Connection closed by server.")
        return await self.inner.cas(key, expected, value, ttl)


async def test_an_outage_mid_step_lets_wechat_retry_and_the_retry_places_the_order_once(uows, kv, demo):
    """A store or database outage is not answered 「系统繁忙」: the runner says Unavailable
    (the endpoint answers 503, WeChat retries 5 s later), nothing is committed, and the
    retry, past the lease, runs the step."""
    down = DownKV(kv)
    a = Chat(make_runner(uows, down, claim_lease=LEASE), demo)  # type: ignore[arg-type]
    await at_confirmation(a)
    state = await kv.get(conv_key(a.inbound()))
    down.armed = True
    with pytest.raises(Unavailable):
        await a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-3")
    assert await order_count(uows, demo) == 0
    assert await kv.get(conv_key(a.inbound())) == state
    await asyncio.sleep(LEASE + 0.1)  # WeChat's retry comes 5 s on: the lease has run out
    replies = await a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-3")
    assert replies is not None and "下单成功" in replies[0].text
    assert await a.runner.handle_once(a.inbound("确认"), "dedupe:t:confirm-3") is None
    assert await order_count(uows, demo) == 1


async def test_a_bug_is_still_answered_busy(uows, kv, demo):
    from tests.integration.test_flows_state import BrokenLinks

    a = Chat(make_runner(uows, kv, links=BrokenLinks()), demo)
    replies = await a.runner.handle_once(a.inbound("搜索 坚果"), "dedupe:t:bug")
    assert replies is not None and [r.text for r in replies] == [BUSY]


class CountingKV:
    """Counts the store's calls by name (each is one round trip to Redis)."""

    def __init__(self, inner: KVStore) -> None:
        self.inner, self.calls = inner, []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        async def counted(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return await attr(*args, **kwargs)
        return counted


async def test_a_step_with_nothing_to_commit_confirms_its_claim_with_its_state_write(uows, kv, demo):
    """A first message that browses: the claim (with the load), then the state write that
    confirms the claim too, two round trips; a step that writes confirms after its commit.
    Either way a retry afterwards is a repeat with no effect."""
    counting = CountingKV(kv)
    chat = Chat(make_runner(uows, counting, claim_lease=LEASE), demo)  # type: ignore[arg-type]
    replies = await chat.runner.handle_once(chat.inbound("逛逛"), "dedupe:t:browse-1")
    assert replies and "分类" in replies[0].text
    assert counting.calls == ["claim_and_get", "cas_and_confirm"]
    await asyncio.sleep(LEASE + 0.1)                                     # long past the lease
    assert await chat.runner.handle_once(chat.inbound("逛逛"), "dedupe:t:browse-1") is None

    await at_confirmation(chat)
    counting.calls.clear()
    fresh = Chat(make_runner(uows, counting, claim_lease=LEASE), demo)   # a worker with no copy: claim-first
    replies = await fresh.runner.handle_once(fresh.inbound("确认"), "dedupe:t:confirm-9")
    assert replies and "下单成功" in replies[0].text
    assert counting.calls[0] == "claim_and_get" and counting.calls[-2:] == ["cas", "confirm"]
    await asyncio.sleep(LEASE + 0.1)
    assert await chat.runner.handle_once(chat.inbound("确认"), "dedupe:t:confirm-9") is None
    assert await order_count(uows, demo) == 1
