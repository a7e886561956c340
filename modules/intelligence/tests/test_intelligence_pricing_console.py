"""The console page 动态定价 over real HTTP with CSRF: a rule saved from the form, a bad
form refused in Chinese with nothing changed, the job's change listed and rolled back
(price restored, rule paused, audited), the preview page's figures, an A/B test started
and read out; a role without intel.edit can look but not change."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from social_mall_intelligence import pricing as P
from social_mall_intelligence.models import PriceRule, PriceTest
from storage.models import AuditEntry, Sku
from tests.fakes.console_kit import csrf_of, login, make_admin

from intel_kit import add_fashion

UTC = timezone.utc
PAGE = "/console/intelligence/pricing"


async def state(mall) -> tuple[int, int, int]:
    async with mall.svc.uows() as uow:
        rules = await uow.session.scalar(select(func.count()).select_from(PriceRule))
        tests = await uow.session.scalar(select(func.count()).select_from(PriceTest))
        audit = await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                         .where(AuditEntry.action.like("intel.%")))
    return int(rules or 0), int(tests or 0), int(audit or 0)


async def test_a_rule_saved_in_the_console_runs_and_its_change_is_rolled_back(mall):
    ids = await add_fashion(mall)
    async with mall.svc.uows() as uow:
        sku = int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == ids["针织开衫"])))
    await make_admin(mall.svc.uows, "pricing_op", "operator")
    csrf = await login(mall.client, "pricing_op")
    page = await (await mall.client.get(PAGE)).text()
    assert "动态定价" in page and "还没有定价规则" in page

    form = {"_csrf": csrf, "sku_id": str(sku), "cost": "150", "min_margin_pct": "20", "evening": "1",
            "evening_hour": "19", "evening_off_pct": "20", "max_step_pct": "5", "max_day_pct": "20"}
    before = await state(mall)
    for bad, problem in [({"cost": "abc"}, "成本价：格式不对"), ({"evening": ""}, "定价信号：必填"),
                         ({"cost": "190"}, "最高价：低于保底价"), ({"sku_id": "99999999"}, "SKU 编号：超出范围"),
                         ({"max_step_pct": "80"}, "单次最大调幅：超出范围")]:
        resp = await mall.client.post(f"{PAGE}/rules", data={**form, **bad}, allow_redirects=False)
        body = await resp.text()
        assert resp.status == 400 and problem in body, (bad, body[-800:])
    assert await state(mall) == before
    resp = await mall.client.post(f"{PAGE}/rules", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{PAGE}?ok=saved"
    page = await (await mall.client.get(f"{PAGE}?ok=saved")).text()
    assert "定价规则已保存" in page and "针织开衫" in page and "¥180.00 / ¥199.00" in page and "晚间折扣" in page

    evening = (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=30)
    [step] = await P.run_all(mall.svc.uows, evening)
    page = await (await mall.client.get(PAGE)).text()
    assert "¥189.05" in page and "rule:" in page
    cid = re.search(r"/changes/(\d+)/rollback", page).group(1)
    selling = True

    async def promotion(uow, tenant, sku_id, at) -> bool:      # a module's running promotion (reg.add_price_hold)
        return selling and sku_id == sku

    mall.svc.registry.add_price_hold(promotion)
    before = await state(mall)
    resp = await mall.client.post(f"{PAGE}/changes/{cid}/rollback", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 400 and "活动结束后再回滚" in await resp.text()
    assert await state(mall) == before and "¥189.05" in await (await mall.client.get(PAGE)).text()
    selling = False
    resp = await mall.client.post(f"{PAGE}/changes/{cid}/rollback", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    page = await (await mall.client.get(f"{PAGE}?ok=rolled_back")).text()
    assert "已回滚，规则已暂停" in page and "已暂停" in page and "回滚 #" in page
    async with mall.svc.uows() as uow:
        assert await uow.session.scalar(select(Sku.price_fen).where(Sku.id == sku)) == 19_900
        actions = (await uow.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("intel.price%"))
                                             .order_by(AuditEntry.id))).all()
    assert actions == ["intel.price_rule.save", "intel.price.auto", "intel.price.rollback"]
    resp = await mall.client.post(f"{PAGE}/changes/{cid}/rollback", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 400 and "已经回滚过了" in await resp.text()

    rid = re.search(r"/rules/(\d+)/preview", page).group(1)
    preview = await (await mall.client.get(f"{PAGE}/rules/{rid}/preview")).text()
    assert "定价预演" in preview and 'id="projected-revenue"' in preview and "对数-对数回归" in preview
    assert (await mall.client.get(f"{PAGE}/rules/99999999/preview")).status == 404

    resp = await mall.client.post(f"{PAGE}/tests", data={"_csrf": csrf, "name": "晚间折扣", "share_pct": "50"},
                                  allow_redirects=False)
    assert resp.status == 303
    page = await (await mall.client.get(PAGE)).text()
    assert "晚间折扣（50%）" in page and "z=" in page and ("实验组" in page)
    assert "每个 SKU 比实验前同样长的时间：实验组" in page and "两组商品不同，仅供参考" in page   # a SKU split
    resp = await mall.client.post(f"{PAGE}/tests", data={"_csrf": csrf, "name": "又一个", "share_pct": "50"},
                                  allow_redirects=False)
    assert resp.status == 400 and "已有进行中的实验" in await resp.text()
    tid = re.search(r"/tests/(\d+)/stop", page).group(1)
    assert (await mall.client.post(f"{PAGE}/tests/{tid}/stop", data={"_csrf": csrf}, allow_redirects=False)).status == 303
    assert "已结束" in await (await mall.client.get(PAGE)).text()


async def cardigan_rule(mall) -> int:
    """An evening rule on the cardigan's first SKU (¥199.00), cost ¥150.00, margin 20 %: its SKU."""
    ids = await add_fashion(mall)
    async with mall.svc.uows() as uow:
        sku = int(await uow.session.scalar(select(func.min(Sku.id)).where(Sku.product_id == ids["针织开衫"])))
        tenant = (await mall.svc.tenant("demo")).id
        await P.save_rule(uow, tenant, "admin:boss", sku, {"cost": "150", "min_margin_pct": "20", "evening": "1"},
                          datetime.now(UTC))
        await uow.commit()
    return sku


async def test_service_staff_can_look_but_not_change_prices(mall):
    sku = await cardigan_rule(mall)
    await make_admin(mall.svc.uows, "pricing_service", "service")
    await login(mall.client, "pricing_service")
    page = await (await mall.client.get(PAGE)).text()
    assert "动态定价" in page and 'id="rule-form"' not in page
    assert "针织开衫" in page and "¥199.00" in page and "¥150.00" not in page and "¥180.00" not in page   # no cost, no floor
    csrf = await csrf_of(mall.client, PAGE)
    before = await state(mall)
    resp = await mall.client.post(f"{PAGE}/rules", data={"_csrf": csrf, "sku_id": "1", "cost": "1", "evening": "1"},
                                  allow_redirects=False)
    assert resp.status == 403
    resp = await mall.client.post(f"{PAGE}/tests", data={"_csrf": csrf, "name": "x", "share_pct": "50"},
                                  allow_redirects=False)
    assert resp.status == 403
    assert await state(mall) == before


async def test_switched_off_there_is_no_pricing_page_nor_job(mall, backend, engine, fake_wechat, aiohttp_client,
                                                             tmp_path):
    from intel_kit import make_mall

    assert "intel.pricing" in [j.name for j in mall.svc.registry.jobs]
    off = await make_mall(backend, tmp_path / "off", fake_wechat, aiohttp_client, disabled=["intelligence"])
    assert "intel.pricing" not in [j.name for j in off.svc.registry.jobs]
    await make_admin(off.svc.uows, "pricing_off")
    await login(off.client, "pricing_off")
    assert "动态定价" not in await (await off.client.get("/console/")).text()
    assert (await off.client.get(PAGE)).status == 404


async def test_a_cost_raised_past_the_ceiling_is_pointed_out(mall):
    """The cost is the SKU's: raised on the product page past what the rule's ceiling allows,
    the rule can't move the price, and the page says why and what to change."""
    sku = await cardigan_rule(mall)
    await make_admin(mall.svc.uows, "pricing_boss")
    csrf = await login(mall.client, "pricing_boss")
    page = await (await mall.client.get(PAGE)).text()
    assert "¥150.00" in page and "¥180.00 / ¥199.00" in page and "保底价已高于最高价" not in page
    async with mall.svc.uows() as uow:
        pid = await uow.session.scalar(select(Sku.product_id).where(Sku.id == sku))
    resp = await mall.client.post(f"/console/products/{pid}/skus/{sku}", allow_redirects=False, data={
        "_csrf": csrf, "spec": "红色 / L", "price": "199", "cost": "170", "stock": "50", "stock_was": "50",
        "on_shelf": "1"})
    assert resp.status == 303
    page = await (await mall.client.get(PAGE)).text()
    assert "¥170.00" in page and "¥204.00 / ¥199.00" in page and "保底价已高于最高价" in page
    before = await (await mall.client.get(f"/console/products/{pid}")).text()
    assert await P.run_all(mall.svc.uows, (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=30)) == []
    assert await (await mall.client.get(f"/console/products/{pid}")).text() == before


async def test_one_rule_for_every_sku_of_a_product(mall):
    """商品编号 instead of a SKU: the rule lands on each on-shelf SKU of the product, each from
    its own price and cost; a SKU that can't take it (no cost) refuses them all, nothing
    written; both numbers, or neither, is refused."""
    ids = await add_fashion(mall)
    dress = ids["法式碎花连衣裙"]
    async with mall.svc.uows() as uow:
        skus = [int(s) for s in (await uow.session.scalars(select(Sku.id).where(Sku.product_id == dress)
                                                           .order_by(Sku.id))).all()]
        for n, sku in enumerate(skus):
            await uow.session.execute(update(Sku).where(Sku.id == sku).values(price_fen=19_900 + 1_000 * n,
                                                                              cost_fen=None if n == 2 else 9_000))
        await uow.commit()
    await make_admin(mall.svc.uows, "pricing_product")
    csrf = await login(mall.client, "pricing_product")
    form = {"_csrf": csrf, "product_id": str(dress), "min_margin_pct": "20", "evening": "1"}
    before = await state(mall)
    for bad, problem in [({}, "成本价：必填（商品里还没填这个规格的成本）"), ({"sku_id": str(skus[0])}, "SKU 编号和商品编号填一个"),
                         ({"product_id": ""}, "SKU 编号和商品编号填一个"), ({"product_id": "99999999"}, "商品编号：超出范围")]:
        resp = await mall.client.post(f"{PAGE}/rules", data={**form, **bad}, allow_redirects=False)
        assert resp.status == 400 and problem in await resp.text(), bad
    assert await state(mall) == before                  # the third SKU has no cost: no rule at all
    async with mall.svc.uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == skus[2]).values(cost_fen=9_500))
        await uow.session.execute(update(Sku).where(Sku.id == skus[3]).values(on_shelf=False))
        await uow.commit()
    resp = await mall.client.post(f"{PAGE}/rules", data=form, allow_redirects=False)
    assert resp.status == 303
    async with mall.svc.uows() as uow:
        rules = [(r.sku_id, r.base_fen, r.ceiling_fen) for r in await P.list_rules(uow, (await mall.svc.tenant("demo")).id)]
    assert sorted(rules) == [(skus[0], 19_900, 19_900), (skus[1], 20_900, 20_900), (skus[2], 21_900, 21_900)]
