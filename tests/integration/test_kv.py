"""The key-value store contract, on the in-process store and on Redis (batched pipelines)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from storage.kv import Claimed, LockTimeoutError, MemoryKV, RedisKV
from tests.conftest import REDIS_URL


async def test_get_set_delete_and_ttl(kv):
    assert await kv.get("a") is None
    await kv.set("a", "1")
    await kv.set("b", "2", ttl=0.2)
    assert (await kv.get("a"), await kv.get("b")) == ("1", "2")
    await asyncio.sleep(0.3)
    assert await kv.get("b") is None
    await kv.delete("a")
    assert await kv.get("a") is None


async def test_set_nx_sets_once(kv):
    assert await kv.set_nx("n", "first", 60) is True
    assert await kv.set_nx("n", "second", 60) is False
    assert await kv.get("n") == "first"


async def test_cas_writes_only_over_the_expected_value(kv):
    assert await kv.cas("c", None, "v1", 60) is True
    assert await kv.cas("c", None, "v2", 60) is False      # present now
    assert await kv.cas("c", "stale", "v2", 60) is False
    assert await kv.cas("c", "v1", "v2", 60) is True
    assert await kv.get("c") == "v2"


async def test_claim_and_get_claims_once_and_reads_the_other_key(kv):
    await kv.set("conv", '{"v":1}')
    assert await kv.claim_and_get("msg:1", 60, "conv") == (True, '{"v":1}')
    assert await kv.claim_and_get("msg:1", 60, "conv") == (Claimed.LEASED, None)  # not confirmed yet
    await kv.confirm("msg:1", 60)
    assert await kv.claim_and_get("msg:1", 60, "conv") == (Claimed.REPEAT, None)
    assert await kv.claim_and_get("msg:2", 60, "absent") == (True, None)


async def test_a_claim_is_a_lease_until_confirmed(kv):
    """claim_and_get takes a lease: while it holds, the message is LEASED (its handler is at
    work), once it runs out the message can be claimed again (its handler died), and once
    confirmed it is a REPEAT for the confirmed TTL. claim_and_cas sees a lease the same way."""
    await kv.set("conv", "v1")
    assert await kv.claim_and_get("m:dead", 0.2, "conv") == (Claimed.WROTE, "v1")
    assert await kv.claim_and_cas("m:dead", 60, "conv", "v1", "v2", 60) == Claimed.LEASED
    assert await kv.get("conv") == "v1"  # nothing written over a lease
    await asyncio.sleep(0.3)  # the lease ran out: the handler never confirmed
    assert await kv.claim_and_get("m:dead", 0.2, "conv") == (Claimed.WROTE, "v1")
    await kv.confirm("m:dead", 60)
    await asyncio.sleep(0.3)  # past the lease: the confirmed claim holds
    assert await kv.claim_and_get("m:dead", 0.2, "conv") == (Claimed.REPEAT, None)
    assert await kv.claim_and_cas("m:dead", 60, "conv", "v1", "v2", 60) == Claimed.REPEAT
    assert await kv.get("conv") == "v1"
    # a lease from claim_and_get, with a ticket: a retry with the same ticket sees the lease
    assert await kv.claim_and_get("m:t", 60, "conv", "t:9", 60) == (Claimed.WROTE, "v1")
    assert await kv.claim_and_get("m:t", 60, "conv", "t:9", 60) == (Claimed.LEASED, None)
    assert await kv.claim_and_get("m:u", 60, "conv", "t:9", 60) == (Claimed.SPENT, None)


async def test_claim_and_cas_claims_and_writes_together_or_not_at_all(kv):
    await kv.set("conv", "v1")
    assert await kv.claim_and_cas("m:1", 60, "conv", "v0", "v2", 60) == Claimed.STALE
    assert await kv.get("conv") == "v1"
    assert await kv.set_nx("m:1", "x", 60) is True  # a stale try leaves the claim untaken
    assert await kv.claim_and_cas("m:2", 60, "conv", "v1", "v2", 60) == Claimed.WROTE
    assert (await kv.get("conv"), await kv.set_nx("m:2", "x", 60)) == ("v2", False)
    # a repeat is a repeat whatever the value: checked first, nothing written
    assert await kv.claim_and_cas("m:2", 60, "conv", "v2", "v3", 60) == Claimed.REPEAT
    assert await kv.get("conv") == "v2"
    # no claim: a plain compare-and-set (None: the key must be absent)
    assert await kv.claim_and_cas("", 60, "new", None, "n1", 60) == Claimed.WROTE
    assert await kv.claim_and_cas("", 60, "new", None, "n2", 60) == Claimed.STALE
    assert await kv.get("new") == "n1"


async def test_cas_and_confirm_writes_and_confirms_together_or_not_at_all(kv):
    """A step with nothing to commit: its state write and the lease's confirm are one step."""
    await kv.set("conv", "v1")
    assert await kv.claim_and_get("m:c", 60, "conv") == (Claimed.WROTE, "v1")    # the lease
    assert await kv.cas_and_confirm("conv", "v0", "v2", 60, "m:c", 60) is False  # stale: neither
    assert await kv.get("conv") == "v1"
    assert await kv.claim_and_get("m:c", 60, "conv") == (Claimed.LEASED, None)  # still a lease
    assert await kv.cas_and_confirm("conv", "v1", "v2", 60, "m:c", 0.3) is True
    assert await kv.get("conv") == "v2"
    assert await kv.claim_and_get("m:c", 60, "conv") == (Claimed.REPEAT, None)  # confirmed
    await asyncio.sleep(0.4)                                                     # its own TTL
    assert await kv.claim_and_get("m:c", 60, "conv") == (Claimed.WROTE, "v2")
    assert await kv.cas_and_confirm("fresh", None, "f1", 60, "m:f", 60) is True  # None: absent
    assert await kv.claim_and_cas("m:f", 60, "fresh", "f1", "f2", 60) == Claimed.REPEAT


async def test_claim_and_cas_sets_both_ttls(kv):
    assert await kv.claim_and_cas("m:ttl", 0.2, "c", None, "v", 0.3) == Claimed.WROTE
    await asyncio.sleep(0.4)
    assert await kv.get("c") is None
    assert await kv.set_nx("m:ttl", "again", 60) is True


async def test_a_ticket_is_spent_on_one_claim(kv):
    """A request's ticket (its signed query) goes with the first claim that presents it: a
    repeat of that claim may present it again, another claim is refused with nothing done."""
    await kv.set("conv", "v1")
    assert await kv.claim_and_get("m:a", 60, "conv", "t:1", 60) == (Claimed.WROTE, "v1")
    assert await kv.claim_and_get("m:a", 60, "conv", "t:1", 60) == (Claimed.LEASED, None)
    await kv.confirm("m:a", 60)
    assert await kv.claim_and_get("m:a", 60, "conv", "t:1", 60) == (Claimed.REPEAT, None)
    assert await kv.claim_and_get("m:b", 60, "conv", "t:1", 60) == (Claimed.SPENT, None)
    assert await kv.set_nx("m:b", "x", 60) is True                   # m:b was not claimed
    assert await kv.claim_and_cas("m:c", 60, "conv", "v1", "v2", 60, "t:1", 60) == Claimed.SPENT
    assert await kv.get("conv") == "v1"
    # claim_and_cas spends a fresh ticket with its claim, and on a repeat of that claim
    assert await kv.claim_and_cas("m:d", 60, "conv", "v1", "v2", 60, "t:2", 60) == Claimed.WROTE
    assert await kv.claim_and_cas("m:d", 60, "conv", "v2", "v3", 60, "t:2", 60) == Claimed.REPEAT
    assert await kv.claim_and_get("m:e", 60, "conv", "t:2", 60) == (Claimed.SPENT, None)
    assert await kv.claim_and_cas("m:a", 60, "conv", "v2", "v3", 60, "t:3", 60) == Claimed.REPEAT
    assert await kv.claim_and_cas("m:f", 60, "conv", "v2", "v3", 60, "t:3", 60) == Claimed.SPENT
    # a stale compare-and-set spends nothing; the ticket's TTL is its own
    assert await kv.claim_and_cas("m:g", 60, "conv", "v0", "v3", 60, "t:4", 0.2) == Claimed.STALE
    assert await kv.claim_and_get("m:h", 60, "conv", "t:4", 0.2) == (Claimed.WROTE, "v2")
    await asyncio.sleep(0.3)
    assert await kv.claim_and_get("m:i", 60, "conv", "t:4", 0.2) == (Claimed.WROTE, "v2")


async def test_incr_counts_in_a_window(kv):
    assert [await kv.incr("i", 0.3) for _ in range(3)] == [1, 2, 3]
    await asyncio.sleep(0.4)
    assert await kv.incr("i", 0.3) == 1


async def test_lock_excludes_and_times_out(kv):
    async with kv.lock("L", ttl=5, wait=1):
        with pytest.raises(LockTimeoutError):
            async with kv.lock("L", ttl=5, wait=0.05):
                pass
    async with kv.lock("L", ttl=5, wait=0.05):  # released: free again
        pass


async def test_concurrent_calls_each_get_their_own_answer(kv):
    """Many calls in one event-loop turn (one pipeline on Redis): answers don't cross."""
    await asyncio.gather(*(kv.set(f"k{i}", str(i)) for i in range(200)))
    got = await asyncio.gather(*(kv.get(f"k{i}") for i in range(200)))
    assert got == [str(i) for i in range(200)]
    claims = await asyncio.gather(*(kv.set_nx("same", str(i), 60) for i in range(50)))
    assert claims.count(True) == 1


async def test_one_failing_command_fails_only_its_caller(kv):
    if not isinstance(kv, RedisKV):
        await kv.set("text", "not a number")
        with pytest.raises(ValueError):
            await kv.incr("text", 60)
        return
    await kv.set("text", "not a number")
    results = await asyncio.gather(kv.incr("text", 60), kv.get("text"), kv.set_nx("fresh", "1", 60),
                                   return_exceptions=True)
    assert isinstance(results[0], Exception)
    assert results[1:] == ["not a number", True]


async def test_scripts_survive_a_flushed_script_cache(kv):
    if isinstance(kv, RedisKV):
        await kv.redis.script_flush()
    assert await kv.cas("s", None, "x", 60) is True
    assert await kv.claim_and_get("s:claim", 60, "s") == (True, "x")


async def test_an_unreachable_redis_fails_the_call_instead_of_hanging():
    store = RedisKV("redis://127.0.0.1:1/0", prefix="none:")
    try:
        with pytest.raises(Exception) as caught:
            await asyncio.wait_for(store.get("k"), 5)
        assert not isinstance(caught.value, asyncio.TimeoutError)
    finally:
        await store.close()


async def test_a_connection_the_server_dropped_while_idle_is_replaced(monkeypatch):
    """The batcher keeps its connections between batches; one idle past IDLE_RECONNECT is
    reconnected before use, so a server-side disconnect meanwhile costs no caller an error."""
    kv = RedisKV(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    try:
        if not await kv.ping():
            pytest.fail(f"Redis at {REDIS_URL} is unreachable")
        await kv.set("idle", "1")
        batch_conn = await kv._batch.call("CLIENT", "ID")   # the connection now idle in the batcher
        await kv.redis.execute_command("CLIENT", "KILL", "ID", batch_conn)
        monkeypatch.setattr(type(kv._batch), "IDLE_RECONNECT", 0.0)
        await asyncio.sleep(0.01)
        assert await kv.get("idle") == "1"
        await kv.delete("idle")
    finally:
        await kv.close()


def test_memory_store_sweeps_expired_keys_without_rescanning_live_ones(monkeypatch):
    """Past EVICT_AT entries a write sweeps out the expired ones; a store full of live keys
    (an hour of de-duplication claims) is swept again only once it has doubled, not on
    every write (which made each write cost a scan of the whole store)."""
    monkeypatch.setattr(MemoryKV, "EVICT_AT", 10)
    kv, sweeps = MemoryKV(), []
    sweep = kv._evict
    monkeypatch.setattr(kv, "_evict", lambda: (sweeps.append(len(kv._data)), sweep()))
    for i in range(5):
        kv._put(f"old{i}", "x", 0.001)
    later = time.monotonic() + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    for i in range(200):
        kv._put(f"live{i}", "x", 3600)
    assert len(sweeps) <= 6, sweeps  # 11, 21, 41, 81, 161: not 190 sweeps
    assert not any(k.startswith("old") for k in kv._data)
    assert len(kv._data) == 200


async def _redis_store() -> RedisKV:
    kv = RedisKV(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    if not await kv.ping():
        pytest.fail(f"Redis at {REDIS_URL} is unreachable")
    return kv


async def test_calls_made_while_a_pipeline_is_out_go_together_in_the_next():
    """One pipeline in flight: what queues meanwhile (over many event-loop turns) is sent
    as one pipeline when its replies are in, and every caller gets its own answer."""
    kv = await _redis_store()
    sizes: list[int] = []
    exchange = kv._batch._exchange
    gate = asyncio.Event()

    async def slow_first(conn, batch):
        sizes.append(len(batch))
        if len(sizes) == 1:
            await gate.wait()
        await exchange(conn, batch)

    kv._batch._exchange = slow_first  # type: ignore[method-assign]
    try:
        first = asyncio.ensure_future(kv.set("k0", "0"))
        await asyncio.sleep(0.01)
        later = []
        for i in range(1, 41):  # one call per event-loop turn
            later.append(asyncio.ensure_future(kv.set(f"k{i}", str(i))))
            await asyncio.sleep(0)
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
        assert sizes == [1, 40]
        got = await asyncio.wait_for(asyncio.gather(*(kv.get(f"k{i}") for i in range(41))), 5)
        assert got == [str(i) for i in range(41)]
    finally:
        await kv.close()


async def test_a_pipeline_cut_off_midway_drops_its_connection_and_fails_only_its_callers():
    kv = await _redis_store()
    exchange = kv._batch._exchange
    used = []

    async def hangs_once(conn, batch):
        used.append(conn)
        if len(used) == 1:
            await asyncio.sleep(60)
        await exchange(conn, batch)

    kv._batch._exchange = hangs_once  # type: ignore[method-assign]
    try:
        stuck = asyncio.ensure_future(kv.get("a"))
        await asyncio.sleep(0.01)
        behind = asyncio.ensure_future(kv.set("queued", "1"))  # waits for the stuck pipeline
        await asyncio.sleep(0.01)
        for task in list(kv._batch._tasks):
            task.cancel()  # as at shutdown, or a timeout around the sender
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(stuck, 5)
        await asyncio.wait_for(behind, 5)  # a new sender takes what queued behind the cut-off one
        assert await asyncio.wait_for(kv.get("queued"), 5) == "1"
        await kv.set("b", "2")
        assert await asyncio.wait_for(kv.get("b"), 5) == "2"
        assert used[1] is not used[0]  # the cut-off connection was not reused
    finally:
        await kv.close()


async def test_calls_at_any_moment_of_a_pipeline_all_complete():
    """A call made just as a sender finds the queue empty still starts a sender: callers
    at every point of the cycle get their answers (none is left queued)."""
    kv = await _redis_store()
    try:
        async def caller(i: int) -> str | None:
            for _ in range(i % 7):
                await asyncio.sleep(0)
            await kv.set(f"c{i}", str(i))
            return await kv.get(f"c{i}")

        for _ in range(5):
            got = await asyncio.wait_for(asyncio.gather(*(caller(i) for i in range(120))), 10)
            assert got == [str(i) for i in range(120)]
        assert kv._batch._senders == 0
    finally:
        await kv.close()
