"""Helpers for referral tests: members, distributors, paid orders, all through the core
services (no SQL)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import place_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment, request_refund, settle_refund
from social_mall.referral import service
from storage.models import Sku

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)
_n = itertools.count(1)


async def member(uows, tenant, name: str | None = None) -> int:
    async with uows() as uow:
        m, _ = await resolve_member(uow, tenant.id, "mp", name or f"o_ref_member_{next(_n):06d}")
        await uow.commit()
    return m.id


async def distributor(uows, tenant, member_id: int | None = None, now: datetime = NOW):
    member_id = member_id or await member(uows, tenant)
    async with uows() as uow:
        d = await service.apply(uow, tenant.id, member_id, now=now)
        await uow.commit()
    return d


async def bind(uows, tenant, member_id: int, code: str, now: datetime = NOW):
    async with uows() as uow:
        verdict = await service.bind_member(uow, tenant.id, member_id, code, source="qr", now=now)
        await uow.commit()
    return verdict


async def sku(uows, tenant, price_fen: int = 1999, stock: int = 10_000) -> int:
    async with uows() as uow:
        page, _ = await uow.catalog.products(tenant.id, category_id=None, keyword=None, offset=0, limit=1)
        row = Sku(tenant_id=tenant.id, product_id=page[0].id, spec=f"测试{next(_n)}", price_fen=price_fen,
                  stock=stock)
        await uow.catalog.add(row)
        await uow.commit()
        return row.id


async def paid_order(uows, tenant, buyer_id: int, items: list[tuple[int, int]], now: datetime = NOW):
    """Place and pay (a verified sandbox transaction) an order; returns its view."""
    async with uows() as uow:
        address = await add_address(uow, tenant.id, buyer_id, "李四", "13912345678", "北京市朝阳区建国路88号")
        order = await place_order(uow, tenant.id, buyer_id, items, address_id=address.id, now=now,
                                  timeout=TIMEOUT)
        await open_payment(uow, order, gateway="sandbox")
        tx = Transaction(f"EV-{order.order_no}", order.order_no, "4200001", "SUCCESS", order.total_fen,
                         tenant.pay_mch_id, tenant.pay_app_id, "o_payer", "")
        await apply_transaction(uow, tx, tenant=tenant.id, gateway="sandbox", mchid=tenant.pay_mch_id, appid=tenant.pay_app_id,
                                now=now)
        await uow.commit()
    return order


async def refunded(uows, tenant, order_id: int, amount_fen: int | None, now: datetime = NOW) -> None:
    """Refund (part of) a paid order and settle it as the gateway would: the order's
    refunded total moves, and `order.refunded` is written to the outbox."""
    async with uows() as uow:
        r = await request_refund(uow, tenant.id, order_id, amount_fen=amount_fen, reason="测试退款", actor="test",
                                 now=now)
        assert await settle_refund(uow, r.out_refund_no, tenant=tenant.id, status="SUCCESS", now=now)
        await uow.commit()


async def commissions(uows, tenant, order_id: int, now: datetime = NOW):
    async with uows() as uow:
        made = await service.record_commissions(uow, tenant.id, order_id, now=now)
        await uow.commit()
    return made


async def fresh(uows, tenant, member_id: int):
    async with uows() as uow:
        return await service.find_distributor(uow, tenant.id, member_id)


async def reconciled(uows, tenant, distributor_id: int):
    async with uows() as uow:
        return await service.reconcile(uow, tenant.id, distributor_id)
