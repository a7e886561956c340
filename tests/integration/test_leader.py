"""The scheduler's leader lease (social_mall/leader.py), on the in-process store and on Redis:
one of the workers sharing a store runs the scheduled jobs; a dead leader is replaced."""

from __future__ import annotations

import asyncio

from social_mall.leader import Leader


async def test_one_worker_leads_and_only_its_jobs_run(kv):
    a, b = Leader(kv, ttl=0.6), Leader(kv, ttl=0.6)
    assert await a.try_lead() is True
    assert await b.try_lead() is False
    assert await a.try_lead() is True  # renewed
    runs: list[str] = []

    async def sweep() -> None:
        runs.append("swept")

    await asyncio.gather(a.guard(sweep)(), b.guard(sweep)())
    assert runs == ["swept"]


async def test_a_dead_leader_is_replaced_once_its_lease_runs_out(kv):
    a, b = Leader(kv, ttl=0.4), Leader(kv, ttl=0.4)
    assert await a.try_lead() is True
    # a dies without a word (kill -9): it never renews nor hands back
    assert await b.try_lead() is False
    await asyncio.sleep(0.5)
    assert await b.try_lead() is True
    assert await a.try_lead() is False  # back from the dead: it does not lead again
    assert a.held is False


async def test_a_leader_that_stops_hands_the_lease_over_at_once(kv):
    a, b = Leader(kv, ttl=30), Leader(kv, ttl=30)
    await a.try_lead()
    a.start()
    await a.stop()
    assert await b.try_lead() is True


async def test_an_unreachable_store_leads_nobody():
    class DownKV:
        async def set_nx(self, *args: object) -> bool:
            raise ConnectionError("redis down")

        async def cas(self, *args: object) -> bool:
            raise ConnectionError("redis down")

    leader = Leader(DownKV(), ttl=1)  # type: ignore[arg-type]
    leader.held = True
    assert await leader.try_lead() is False
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    await leader.guard(job)()
    assert ran == []
