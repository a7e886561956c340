"""Money never appears or vanishes: Σ refunds ≤ Σ paid per order under any interleaving of
requests, approvals, rejections, withdrawals and settlements (Hypothesis, both backends),
every line refunded in pieces returns exactly what it paid (pure), and two workers asking
for the same units or refunding one line at once, through separate connections, never
hold or refund a unit twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from social_mall.members.service import add_address, resolve_member
from social_mall.orders.service import load_order, place_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment, settle_refund
from social_mall.errors import MallError
from social_mall_after_sale import rules, service
from social_mall_after_sale.errors import AfterSaleRefusedError
from social_mall_after_sale.models import AfterSale, AfterSaleUnits
from storage.models import Refund, Sku

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


# -- pure: a line refunded in pieces, in any order of requests, returns what it paid -----------

@given(lines=st.lists(st.tuples(st.integers(0, 10**7), st.integers(1, 20)), min_size=1, max_size=4),
       data=st.data())
def test_pieces_of_lines_in_any_order_sum_to_what_was_paid(lines, data):
    pieces = [(i, n) for i, (_, qty) in enumerate(lines) for n in _split(qty, data)]
    order = data.draw(st.permutations(pieces))
    done = [0] * len(lines)
    total = 0
    for i, n in order:
        pay, qty = lines[i]
        part = rules.units_refund(pay, qty, done[i], n)
        assert 0 <= part <= pay
        done[i] += n
        total += part
        assert total <= sum(p for p, _ in lines)
    assert total == sum(p for p, _ in lines)


def _split(qty: int, data) -> list[int]:
    out, left = [], qty
    while left:
        n = data.draw(st.integers(1, left))
        out.append(n)
        left -= n
    return out


@given(fens=st.lists(st.integers(1, 10**6), min_size=1, max_size=5), off=st.integers(0, 10**7))
def test_line_pays_spread_the_discount_exactly(fens, off):
    pays = rules.line_pays(fens, off, None)
    assert sum(pays) == sum(fens) - min(off, sum(fens))
    assert all(0 <= p <= f for p, f in zip(pays, fens, strict=True))


# -- on the database ------------------------------------------------------------------------------

async def paid_order(uows, tenant: int, openid: str, items: list[tuple[int, int]]) -> int:
    async with uows() as uow:
        member, _ = await resolve_member(uow, tenant, "mp", openid)
        address = await add_address(uow, tenant, member.id, "王小明", "13912345678", "广东省深圳市南山区科技园1号")
        order = await place_order(uow, tenant, member.id, items, address_id=address.id, now=NOW,
                                  timeout=timedelta(minutes=30))
        await open_payment(uow, order, gateway="sandbox")
        t = await uow.tenants.get(tenant)
        tx = Transaction(f"EV-{uuid.uuid4().hex[:8]}", order.order_no, f"42{uuid.uuid4().int % 10**12}", "SUCCESS",
                         order.total_fen, t.pay_mch_id, t.pay_app_id, openid, "")
        await apply_transaction(uow, tx, tenant=tenant, gateway="sandbox", mchid=t.pay_mch_id, appid=t.pay_app_id,
                                now=NOW)
        await uow.commit()
    return order.id


async def two_skus(uows, tenant: int) -> list[int]:
    async with uows() as uow:
        return list((await uow.session.scalars(select(Sku.id).where(Sku.tenant_id == tenant, Sku.stock >= 50)
                                               .order_by(Sku.id).limit(2))).all())


async def settle_all(uows, tenant: int) -> None:
    async with uows() as uow:
        pending = (await uow.session.scalars(select(Refund.out_refund_no).where(
            Refund.tenant_id == tenant, Refund.status == "pending"))).all()
    for no in pending:
        async with uows() as uow:
            await settle_refund(uow, no, tenant=tenant, status="SUCCESS", now=NOW)
            await service.on_refunded(uow, tenant, no, now=NOW)
            await uow.commit()


async def money(uows, tenant: int, order_id: int) -> tuple[int, int, int]:
    """(paid, Σ refunds asked or made, Σ after-sale refunds)."""
    async with uows() as uow:
        o = await load_order(uow, tenant, order_id)
        asked = await uow.session.scalar(select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == order_id, Refund.status != "failed"))
        ours = await uow.session.scalar(select(func.coalesce(func.sum(AfterSale.refund_fen), 0)).where(
            AfterSale.order_id == order_id, AfterSale.status.in_(["refunding", "refunded"])))
        units = (await uow.session.scalars(select(AfterSaleUnits).where(AfterSaleUnits.order_id == order_id))).all()
        assert all(0 <= u.claimed <= u.qty and u.refunded_qty <= u.claimed for u in units)
    return o.paid_fen, asked, ours


ops = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 1), st.integers(1, 3)),
        st.tuples(st.just("approve"), st.integers(0, 5)),
        st.tuples(st.just("reject"), st.integers(0, 5)),
        st.tuples(st.just("withdraw"), st.integers(0, 5)),
        st.tuples(st.just("settle"),),
    ),
    min_size=1, max_size=12,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
async def test_refunds_never_pass_what_was_paid_under_any_interleaving(uows, demo, steps):
    skus = await two_skus(uows, demo.id)
    openid = f"o_as_prop_{uuid.uuid4().hex[:16]}"
    order_id = await paid_order(uows, demo.id, openid, [(skus[0], 3), (skus[1], 2)])
    async with uows() as uow:
        member = (await load_order(uow, demo.id, order_id)).member_id
        lines = (await load_order(uow, demo.id, order_id)).lines
    opened: list[int] = []
    for step in steps:
        async with uows() as uow:
            try:
                if step[0] == "open":
                    ln = lines[step[1]]
                    v = await service.open_request(uow, demo.id, member, order_id, [(ln.sku_id, step[2])],
                                                   kind="refund", reason_code=1, now=NOW)
                    opened.append(v.id)
                elif step[0] == "approve" and opened:
                    await service.approve(uow, demo.id, opened[step[1] % len(opened)], actor="t", now=NOW)
                elif step[0] == "reject" and opened:
                    await service.reject(uow, demo.id, opened[step[1] % len(opened)], reason="不行不行", actor="t",
                                         now=NOW)
                elif step[0] == "withdraw" and opened:
                    await service.withdraw(uow, demo.id, member, opened[step[1] % len(opened)], now=NOW)
                await uow.commit()
            except MallError:
                await uow.rollback()
        if step[0] == "settle":
            await settle_all(uows, demo.id)
        paid, asked, ours = await money(uows, demo.id, order_id)
        assert asked <= paid and ours == asked
    # ask for and refund whatever is left: the order comes out exactly at what was paid
    async with uows() as uow:
        order = await load_order(uow, demo.id, order_id)
        left = [(e.sku_id, e.available) for e in await service.eligible_lines(uow, demo.id, order) if e.available]
    if left and order.status == "paid":
        async with uows() as uow:
            v = await service.open_request(uow, demo.id, member, order_id, left, kind="refund", reason_code=1, now=NOW)
            await uow.commit()
        for rid in [*opened, v.id]:
            async with uows() as uow:
                try:
                    await service.approve(uow, demo.id, rid, actor="t", now=NOW)
                    await uow.commit()
                except MallError:
                    await uow.rollback()
        await settle_all(uows, demo.id)
        paid, asked, ours = await money(uows, demo.id, order_id)
        assert asked == paid == ours
        async with uows() as uow:
            assert (await load_order(uow, demo.id, order_id)).status == "refunded"


async def test_two_workers_asking_for_the_same_units_hold_them_once(uows, other_worker, demo):
    (sku, _) = await two_skus(uows, demo.id)
    order_id = await paid_order(uows, demo.id, "o_as_race_claim_000000001", [(sku, 3)])
    async with uows() as uow:
        member = (await load_order(uow, demo.id, order_id)).member_id

    async def ask(factory) -> str:
        async with factory() as uow:
            try:
                await service.open_request(uow, demo.id, member, order_id, [(sku, 2)], kind="refund",
                                           reason_code=1, now=NOW)
            except AfterSaleRefusedError as exc:
                await uow.rollback()
                return exc.reason
            await uow.commit()
            return "ok"

    results = sorted(await asyncio.gather(ask(uows), ask(other_worker)))
    assert results == ["ok", "qty"]
    async with uows() as uow:
        units = await uow.session.scalar(select(AfterSaleUnits).where(AfterSaleUnits.order_id == order_id))
        assert (units.claimed, units.qty) == (2, 3)
        assert await uow.session.scalar(select(func.count()).select_from(AfterSale)
                                        .where(AfterSale.order_id == order_id)) == 1


async def test_two_workers_refunding_one_line_at_once_each_take_their_own_units(uows, other_worker, demo):
    (sku, _) = await two_skus(uows, demo.id)
    order_id = await paid_order(uows, demo.id, "o_as_race_refund_00000001", [(sku, 3)])
    async with uows() as uow:
        order = await load_order(uow, demo.id, order_id)
        ids = []
        for _ in range(2):
            ids.append((await service.open_request(uow, demo.id, order.member_id, order_id, [(sku, 1)],
                                                   kind="refund", reason_code=1, now=NOW)).id)
        await uow.commit()

    async def approve(factory, rid: int) -> None:
        async with factory() as uow:
            await service.approve(uow, demo.id, rid, actor="t", now=NOW)
            await uow.commit()

    await asyncio.gather(approve(uows, ids[0]), approve(other_worker, ids[1]))
    unit = order.lines[0].line_fen // 3
    paid, asked, ours = await money(uows, demo.id, order_id)
    assert asked == ours == 2 * unit
    async with uows() as uow:
        nos = sorted((await uow.session.scalars(select(Refund.out_refund_no).where(Refund.order_id == order_id))).all())
        assert len(set(nos)) == 2          # a new out_refund_no per partial refund
        units = await uow.session.scalar(select(AfterSaleUnits).where(AfterSaleUnits.order_id == order_id))
        assert (units.refunded_qty, units.refunded_fen) == (2, 2 * unit)
