#!/usr/bin/env python3
"""Group-buy joins under contention on PostgreSQL + Redis, one process.

    .venv/bin/python bench/groupbuy.py                        # 200 joiners, ~10 s, flow mode
    .venv/bin/python bench/groupbuy.py --mode service --seconds 5

--joiners concurrent asyncio tasks (default 200) race for the seats of a campaign's teams
(size --size, opened beforehand by leaders; each attempt goes for one of the --window oldest
open teams, so about joiners/window of them race for each team's last seats). One attempt is one join:

  flow     (default) what the chat path does after the member typed 「确认」 in the join
           confirmation (the conversation remembers the member, as after any earlier
           message): FlowRunner.handle → conversation state from Redis, the join through
           the group-buy join desk (social_mall/groupbuy/desk.py: the joins that arrive
           while a batch is written go together in the next transaction: teams locked,
           checks in memory, one INSERT per table), render, compare-and-set of the state
  service  the join through the desk (admission in Redis, no rendering)
  single   join_team in a unit of work of its own + commit, one transaction per join
           (what every join did before the desk; the WeCom group path still does)

In flow and service modes the seats go through the admission step first (Redis Lua, as the
app wires it: a full team is refused from memory and never reaches the batch); --no-admission
sends every attempt to the batch, as before. An attempt either takes a seat (a join) or is
refused as full ("已满员"; the joiner moves on to the next team). After the timed window a
refusal-only phase (--refusals attempts at full teams) measures the CPU of a refusal, from
which the CPU of an admitted join follows. Printed: joins/s, refusals/s, p50/p99 of a successful join and of
any attempt (ms), and the invariants: teams over their size (must be 0), seats == held
counters, orders placed == joins.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from flows.engine import Conv  # noqa: E402
from flows.runner import FlowRunner, conv_key  # noqa: E402
from flows.templating import make_env  # noqa: E402
from flows.types import Inbound, Kind  # noqa: E402
from social_mall.demo import DemoCredentials, seed_demo  # noqa: E402
from social_mall.groupbuy import desk, rules, service  # noqa: E402
from social_mall.groupbuy.errors import TeamClosedError, TeamFullError  # noqa: E402
from social_mall.members.service import add_address, resolve_member  # noqa: E402
from social_mall.admission import Admission  # noqa: E402
from storage.admission import open_admission  # noqa: E402
from storage.cache import ReadCache  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.groupbuy_models import GroupbuySeat, GroupbuyTeam  # noqa: E402
from storage.groupbuy_repos import GroupbuyRepo  # noqa: E402
from storage.kv import RedisKV  # noqa: E402
from storage.models import Order, Sku  # noqa: E402
from storage.uow import uow_factory  # noqa: E402

CREDS = DemoCredentials(wechat_app_id="wx0123456789abcdef", wechat_token="bench_token",
                        wechat_aes_key="", wechat_app_secret="bench_secret")
TIMEOUT = timedelta(minutes=30)


class Links:
    async def pay_link(self, tenant_code: str, order_no: str) -> str | None:
        return f"http://bench/h5/pay/{tenant_code}/{order_no}"

    def image_url(self, path: str) -> str:
        return f"http://bench{path}"

    def product_url(self, tenant_code: str, product_id: int) -> str:
        return f"http://bench/p/{product_id}"


def topic_map() -> dict[str, list[str]]:
    from bot import build_app
    from handlers.context import SERVICES
    from social_mall.settings import Settings

    app = build_app(Settings(scheduler_enabled=False), auto_setup=False)
    return {k: list(v) for k, v in app[SERVICES].registry.topic_map().items()}


class Board:
    """Which team a joiner goes for: one of the `window` oldest open teams at random (what
    the chat lists: a handful of open teams, the fullest first), so several joiners race
    for each team's last seats at any moment."""

    def __init__(self, teams: list[int], window: int) -> None:
        self.teams, self.window, self.i = teams, window, 0
        self.done: set[int] = set()

    def current(self) -> int | None:
        while self.i < len(self.teams) and self.teams[self.i] in self.done:
            self.i += 1
        open_ = [t for t in self.teams[self.i:self.i + self.window] if t not in self.done]
        return random.choice(open_) if open_ else None

    def full(self, team_id: int) -> None:
        self.done.add(team_id)

    @property
    def filled(self) -> int:
        return len(self.done)


async def main_async(args: argparse.Namespace) -> int:
    schema = f"bench_gb_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    prefix = f"bench_gb:{uuid.uuid4().hex[:8]}:"
    await C.pg_create_schema(args.pg_url, schema)
    engine = create_engine(args.pg_url, schema=schema, pool_size=args.pool)
    kv = RedisKV(args.redis_url, prefix=prefix)
    # redis-py 8 refuses (MaxConnectionsError) past 100 connections instead of waiting; the
    # app's RedisKV has the same limit (reported): the bench waits for a connection instead.
    from redis.asyncio import BlockingConnectionPool

    kv.redis.connection_pool = BlockingConnectionPool.from_url(args.redis_url, max_connections=100, timeout=20,
                                                               decode_responses=True)
    now = datetime.now(timezone.utc)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), topic_map(), ReadCache())  # as bot.build_app
        if args.admission:
            desk.use_admission(uows, Admission(open_admission(kv)))   # as bot.build_app
        async with uows() as uow:
            tenant = await seed_demo(uow, CREDS)
            await uow.commit()
        async with uows() as uow:
            sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant.id).order_by(Sku.id))
            sku.stock = 10**7
            extra = [Sku(tenant_id=tenant.id, product_id=sku.product_id, spec=f"压测规格{i}", price_fen=sku.price_fen,
                         stock=10**7) for i in range(args.skus - 1)]
            await uow.catalog.add(*extra)
            sku_ids = [sku.id] + [x.id for x in extra]
            terms = rules.CampaignTerms(
                team_size=args.size, lifetime_hours=24, starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=2), max_teams_per_member=0, max_qty=5,
                leader_discount_fen=0, simulated=False)
            c = await service.create_campaign(uow, tenant.id, product_id=sku.product_id, title="压测拼团",
                                              terms=terms, group_prices={i: max(1, sku.price_fen // 2) for i in sku_ids})
            await uow.commit()
        # members (each joins once per attempt, never twice in a team) and leaders' teams
        need = args.joiners * args.attempts
        people: list[tuple[str, int, int]] = []
        async with uows() as uow:
            for i in range(need + args.teams):
                openid = f"o_bench_gb_{i:06d}"
                m, _ = await resolve_member(uow, tenant.id, "mp", openid)
                a = await add_address(uow, tenant.id, m.id, "李四", "13912345678", "北京市朝阳区建国路88号")
                people.append((openid, m.id, a.id))
                if i % 500 == 499:
                    await uow.commit()
            await uow.commit()
        leaders, joiners = people[:args.teams], people[args.teams:]
        teams: list[int] = []
        async with uows() as uow:
            for _, mid, aid in leaders:
                r = await service.open_team(uow, tenant.id, mid, c.id, sku.id, 1, address_id=aid, now=now,
                                            timeout=TIMEOUT)
                teams.append(r.team.id)
            await uow.commit()
        board = Board(teams, args.window)
        runner = FlowRunner(uows=uows, kv=kv, templates=make_env(), links=Links(), clock=lambda: now,
                            extra_flows=[__import__("flows.groupbuy", fromlist=["FLOW"]).FLOW])

        joins: list[float] = []
        attempts: list[float] = []
        refused = [0]
        errors: dict[str, int] = {}
        deadline = [0.0]

        async def attempt(who: tuple[str, int, int], team_id: int) -> bool:
            openid, mid, aid = who
            sku_id = random.choice(sku_ids)
            if args.mode == "service":
                try:
                    async with uows() as uow:
                        await desk.take_seat(uow, desk.JoinRequest(tenant.id, mid, team_id, sku_id, 1, aid, now,
                                                                   TIMEOUT))
                    return True
                except (TeamFullError, TeamClosedError):
                    return False
            if args.mode == "single":
                try:
                    async with uows() as uow:
                        await service.join_team(uow, tenant.id, mid, team_id, sku_id, 1, address_id=aid,
                                                now=now, timeout=TIMEOUT)
                        await uow.commit()
                    return True
                except (TeamFullError, TeamClosedError):
                    return False
            inbound = Inbound(tenant.id, tenant.code, "mp", openid, Kind.TEXT, text="确认")
            conv = Conv("groupbuy", "confirm", {"campaign": c.id, "team": team_id, "sku": sku_id, "qty": 1},
                        member=mid)
            await kv.set(conv_key(inbound), conv.dump(), 1800)
            replies = await runner.handle(inbound)
            said = replies[0].text if replies else ""
            if "参团成功" in said:
                return True
            if "已满员" in said or "已结束" in said:
                return False
            raise RuntimeError(said[:60])

        async def joiner(k: int, timed: bool) -> None:
            mine = iter(joiners[k::args.joiners])
            who = next(mine, None)
            while who is not None and (not timed or time.perf_counter() < deadline[0]):
                team_id = board.current()
                if team_id is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok = await attempt(who, team_id)
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    who = next(mine, None)
                    continue
                dt = (time.perf_counter() - t0) * 1000
                if timed:
                    attempts.append(dt)
                if ok:
                    if timed:
                        joins.append(dt)
                    who = next(mine, None)
                else:
                    if timed:
                        refused[0] += 1
                    board.full(team_id)

        gc.collect()
        gc.freeze()  # as bot.py does once started: the set-up objects are not scanned again
        other = C.wait_quiet(args.quiet_wait)
        print(f"timed window: {args.seconds} s from now", file=sys.stderr, flush=True)
        busy0 = C.machine_busy()["cpu"]
        side0 = C.cpu_of_named(("postgres", "redis-server"))
        t_start = time.perf_counter()
        deadline[0] = t_start + args.seconds
        cpu0 = C.proc_cpu_seconds(os.getpid())
        prof = None
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        await asyncio.gather(*(joiner(k, True) for k in range(args.joiners)))
        if prof is not None:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
        elapsed = time.perf_counter() - t_start
        cpu = C.proc_cpu_seconds(os.getpid()) - cpu0
        busy = C.machine_busy()["cpu"] - busy0
        side1 = C.cpu_of_named(("postgres", "redis-server"))
        side = {k: side1.get(k, 0.0) - side0.get(k, 0.0) for k in ("postgres", "redis-server")}

        # refusals alone: joiners try teams that are full, all at once (a full team is
        # refused before anything else is looked at, whoever asks)
        full = sorted(board.done)
        spare = itertools.cycle(joiners)
        per_task = max(1, args.refusals // args.joiners)
        spent = [0]

        async def refuser(k: int) -> None:
            for _ in range(per_task):
                who = next(spare, None)
                if who is None or not full:
                    return
                if await attempt(who, full[(k + spent[0]) % len(full)]):
                    raise RuntimeError("a full team took a seat")
                spent[0] += 1

        r_cpu0 = C.proc_cpu_seconds(os.getpid())
        r_t0 = time.perf_counter()
        await asyncio.gather(*(refuser(k) for k in range(args.joiners)))
        r_elapsed = time.perf_counter() - r_t0
        r_cpu = C.proc_cpu_seconds(os.getpid()) - r_cpu0
        per_refusal = r_cpu / max(spent[0], 1)

        async with uows() as uow:
            over = await GroupbuyRepo(uow.session).overfilled()
            seats = int(await uow.session.scalar(select(func.count()).select_from(GroupbuySeat)) or 0)
            held = int(await uow.session.scalar(select(func.sum(GroupbuyTeam.held))) or 0)
            orders = int(await uow.session.scalar(select(func.count()).select_from(Order)
                                                   .where(Order.source.like("groupbuy:%"))) or 0)
        joins.sort()
        attempts.sort()
        n = len(joins)
        print(f"groupbuy joins ({args.mode} mode, PostgreSQL + Redis, one process, {args.joiners} concurrent "
              f"joiners, teams of {args.size}, {args.skus} SKU(s) of one campaign, {elapsed:.1f} s)")
        print(f"  machine: {os.cpu_count()} cores; busy {busy / elapsed:.2f} cores during the window, this process "
              f"{cpu / elapsed:.2f}; other load before start {other:.2f} cores")
        print(f"  joins/s        {n / elapsed:8.1f}   ({n} seats taken)")
        print(f"  refused/s      {refused[0] / elapsed:8.1f}   ('已满员': the joiner moves to the next team)")
        print(f"  join p50/p99   {C.percentile(joins, 50):8.1f} / {C.percentile(joins, 99):.1f} ms")
        print(f"  attempt p50/p99{C.percentile(attempts, 50):8.1f} / {C.percentile(attempts, 99):.1f} ms")
        print(f"  CPU this proc  {cpu / max(n, 1) * 1000:8.2f} ms per join (all attempts' CPU / joins)")
        print(f"  CPU elsewhere  PostgreSQL {side['postgres'] / max(n, 1) * 1000:.2f} ms, Redis "
              f"{side['redis-server'] / max(n, 1) * 1000:.2f} ms per join (all attempts' CPU / joins)")
        print(f"  refusal phase  {spent[0]} refusals in {r_elapsed:.2f} s ({spent[0] / max(r_elapsed, 1e-9):.0f}/s): "
              f"{per_refusal * 1000:.2f} ms CPU per refusal")
        print(f"  CPU per admitted join {(cpu - refused[0] * per_refusal) / max(n, 1) * 1000:.2f} ms "
              f"(window CPU less its {refused[0]} refusals at the measured cost)")
        async with uows() as uow:
            d = uow.shared.get(desk.DESK)
        if isinstance(d, desk.JoinDesk) and d.batches:
            print(f"  desk batches   {d.batches:8d}   ({d.joins / d.batches:.1f} join attempts per transaction)")
        print(f"  teams filled   {board.filled} of {len(teams)}")
        print(f"  over-filled teams: {over}   seats == held: {seats == held} ({seats}/{held})   "
              f"orders == seats: {orders == seats}   errors: {errors or 'none'}")
        target = n / elapsed >= 1000 and C.percentile(joins, 99) < 150 and over == 0
        print(f"  target (>= 1,000 joins/s, p99 < 150 ms, 0 over-filled): {'met' if target else 'NOT met'}")
        return 0 if over == 0 and not errors else 1
    finally:
        await engine.dispose()
        await C.redis_drop_prefix(args.redis_url, prefix)
        await kv.close()
        await C.pg_drop_schema(args.pg_url, schema)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("flow", "service", "single"), default="flow")
    p.add_argument("--admission", action=argparse.BooleanOptionalAction, default=True,
                   help="seats through the admission step (flow and service modes)")
    p.add_argument("--refusals", type=int, default=4000, help="attempts of the refusal-only phase")
    p.add_argument("--joiners", type=int, default=200)
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--attempts", type=int, default=40, help="members per joiner (distinct people)")
    p.add_argument("--teams", type=int, default=3000)
    p.add_argument("--window", type=int, default=40, help="open teams the joiners spread over")
    p.add_argument("--skus", type=int, default=1, help="SKUs of the campaign the joins spread over")
    p.add_argument("--quiet-wait", type=float, default=60.0, help="wait up to this long for other load to settle")
    p.add_argument("--profile", type=int, default=0, help="print the top N functions (cProfile)")
    p.add_argument("--pool", type=int, default=20)
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--redis-url", default=C.REDIS_URL)
    p.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = p.parse_args(argv)
    C.pin(args.cpu)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
