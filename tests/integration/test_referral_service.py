"""Referral services on a real database (SQLite and PostgreSQL): binding policies,
two-level commissions on what was paid, pro-rata reversals, the unfreeze sweeper,
withdrawals with their transition table, and the ledger reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from social_mall.errors import IllegalTransitionError
from social_mall.orders.service import complete_order, ship_order
from social_mall.referral import service
from social_mall.referral.errors import (
    BelowMinimumError,
    DailyLimitError,
    NotDistributorError,
    OverBalanceError,
    WithdrawalStateError,
)
from social_mall.referral.rules import BindingMode, BindVerdict, ProgramSettings
from tests.fakes.referral_world import (
    NOW,
    bind,
    commissions,
    distributor,
    fresh,
    member,
    paid_order,
    refunded,
    reconciled,
    sku,
)


async def configure(uows, tenant, **changes):
    async with uows() as uow:
        current = await service.program(uow, tenant.id)
        values = {**current.__dict__, **changes}
        await service.save_program(uow, tenant.id, ProgramSettings(**values), actor="admin:1", now=NOW)
        await uow.commit()


async def chain(uows, demo):
    """A ← B ← C: C was referred by B, B by A; all three are distributors except C."""
    a = await distributor(uows, demo)
    b = await distributor(uows, demo)
    assert await bind(uows, demo, b.member_id, a.code) == BindVerdict.BIND
    c = await member(uows, demo)
    assert await bind(uows, demo, c, b.code) == BindVerdict.BIND
    return a, b, c


async def test_paid_order_gives_two_levels_of_frozen_commission_once(uows, demo):
    a, b, c = await chain(uows, demo)
    s = await sku(uows, demo, price_fen=1999)
    order = await paid_order(uows, demo, c, [(s, 3)])            # goods 5997 + shipping 800
    made = await commissions(uows, demo, order.id)
    assert [(m.level, m.base_fen, m.amount_fen) for m in made] == [(1, 5997, 599), (2, 5997, 299)]
    assert await commissions(uows, demo, order.id) == ()         # a repeated order.paid
    assert (await fresh(uows, demo, b.member_id)).frozen_fen == 599
    assert (await fresh(uows, demo, a.member_id)).frozen_fen == 299
    assert (await fresh(uows, demo, a.member_id)).available_fen == 0
    for d in (a, b):
        assert (await reconciled(uows, demo, d.id)).ok


async def test_product_and_level_rates_override_the_tenant_default(uows, demo):
    a, b, c = await chain(uows, demo)
    s = await sku(uows, demo, price_fen=1000)
    async with uows() as uow:
        level = await service.add_level(uow, demo.id, "金牌", 2000, 800, actor="admin:1")
        await service.set_distributor_level(uow, demo.id, b.id, level, actor="admin:1")
        await uow.commit()
    order = await paid_order(uows, demo, c, [(s, 1)])
    made = await commissions(uows, demo, order.id)
    assert [(m.level, m.amount_fen) for m in made] == [(1, 200), (2, 50)]   # B's level; A default 5 %
    async with uows() as uow:
        pid = (await uow.catalog.skus_by_ids(demo.id, [s]))[0][1].id
        await service.set_product_rate(uow, demo.id, pid, 333, 111, actor="admin:1")
        await uow.commit()
    order = await paid_order(uows, demo, c, [(s, 1)])
    made = await commissions(uows, demo, order.id)
    assert [(m.level, m.amount_fen) for m in made] == [(1, 33), (2, 11)]    # floor(1000 × 3.33 %)


async def test_no_self_referral_no_cycles_and_first_touch_keeps_the_member(uows, demo):
    a, b, c = await chain(uows, demo)
    assert await bind(uows, demo, a.member_id, a.code) == BindVerdict.SELF
    assert await bind(uows, demo, a.member_id, b.code) == BindVerdict.CYCLE   # B is A's downline
    other = await distributor(uows, demo)
    assert await bind(uows, demo, c, other.code) == BindVerdict.KEEP
    async with uows() as uow:
        assert await service.referrer_of(uow, demo.id, c, NOW) == b.member_id
    assert await bind(uows, demo, c, "nosuchcode") is None


async def test_last_touch_moves_the_member_and_a_lifetime_expires(uows, demo):
    await configure(uows, demo, binding_mode=BindingMode.LAST_TOUCH, lifetime_days=30)
    x, y = await distributor(uows, demo), await distributor(uows, demo)
    m = await member(uows, demo)
    assert await bind(uows, demo, m, x.code) == BindVerdict.BIND
    assert await bind(uows, demo, m, y.code) == BindVerdict.REBIND
    async with uows() as uow:
        assert await service.referrer_of(uow, demo.id, m, NOW) == y.member_id
        assert await service.referrer_of(uow, demo.id, m, NOW + timedelta(days=31)) is None
    await configure(uows, demo, binding_mode=BindingMode.FIRST_TOUCH)
    assert await bind(uows, demo, m, x.code) == BindVerdict.KEEP
    assert await bind(uows, demo, m, x.code, now=NOW + timedelta(days=31)) == BindVerdict.BIND


async def test_refunds_reverse_pro_rata_and_after_unfreezing_go_negative(uows, demo):
    await configure(uows, demo, freeze_days=7)
    a, b, c = await chain(uows, demo)
    s = await sku(uows, demo, price_fen=10_000)
    order = await paid_order(uows, demo, c, [(s, 1)])          # paid 10000 (free shipping)
    await commissions(uows, demo, order.id)
    await refunded(uows, demo, order.id, 3000)                   # refund 30 % of what was paid
    async with uows() as uow:
        assert await service.reverse_for_refund(uow, demo.id, order.id, now=NOW) == 300 + 150
        assert await service.reverse_for_refund(uow, demo.id, order.id, now=NOW) == 0   # same refund again
        await uow.commit()
    assert (await fresh(uows, demo, b.member_id)).frozen_fen == 700
    # complete, then the freeze period passes: what is left unfreezes
    async with uows() as uow:
        await ship_order(uow, demo.id, order.id, tracking_no="SF1", now=NOW)
        await complete_order(uow, demo.id, order.id, now=NOW)
        await service.schedule_unfreeze(uow, demo.id, order.id, completed_at=NOW)
        await uow.commit()
    assert await service.unfreeze_due(uows, now=NOW + timedelta(days=6, hours=23)) == 0
    assert await service.unfreeze_due(uows, now=NOW + timedelta(days=7)) == 2
    assert await service.unfreeze_due(uows, now=NOW + timedelta(days=8)) == 0
    bd = await fresh(uows, demo, b.member_id)
    assert (bd.frozen_fen, bd.available_fen) == (0, 700)
    # B withdraws everything, then the rest of the order is refunded: a negative balance
    async with uows() as uow:
        await service.request_withdrawal(uow, demo.id, b.member_id, 700, now=NOW + timedelta(days=8))
        await uow.commit()
    await refunded(uows, demo, order.id, 7000)
    async with uows() as uow:
        assert await service.reverse_for_refund(uow, demo.id, order.id, now=NOW) == 700 + 350
        await uow.commit()
    bd = await fresh(uows, demo, b.member_id)
    assert (bd.frozen_fen, bd.available_fen) == (0, -700)
    r = await reconciled(uows, demo, b.id)
    assert r.ok and r.by_kind == {"commission": 1000, "reversal": -1000, "unfreeze": 0, "withdrawal": -700}
    async with uows() as uow:
        assert {c.status for c in await service.commissions_for_order(uow, demo.id, order.id)} == {"reversed"}


async def test_withdrawal_refusals_have_their_reasons(uows, demo):
    await configure(uows, demo, min_withdraw_fen=500, daily_limit_fen=2000)
    d = await distributor(uows, demo)
    async with uows() as uow:
        await service.adjust(uow, demo.id, d.id, 5000, reason="活动奖励", actor="admin:1", ref="a1", now=NOW)
        await uow.commit()

    async def ask(member_id, amount):
        async with uows() as uow:
            try:
                return await service.request_withdrawal(uow, demo.id, member_id, amount, now=NOW)
            finally:
                await uow.commit()

    with pytest.raises(BelowMinimumError):
        await ask(d.member_id, 499)
    with pytest.raises(OverBalanceError) as over:
        await ask(d.member_id, 6000)
    assert over.value.available_fen == 5000
    with pytest.raises(NotDistributorError):
        await ask(await member(uows, demo), 1000)
    await ask(d.member_id, 1500)
    with pytest.raises(DailyLimitError) as limit:
        await ask(d.member_id, 600)
    assert (limit.value.used_fen, limit.value.left_fen) == (1500, 500)
    await ask(d.member_id, 500)
    assert (await fresh(uows, demo, d.member_id)).available_fen == 3000   # refusals held nothing
    assert (await reconciled(uows, demo, d.id)).ok


async def test_approve_reject_and_payout_results_apply_once(uows, demo):
    d = await distributor(uows, demo)
    async with uows() as uow:
        await service.adjust(uow, demo.id, d.id, 10_000, reason="期初", actor="admin:1", ref="seed", now=NOW)
        w1 = await service.request_withdrawal(uow, demo.id, d.member_id, 3000, now=NOW)
        w2 = await service.request_withdrawal(uow, demo.id, d.member_id, 2000, now=NOW)
        w3 = await service.request_withdrawal(uow, demo.id, d.member_id, 1000, now=NOW)
        await uow.commit()
    assert (await fresh(uows, demo, d.member_id)).available_fen == 4000
    async with uows() as uow:
        await service.approve_withdrawal(uow, demo.id, w1.id, actor="admin:1", now=NOW)
        await service.approve_withdrawal(uow, demo.id, w1.id, actor="admin:1", now=NOW)   # double click
        await service.reject_withdrawal(uow, demo.id, w2.id, actor="admin:1", now=NOW, reason="信息不符")
        await service.reject_withdrawal(uow, demo.id, w2.id, actor="admin:1", now=NOW)
        await service.approve_withdrawal(uow, demo.id, w3.id, actor="admin:1", now=NOW)
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(WithdrawalStateError):
            await service.approve_withdrawal(uow, demo.id, w2.id, actor="admin:1", now=NOW)
    for _ in range(3):  # the gateway's result arrives three times
        async with uows() as uow:
            await service.apply_payout(uow, w1.out_bill_no, status="SUCCESS", transfer_id="T1", now=NOW)
            await service.apply_payout(uow, w3.out_bill_no, status="FAIL", reason="账户异常", now=NOW)
            await uow.commit()
    async with uows() as uow:
        statuses = {w.id: w.status for w in await service.list_withdrawals(uow, demo.id)}
        assert await service.apply_payout(uow, w1.out_bill_no, status="FAIL", now=NOW) is False
    assert statuses == {w1.id: "paid", w2.id: "rejected", w3.id: "failed"}
    assert (await fresh(uows, demo, d.member_id)).available_fen == 4000 + 2000 + 1000
    r = await reconciled(uows, demo, d.id)
    assert r.ok and r.by_kind == {"adjustment": 10_000, "withdrawal": -6000, "withdrawal_return": 3000}


async def test_applications_wait_for_an_admin_without_auto_approve(uows, demo):
    await configure(uows, demo, auto_approve=False)
    d = await distributor(uows, demo)
    assert d.status == "pending"
    async with uows() as uow:
        with pytest.raises(NotDistributorError):
            await service.summary(uow, demo.id, d.member_id, now=NOW)
        await service.approve_distributor(uow, demo.id, d.id, actor="admin:1", now=NOW)
        await uow.commit()
    assert (await fresh(uows, demo, d.member_id)).status == "approved"
    async with uows() as uow:
        with pytest.raises(IllegalTransitionError):
            await service.reject_distributor(uow, demo.id, d.id, actor="admin:1", now=NOW)
