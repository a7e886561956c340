"""Serving 「猜你喜欢」 and 「买了它的人还买了」 from a worker's memory: a warm request reads
nothing from the database (statements counted on the engine); what changes in this
worker (the member's paid order, their setting, a cycle mark saved, a product taken off
the shelf) is honoured on the next request; what changes elsewhere within `fresh`
seconds (a fake clock). Both backends."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from social_mall.members.service import resolve_member
from social_mall_intelligence import cycles
from social_mall_intelligence.models import MemberPrefs
from social_mall_intelligence.recommendations import Recommender, readout
from storage.models import Sku
from tests.fakes.console_kit import paid_order

from test_intelligence_recommend import first_sku, job, retrain
from intel_kit import add_fashion, say, simulator

BUYER = "oBuyer_intel_serve_000000001"
SHOPPER = "oUser_intel_serve_0000000001"


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while inside."""
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, executemany) -> None:   # noqa: ANN001
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


async def shop(mall) -> tuple[int, int, dict[str, int]]:
    """Members bought the dress with the skirt; BUYER bought the dress: (tenant, BUYER's id, products)."""
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, skirt = ids["法式碎花连衣裙"], ids["高腰百褶半身裙"]
    for n in range(3):
        for p in (dress, skirt):
            await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_serve_ab_{n:06d}", sku_id=await first_sku(mall, p))
    await paid_order(mall.svc.uows, tenant, BUYER, sku_id=await first_sku(mall, dress))
    await mall.settle()
    await retrain(mall)
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant, "mp", BUYER)
    return tenant, member.id, ids


async def picks(mall, rec: Recommender, tenant: int, member: int) -> list[int]:
    async with mall.svc.uows() as uow:
        return (await rec.for_member(uow, tenant, member, 6)).ids


async def test_a_warm_request_reads_nothing_and_changes_made_here_are_honoured_at_once(mall):
    tenant, member, ids = await shop(mall)
    rec: Recommender = mall.svc.registry.related   # the module's own (its subscriber forgets what changes)
    first = await picks(mall, rec, tenant, member)
    assert first[0] == ids["高腰百褶半身裙"] and ids["法式碎花连衣裙"] not in first
    with statements() as seen:
        assert await picks(mall, rec, tenant, member) == first
        async with mall.svc.uows() as uow:
            assert await rec.related(uow, tenant, member, ids["法式碎花连衣裙"], limit=3) == (ids["高腰百褶半身裙"],)
    assert [s for s in seen if s.lstrip().upper().startswith("SELECT")] == [], seen   # impressions are written

    await paid_order(mall.svc.uows, tenant, BUYER, sku_id=await first_sku(mall, ids["高腰百褶半身裙"]))
    await mall.settle()   # order.paid: the subscriber records it and forgets the member's state
    assert ids["高腰百褶半身裙"] not in await picks(mall, rec, tenant, member)

    async with mall.svc.uows() as uow:   # off the shelf: a catalog write committed in this worker
        await uow.session.execute(update(Sku).where(Sku.product_id == ids["针织开衫"]).values(on_shelf=False))
        await uow.commit()
    assert ids["针织开衫"] not in await picks(mall, rec, tenant, member)


async def test_a_cycle_mark_saved_here_is_honoured_on_the_next_request(mall):
    tenant, member, ids = await shop(mall)
    rec: Recommender = mall.svc.registry.related
    dress = ids["法式碎花连衣裙"]
    assert dress not in await picks(mall, rec, tenant, member)   # a durable by the data: bought once
    async with mall.svc.uows() as uow:   # a consumable of one day: bought a day ago... by the clock
        await cycles.set_mark(uow, tenant, "boss", dress, "consumable", 1, mall.svc.clock())
        await uow.commit()
    later = Recommender(now=lambda: mall.svc.clock() + timedelta(days=2))
    assert (await picks(mall, later, tenant, member))[0] == dress   # sanity: the mark makes it due
    rec.now = lambda: mall.svc.clock() + timedelta(days=2)
    assert (await picks(mall, rec, tenant, member))[0] == dress


async def test_a_change_made_by_another_worker_is_seen_within_fresh_seconds(mall):
    tenant, member, ids = await shop(mall)
    t = [0.0]
    rec = Recommender(clock=lambda: t[0], fresh=10.0, recheck=5.0)
    before = await picks(mall, rec, tenant, member)
    async with mall.svc.uows() as uow:   # another worker: the member switched personalisation off
        uow.session.add(MemberPrefs(tenant_id=tenant, member_id=member, personalised=False,
                                    updated_at=mall.svc.clock()))
        await uow.commit()
    t[0] = 9.0
    assert await picks(mall, rec, tenant, member) == before   # still this worker's copy
    t[0] = 10.5
    assert ids["法式碎花连衣裙"] in await picks(mall, rec, tenant, member)   # popular for everyone now


async def test_the_retrain_is_a_nightly_job_at_three_in_shanghai(mall):
    from apscheduler.triggers.cron import CronTrigger

    job = next(j for j in mall.svc.registry.jobs if j.name == "intel.retrain")
    kind, when = job.trigger()
    assert kind == "cron" and (when["hour"], when["minute"]) == (3, 0)
    fires = CronTrigger(**when).get_next_fire_time(None, datetime(2026, 12, 4, 21, 0, tzinfo=timezone.utc))
    assert fires == datetime(2026, 12, 5, 19, 0, tzinfo=timezone.utc)   # 03:00 the next Shanghai night


async def test_a_click_on_what_its_buyers_also_bought_and_the_purchase_count_for_that_placement(mall):
    tenant, member, ids = await shop(mall)
    skirt = ids["高腰百褶半身裙"]
    wx = simulator(mall)   # through the signed chat endpoint
    await say(wx, SHOPPER, "搜 法式碎花连衣裙")
    await say(wx, SHOPPER, "1")
    added = await say(wx, SHOPPER, "加购")
    link = re.search(r'<a href="([^"]+)">高腰百褶半身裙</a>', added)
    assert link and link[1].endswith(f"/h5/product/demo/{skirt}?src=rec.related"), added
    assert (await mall.client.get(link[1][link[1].index("/h5/"):])).status == 200   # the member taps it
    await job(mall, "intel.views")
    await paid_order(mall.svc.uows, tenant, SHOPPER, sku_id=await first_sku(mall, skirt))
    await mall.settle()
    async with mall.svc.uows() as uow:
        rows = {r.source: r for r in await readout(uow, tenant, mall.svc.clock() - timedelta(days=1))}
    related = rows["related"]
    assert (related.impressions, related.clicks, related.orders) == (1, 1, 1), rows
    assert related.revenue_fen == 19900 and "paid" in rows   # the push after it showed its own (placement paid)
