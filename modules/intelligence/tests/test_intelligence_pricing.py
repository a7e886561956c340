"""Dynamic pricing's services on both backends (SQLite + memory, PostgreSQL + Redis), with
the real app's registry: the job moves a SKU's list price under the guard rails, once per
step however often (or by however many workers) it runs; it never raises a price inside
an unpaid order, a live flash sale, a group buy or a module's promotion (the registry's
price holds); every change is audited and can be rolled back
(once, and only while the price is still the one the rule set); the preview and the A/B
readout read the orders and cart adds the core records."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from social_mall.console.errors import InvalidInputError
from social_mall.loyalty import service as loyalty
from social_mall.members.service import resolve_member
from social_mall.orders.service import place_order
from social_mall_intelligence import pricing as P
from social_mall_intelligence.models import PriceChange, PriceRule
from storage.models import AuditEntry, CartItem, Sku
from tests.fakes.console_kit import paid_order

from intel_kit import add_fashion

UTC = timezone.utc
ADMIN = "admin:pricing_test"


def evening(days: int = 1) -> datetime:
    """20:30 in Shanghai, `days` from today (a fixed hour: the evening rule reads it)."""
    d = datetime.now(UTC) + timedelta(days=days)
    return d.replace(hour=12, minute=30, second=0, microsecond=0)


async def setup_sku(mall, price_fen: int = 10_000) -> tuple[int, int]:
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        sku = await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == ids["纯棉短袖T恤"]))
        await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=price_fen))
        await uow.commit()
    return tenant, int(sku)


async def save(mall, tenant: int, sku: int, **form: str) -> int:
    async with mall.svc.uows() as uow:
        rid = await P.save_rule(uow, tenant, ADMIN, sku, form, datetime.now(UTC))
        await uow.commit()
    return rid


async def price(mall, sku: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(Sku.price_fen).where(Sku.id == sku)))


async def n_changes(mall) -> tuple[int, int]:
    async with mall.svc.uows() as uow:
        changes = await uow.session.scalar(select(func.count()).select_from(PriceChange))
        audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                          .where(AuditEntry.action.like("intel.price.%")))
    return int(changes or 0), int(audits or 0)


EVENING = {"cost": "50", "min_margin_pct": "20", "max_step_pct": "10", "max_day_pct": "30",
           "evening": "1", "evening_hour": "19", "evening_off_pct": "25"}


async def test_the_job_steps_an_evening_discount_once_per_bucket_and_audits_each_step(mall):
    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **EVENING)
    now = evening()
    done = await P.run_all(mall.svc.uows, now)
    assert [(a.before_fen, a.after_fen, a.reason) for a in done] == [(10_000, 9_000, "evening")]
    assert await P.run_all(mall.svc.uows, now + timedelta(minutes=5)) == []       # same bucket: nothing
    assert await price(mall, sku) == 9_000 and await n_changes(mall) == (1, 1)
    later = now + timedelta(seconds=P.STEP_SECONDS)
    assert [a.after_fen for a in await P.run_all(mall.svc.uows, later)] == [8_100]
    later += timedelta(seconds=P.STEP_SECONDS)
    assert [a.after_fen for a in await P.run_all(mall.svc.uows, later)] == [7_500]   # the target: 25 % off
    assert await P.run_all(mall.svc.uows, later + timedelta(seconds=P.STEP_SECONDS)) == []
    async with mall.svc.uows() as uow:
        audit = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "intel.price.auto")
                                           .order_by(AuditEntry.id))).all()
        changes = await P.list_changes(uow, tenant)
    assert [(a.actor, a.before, a.after["price_fen"]) for a in audit] == [
        (f"rule:{changes[0].rule_id}", {"price_fen": b}, a) for b, a in [(10_000, 9_000), (9_000, 8_100), (8_100, 7_500)]]
    assert [(c.before_fen, c.after_fen, c.reason) for c in changes][0] == (8_100, 7_500, "evening")


async def test_the_floor_and_the_day_cap_hold(mall):
    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **{**EVENING, "cost": "80", "min_margin_pct": "15", "evening_off_pct": "50"})
    now = evening()
    prices = []
    for i in range(8):
        for a in await P.run_all(mall.svc.uows, now + timedelta(seconds=i * P.STEP_SECONDS)):
            prices.append(a.after_fen)
    assert prices == [9_200]            # floor 80 × 1.15 = 92.00 before the target (50.00) or day cap (70.00)

    async with mall.svc.uows() as uow:     # the merchant sets it under the floor: the rule brings it back up
        await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=5_000))
        await uow.commit()
    [a] = await P.run_all(mall.svc.uows, now + timedelta(hours=3))
    assert (a.after_fen, a.reason) == (9_200, "floor")


DEMAND = {"cost": "50", "ceiling": "120", "max_step_pct": "10", "max_day_pct": "30", "demand": "1",
          "demand_hours": "6", "demand_ratio_pct": "200", "demand_min_events": "3", "demand_up_pct": "10"}


async def cart_adds(mall, tenant: int, sku: int, n: int) -> None:
    async with mall.svc.uows() as uow:
        for i in range(n):
            member, _ = await resolve_member(uow, tenant, "mp", f"oCart_intel_price_{i:010d}")
            uow.session.add(CartItem(tenant_id=tenant, member_id=member.id, sku_id=sku, qty=1))
        await uow.commit()


async def test_demand_raises_the_price_but_never_inside_an_unpaid_order_or_a_flash_sale(mall):
    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **DEMAND)
    await cart_adds(mall, tenant, sku, 4)
    now = datetime.now(UTC) + timedelta(minutes=1)
    async with mall.svc.uows() as uow:
        member, _ = await resolve_member(uow, tenant, "mp", "oUnpaid_intel_price_0000001")
        from social_mall.members.service import add_address
        addr = await add_address(uow, tenant, member.id, "王小明", "13912345678", "广东省深圳市南山区科技园1号")
        order = await place_order(uow, tenant, member.id, [(sku, 1)], address_id=addr.id, now=now,
                                  timeout=timedelta(minutes=30))
        await uow.commit()
    before = await n_changes(mall)
    assert await P.run_all(mall.svc.uows, now) == []
    assert await price(mall, sku) == 10_000 and await n_changes(mall) == before

    from social_mall.orders.service import cancel_order
    async with mall.svc.uows() as uow:
        await cancel_order(uow, tenant, order.id, reason="test", now=now)
        await uow.commit()
    async with mall.svc.uows() as uow:      # a live flash price on the SKU: still no raise
        await loyalty.add_flash_price(uow, tenant, sku, 8_000, starts_at=now - timedelta(hours=1),
                                      ends_at=now + timedelta(hours=1))
        await uow.commit()
    assert await P.run_all(mall.svc.uows, now) == []
    assert await price(mall, sku) == 10_000 and await n_changes(mall) == before
    after_flash = now + timedelta(hours=2)
    [a] = await P.run_all(mall.svc.uows, after_flash)
    assert (a.before_fen, a.after_fen, a.reason) == (10_000, 11_000, "demand")


async def test_a_rollback_restores_the_price_pauses_the_rule_and_happens_once(mall):
    tenant, sku = await setup_sku(mall)
    rid = await save(mall, tenant, sku, **EVENING)
    now = evening()
    await P.run_all(mall.svc.uows, now)
    await P.run_all(mall.svc.uows, now + timedelta(seconds=P.STEP_SECONDS))
    async with mall.svc.uows() as uow:
        first, second = sorted((await uow.session.scalars(select(PriceChange))).all(), key=lambda c: c.id)
    assert await price(mall, sku) == 8_100
    state = (await price(mall, sku), await n_changes(mall))
    async with mall.svc.uows() as uow:     # the older change first: the price has moved since
        with pytest.raises(InvalidInputError) as exc:
            await P.rollback(uow, tenant, ADMIN, first.id, now)
        assert exc.value.problem == "price_moved"
    assert (await price(mall, sku), await n_changes(mall)) == state
    async with mall.svc.uows() as uow:
        await P.rollback(uow, tenant, ADMIN, second.id, now + timedelta(minutes=40))
        await uow.commit()
    assert await price(mall, sku) == 9_000
    async with mall.svc.uows() as uow:
        rule = await uow.session.get(PriceRule, rid)
        assert rule is not None and not rule.enabled
        with pytest.raises(InvalidInputError):
            await P.rollback(uow, tenant, ADMIN, second.id, now)
    assert await P.run_all(mall.svc.uows, now + timedelta(hours=1)) == []     # paused: no redo
    async with mall.svc.uows() as uow:
        await P.rollback(uow, tenant, ADMIN, first.id, now + timedelta(minutes=41))
        await uow.commit()
    assert await price(mall, sku) == 10_000
    changes, audits = await n_changes(mall)
    assert (changes, audits) == (4, 4)


async def test_two_workers_running_the_job_at_once_move_the_price_once(mall, other_worker):
    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **EVENING)
    now = evening()
    results = await asyncio.gather(P.run_all(mall.svc.uows, now), P.run_all(other_worker, now))
    assert sum(len(r) for r in results) == 1
    assert await price(mall, sku) == 9_000 and await n_changes(mall) == (1, 1)


async def test_bad_rules_are_refused_and_change_nothing(mall):
    tenant, sku = await setup_sku(mall)
    for form, (field, problem) in [
        ({"cost": "", "evening": "1"}, ("cost", "no_cost")),          # none typed, none on the SKU
        ({"cost": "1.2.3", "evening": "1"}, ("cost", "price_format")),
        ({"cost": "50"}, ("kinds", "required")),
        ({"cost": "90", "min_margin_pct": "20", "ceiling": "100", "evening": "1"}, ("ceiling", "below_floor")),
        ({"cost": "50", "expiry": "1"}, ("expires_on", "required")),
        ({"cost": "50", "evening": "1", "max_step_pct": "²"}, ("max_step_pct", "integer")),
    ]:
        async with mall.svc.uows() as uow:
            with pytest.raises(InvalidInputError) as exc:
                await P.save_rule(uow, tenant, ADMIN, sku, form, datetime.now(UTC))
        assert (exc.value.field, exc.value.problem) == (field, problem)
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(PriceRule)) == 0


async def test_the_preview_estimates_elasticity_from_past_price_changes_and_the_ab_readout_counts(mall):
    tenant, sku = await setup_sku(mall, price_fen=1_000)
    rid = await save(mall, tenant, sku, **{**EVENING, "cost": "5", "min_margin_pct": "10"})
    now = datetime.now(UTC)
    price_then = 1_000
    for day, (fen, qty) in enumerate([(1_000, 2), (800, 4), (1_000, 2), (800, 5), (1_000, 1), (800, 4)]):
        at = now - timedelta(days=6 - day, hours=6)
        if fen != price_then:       # the merchant's edit, as the console's update_sku audits it, that day
            async with mall.svc.uows() as uow:
                await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=fen))
                uow.session.add(AuditEntry(tenant_id=tenant, actor="admin:boss", action="sku.update",
                                           subject=f"sku:{sku}", before={"price_fen": price_then, "stock": 50},
                                           after={"price_fen": fen, "stock": 50}, at=at - timedelta(hours=6)))
                await uow.commit()
            price_then = fen
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_price_{day:08d}", sku_id=sku, qty=qty, now=at)
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=1_000))
        uow.session.add(AuditEntry(tenant_id=tenant, actor="admin:boss", action="sku.update", subject=f"sku:{sku}",
                                   before={"price_fen": 800}, after={"price_fen": 1_000}, at=now - timedelta(hours=1)))
        await uow.commit()
    async with mall.svc.uows() as uow:
        view = await P.preview(uow, tenant, rid, now)
    assert view.elasticity.estimated and view.elasticity.value < -1.0, view.elasticity
    async with mall.svc.uows() as uow:    # the list price of each hour follows the audited edits
        hist = await P.history(uow, tenant, now, {sku: 1_000}, series_for={sku})
    sold = [(h.price_fen, h.units) for h in hist.hours[sku] if h.units]
    assert sold == [(1_000, 2), (800, 4), (1_000, 2), (800, 5), (1_000, 1), (800, 4)]
    assert hist.hours[sku][-1].price_fen == 1_000 and hist.hours[sku][0].price_fen == 1_000
    assert view.preview.revenue_fen == 2_000 + 3_200 + 2_000 + 4_000 + 1_000 + 3_200
    assert view.preview.changes > 0 and view.preview.projected_units != view.preview.units

    async with mall.svc.uows() as uow:
        tid = await P.start_test(uow, tenant, ADMIN, "晚间", "50", now - timedelta(days=8))
        await uow.commit()
    async with mall.svc.uows() as uow:
        [t] = await P.tests(uow, tenant, now)
        with pytest.raises(InvalidInputError):
            await P.start_test(uow, tenant, ADMIN, "又一个", "50", now)
    arm = t.readout.test if P.R.arm_of((await _salt(mall, tid)), sku, 5000) == "test" else t.readout.control
    assert (arm.visitors, arm.buyers, arm.revenue_fen) == (6, 6, 15_400)
    assert arm.margin_fen == 15_400 - 500 * 18


async def _salt(mall, tid: int) -> str:
    from social_mall_intelligence.models import PriceTest
    async with mall.svc.uows() as uow:
        t = await uow.session.get(PriceTest, tid)
        return t.salt


async def test_a_time_block_test_runs_the_rule_on_test_days_and_returns_to_base_on_control_days(mall):
    from social_mall_intelligence.rules_pricing import arm_of, block_of

    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **EVENING)
    async with mall.svc.uows() as uow:
        tid = await P.start_test(uow, tenant, ADMIN, "按天", "50", datetime.now(UTC), "day")
        await uow.commit()
    salt = await _salt(mall, tid)
    days = [evening(d) for d in range(1, 40)]
    test_day = next(d for d in days if arm_of(salt, block_of(d), 5000) == "test")
    control_day = next(d for d in days if d > test_day and arm_of(salt, block_of(d), 5000) == "control")
    [a] = await P.run_all(mall.svc.uows, test_day)
    assert (a.after_fen, a.reason) == (9_000, "evening")
    [a] = await P.run_all(mall.svc.uows, control_day)
    assert (a.before_fen, a.after_fen, a.reason) == (9_000, 9_900, "control")
    [a] = await P.run_all(mall.svc.uows, control_day + timedelta(seconds=P.STEP_SECONDS))
    assert a.after_fen == 10_000
    assert await P.run_all(mall.svc.uows, control_day + timedelta(seconds=2 * P.STEP_SECONDS)) == []
    async with mall.svc.uows() as uow:
        with pytest.raises(InvalidInputError):
            await P.start_test(uow, tenant, ADMIN, "x", "50", datetime.now(UTC), "week")
        [view] = await P.tests(uow, tenant, datetime.now(UTC))
    assert view.unit == "day" and view.readout.test.visitors == 0


async def test_a_rule_paused_after_the_job_listed_it_does_not_move_the_price(mall):
    tenant, sku = await setup_sku(mall)
    rid = await save(mall, tenant, sku, **EVENING)
    async with mall.svc.uows() as uow:
        stale = await uow.session.get(PriceRule, rid)      # what the job listed
    async with mall.svc.uows() as uow:
        await P.set_rule_enabled(uow, tenant, ADMIN, rid, False, datetime.now(UTC))
        await uow.commit()
    async with mall.svc.uows() as uow:
        assert await P.apply_rule(uow, tenant, stale, evening()) is None
        await uow.commit()
    assert await price(mall, sku) == 10_000 and await n_changes(mall) == (0, 0)


async def test_no_raise_while_a_group_buy_sells_the_sku_then_the_demand_step_goes_on(mall):
    from storage.groupbuy_models import GroupbuyCampaign, GroupbuySku

    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **DEMAND)
    await cart_adds(mall, tenant, sku, 4)
    now = datetime.now(UTC) + timedelta(minutes=1)
    async with mall.svc.uows() as uow:
        product = await uow.session.scalar(select(Sku.product_id).where(Sku.id == sku))
        camp = GroupbuyCampaign(tenant_id=tenant, product_id=product, title="三人团", team_size=3, lifetime_hours=24,
                                starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1), active=True)
        uow.session.add(camp)
        await uow.session.flush()
        uow.session.add(GroupbuySku(tenant_id=tenant, campaign_id=camp.id, sku_id=sku, group_price_fen=7_000))
        await uow.commit()
    before = await n_changes(mall)
    assert await P.run_all(mall.svc.uows, now) == []
    assert await price(mall, sku) == 10_000 and await n_changes(mall) == before
    [a] = await P.run_all(mall.svc.uows, now + timedelta(hours=2))      # the group buy is over
    assert (a.before_fen, a.after_fen, a.reason) == (10_000, 11_000, "demand")


async def test_the_pricing_job_asks_the_registrys_price_holds_and_lowers_but_never_raises_a_held_sku(mall):
    """A module's running promotion (a seckill session, a bargain campaign: `add_price_hold`)
    stops a raise by the registered job; a lowering still goes through."""
    tenant, sku = await setup_sku(mall)
    rid = await save(mall, tenant, sku, **DEMAND)
    await cart_adds(mall, tenant, sku, 4)
    now = datetime.now(UTC) + timedelta(minutes=1)
    asked: list[tuple[int, int]] = []
    held_until = now + timedelta(hours=1)

    async def promotion(uow, t: int, sku_id: int, at: datetime) -> bool:
        asked.append((t, sku_id))
        return sku_id == sku and at < held_until

    reg = mall.svc.registry
    reg.add_price_hold(promotion)
    job = next(j for j in reg.jobs if j.name == "intel.pricing")
    before = await n_changes(mall)
    mall.svc.clock = lambda: now
    await job.run()
    assert asked == [(tenant, sku)]
    assert await price(mall, sku) == 10_000 and await n_changes(mall) == before

    mall.svc.clock = lambda: held_until + timedelta(minutes=30)     # the promotion is over: the demand step
    await job.run()
    assert await price(mall, sku) == 11_000

    await save(mall, tenant, sku, **EVENING)     # the merchant makes it an evening discount, inside a new promotion
    held_until = evening() + timedelta(hours=1)
    mall.svc.clock = lambda: evening()
    await job.run()
    assert await price(mall, sku) == 9_900        # a cut (10 % a step) is no raise: it goes through


async def test_the_floor_follows_the_skus_cost_from_the_product_page(mall):
    """Cost lives on the SKU (the core's 成本价): a rule saved without one takes the SKU's; a
    cost typed in a rule becomes the SKU's (audited as its edit); the merchant raising the
    cost on the product page lifts the floor the next step enforces."""
    from social_mall.console import catalog as cat
    from social_mall.console.auth import AdminView
    from tests.fakes.console_kit import make_admin

    tenant, sku = await setup_sku(mall)
    no_cost = {k: v for k, v in EVENING.items() if k != "cost"}
    before = await n_changes(mall)
    async with mall.svc.uows() as uow:             # neither the SKU nor the form has a cost: refused
        with pytest.raises(InvalidInputError) as e:
            await P.save_rule(uow, tenant, ADMIN, sku, no_cost, datetime.now(UTC))
    assert e.value.field == "cost"
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(PriceRule)) == 0
    assert await n_changes(mall) == before

    boss = AdminView(await make_admin(mall.svc.uows, "cost_boss"), tenant, "cost_boss", "owner")
    async with mall.svc.uows() as uow:             # the merchant enters 60.00 on the product page
        await cat.update_sku(uow, tenant, boss, sku, cost_fen=6_000)
        await uow.commit()
    await save(mall, tenant, sku, **no_cost)
    async with mall.svc.uows() as uow:
        [view] = await P.list_rules(uow, tenant)
    assert (view.cost_fen, view.floor_fen) == (6_000, 7_200)     # 60.00 × (1 + 20 %)

    [a] = await P.run_all(mall.svc.uows, evening())
    assert (a.before_fen, a.after_fen, a.reason) == (10_000, 9_000, "evening")
    async with mall.svc.uows() as uow:             # the product page raises the cost to 80.00: floor 96.00
        await cat.update_sku(uow, tenant, boss, sku, cost_fen=8_000)
        await uow.commit()
    [a] = await P.run_all(mall.svc.uows, evening() + timedelta(seconds=P.STEP_SECONDS))
    assert (a.before_fen, a.after_fen, a.reason) == (9_000, 9_600, "floor")

    await save(mall, tenant, sku, **{**no_cost, "cost": "70"})   # typed in the rule: the SKU's cost now
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(Sku.cost_fen).where(Sku.id == sku)) == 7_000
        audit = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "sku.update",
                                                                  AuditEntry.actor == ADMIN))
    assert (audit.before, audit.after) == ({"cost_fen": 8_000}, {"cost_fen": 7_000})


async def test_a_sku_split_compares_each_skus_revenue_with_its_own_before_the_test(mall):
    """The readout of a SKU split reads each rule SKU's paid revenue over the test and over
    the same length of time just before it, per arm (the SKU-against-itself test)."""
    ids = await add_fashion(mall)
    tenant = (await mall.svc.tenant("demo")).id
    async with mall.svc.uows() as uow:
        skus = [int(s) for s in (await uow.session.scalars(select(Sku.id).where(Sku.product_id.in_(list(ids.values())))
                                                           .order_by(Sku.id).limit(6))).all()]
        await uow.session.execute(update(Sku).where(Sku.id.in_(skus)).values(price_fen=1_000))
        await uow.commit()
    for sku in skus:
        await save(mall, tenant, sku, **{**EVENING, "cost": "5", "min_margin_pct": "10"})
    now = datetime.now(UTC)
    async with mall.svc.uows() as uow:
        tid = await P.start_test(uow, tenant, ADMIN, "按SKU", "50", now - timedelta(days=2))
        await uow.commit()
    sold: dict[int, tuple[int, int]] = {}
    for i, sku in enumerate(skus):
        before, during = 1 + i % 2, 1 + i % 3
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_lift_b{i:07d}", sku_id=sku, qty=before,
                         now=now - timedelta(days=3))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_lift_d{i:07d}", sku_id=sku, qty=during,
                         now=now - timedelta(days=1))
        await paid_order(mall.svc.uows, tenant, f"oBuyer_intel_lift_o{i:07d}", sku_id=sku, qty=5,
                         now=now - timedelta(days=5))           # before the window: not read
        sold[sku] = (during * 1_000, before * 1_000)
    salt = await _salt(mall, tid)
    arms: dict[str, list[tuple[int, int]]] = {"test": [], "control": []}
    for sku in sorted(skus):
        arms[P.R.arm_of(salt, sku, 5000)].append(sold[sku])
    async with mall.svc.uows() as uow:
        [t] = await P.tests(uow, tenant, now)
    assert t.readout.sku == P.R.sku_lift(arms["test"], arms["control"])
    assert (t.readout.sku.skus_test, t.readout.sku.skus_control) == (len(arms["test"]), len(arms["control"]))


async def test_undoing_a_cut_inside_a_running_promotion_is_refused_and_changes_nothing(mall):
    """A rollback of a cut raises the price: refused like the job's raises while a promotion
    sells the SKU (a flash price here; the registry's holds through the console), allowed after."""
    tenant, sku = await setup_sku(mall)
    await save(mall, tenant, sku, **EVENING)
    now = evening()
    [cut] = await P.run_all(mall.svc.uows, now)
    async with mall.svc.uows() as uow:
        [change] = await P.list_changes(uow, tenant)
        await loyalty.add_flash_price(uow, tenant, sku, 7_000, starts_at=now, ends_at=now + timedelta(hours=1))
        await uow.commit()
    state = (await price(mall, sku), await n_changes(mall))
    async with mall.svc.uows() as uow:
        with pytest.raises(InvalidInputError) as exc:
            await P.rollback(uow, tenant, ADMIN, change.id, now + timedelta(minutes=10))
    assert exc.value.problem == "in_promotion"
    assert (await price(mall, sku), await n_changes(mall)) == state == (9_000, (1, 1))
    async with mall.svc.uows() as uow:
        await P.rollback(uow, tenant, ADMIN, change.id, now + timedelta(hours=2))
        await uow.commit()
    assert await price(mall, sku) == cut.before_fen == 10_000
