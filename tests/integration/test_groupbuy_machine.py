"""A Hypothesis state machine over the group-buy service on a real database (SQLite, and
PostgreSQL when configured): members open and join teams, pay (verified notifies through
the payment service, repeated callbacks, payments arriving after the order closed), cancel,
the clock moves, the order / expiry / refund sweepers run (sometimes two at once), the
outbox delivers events late and in any order (and sometimes twice), and the gateway
answers refunds.

After every step:
- no team holds more seats than its size; `held` == its seats that are not released,
  `paid` == its seats ever paid (paid, refunding, refunded), and paid <= held;
- every team status change the service applied is in `rules.TEAM_MOVES`, and the status a
  team shows only moves forward along that table;
- a team never fails while the paid orders of its seats would complete it (a simulated
  campaign's team: while any of them is paid): payment in time is success, whatever the
  outbox's lag;
- no order has more than one refund request and nobody gets back more than they paid.
At the end, with everything delivered and swept, every team is succeeded or refunded;
every paid order of a failed team (and every payment that came after its order closed)
was refunded exactly once, in full; money in == money kept by succeeded teams + money
refunded; stock is conserved.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from social_mall.demo import seed_demo
from social_mall.errors import IllegalTransitionError, MallError
from social_mall.groupbuy import jobs as gb_jobs
from social_mall.groupbuy import desk, rules, service
from social_mall.groupbuy.rules import TeamStatus as T
from social_mall.jobs import cancel_expired_orders
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import cancel_order, load_order
from social_mall.payments.gateway import Transaction
from social_mall.payments.service import PayOutcome, apply_transaction, open_payment, settle_refund
from storage.db import create_engine, session_factory
from storage.groupbuy_models import GroupbuyCampaign, GroupbuySeat, GroupbuyTeam
from storage.groupbuy_repos import GroupbuyRepo
from storage.models import Order, OrderLine, OutboxEvent, Payment, Refund, Sku
from storage.uow import uow_factory
from tests.conftest import DEMO_CREDS, clean_pg
from tests.fakes.groupbuy_kit import T0, TIMEOUT, make_campaign, make_member

R = TypeVar("R")

SUBSCRIBERS = {
    "order.paid": ["gb.paid"],
    "order.cancelled": ["gb.cancelled"],
    "order.refunded": ["gb.refunded"],
    "payment.needs_refund": ["gateway.refund"],
}
PAID_LIKE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED, OrderStatus.REFUND_REQUESTED,
             OrderStatus.REFUNDED)
FORWARD = {s: set() for s in T}      # the transitive closure of TEAM_MOVES


def _closure() -> None:
    for src in T:
        todo = list(rules.TEAM_MOVES[src])
        while todo:
            nxt = todo.pop()
            if nxt not in FORWARD[src]:
                FORWARD[src].add(nxt)
                todo.extend(rules.TEAM_MOVES[nxt])


_closure()



class RefusedBatch(MallError):
    """The batch couldn't be written whole (the desk would retry its joins one by one)."""

class Recorder:
    """Every team status change the repository applied (rowcount 1), with what the team's
    seats had paid at that moment (read in the same transaction)."""

    def __init__(self) -> None:
        self.moves: list[tuple[int, str, str]] = []
        self.failures: list[tuple[int, int, int, bool]] = []   # team, paid orders, size, simulated


RECORDER = Recorder()


def install_recorder(monkeypatch: pytest.MonkeyPatch) -> None:
    move, succeed = GroupbuyRepo.move, GroupbuyRepo.succeed_if_complete

    async def recording_move(self: GroupbuyRepo, tenant: int, team_id: int, src: str, dst: str,
                             **values: object) -> bool:
        done = await move(self, tenant, team_id, src, dst, **values)
        if done:
            RECORDER.moves.append((team_id, str(src), str(dst)))
            if dst == T.FAILED:
                paid = await self.session.scalar(
                    select(func.count()).select_from(GroupbuySeat).join(Order, Order.id == GroupbuySeat.order_id)
                    .where(GroupbuySeat.team_id == team_id, Order.status.in_([s.value for s in PAID_LIKE])))
                team = await self.session.get(GroupbuyTeam, team_id)
                assert team is not None
                campaign = await self.session.get(GroupbuyCampaign, team.campaign_id)
                assert campaign is not None
                RECORDER.failures.append((team_id, int(paid or 0), team.size, campaign.simulated))
        return done

    async def recording_succeed(self: GroupbuyRepo, tenant: int, team_id: int, now: Any) -> bool:
        done = await succeed(self, tenant, team_id, now)
        if done:
            RECORDER.moves.append((team_id, T.FORMING, T.SUCCEEDED))
        return done

    monkeypatch.setattr(GroupbuyRepo, "move", recording_move)
    monkeypatch.setattr(GroupbuyRepo, "succeed_if_complete", recording_succeed)


class Database:
    """A clean database for each example: a copy of the migrated SQLite template, or the
    run's PostgreSQL schema truncated."""

    def __init__(self, backend: Any, sqlite_template: Path | None, tmp: Path) -> None:
        self.backend, self.template, self.tmp = backend, sqlite_template, tmp

    async def fresh(self) -> Any:
        if self.backend.name == "sqlite":
            assert self.template is not None
            path = self.tmp / f"machine_{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self.template, path)
            return create_engine(f"sqlite+aiosqlite:///{path}")
        engine = create_engine(self.backend.db_url, schema=self.backend.schema, pool_size=4)
        async with engine.begin() as conn:
            await clean_pg(conn, self.backend.schema)
        return engine


class GroupbuyMachine(RuleBasedStateMachine):
    db: Database            # set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine: Any = None
        RECORDER.moves.clear()
        RECORDER.failures.clear()
        self.seen: dict[int, str] = {}            # team → the last status observed
        self.orders: list[int] = []
        self.teams: list[int] = []
        self.now = T0
        self.gateway: dict[str, tuple[int, int]] = {}   # out_refund_no → (order, fen) sent to the gateway
        self.settled: set[str] = set()

    def run(self, coro: Awaitable[R]) -> R:
        return self.loop.run_until_complete(coro)

    @initialize()
    def setup_shop(self) -> None:
        async def go() -> None:
            self.engine = await self.db.fresh()
            self.uows = uow_factory(session_factory(self.engine), SUBSCRIBERS)
            async with self.uows() as uow:
                self.tenant = await seed_demo(uow, DEMO_CREDS)
                self.normal = await make_campaign(uow, self.tenant.id, title="丹东草莓", size=2, hours=2)
                self.simulated = await make_campaign(uow, self.tenant.id, title="海苔脆", size=3, hours=2,
                                                     simulated=True)
                self.members = [await make_member(uow, self.tenant.id, f"o_machine_{i}") for i in range(4)]
                await uow.commit()
            async with self.uows() as uow:
                self.skus = [c.prices[0].sku_id for c in (self.normal, self.simulated)]
                self.stock0 = {s: int(await uow.session.scalar(select(Sku.stock).where(Sku.id == s)) or 0)
                               for s in self.skus}
        self.run(go())
        self.open_team(0, 0)     # one team of each campaign to start from
        self.open_team(1, 1)

    def teardown(self) -> None:
        try:
            if self.engine is not None:
                self.run(self.quiesce_and_check())
        finally:
            if self.engine is not None:
                self.run(self.engine.dispose())
            self.loop.close()

    # -- helpers -------------------------------------------------------------------------
    async def attempt(self, fn: Callable[[Any], Awaitable[R]]) -> R | None:
        """One unit of work; a refusal (MallError) rolls back."""
        async with self.uows() as uow:
            try:
                result = await fn(uow)
            except MallError:
                await uow.rollback()
                return None
            await uow.commit()
            return result

    def campaign(self, which: int) -> service.CampaignView:
        return self.simulated if which else self.normal

    async def deliver(self, row: OutboxEvent, twice: bool = False) -> None:
        """What the outbox worker does with one row: hand it to its subscriber (at least
        once), then mark it done."""
        p, tenant = row.payload, row.tenant_id
        for _ in range(2 if twice else 1):
            async with self.uows() as uow:
                if row.subscriber == "gb.paid":
                    await service.on_order_paid(uow, tenant, int(p["order_id"]), now=self.now)
                elif row.subscriber == "gb.cancelled":
                    await service.on_order_cancelled(uow, tenant, int(p["order_id"]), now=self.now)
                elif row.subscriber == "gb.refunded":
                    await service.on_order_refunded(uow, tenant, int(p["order_id"]), full=bool(p["full"]))
                elif row.subscriber == "gateway.refund":
                    no = str(p["out_refund_no"])
                    sent = (int(p["order_id"]), int(p["refund_fen"]))
                    assert self.gateway.get(no, sent) == sent, "one refund number, two different requests"
                    self.gateway[no] = sent
                await uow.commit()
        async with self.uows() as uow:
            await uow.outbox.finish(row.id, self.now)
            await uow.commit()

    async def pending_rows(self) -> list[OutboxEvent]:
        async with self.uows() as uow:
            return list((await uow.session.scalars(
                select(OutboxEvent).where(OutboxEvent.status == "pending").order_by(OutboxEvent.id))).all())

    async def sweep(self, job: Callable[[], Awaitable[object]], twice: bool) -> None:
        if twice:
            await asyncio.gather(job(), job())
        else:
            await job()

    # -- rules ---------------------------------------------------------------------------
    @rule(which=st.integers(0, 1), m=st.integers(0, 3))
    def open_team(self, which: int, m: int) -> None:
        c, (member, address) = self.campaign(which), self.members[m]
        r = self.run(self.attempt(lambda uow: service.open_team(
            uow, self.tenant.id, member, c.id, c.prices[0].sku_id, 1, address_id=address, now=self.now,
            timeout=TIMEOUT)))
        if r is not None:
            self.teams.append(r.team.id)
            self.orders.append(r.order.id)

    @precondition(lambda self: self.teams)
    @rule(t=st.integers(0, 50), m=st.integers(0, 3))
    def join_team(self, t: int, m: int) -> None:
        team_id, (member, address) = self.teams[t % len(self.teams)], self.members[m]

        async def join(uow: Any) -> service.JoinResult:
            team = await service.load_team(uow, self.tenant.id, team_id)
            c = await service.load_campaign(uow, self.tenant.id, team.campaign_id)
            return await service.join_team(uow, self.tenant.id, member, team_id, c.prices[0].sku_id, 1,
                                           address_id=address, now=self.now, timeout=TIMEOUT)

        r = self.run(self.attempt(join))
        if r is not None:
            self.orders.append(r.order.id)

    @precondition(lambda self: self.teams)
    @rule(joins=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 3), st.booleans()), min_size=1, max_size=6))
    def join_batch(self, joins: list[tuple[int, int, bool]]) -> None:
        """Several joins written together by the join desk's batch (the chat's path under
        load): repeats, full and closed teams and default addresses mixed in one lot."""
        async def batch(uow: Any) -> list[object]:
            reqs = []
            for t, m, default_address in joins:
                team_id, (member, address) = self.teams[t % len(self.teams)], self.members[m]
                team = await service.load_team(uow, self.tenant.id, team_id)
                c = await service.load_campaign(uow, self.tenant.id, team.campaign_id)
                reqs.append(desk.JoinRequest(self.tenant.id, member, team_id, c.prices[0].sku_id, 1,
                                             None if default_address else address, self.now, TIMEOUT))
            try:
                return list(await desk.join_many(uow, self.tenant.id, reqs))
            except desk.BatchFailed:
                raise RefusedBatch() from None

        out = self.run(self.attempt(batch))
        for r in out or ():
            if isinstance(r, service.JoinResult):
                self.orders.append(r.order.id)

    async def pick(self, o: int, pending: bool) -> int | None:
        """The o-th of our orders still unpaid (pending) or closed with a payment opened (not)."""
        async with self.uows() as uow:
            if pending:
                stmt = select(Order.id).where(Order.status == OrderStatus.PENDING_PAYMENT)
            else:
                stmt = (select(Order.id).join(Payment, Payment.order_id == Order.id)
                        .where(Order.status == OrderStatus.CANCELLED, Payment.status == "created"))
            ids = list((await uow.session.scalars(stmt.order_by(Order.id))).all())
        return ids[o % len(ids)] if ids else None

    @precondition(lambda self: self.orders)
    @rule(o=st.integers(0, 50), how=st.sampled_from(["pay", "pay_twice", "open_page_only", "late"]))
    def pay(self, o: int, how: str) -> None:
        """The member opens the pay page (a payment exists from then on) and, unless
        `open_page_only`, WeChat Pay sends its verified SUCCESS notify (`pay_twice`: the
        callback repeated, it applies once; `late`: the money for an order that closed
        after its pay page was opened: kept on the books and refunded)."""
        order_id = self.run(self.pick(o, pending=how != "late"))
        if order_id is None:
            return

        async def go(uow: Any) -> PayOutcome | None:
            order = await load_order(uow, self.tenant.id, order_id)
            if order.status == OrderStatus.PENDING_PAYMENT:
                await open_payment(uow, order, gateway="sandbox")
            if how == "open_page_only":
                return None
            return await apply_transaction(uow, Transaction(
                event_id=f"EV{order_id}", out_trade_no=order.order_no, transaction_id=f"42{order_id}",
                trade_state="SUCCESS", amount_fen=order.total_fen, mchid=self.tenant.pay_mch_id,
                appid=self.tenant.pay_app_id, payer="o", success_time=""),
                tenant=self.tenant.id, gateway="sandbox", mchid=self.tenant.pay_mch_id, appid=self.tenant.pay_app_id,
                now=self.now)

        for _ in range(2 if how == "pay_twice" else 1):
            self.run(self.attempt(go))

    @precondition(lambda self: self.orders)
    @rule(o=st.integers(0, 50), page_open=st.booleans())
    def member_cancels(self, o: int, page_open: bool) -> None:
        """The member cancels an unpaid order (`page_open`: with its pay page still open
        somewhere, so a payment exists and money may yet arrive: see `pay(how="late")`)."""
        order_id = self.run(self.pick(o, pending=True))
        if order_id is None:
            return

        async def go(uow: Any) -> None:
            order = await load_order(uow, self.tenant.id, order_id)
            if page_open:
                await open_payment(uow, order, gateway="sandbox")
            try:
                await cancel_order(uow, self.tenant.id, order_id, reason="member", now=self.now,
                                   member_id=order.member_id)
            except IllegalTransitionError:
                pass     # paid meanwhile: nothing to cancel

        self.run(self.attempt(go))

    @rule(minutes=st.sampled_from([5, 20, 40, 90, 150]))
    def clock_moves(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(job=st.sampled_from(["orders", "expiry", "refunds"]), twice=st.booleans())
    def sweeper(self, job: str, twice: bool) -> None:
        """A scheduled sweeper; `twice`: two workers run it at the same moment."""
        run: Callable[[], Awaitable[object]] = {
            "orders": lambda: cancel_expired_orders(self.uows, self.now),
            "expiry": lambda: gb_jobs.expire_teams(self.uows, self.now),
            "refunds": lambda: gb_jobs.refund_failed_teams(self.uows, self.now),
        }[job]
        self.run(self.sweep(run, twice))

    @rule(i=st.integers(0, 50), what=st.sampled_from(["one", "one_twice", "all"]))
    def outbox(self, i: int, what: str) -> None:
        """The outbox hands over one pending event (any of them: deliveries race and retry;
        `one_twice`: delivered again, at least once means maybe twice) or everything due."""
        rows = self.run(self.pending_rows())
        for row in rows if what == "all" else rows[i % len(rows):][:1] if rows else []:
            self.run(self.deliver(row, twice=what == "one_twice"))

    @rule(i=st.integers(0, 50), status=st.sampled_from(["SUCCESS", "PROCESSING"]))
    def gateway_answers_refund(self, i: int, status: str) -> None:
        due = sorted(set(self.gateway) - self.settled)
        if not due:
            return
        no = due[i % len(due)]

        async def go(uow: Any) -> bool:
            return await settle_refund(uow, no, tenant=self.tenant.id, status=status, now=self.now)

        self.run(self.attempt(go))
        if status == "SUCCESS":
            self.settled.add(no)

    # -- invariants (one read of the database per step) ------------------------------------------
    async def snapshot(self) -> tuple[list[GroupbuyTeam], list[GroupbuySeat], list[Refund], dict[int, int]]:
        async with self.uows() as uow:
            teams = list((await uow.session.scalars(select(GroupbuyTeam).order_by(GroupbuyTeam.id))).all())
            seats = list((await uow.session.scalars(select(GroupbuySeat))).all())
            refunds = list((await uow.session.scalars(select(Refund))).all())
            paid = {p.order_id: p.amount_fen for p in (await uow.session.scalars(
                select(Payment).where(Payment.status == "paid"))).all()}
        return teams, seats, refunds, paid

    @invariant()
    def teams_seats_and_money_agree(self) -> None:
        if self.engine is None:
            return
        teams, seats, refunds, paid = self.run(self.snapshot())
        # seats: never more than the size, and the counters say what the seats say
        for t in teams:
            taken = [s for s in seats if s.team_id == t.id and s.status != "released"]
            ever_paid = [s for s in taken if s.status in ("paid", "refunding", "refunded")]
            assert t.held <= t.size, f"team {t.id} holds {t.held} seats of {t.size}"
            assert t.held == len(taken), f"team {t.id}: held={t.held}, seats taken={len(taken)}"
            assert t.paid == len(ever_paid) <= t.held, f"team {t.id}: paid={t.paid}, paid seats={len(ever_paid)}"
            if t.status == T.SUCCEEDED:
                assert t.paid + t.virtual >= t.size
        # status: every applied move is in the table; what a team shows only moves forward
        for team_id, src, dst in RECORDER.moves:
            assert rules.can_move_team(src, dst), f"team {team_id} moved {src} → {dst}"
        for t in teams:
            before = self.seen.get(t.id, T.FORMING)
            assert t.status == before or t.status in FORWARD[T(before)], f"team {t.id}: {before} → {t.status}"
            self.seen[t.id] = t.status
        # money: one refund per order at most, never more than was paid
        per_order: dict[int, int] = {}
        for r in refunds:
            per_order[r.order_id] = per_order.get(r.order_id, 0) + 1
            assert r.amount_fen <= paid.get(r.order_id, 0), f"refund {r.out_refund_no} above what was paid"
        assert all(n == 1 for n in per_order.values()), f"orders refunded twice: {per_order}"

    @invariant()
    def paid_in_time_never_fails(self) -> None:
        for team_id, paid, size, simulated in RECORDER.failures:
            if simulated:
                assert paid == 0, f"simulated team {team_id} failed with {paid} paid order(s)"
            else:
                assert paid < size, f"team {team_id} failed with all {size} seats paid"

    # -- the end: everything delivered and swept ----------------------------------------------
    async def quiesce_and_check(self) -> None:
        for _ in range(12):
            self.now += timedelta(days=2)
            await cancel_expired_orders(self.uows, self.now)
            await gb_jobs.expire_teams(self.uows, self.now)
            await gb_jobs.refund_failed_teams(self.uows, self.now)
            rows = await self.pending_rows()
            for row in rows:
                await self.deliver(row)
            due = sorted(set(self.gateway) - self.settled)
            for no in due:
                async with self.uows() as uow:
                    await settle_refund(uow, no, tenant=self.tenant.id, status="SUCCESS", now=self.now)
                    await uow.commit()
                self.settled.add(no)
            if not rows and not due:
                break
        else:
            raise AssertionError("the sweepers and the outbox never settle down")
        self.paid_in_time_never_fails()
        for team_id, src, dst in RECORDER.moves:
            assert rules.can_move_team(src, dst), f"team {team_id} moved {src} → {dst}"

        async with self.uows() as uow:
            teams = {t.id: t for t in (await uow.session.scalars(select(GroupbuyTeam))).all()}
            seats = list((await uow.session.scalars(select(GroupbuySeat))).all())
            orders = {o.id: o for o in (await uow.session.scalars(select(Order))).all()}
            payments = {p.order_id: p for p in (await uow.session.scalars(
                select(Payment).where(Payment.status == "paid"))).all()}
            refunds: dict[int, list[Refund]] = {}
            for r in (await uow.session.scalars(select(Refund))).all():
                refunds.setdefault(r.order_id, []).append(r)
            lines = list((await uow.session.scalars(select(OrderLine))).all())
            stock = {s: int(await uow.session.scalar(select(Sku.stock).where(Sku.id == s)) or 0) for s in self.skus}

        assert {t.status for t in teams.values()} <= {T.SUCCEEDED, T.REFUNDED}, \
            {t.id: t.status for t in teams.values()}
        seat_of = {s.order_id: s for s in seats}
        kept = 0
        for order_id, pay in payments.items():
            order, team = orders[order_id], teams[seat_of[order_id].team_id]
            got_back = refunds.get(order_id, [])
            if order.status == OrderStatus.CANCELLED or team.status != T.SUCCEEDED:
                # a failed team's paid order, or money that came after its order closed
                assert len(got_back) == 1, f"order {order_id} refunded {len(got_back)} times"
                assert (got_back[0].status, got_back[0].amount_fen) == ("succeeded", pay.amount_fen)
            else:
                assert not got_back and order.status == OrderStatus.PAID, f"order {order_id} of a succeeded team"
                kept += pay.amount_fen
        money_in = sum(p.amount_fen for p in payments.values())
        money_out = sum(r.amount_fen for rs in refunds.values() for r in rs if r.status == "succeeded")
        assert money_in == kept + money_out
        assert set(refunds) <= set(payments)
        for sku, initial in self.stock0.items():
            out = sum(ln.qty for ln in lines if ln.sku_id == sku and orders[ln.order_id].status not in (
                OrderStatus.CANCELLED, OrderStatus.REFUNDED))
            assert stock[sku] + out == initial, f"sku {sku}: stock {stock[sku]} + out {out} != {initial}"


def test_group_buy_teams_keep_their_invariants(backend, tmp_path, request, monkeypatch):
    template = request.getfixturevalue("sqlite_template") if backend.name == "sqlite" else None
    install_recorder(monkeypatch)
    GroupbuyMachine.db = Database(backend, template, tmp_path)
    run_state_machine_as_test(GroupbuyMachine, settings=settings(
        max_examples=30, stateful_step_count=25, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
