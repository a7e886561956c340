"""Hypothesis against the real databases (SQLite and PostgreSQL):

* after any sequence of earnings, refunds, unfreezes, withdrawals (requested, approved,
  rejected, paid, failed, paid twice) and adjustments, the stored balance equals the
  ledger and equals commissions − reversals − withdrawals (+ returns and adjustments),
  which equals an independent model of the same moves;
* concurrent withdrawal requests never overdraw the available balance.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from social_mall.referral import service
from social_mall.referral.errors import ReferralError
from social_mall.referral.rules import ProgramSettings
from tests.fakes.referral_world import NOW, bind, distributor, fresh, member, paid_order, reconciled, sku
from tests.fakes.referral_world import refunded as refund_order

ops = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 3)),
        st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 100)),
        st.tuples(st.just("unfreeze"), st.integers(0, 5)),
        st.tuples(st.just("withdraw"), st.integers(1, 3000)),
        st.tuples(st.just("decide"), st.integers(0, 5), st.sampled_from(["approve", "reject"])),
        st.tuples(st.just("payout"), st.integers(0, 5), st.sampled_from(["SUCCESS", "FAIL"])),
        st.tuples(st.just("adjust"), st.integers(-500, 2000)),
    ),
    min_size=1, max_size=10,
)
DB = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@DB
@given(steps=ops)
async def test_the_ledger_always_balances(uows, demo, steps):
    async with uows() as uow:
        await service.save_program(uow, demo.id, ProgramSettings(freeze_days=1, min_withdraw_fen=1,
                                                                 daily_limit_fen=10**8),
                                   actor="test", now=NOW)
        await uow.commit()
    d = await distributor(uows, demo)
    buyer = await member(uows, demo)
    await bind(uows, demo, buyer, d.code)
    s = await sku(uows, demo, price_fen=1999)
    orders: list[tuple[int, int]] = []      # (order id, paid)
    refunded: dict[int, int] = {}
    withdrawals: list = []
    model = 0                                # what the balance must be, from the services' answers
    for n, step in enumerate(steps):
        kind = step[0]
        async with uows() as uow:
            try:
                if kind == "earn":
                    order = await paid_order(uows, demo, buyer, [(s, step[1])])
                    made = await service.record_commissions(uow, demo.id, order.id, now=NOW)
                    model += sum(c.amount_fen for c in made)
                    orders.append((order.id, order.total_fen))
                elif kind == "refund" and orders:
                    oid, paid = orders[step[1] % len(orders)]
                    left = paid - refunded.get(oid, 0)
                    amount = max(1, left * step[2] // 100) if left else 0
                    if amount:
                        refunded[oid] = refunded.get(oid, 0) + amount
                        await refund_order(uows, demo, oid, amount)
                        model -= await service.reverse_for_refund(uow, demo.id, oid, now=NOW)
                elif kind == "unfreeze" and orders:
                    oid, _ = orders[step[1] % len(orders)]
                    await service.schedule_unfreeze(uow, demo.id, oid, completed_at=NOW)
                    await uow.commit()
                    await service.unfreeze_due(uows, now=NOW + timedelta(days=2))
                elif kind == "withdraw":
                    w = await service.request_withdrawal(uow, demo.id, d.member_id, step[1], now=NOW)
                    withdrawals.append(w)
                    model -= w.amount_fen
                elif kind == "decide" and withdrawals:
                    w = withdrawals[step[1] % len(withdrawals)]
                    before = (await service.get_withdrawal(uow, demo.id, w.id)).status
                    if step[2] == "approve":
                        await service.approve_withdrawal(uow, demo.id, w.id, actor="t", now=NOW)
                    else:
                        await service.reject_withdrawal(uow, demo.id, w.id, actor="t", now=NOW)
                        model += w.amount_fen if before == "requested" else 0
                elif kind == "payout" and withdrawals:
                    w = withdrawals[step[1] % len(withdrawals)]
                    for _ in range(2):                          # every result arrives twice
                        moved = await service.apply_payout(uow, w.out_bill_no, status=step[2], now=NOW)
                        model += w.amount_fen if moved and step[2] == "FAIL" else 0
                elif kind == "adjust" and step[1]:
                    if await service.adjust(uow, demo.id, d.id, step[1], reason="t", actor="t", ref=f"{d.id}:{n}",
                                            now=NOW):
                        model += step[1]
                await uow.commit()
            except ReferralError:
                await uow.rollback()            # a refusal (e.g. over balance, illegal move) changes nothing
        r = await reconciled(uows, demo, d.id)
        assert r.ok, r
        stored = await fresh(uows, demo, d.member_id)
        assert stored.frozen_fen + stored.available_fen == model
        k = r.by_kind
        assert (k.get("commission", 0) + k.get("reversal", 0) + k.get("withdrawal", 0)
                + k.get("withdrawal_return", 0) + k.get("adjustment", 0)) == model
        assert k.get("commission", 0) >= 0 >= k.get("reversal", 0) and k.get("withdrawal", 0) <= 0


@DB
@given(balance=st.integers(0, 5000), amounts=st.lists(st.integers(1, 3000), min_size=2, max_size=8))
async def test_concurrent_withdrawals_never_overdraw(uows, demo, balance, amounts):
    async with uows() as uow:
        await service.save_program(uow, demo.id, ProgramSettings(min_withdraw_fen=1, daily_limit_fen=10**8),
                                   actor="test", now=NOW)
        await uow.commit()
    d = await distributor(uows, demo)
    if balance:
        async with uows() as uow:
            await service.adjust(uow, demo.id, d.id, balance, reason="seed", actor="t", ref=f"seed{d.id}", now=NOW)
            await uow.commit()

    async def ask(amount: int) -> int:
        async with uows() as uow:
            try:
                w = await service.request_withdrawal(uow, demo.id, d.member_id, amount, now=NOW)
            except ReferralError:
                await uow.rollback()
                return 0
            await uow.commit()
            return w.amount_fen

    granted = await asyncio.gather(*(ask(a) for a in amounts))
    stored = await fresh(uows, demo, d.member_id)
    assert sum(granted) <= balance
    assert stored.available_fen == balance - sum(granted) >= 0
    assert all(g == 0 or g == a for g, a in zip(granted, amounts))
    # whatever was refused really could not be paid from what was left at the end
    assert all(a > stored.available_fen for g, a in zip(granted, amounts) if g == 0)
    assert (await reconciled(uows, demo, d.id)).ok


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(100, 3000), amounts=st.lists(st.integers(1, 2000), min_size=2, max_size=6))
async def test_concurrent_withdrawals_respect_the_daily_limit(uows, demo, limit, amounts):
    async with uows() as uow:
        await service.save_program(uow, demo.id, ProgramSettings(min_withdraw_fen=1, daily_limit_fen=limit),
                                   actor="test", now=NOW)
        await uow.commit()
    d = await distributor(uows, demo)
    async with uows() as uow:
        await service.adjust(uow, demo.id, d.id, 10**6, reason="seed", actor="t", ref=f"seed{d.id}", now=NOW)
        await uow.commit()

    async def ask(amount: int) -> int:
        async with uows() as uow:
            try:
                w = await service.request_withdrawal(uow, demo.id, d.member_id, amount, now=NOW)
            except ReferralError:
                await uow.rollback()
                return 0
            await uow.commit()
            return w.amount_fen

    granted = await asyncio.gather(*(ask(a) for a in amounts))
    assert sum(granted) <= limit
    assert (await fresh(uows, demo, d.member_id)).available_fen == 10**6 - sum(granted)
    assert (await reconciled(uows, demo, d.id)).ok
