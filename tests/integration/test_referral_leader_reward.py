"""Leader rewards (团长奖励) in the referral ledger on a real database (SQLite and
PostgreSQL): the leader's record made on the first reward, the parts per order, once
however many deliveries run at once on two workers (separate connections), beside the
orders' own two-level commissions (either booked first), refunds reversing them."""

from __future__ import annotations

import asyncio

from social_mall.referral import service
from social_mall.referral.rules import BindVerdict
from tests.fakes.referral_world import (
    NOW, bind, commissions, distributor, fresh, member, paid_order, reconciled, refunded, sku,
)


async def _reward(factory, demo, leader, orders, **terms):
    async with factory() as uow:
        made = await service.record_leader_reward(uow, demo.id, team_id=7, leader_member_id=leader,
                                                  order_ids=tuple(o.id for o in orders), now=NOW, **terms)
        await uow.commit()
    return made


async def test_concurrent_deliveries_credit_a_team_once(uows, other_worker, demo):
    leader, friend = await member(uows, demo), await member(uows, demo)
    s = await sku(uows, demo, price_fen=5000)
    orders = [await paid_order(uows, demo, leader, [(s, 1)]), await paid_order(uows, demo, friend, [(s, 2)])]
    results = await asyncio.gather(*[_reward(f, demo, leader, orders, fixed_fen=0, rate_bp=1000)
                                     for f in (uows, other_worker, uows, other_worker)])
    assert sorted(sum(c.amount_fen for c in r) for r in results) == [0, 0, 0, 1500]
    d = await fresh(uows, demo, leader)
    assert (d.status, d.frozen_fen, d.available_fen) == ("approved", 1500, 0)   # auto-approve: its record made
    rec = await reconciled(uows, demo, d.id)
    assert rec.ok and rec.by_kind == {"commission": 1500}


async def test_a_reward_and_the_orders_commissions_both_book_in_either_order(uows, demo):
    referrer = await distributor(uows, demo)
    leader, friend = await member(uows, demo), await member(uows, demo)
    assert await bind(uows, demo, friend, referrer.code) == BindVerdict.BIND
    s = await sku(uows, demo, price_fen=5000)
    orders = [await paid_order(uows, demo, leader, [(s, 1)]), await paid_order(uows, demo, friend, [(s, 1)])]
    assert [c.amount_fen for c in await _reward(uows, demo, leader, orders, fixed_fen=301, rate_bp=0)] == [151, 150]
    made = await commissions(uows, demo, orders[1].id)          # order.paid delivered after the success
    assert [(c.level, c.amount_fen) for c in made] == [(1, 500)]
    assert await _reward(uows, demo, leader, orders, fixed_fen=301, rate_bp=0) == ()

    await refunded(uows, demo, orders[1].id, None)   # the friend's order refunded in full
    async with uows() as uow:
        await service.reverse_for_refund(uow, demo.id, orders[1].id, now=NOW)
        await uow.commit()
    lead = await fresh(uows, demo, leader)
    assert lead.frozen_fen == 151
    assert (await fresh(uows, demo, referrer.member_id)).frozen_fen == 0
    for d in (lead.id, referrer.id):
        assert (await reconciled(uows, demo, d)).ok
