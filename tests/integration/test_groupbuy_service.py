"""Group-buy services on real databases (SQLite and PostgreSQL): seats under contention,
payment confirmation, release of unpaid seats, expiry, simulated completion, refunds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from social_mall.groupbuy import jobs, service
from social_mall.groupbuy.errors import AlreadyInTeamError, TeamFullError, TeamLimitError
from social_mall.orders.service import cancel_order, load_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import apply_transaction, open_payment, settle_refund
from storage.groupbuy_models import GroupbuySeat
from storage.groupbuy_repos import GroupbuyRepo
from storage.models import OutboxEvent, Refund
from tests.fakes.groupbuy_kit import T0, TIMEOUT, make_campaign
from tests.fakes.groupbuy_kit import make_members as _members
from tests.fakes.groupbuy_kit import open_team as _open


async def _join(uows, tenant_id, team_id, sku_id, member, *, now=T0):
    async with uows() as uow:
        r = await service.join_team(uow, tenant_id, member[0], team_id, sku_id, 1, address_id=member[1],
                                    now=now, timeout=TIMEOUT)
        await uow.commit()
    return r


async def _pay(uows, tenant, order_id, *, now=T0):
    """Apply a verified SUCCESS notify, then what the order.paid subscriber does."""
    await _paid_but_not_delivered(uows, tenant, order_id, now=now)
    async with uows() as uow:
        team = await service.on_order_paid(uow, tenant.id, order_id, now=now)
        await uow.commit()
    return team


@pytest.fixture
async def campaign(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=3)
        await uow.commit()
    return c


async def test_last_seat_goes_to_exactly_one_of_200_concurrent_joiners_on_two_workers(uows, demo, campaign,
                                                                                    other_worker):
    leader, second, *crowd = await _members(uows, demo.id, 202)
    team = (await _open(uows, demo.id, campaign, leader)).team
    sku = campaign.prices[0].sku_id
    await _join(uows, demo.id, team.id, sku, second)       # one seat left
    workers = [uows, other_worker]
    results = await asyncio.gather(
        *(_join(workers[i % 2], demo.id, team.id, sku, m) for i, m in enumerate(crowd)),
        return_exceptions=True)
    winners = [r for r in results if isinstance(r, service.JoinResult)]
    full = [r for r in results if isinstance(r, TeamFullError)]
    assert len(winners) == 1 and len(full) == 199, [type(r) for r in results if not isinstance(r, (service.JoinResult, TeamFullError))][:3]
    async with uows() as uow:
        t = await service.load_team(uow, demo.id, team.id)
        seats = await uow.session.scalar(select(func.count()).select_from(GroupbuySeat)
                                         .where(GroupbuySeat.team_id == team.id))
        assert await GroupbuyRepo(uow.session).overfilled() == 0
    assert (t.held, seats) == (3, 3)


async def test_a_member_cannot_take_two_seats_in_one_team(uows, demo, campaign):
    leader, m = await _members(uows, demo.id, 2)
    team = (await _open(uows, demo.id, campaign, leader)).team
    await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, m)
    with pytest.raises(AlreadyInTeamError):
        await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, m)
    with pytest.raises(AlreadyInTeamError):
        await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, leader)
    async with uows() as uow:
        assert (await service.load_team(uow, demo.id, team.id)).held == 2


async def test_team_limit_per_member(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, title="芒果干", size=2, max_teams=1)
        await uow.commit()
    a, = await _members(uows, demo.id, 1, prefix="o_lim_")
    await _open(uows, demo.id, c, a)
    with pytest.raises(TeamLimitError):
        await _open(uows, demo.id, c, a)


async def test_group_price_and_leader_discount_go_on_the_order(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, title="丹东草莓", size=2, leader_discount_fen=500, group_fen=6600)
        await uow.commit()
    leader, m = await _members(uows, demo.id, 2)
    r = await _open(uows, demo.id, c, leader)
    assert r.order.lines[0].price_fen == 6100
    j = await _join(uows, demo.id, r.team.id, c.prices[0].sku_id, m)
    assert j.order.lines[0].price_fen == 6600
    async with uows() as uow:
        order = await uow.orders.get(demo.id, j.order.id)
    assert order.source == f"groupbuy:team:{r.team.id}"


async def test_paid_seats_complete_the_team_once(uows, demo, campaign):
    members = await _members(uows, demo.id, 3)
    r = await _open(uows, demo.id, campaign, members[0])
    orders = [r.order.id] + [(await _join(uows, demo.id, r.team.id, campaign.prices[0].sku_id, m)).order.id
                             for m in members[1:]]
    for oid in orders[:2]:
        assert (await _pay(uows, demo, oid)).status == "forming"
    team = await _pay(uows, demo, orders[2])
    assert (team.status, team.paid) == ("succeeded", 3)
    async with uows() as uow:   # a repeated order.paid delivery changes nothing
        assert (await service.on_order_paid(uow, demo.id, orders[2], now=T0)).paid == 3
        topics = (await uow.session.scalars(select(OutboxEvent.topic))).all()
    assert topics.count("groupbuy.team_succeeded") == 1
    assert topics.count("groupbuy.seat_confirmed") == 3


async def test_unpaid_seat_is_released_when_its_order_is_cancelled(uows, demo, campaign):
    a, b, c = await _members(uows, demo.id, 3)
    team = (await _open(uows, demo.id, campaign, a)).team
    j = await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, b)
    await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, c)
    with pytest.raises(TeamFullError):
        d, = await _members(uows, demo.id, 1, prefix="o_late_")
        await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, d)
    async with uows() as uow:
        await cancel_order(uow, demo.id, j.order.id, reason="timeout", now=T0)
        assert await service.on_order_cancelled(uow, demo.id, j.order.id, now=T0)
        assert not await service.on_order_cancelled(uow, demo.id, j.order.id, now=T0)
        await uow.commit()
    async with uows() as uow:
        assert (await service.load_team(uow, demo.id, team.id)).held == 2
    await _join(uows, demo.id, team.id, campaign.prices[0].sku_id, d)     # the freed seat


async def test_expired_team_fails_and_two_refund_sweepers_request_one_refund_per_paid_order(uows, demo, campaign):
    a, b, c = await _members(uows, demo.id, 3)
    r = await _open(uows, demo.id, campaign, a)
    jb = await _join(uows, demo.id, r.team.id, campaign.prices[0].sku_id, b)
    jc = await _join(uows, demo.id, r.team.id, campaign.prices[0].sku_id, c)
    await _pay(uows, demo, r.order.id)
    await _pay(uows, demo, jb.order.id)            # c never pays
    later = T0 + timedelta(hours=25)
    assert await jobs.expire_teams(uows, later) == {"failed": 1, "simulated": 0, "succeeded": 0}
    assert await jobs.expire_teams(uows, later) == {"failed": 0, "simulated": 0, "succeeded": 0}
    async with uows() as uow:
        assert (await load_order(uow, demo.id, jc.order.id)).status == "cancelled"
        assert await service.on_order_cancelled(uow, demo.id, jc.order.id, now=later)
        await uow.commit()
    counts = await asyncio.gather(jobs.refund_failed_teams(uows, later), jobs.refund_failed_teams(uows, later))
    assert sorted(counts) == [0, 2]
    assert await jobs.refund_failed_teams(uows, later) == 0
    async with uows() as uow:
        refunds = (await uow.session.scalars(select(Refund).order_by(Refund.order_id))).all()
        assert [x.order_id for x in refunds] == sorted([r.order.id, jb.order.id])
        for x in refunds:   # the gateway answers; the order.refunded subscriber follows
            await settle_refund(uow, x.out_refund_no, tenant=demo.id, status="SUCCESS", now=later)
        await uow.commit()
    async with uows() as uow:
        for oid in (r.order.id, jb.order.id):
            await service.on_order_refunded(uow, demo.id, oid, full=True)
        await uow.commit()
    async with uows() as uow:
        assert (await service.load_team(uow, demo.id, r.team.id)).status == "refunded"


async def test_simulated_completion_fills_missing_seats_on_expiry(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, title="海苔脆", size=5, simulated=True)
        await uow.commit()
    a, b = await _members(uows, demo.id, 2)
    r = await _open(uows, demo.id, c, a)
    await _join(uows, demo.id, r.team.id, c.prices[0].sku_id, b)
    await _pay(uows, demo, r.order.id)
    counts = await jobs.expire_teams(uows, T0 + timedelta(hours=24))
    assert counts == {"failed": 0, "simulated": 1, "succeeded": 0}
    async with uows() as uow:
        t = await service.load_team(uow, demo.id, r.team.id)
    assert (t.status, t.paid, t.virtual) == ("succeeded", 1, 4)


async def test_leader_extends_within_the_rules_and_closes(uows, demo, campaign):
    from social_mall.groupbuy.errors import ExtendRefusedError, NotLeaderError

    a, b = await _members(uows, demo.id, 2)
    r = await _open(uows, demo.id, campaign, a)
    async with uows() as uow:
        t = await service.extend_team(uow, demo.id, a[0], r.team.id, 10, now=T0)
        await uow.commit()
    assert t.expires_at == r.team.expires_at + timedelta(hours=10)
    async with uows() as uow:
        with pytest.raises(ExtendRefusedError):
            await service.extend_team(uow, demo.id, a[0], r.team.id, 20, now=T0)   # 24 + 30 > 24 + 24
        with pytest.raises(NotLeaderError):
            await service.close_team(uow, demo.id, b[0], r.team.id, now=T0)
        assert await service.close_team(uow, demo.id, a[0], r.team.id, now=T0) == "failed"
        await uow.commit()
    async with uows() as uow:
        assert (await load_order(uow, demo.id, r.order.id)).status == "cancelled"


async def _paid_but_not_delivered(uows, tenant, order_id, *, now=T0):
    """A verified notify applied; its order.paid still waits in the outbox."""
    async with uows() as uow:
        order = await load_order(uow, tenant.id, order_id)
        await open_payment(uow, order, gateway="sandbox")
        await apply_transaction(uow, Transaction(
            event_id=f"EV{order_id}", out_trade_no=order.order_no, transaction_id=f"42{order_id}",
            trade_state="SUCCESS", amount_fen=order.total_fen, mchid=tenant.pay_mch_id, appid=tenant.pay_app_id,
            payer="o", success_time=""), tenant=tenant.id, gateway="sandbox", mchid=tenant.pay_mch_id, appid=tenant.pay_app_id, now=now)
        await uow.commit()


@pytest.mark.parametrize("simulated", [False, True])
async def test_payments_still_in_the_outbox_count_when_the_team_expires(uows, demo, simulated):
    """Found by the state machine: the expiry sweeper cancelled the held seats' orders and
    tripped over one already paid (IllegalTransitionError), or failed a team whose members
    had all paid in time, because it only counted seats whose order.paid had been delivered."""
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, title="海苔脆" if simulated else "丹东草莓", size=3 if simulated else 2,
                                simulated=simulated)
        await uow.commit()
    a, b = await _members(uows, demo.id, 2)
    r = await _open(uows, demo.id, c, a)
    jb = await _join(uows, demo.id, r.team.id, c.prices[0].sku_id, b)
    await _paid_but_not_delivered(uows, demo, r.order.id)
    if not simulated:
        await _paid_but_not_delivered(uows, demo, jb.order.id)
    later = T0 + timedelta(hours=25)
    expected = {"failed": 0, "simulated": int(simulated), "succeeded": int(not simulated)}
    assert await jobs.expire_teams(uows, later) == expected
    async with uows() as uow:       # the late deliveries change nothing
        for oid in (r.order.id,) if simulated else (r.order.id, jb.order.id):
            await service.on_order_paid(uow, demo.id, oid, now=later)
        await uow.commit()
    async with uows() as uow:
        t = await service.load_team(uow, demo.id, r.team.id)
        topics = (await uow.session.scalars(select(OutboxEvent.topic))).all()
        b_order = await load_order(uow, demo.id, jb.order.id)
    assert (t.status, t.paid, t.virtual) == ("succeeded", 2 if not simulated else 1, 2 if simulated else 0)
    assert topics.count("groupbuy.team_succeeded") == 1 and "groupbuy.team_failed" not in topics
    assert b_order.status == ("cancelled" if simulated else "paid")


async def test_a_refund_the_gateway_rejects_is_requested_again_and_the_team_then_refunds(uows, demo, campaign):
    """A failed refund leaves the seat refunding and the order back to paid (nothing is in
    flight any more: issue 17 item 16) with its money still refundable; the merchant's second
    request (console: 退款) settles it."""
    from social_mall.payments.service import request_refund

    (a,) = await _members(uows, demo.id, 1, prefix="o_gb_rf_")
    r = await _open(uows, demo.id, campaign, a)
    await _pay(uows, demo, r.order.id)
    later = T0 + timedelta(hours=25)
    assert (await jobs.expire_teams(uows, later))["failed"] == 1
    assert await jobs.refund_failed_teams(uows, later) == 1
    async with uows() as uow:
        first = await uow.session.scalar(select(Refund).where(Refund.order_id == r.order.id))
        await settle_refund(uow, first.out_refund_no, tenant=demo.id, status="ABNORMAL", now=later)
        await uow.commit()
    assert await jobs.refund_failed_teams(uows, later) == 0     # the sweeper never asks twice
    async with uows() as uow:
        order = await load_order(uow, demo.id, r.order.id)
        assert (order.status, order.refunded_fen) == ("paid", 0)
        assert (await service.load_team(uow, demo.id, r.team.id)).status == "refunding"
        again = await request_refund(uow, demo.id, r.order.id, amount_fen=None, reason="重新退款", actor="admin:1",
                                     now=later)
        await uow.commit()
    assert again.amount_fen == order.paid_fen and again.out_refund_no != first.out_refund_no
    async with uows() as uow:
        await settle_refund(uow, again.out_refund_no, tenant=demo.id, status="SUCCESS", now=later)
        await service.on_order_refunded(uow, demo.id, r.order.id, full=True)
        await uow.commit()
    async with uows() as uow:
        order = await load_order(uow, demo.id, r.order.id)
        assert (order.status, order.refunded_fen) == ("refunded", order.paid_fen)
        assert (await service.load_team(uow, demo.id, r.team.id)).status == "refunded"


async def test_a_leader_reward_only_for_a_team_every_seat_of_which_paid(uows, demo):
    async with uows() as uow:
        sim = await make_campaign(uow, demo.id, title="海苔脆", size=3, simulated=True, leader_reward_fen=500)
        real = await make_campaign(uow, demo.id, title="海苔脆", size=2, leader_reward_bp=1000)
        none = await make_campaign(uow, demo.id, title="海苔脆", size=2)
        await uow.commit()
    a, b, c, d, e = await _members(uows, demo.id, 5)
    filled = await _open(uows, demo.id, sim, a)
    await _pay(uows, demo, filled.order.id)
    paid = await _open(uows, demo.id, real, b)
    joined = await _join(uows, demo.id, paid.team.id, real.prices[0].sku_id, c)
    plain = await _open(uows, demo.id, none, d)
    plain_join = await _join(uows, demo.id, plain.team.id, none.prices[0].sku_id, e)
    for order_id in (paid.order.id, joined.order.id, plain.order.id, plain_join.order.id):
        await _pay(uows, demo, order_id)
    await jobs.expire_teams(uows, T0 + timedelta(hours=24))     # the simulated team completes virtually
    async with uows() as uow:
        assert (await service.load_team(uow, demo.id, filled.team.id)).virtual == 2
        assert await service.leader_reward(uow, demo.id, filled.team.id) is None      # 模拟成团: nothing
        assert await service.leader_reward(uow, demo.id, plain.team.id) is None       # no reward set
        r = await service.leader_reward(uow, demo.id, paid.team.id)
    assert (r.leader_member_id, r.rate_bp, r.fixed_fen) == (b[0], 1000, 0)
    assert r.order_ids == (paid.order.id, joined.order.id)                       # the leader's first
