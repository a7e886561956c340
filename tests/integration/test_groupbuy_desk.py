"""The group-buy join desk on real databases (SQLite and PostgreSQL): joins batched into
one transaction get the same answers `join_team` gives one at a time, a crowd on two
workers never over-fills a team, and a batch that can't be written whole falls back to
one join at a time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from social_mall.errors import NotFoundError, OrderTooLargeError, OutOfStockError
from social_mall.groupbuy import desk, service
from social_mall.groupbuy.errors import (
    AlreadyInTeamError,
    NoAddressError,
    QtyLimitError,
    TeamClosedError,
    TeamFullError,
    TeamLimitError,
)
from social_mall.members.service import resolve_member
from social_mall.orders.service import load_order
from storage.groupbuy_models import GroupbuySeat
from storage.groupbuy_repos import GroupbuyRepo
from storage.models import Order, OutboxEvent, Sku
from tests.fakes.groupbuy_kit import T0, TIMEOUT, make_campaign, make_members, open_team


async def _members(uows, tenant_id, n):
    return await make_members(uows, tenant_id, n, prefix="o_desk_")


async def _open(uows, tenant_id, campaign, member, *, now=T0):
    return (await open_team(uows, tenant_id, campaign, member, now=now)).team


def _req(tenant_id, team_id, sku_id, member, *, qty=1, address=None, now=T0):
    return desk.JoinRequest(tenant_id, member[0], team_id, sku_id, qty, address, now, TIMEOUT)


async def _take(uows, req):
    async with uows() as uow:
        return await desk.take_seat(uow, req)


async def test_one_batch_answers_each_join_as_join_team_would_and_writes_only_the_seated(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=3)
        limited = await make_campaign(uow, demo.id, title="阳光玫瑰葡萄", size=5, max_teams=1)
        quick = await make_campaign(uow, demo.id, size=3, hours=1)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead1, lead2, lead3, lead4, a, b, d, e, f = await _members(uows, demo.id, 9)
    t1 = await _open(uows, demo.id, c, lead1)
    t2 = await _open(uows, demo.id, c, lead2)
    short = await _open(uows, demo.id, quick, lead3, now=T0 - timedelta(hours=2))  # lifetime 1 h: over at T0
    t4 = (await _open(uows, demo.id, limited, lead4))
    async with uows() as uow:   # b already sits in a team of the limited campaign (limit 1)
        await service.join_team(uow, demo.id, b[0], t4.id, limited.prices[0].sku_id, 1, address_id=b[1],
                                now=T0, timeout=TIMEOUT)
        nobody, _ = await resolve_member(uow, demo.id, "mp", "o_desk_no_address")
        await uow.commit()
    t5 = await _open(uows, demo.id, limited, lead1)
    reqs = [
        _req(demo.id, t1.id, sku, a),                       # seated
        _req(demo.id, t1.id, sku, a),                       # the same member again, same batch
        _req(demo.id, t1.id, sku, lead1),                   # the leader
        _req(demo.id, t1.id, sku, d),                       # seated: the team is now full (3)
        _req(demo.id, t1.id, sku, e),                       # full
        _req(demo.id, 999_999, sku, e),                     # no such team
        _req(demo.id, short.id, sku, e),                    # expired
        _req(demo.id, t2.id, sku, (nobody.id, 0)),          # no saved address
        _req(demo.id, t2.id, sku, e, qty=6),                # over the campaign's max_qty (5)
        _req(demo.id, t2.id, sku, e, address=b[1]),         # someone else's address
        _req(demo.id, t5.id, limited.prices[0].sku_id, b),  # already in a team of this campaign
        _req(demo.id, t2.id, sku, e),                       # seated
    ]
    async with uows() as uow:
        stock_before = await uow.catalog.stock(demo.id, sku)
        orders_before = await uow.session.scalar(select(func.count()).select_from(Order))
        out = await desk.join_many(uow, demo.id, reqs)
        await uow.commit()
    kinds = [type(r).__name__ for r in out]
    assert kinds == ["JoinResult", "AlreadyInTeamError", "AlreadyInTeamError", "JoinResult", "TeamFullError",
                     "NotFoundError", "TeamClosedError", "NoAddressError", "QtyLimitError", "NotFoundError",
                     "TeamLimitError", "JoinResult"], kinds
    seated = [r for r in out if isinstance(r, service.JoinResult)]
    assert [r.team.held for r in seated] == [2, 3, 2]
    assert all(r.order.total_fen == r.order.goods_fen + r.order.shipping_fen for r in seated)
    assert {r.order.lines[0].price_fen for r in seated} == {c.prices[0].group_price_fen}
    assert all(r.order.expires_at == T0 + TIMEOUT and r.seat.order_id == r.order.id for r in seated)
    async with uows() as uow:
        assert (await service.load_team(uow, demo.id, t1.id)).held == 3
        assert (await service.load_team(uow, demo.id, t2.id)).held == 2
        assert await uow.catalog.stock(demo.id, sku) == stock_before - 3
        assert await uow.session.scalar(select(func.count()).select_from(Order)) == orders_before + 3
        placed = await uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.topic == "order.placed", OutboxEvent.payload["order_id"].as_integer().in_(
                [r.order.id for r in seated])))
        assert placed == 3
        assert await GroupbuyRepo(uow.session).overfilled() == 0
    # the same refusals as join_team gives one at a time (against the state after the batch)
    for err, req in [(AlreadyInTeamError, reqs[11]), (TeamFullError, reqs[4]), (TeamClosedError, reqs[6]),
                     (NoAddressError, reqs[7]), (QtyLimitError, replace(reqs[8], member_id=f[0])),
                     (NotFoundError, replace(reqs[9], member_id=f[0])),
                     (TeamLimitError, reqs[10])]:
        async with uows() as uow:
            try:
                await desk.join_alone(uow, req)
            except err:
                pass
            else:
                raise AssertionError(f"join_team took {req}")


async def test_a_crowd_on_two_workers_fills_every_team_exactly_in_batches(uows, demo, other_worker):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5)
        await uow.commit()
    sku = c.prices[0].sku_id
    people = await _members(uows, demo.id, 124)
    leaders, crowd = people[:4], people[4:]
    teams = [await _open(uows, demo.id, c, m) for m in leaders]    # 4 teams x 4 free seats = 16
    workers = [uows, other_worker]
    results = await asyncio.gather(
        *(_take(workers[i % 2], _req(demo.id, teams[i % 4].id, sku, m)) for i, m in enumerate(crowd)),
        return_exceptions=True)
    async with workers[0]() as u0, workers[1]() as u1:
        batches = [u.shared[desk.DESK].batches for u in (u0, u1)]
    odd = [r for r in results if not isinstance(r, (service.JoinResult, TeamFullError))]
    assert not odd, odd[:3]
    seated = [r for r in results if isinstance(r, service.JoinResult)]
    assert len(seated) == 16
    assert all(0 < n < 60 for n in batches), batches   # 60 joins per worker went in fewer transactions
    async with uows() as uow:
        for t in teams:
            view = await service.load_team(uow, demo.id, t.id)
            seats = await uow.session.scalar(select(func.count()).select_from(GroupbuySeat)
                                             .where(GroupbuySeat.team_id == t.id))
            assert (view.held, seats) == (5, 5)
        assert await GroupbuyRepo(uow.session).overfilled() == 0
    assert len({r.order.order_no for r in seated}) == 16


async def test_stock_short_for_the_batch_falls_back_to_one_join_at_a_time(uows, demo):
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=6)
        sku = c.prices[0].sku_id
        await uow.commit()
    leader, *crowd = await _members(uows, demo.id, 5)
    team = await _open(uows, demo.id, c, leader)
    async with uows() as uow:
        await uow.session.execute(update(Sku).where(Sku.id == sku).values(stock=2))
        await uow.commit()
    results = await asyncio.gather(*(_take(uows, _req(demo.id, team.id, sku, m)) for m in crowd),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["JoinResult"] * 2 + ["OutOfStockError"] * 2
    assert all(r.left == 0 for r in results if isinstance(r, OutOfStockError))
    async with uows() as uow:
        assert await uow.catalog.stock(demo.id, sku) == 0
        assert (await service.load_team(uow, demo.id, team.id)).held == 3
        assert await uow.session.scalar(select(func.count()).select_from(GroupbuySeat)
                                        .where(GroupbuySeat.team_id == team.id)) == 3


async def test_a_join_over_the_tenants_order_cap_is_refused_in_a_batch_and_alone(uows, demo):
    """The desk checks what place_order checks: a seat whose order would cost more than the
    tenant allows for one order (¥1,000,000 by default) is refused, the others are seated."""
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5)
        await uow.session.execute(update(Sku).where(Sku.id == c.prices[0].sku_id).values(price_fen=50_000_000))
        await uow.commit()
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5, group_fen=40_000_000)   # ¥400,000 a box
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b = await _members(uows, demo.id, 3)
    team = await _open(uows, demo.id, c, lead)
    async with uows() as uow:
        stock_before = await uow.catalog.stock(demo.id, sku)
        orders_before = await uow.session.scalar(select(func.count()).select_from(Order))
        out = await desk.join_many(uow, demo.id, [_req(demo.id, team.id, sku, a, qty=3),    # ¥1.2M
                                                  _req(demo.id, team.id, sku, b, qty=2)])   # ¥800k
        await uow.commit()
    assert [type(r).__name__ for r in out] == ["OrderTooLargeError", "JoinResult"]
    assert (out[0].total_fen, out[0].max_fen) == (120_000_000, 100_000_000)
    async with uows() as uow:
        assert await uow.catalog.stock(demo.id, sku) == stock_before - 2
        assert await uow.session.scalar(select(func.count()).select_from(Order)) == orders_before + 1
        with pytest.raises(OrderTooLargeError):
            await service.join_team(uow, demo.id, a[0], team.id, sku, 3, address_id=a[1], now=T0, timeout=TIMEOUT)


def _row(obj, drop):
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in drop}


async def test_a_batched_join_writes_the_rows_join_team_writes(uows, demo):
    """The desk writes plain rows with prebuilt statements (orders.lots); the order, its
    line, the seat, the team's counters and the order.placed event are what join_team
    writes for the same join, column for column."""
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=5)
        await uow.commit()
    sku = c.prices[0].sku_id
    lead, a, b = await _members(uows, demo.id, 3)
    team = await _open(uows, demo.id, c, lead)
    async with uows() as uow:
        by_desk = (await desk.join_many(uow, demo.id, [_req(demo.id, team.id, sku, a, qty=2)]))[0]
        await uow.commit()
    async with uows() as uow:
        alone = await desk.join_alone(uow, _req(demo.id, team.id, sku, b, qty=2))
        await uow.commit()
    assert isinstance(by_desk, service.JoinResult) and isinstance(alone, service.JoinResult)
    own = {"id", "order_no", "member_id", "order_id", "ship_name", "ship_phone", "ship_address", "idem_key"}
    async with uows() as uow:
        rows = {}
        for name, r in (("desk", by_desk), ("alone", alone)):
            order = await uow.orders.get(demo.id, r.order.id)
            (line,) = await uow.orders.lines(demo.id, r.order.id)
            seat = await uow.session.scalar(select(GroupbuySeat).where(GroupbuySeat.order_id == r.order.id))
            placed = await uow.session.scalar(select(OutboxEvent).where(
                OutboxEvent.topic == "order.placed", OutboxEvent.payload["order_id"].as_integer() == r.order.id))
            rows[name] = (_row(order, own), _row(line, own), _row(seat, own),
                          {k: v for k, v in placed.payload.items() if k not in ("order_id", "order_no", "member_id")},
                          (placed.subscriber, placed.status))
            assert (order.member_id, seat.member_id, placed.payload["member_id"]) == (r.seat.member_id,) * 3
            assert (seat.id, seat.order_id, order.order_no) == (r.seat.id, order.id, r.order.order_no)
        assert rows["desk"] == rows["alone"]
        assert (await service.load_team(uow, demo.id, team.id)).held == 3
    async with uows() as uow:   # what the desk answered is what reading the order back shows
        assert by_desk.order == await load_order(uow, demo.id, by_desk.order.id)
    assert (by_desk.team.held, alone.team.held) == (2, 3)


async def test_a_batch_costs_the_same_statements_whatever_its_size(uows, demo):
    """One statement per table per batch: a batch of 8 joins over 2 teams sends as many
    statements to the database as a batch of 1 (the cost of a join falls with the crowd)."""
    async with uows() as uow:
        c = await make_campaign(uow, demo.id, size=6)
        await uow.commit()
    sku = c.prices[0].sku_id
    people = await _members(uows, demo.id, 13)
    leaders, crowd = people[:3], people[3:]
    t1, t2, t3 = [await _open(uows, demo.id, c, m) for m in leaders]
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    async def batch(reqs):
        seen.clear()
        async with uows() as uow:
            engine = uow.session.bind.sync_engine if hasattr(uow.session.bind, "sync_engine") else uow.session.bind
            event.listen(engine, "before_cursor_execute", count)
            try:
                out = await desk.join_many(uow, demo.id, reqs)
                await uow.commit()
            finally:
                event.remove(engine, "before_cursor_execute", count)
        assert all(isinstance(r, service.JoinResult) for r in out), out
        return list(seen)

    one = await batch([_req(demo.id, t1.id, sku, crowd[0])])
    eight = await batch([_req(demo.id, (t2 if i % 2 else t3).id, sku, m) for i, m in enumerate(crowd[1:9])])
    async with uows() as uow:
        pg = uow.session.bind.dialect.name == "postgresql"
    if not pg:   # SQLite: SQLAlchemy reads RETURNING ids back in order only row by row there
        eight = [s for s in eight if not s.startswith(("INSERT INTO orders", "INSERT INTO groupbuy_seats"))]
        one = [s for s in one if not s.startswith(("INSERT INTO orders", "INSERT INTO groupbuy_seats"))]
    assert len(eight) == len(one), (len(one), len(eight), eight)
    assert sum("INSERT INTO order_lines" in s for s in eight) == 1
    assert sum("UPDATE groupbuy_teams" in s for s in eight) == 1   # both teams' counters at once
    assert sum("INSERT INTO outbox" in s for s in eight) == 1
    if pg:
        assert sum("INSERT INTO orders" in s for s in eight) == 1
        assert sum("INSERT INTO groupbuy_seats" in s for s in eight) == 1
    async with uows() as uow:
        assert [(await service.load_team(uow, demo.id, t.id)).held for t in (t1, t2, t3)] == [2, 5, 5]
