"""Product views as demand, through the core's activity sink (the module keeps its own
counters, views.py): a card opened in chat or an H5 page is counted in memory and written
by the job `intel.views`; the views then feed dynamic pricing's demand signal and the
recommendation model (a member who only browsed gets what browsers of the same product
bought). A view carrying a recommendation's tracking token is a click of that placement.
Both backends; two workers flushing the same counters add up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest
from sqlalchemy import func, select, update

from social_mall import activity
from social_mall.activity import Activity
from social_mall_intelligence import pricing as P
from social_mall_intelligence import views as V
from social_mall_intelligence.models import Click, MemberView, PriceChange, ViewHour
from storage.models import Sku
from tests.fakes.console_kit import paid_order

from intel_kit import add_fashion, listed, say, simulator

UTC = timezone.utc
DEMAND = {"cost": "50", "ceiling": "120", "max_step_pct": "10", "max_day_pct": "30", "demand": "1",
          "demand_hours": "6", "demand_ratio_pct": "200", "demand_min_events": "3", "demand_up_pct": "10"}


async def job(mall, name: str) -> None:
    await next(j for j in mall.svc.registry.jobs if j.name == name).run()


async def first_sku(mall, product_id: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == product_id)))


async def counts(mall, tenant: int, product: int) -> tuple[int, int, int]:
    """(views of the product in the hour tables, members who viewed it, their views)."""
    async with mall.svc.uows() as uow:
        hours = await uow.session.scalar(select(func.coalesce(func.sum(ViewHour.views), 0)).where(
            ViewHour.tenant_id == tenant, ViewHour.product_id == product))
        members, views = (await uow.session.execute(
            select(func.count(), func.coalesce(func.sum(MemberView.views), 0)).where(
                MemberView.tenant_id == tenant, MemberView.product_id == product))).one()
    return int(hours or 0), int(members), int(views)


async def test_cards_opened_in_chat_and_h5_raise_the_demand_signal_once_written(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    tee = ids["纯棉短袖T恤"]
    sku = await first_sku(mall, tee)
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=10_000))
        await uow.commit()
    async with mall.svc.uows() as uow:
        await P.save_rule(uow, tenant, "admin:views_test", sku, DEMAND, datetime.now(UTC))
        await uow.commit()
    for n in range(3):   # three members open the card in chat (a search with one hit shows it)
        assert "白色 / L" in await say(simulator(mall), f"oView_intel_{n:012d}", "搜 纯棉短袖T恤")
    page = await mall.client.get(f"/h5/product/demo/{tee}")   # and one anonymous H5 visitor
    assert page.status == 200
    now = datetime.now(UTC) + timedelta(minutes=1)
    assert await counts(mall, tenant, tee) == (0, 0, 0)       # only counted in memory so far
    assert await P.run_all(mall.svc.uows, now) == []           # no demand seen: the price stays
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(PriceChange)) == 0

    await job(mall, "intel.views")
    assert await counts(mall, tenant, tee) == (4, 3, 3)        # the H5 view counts for demand only
    [a] = await P.run_all(mall.svc.uows, now)
    assert (a.sku_id, a.before_fen, a.after_fen, a.reason) == (sku, 10_000, 11_000, "demand")
    await job(mall, "intel.views")                             # nothing new: nothing added
    assert await counts(mall, tenant, tee) == (4, 3, 3)


async def test_a_member_who_only_browsed_is_recommended_what_browsers_of_it_bought(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress, cardigan, tee = ids["法式碎花连衣裙"], ids["针织开衫"], ids["纯棉短袖T恤"]
    for n in range(2):   # bought together
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_view_dc_{n:07d}", sku_id=await first_sku(mall, dress))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_view_dc_{n:07d}",
                         sku_id=await first_sku(mall, cardigan))
    for n in range(3):   # the shop's best seller
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_view_t_{n:08d}", sku_id=await first_sku(mall, tee))
    await mall.settle()
    browser, stranger = "oUser_intel_browser_00000001", "oUser_intel_stranger_0000001"
    wx = simulator(mall)
    assert "红色 / S" in await say(wx, browser, "搜 法式碎花连衣裙")   # a view, no purchase
    await job(mall, "intel.retrain")     # writes this worker's views first, then trains
    mine = listed(await say(wx, browser, "猜你喜欢"))
    assert mine[0] == "针织开衫", mine                           # bought by those who had the dress
    assert "法式碎花连衣裙" in mine                                # viewed, not bought: may come back
    theirs = listed(await say(simulator(mall), stranger, "猜你喜欢"))
    assert theirs[0] == "纯棉短袖T恤", theirs                     # no history: the best seller
    await say(wx, browser, "关闭个性化推荐")                          # PIPL: views are not used either
    assert listed(await say(wx, browser, "猜你喜欢")) == theirs


async def test_a_tracked_h5_link_counts_a_click_of_its_placement_and_other_sources_do_not(mall):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    skirt = ids["高腰百褶半身裙"]
    for src in ("rec.for_me", "rec.related", "rec.bogus", "qr_summer", "rec.for_me%00"):
        assert (await mall.client.get(f"/h5/product/demo/{skirt}?src={src}")).status == 200
    await job(mall, "intel.views")
    async with mall.svc.uows() as uow:
        clicks = (await uow.session.execute(select(Click.placement, Click.member_id, Click.channel).where(
            Click.tenant_id == tenant).order_by(Click.placement))).all()
    assert [tuple(c) for c in clicks] == [("for_me", 0, "h5"), ("related", 0, "h5")]
    assert (await counts(mall, tenant, skirt))[0] == 5


def view(member: int, product: int, source: str = "", kind: str = activity.PRODUCT_VIEW,
         at: datetime = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)) -> Activity:
    return Activity(1, member, "mp", kind, at, product, source, MappingProxyType({}))


def test_the_counter_keeps_views_only_and_is_bounded():
    c = V.ViewCounter(max_keys=4)
    c(view(7, 1, kind=activity.SEARCH))
    c(view(7, 0))
    assert c.pending == 0
    c(view(7, 1))
    c(view(7, 1, at=datetime(2026, 12, 4, 8, 59, tzinfo=UTC)))   # same hour, same member: the same keys
    assert c.pending == 2
    c(view(0, 2, source="rec.for_me"))                            # anonymous: hour + click, no member key
    assert c.pending == 4
    c(view(8, 3))
    assert c.pending == 4 and c.dropped == 1
    assert V.placement_of("rec.for_me") == "for_me" and V.placement_of("rec.x") == "" and V.placement_of("") == ""


async def test_a_failed_flush_keeps_the_counts_for_the_next_one():
    c = V.ViewCounter()
    c(view(7, 1))
    c(view(7, 1))

    class Broken:
        async def __aenter__(self):
            raise ConnectionError("database away")

        async def __aexit__(self, *exc):
            return False

    with pytest.raises(ConnectionError):
        await c.flush(Broken)
    assert c.pending == 2
    c(view(7, 1))
    assert c._hours[(1, 1, datetime(2026, 12, 4, 8, tzinfo=UTC))] == 3


async def test_two_workers_flushing_the_same_counters_add_up(mall, other_worker):
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    dress = ids["法式碎花连衣裙"]
    at = datetime.now(UTC)
    a, b = V.ViewCounter(), V.ViewCounter()
    for counter, n in ((a, 3), (b, 5)):
        for _ in range(n):
            counter(Activity(tenant, 0, "h5", activity.PRODUCT_VIEW, at, dress))
        counter(Activity(tenant, 1, "mp", activity.PRODUCT_VIEW, at, dress))
    await asyncio.gather(a.flush(mall.svc.uows), b.flush(other_worker))
    assert await counts(mall, tenant, dress) == (10, 1, 2)
