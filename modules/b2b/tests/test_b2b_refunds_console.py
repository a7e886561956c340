"""The console end to end (both backends): a refund of an order paid by bank transfer,
asked on the core's order page, makes no WeChat Pay call and waits on 对公转账 → 线下退款
until an admin confirms it with the bank reference (a blank one is refused with nothing
changed; the same one twice is 409); the promotions allowed on 企业价 lines are saved there
(audited)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from social_mall.orders.service import load_order
from social_mall_b2b import promos, transfers, vat
from social_mall_b2b.models import OfflineRefund
from storage.models import AuditEntry, OutboxEvent, Tenant
from tests.fakes.console_kit import csrf_of

from b2b_kit import Clock, console, count, make_mall, say, simulator
from test_b2b_credit import NOW, company_with_buyers, unpaid_order


async def test_a_transfer_orders_refund_is_confirmed_in_the_console_and_promotions_are_set_there(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    clock = Clock(datetime(2030, 1, 10, 5, 0, tzinfo=timezone.utc))
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    uows = mall.svc.uows
    async with uows() as uow:
        tenant = await uow.session.scalar(select(Tenant.id).where(Tenant.code == "demo"))
    _, (_, buyer), sku, _ = await company_with_buyers(uows, tenant, None)
    async with uows() as uow:
        await vat.set_rate(uow, tenant, sku, 1300, "admin:a")            # 13% VAT inside the price
        await uow.commit()
    oid = await unpaid_order(uows, tenant, buyer, sku, 2)
    async with uows() as uow:
        await transfers.set_shop_terms(uow, tenant, transfers.BankAccount("招商银行", "某某贸易公司", "6225888800001"),
                                       "admin:a")
        t, _, _ = await transfers.choose(uow, tenant, buyer, await load_order(uow, tenant, oid), NOW)
        assert (await transfers.confirm_receipt(uow, tenant, t.id, t.expected_fen, "IN-1", "admin:a", NOW))[1]
        await uow.commit()
    await console(mall)
    # the VAT per rate on the core's order pages, through the order notes seam
    tax = vat.tax_in(20000, 1300)
    assert tax == 2301
    vat_line = "商品价税合计 ¥200.00，其中增值税 13% ¥23.01"
    assert vat_line in await (await mall.client.get(f"/console/orders/{oid}")).text()
    wx = simulator(mall)
    await say(wx, "o_credit_buyer", "我的订单")
    assert vat_line in await say(wx, "o_credit_buyer", "1")
    csrf = await csrf_of(mall.client, f"/console/orders/{oid}")
    resp = await mall.client.post(f"/console/orders/{oid}/refund",
                                  data={"_csrf": csrf, "amount": "12.50", "reason": "少发一箱", "confirm": "1"})
    assert resp.status == 200
    assert await count(mall, OutboxEvent, OutboxEvent.topic == "payment.needs_refund") == 0
    page = await (await mall.client.get("/console/b2b/transfers")).text()
    async with uows() as uow:
        row = (await uow.session.execute(select(OfflineRefund))).scalar_one()
    assert f'id="offline-refund-{row.id}"' in page and "待退款" in page and "12.50" in page
    url = f"/console/b2b/refunds/{row.id}/confirm"
    blank = await mall.client.post(url, data={"_csrf": csrf, "bank_ref": "  "})
    assert blank.status == 400 and "银行流水号" in await blank.text()
    async with uows() as uow:
        assert (await load_order(uow, tenant, oid)).refunded_fen == 0
    assert (await mall.client.post(url, data={"_csrf": csrf, "bank_ref": "OUT-2030-01"})).status == 200
    again = await mall.client.post(url, data={"_csrf": csrf, "bank_ref": "OUT-2030-02"})
    assert again.status == 409
    async with uows() as uow:
        order = await load_order(uow, tenant, oid)
    assert order.refunded_fen == 1250
    assert await count(mall, AuditEntry, AuditEntry.action == "b2b.offline_refund_confirmed") == 1

    resp = await mall.client.post("/console/b2b/promos", data={"_csrf": csrf, "coupon": "1", "points": "1"})
    assert resp.status == 200 and 'name="coupon" value="1" checked' in await resp.text()
    async with uows() as uow:
        rule = await promos.allowed(uow, tenant)
    assert rule == promos.Allowed(coupon=True, points=True)
    assert await count(mall, AuditEntry, AuditEntry.action == "b2b.promo_rules") == 1
