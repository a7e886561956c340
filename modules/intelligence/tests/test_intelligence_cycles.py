"""Repurchase cycles end to end: members' paid orders (the core's order and payment
services, days apart on the clock seam) are recorded by the module's order.paid
subscriber, the nightly job estimates each product's cycle, and 「猜你喜欢」 through the
signed endpoint leaves out a durable the member bought and a consumable within its
cycle, then shows the consumable first (「该补货了」) once its cycle has passed. The
merchant's mark in the console overrides the estimate (audited); a bad form changes
nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from social_mall_intelligence.models import Cycle, CycleMark
from storage.models import AuditEntry, Category, Product, Sku
from tests.fakes.console_kit import login, make_admin, paid_order

from intel_kit import listed, say, simulator

USER = "oUser_intel_cycle_0000000001"
REC = "/console/intelligence/recommendations"
START = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)


async def add_shop(mall) -> tuple[int, dict[str, int]]:
    """Tea (茶饮冲调) and a vacuum flask (日用百货), one SKU each: title → SKU id."""
    tenant = (await mall.svc.tenant("demo")).id
    skus: dict[str, int] = {}
    async with mall.svc.uows() as uow:
        for cat_name, titles in (("茶饮冲调", ("西湖龙井", "洞庭碧螺春")), ("日用百货", ("不锈钢保温杯",))):
            cat = Category(tenant_id=tenant, name=cat_name, sort=9)
            await uow.catalog.add(cat)
            for n, title in enumerate(titles):
                p = Product(tenant_id=tenant, category_id=cat.id, title=title, subtitle="", description="",
                            image="", sort=n)
                await uow.catalog.add(p)
                sku = Sku(tenant_id=tenant, product_id=p.id, spec="标准", price_fen=5900, stock=100)
                await uow.catalog.add(sku)
                skus[title] = sku.id
        await uow.commit()
    return tenant, skus


def at(mall, days: float) -> datetime:
    """Move the clock seam `days` after START (nothing sleeps)."""
    when = START + timedelta(days=days)
    mall.svc.clock = lambda: when
    return when


async def retrain(mall) -> None:
    await next(j for j in mall.svc.registry.jobs if j.name == "intel.retrain").run()


async def buy(mall, tenant: int, openid: str, sku: int, day: float) -> None:
    await paid_order(mall.svc.uows, tenant, openid, sku_id=sku, now=at(mall, day))
    await mall.settle()


async def test_a_durable_never_comes_back_a_consumable_comes_back_first_after_its_cycle(mall):
    tenant, sku = await add_shop(mall)
    tea, other_tea, flask = sku["西湖龙井"], sku["洞庭碧螺春"], sku["不锈钢保温杯"]
    for n in range(3):   # three members buy 龙井 every 30 days, with the flask and 碧螺春 once
        buyer = f"oBuyer_intel_cycle_{n:010d}"
        await buy(mall, tenant, buyer, tea, -60)
        await buy(mall, tenant, buyer, flask, -60)
        await buy(mall, tenant, buyer, other_tea, -60)
        await buy(mall, tenant, buyer, tea, -30)
    await buy(mall, tenant, USER, tea, 0)
    await buy(mall, tenant, USER, flask, 0)
    await retrain(mall)
    async with mall.svc.uows() as uow:
        cycles = {p: d for p, d in (await uow.session.execute(select(Cycle.product_id, Cycle.days))).all()}
        tea_id = await uow.session.scalar(select(Sku.product_id).where(Sku.id == tea))
    # 碧螺春 (three buyers, too few to tell) takes its category's cycle; the flask is a durable
    assert cycles == {tea_id: 30.0, await product_of(mall, other_tea): 30.0}

    wx = simulator(mall)
    at(mall, 1)
    reply = await say(wx, USER, "猜你喜欢")
    shown = listed(reply)
    assert shown[0] == "洞庭碧螺春" and "西湖龙井" not in shown and "不锈钢保温杯" not in shown, reply
    at(mall, 14)   # within half of 30 days
    assert "西湖龙井" not in listed(await say(wx, USER, "猜你喜欢"))
    at(mall, 16)
    reply = await say(wx, USER, "猜你喜欢")
    assert listed(reply)[:2] == ["西湖龙井", "洞庭碧螺春"] and "1. 西湖龙井 ¥59.00起（该补货了）" in reply, reply
    assert "不锈钢保温杯" not in listed(reply) and "（该补货了）" not in reply.split("\n2.")[1]
    assert "西湖龙井" in await say(wx, USER, "1")   # its card

    # the merchant knows better: the flask is a consumable of 10 days, 龙井 a durable
    await make_admin(mall.svc.uows, "intel_cyc_op", "operator")
    csrf = await login(mall.client, "intel_cyc_op")
    flask_id = await product_of(mall, flask)
    for product, kind, days in ((flask_id, "consumable", "10"), (tea_id, "durable", "")):
        resp = await mall.client.post(f"{REC}/cycles", data={"_csrf": csrf, "product": str(product), "kind": kind,
                                                             "days": days}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
    reply = await say(wx, USER, "猜你喜欢")
    assert listed(reply)[0] == "不锈钢保温杯" and "西湖龙井" not in listed(reply), reply
    page = await (await mall.client.get(REC)).text()
    assert "消耗品，10 天" in page and "30 天" in page, page
    resp = await mall.client.post(f"{REC}/cycles", data={"_csrf": csrf, "product": str(tea_id), "kind": "auto",
                                                         "days": ""}, allow_redirects=False)
    assert resp.status == 303
    # both due, the most overdue first: 16 days of a 10-day cycle, then 16 of 30
    assert listed(await say(wx, USER, "猜你喜欢"))[:2] == ["不锈钢保温杯", "西湖龙井"]
    async with mall.svc.uows() as uow:
        audited = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                           .where(AuditEntry.action == "intel.cycle.mark"))
    assert audited == 3


async def product_of(mall, sku: int) -> int:
    async with mall.svc.uows() as uow:
        return int(await uow.session.scalar(select(Sku.product_id).where(Sku.id == sku)))


async def test_a_bad_mark_is_refused_in_chinese_and_changes_nothing(mall):
    tenant, sku = await add_shop(mall)
    flask = await product_of(mall, sku["不锈钢保温杯"])
    await make_admin(mall.svc.uows, "intel_cyc_op2", "operator")
    csrf = await login(mall.client, "intel_cyc_op2")
    for form, problem in (({"product": str(flask), "kind": "consumable", "days": ""}, "复购周期：要在 1–365 天之间"),
                          ({"product": str(flask), "kind": "consumable", "days": "400"}, "复购周期：要在 1–365 天之间"),
                          ({"product": "99999999", "kind": "durable", "days": ""}, "商品编号：不存在"),
                          ({"product": "abc", "kind": "durable", "days": ""}, "商品编号：不存在"),
                          ({"product": str(flask), "kind": "forever", "days": ""}, "类型：不存在")):
        resp = await mall.client.post(f"{REC}/cycles", data={"_csrf": csrf, **form}, allow_redirects=False)
        assert resp.status == 400 and problem in await resp.text(), form
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(CycleMark)) == 0
        assert await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                        .where(AuditEntry.action == "intel.cycle.mark")) == 0
    await make_admin(mall.svc.uows, "intel_cyc_fin", "finance")   # may look, not mark
    csrf = await login(mall.client, "intel_cyc_fin")
    page = await (await mall.client.get(REC)).text()
    assert "复购周期" in page and 'id="cycle-form"' not in page
    resp = await mall.client.post(f"{REC}/cycles", data={"_csrf": csrf, "product": str(flask), "kind": "durable"},
                                  allow_redirects=False)
    assert resp.status in (403, 303) and resp.headers.get("Location", "") != f"{REC}?ok=saved"
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(CycleMark)) == 0


async def test_two_people_marking_one_product_at_once_both_succeed_and_one_mark_stays(mall, other_worker):
    """Separate connections (PostgreSQL: two engines; SQLite: one writer at a time)."""
    import asyncio

    from social_mall_intelligence.cycles import set_mark

    tenant, sku = await add_shop(mall)
    flask = await product_of(mall, sku["不锈钢保温杯"])

    async def mark(uows, who: str, kind: str, days: int) -> None:
        async with uows() as uow:
            await set_mark(uow, tenant, who, flask, kind, days, START)
            await uow.commit()

    await asyncio.gather(mark(mall.svc.uows, "admin:a", "consumable", 10), mark(other_worker, "admin:b", "durable", 0))
    async with mall.svc.uows() as uow:
        rows = (await uow.session.scalars(select(CycleMark))).all()
        audited = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                           .where(AuditEntry.action == "intel.cycle.mark"))
    assert len(rows) == 1 and rows[0].updated_by in ("admin:a", "admin:b") and audited == 2
