"""Chaos: Redis restarts in the middle of a seckill (PostgreSQL + a throwaway redis-server
of this test's own, on a free port, no persistence: a restart loses everything, as a
crashed cache would). Nothing is oversold, no member passes the limit, nothing is lost:
the admission state is rebuilt from the database before admitting anyone again, the
remaining stock still sells to the last unit, and memory and the database agree at the end.

The shared Redis (6379) and PostgreSQL are never stopped: only this test's own server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from social_mall.members.service import add_address, resolve_member
from social_mall_seckill import jobs, service
from social_mall_seckill.errors import SeckillError
from social_mall_seckill.flow import HOLDER
from social_mall_seckill.models import SeckillClaim, SeckillItem, SeckillOrder
from social_mall_seckill.rules import pool
from storage.models import Order, Sku, Tenant
from tests.conftest import PG_URL, SCHEMA, Backend, _pg_engine, clean_pg

from seckill_kit import Clock, make_mall

STOCK, MEMBERS, RESTART_AFTER = 40, 240, 15
NOW = datetime(2030, 6, 6, 12, 0, 30, tzinfo=timezone.utc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayRedis:
    def __init__(self, tmp: Path) -> None:
        self.port, self.dir = _free_port(), tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the throwaway redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()      # this test's own process, by its handle
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


@pytest.fixture
def throwaway_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed")
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def pg_clean(pg_schema):
    eng = _pg_engine()
    async with eng.begin() as conn:
        await clean_pg(conn)
    yield eng
    await eng.dispose()


async def test_redis_restart_mid_seckill_oversells_nothing_and_loses_nothing(pg_clean, throwaway_redis, tmp_path,
                                                                            fake_wechat, aiohttp_client):
    backend = Backend("pg", PG_URL, f"redis://127.0.0.1:{throwaway_redis.port}/0", SCHEMA)
    clock = Clock(NOW)
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client, clock=clock)
    svc = mall.svc
    desk = HOLDER.desk
    async with svc.uows() as uow:
        tenant = await uow.session.scalar(select(Tenant.id).where(Tenant.code == "demo"))
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == tenant, Sku.stock >= 100).order_by(Sku.id))
        sid = await service.create_session(uow, tenant, "混沌场", NOW - timedelta(minutes=1), NOW + timedelta(hours=1),
                                           5, NOW)
        item = await service.add_item(uow, tenant, sid, sku.id, 100, STOCK, 1)
        members = []
        for i in range(MEMBERS):
            m, _ = await resolve_member(uow, tenant, "mp", f"o_chaos_{i:04d}")
            a = await add_address(uow, tenant, m.id, "张三", "13800138000", "上海市浦东新区世纪大道100号")
            members.append((m.id, a.id))
        await uow.commit()

    outcome: dict[str, int] = {"placed": 0, "refused": 0, "error": 0}
    restarted = asyncio.Event()
    gate = asyncio.Semaphore(24)

    async def attempt(member: int, address: int) -> str:
        async with gate:
            try:
                await desk.buy(tenant, member, item, 1, address_id=address, channel="mp", now=clock())
            except SeckillError:
                outcome["refused"] += 1
                return "refused"
            except Exception:  # noqa: BLE001 - Redis unreachable while it restarts
                outcome["error"] += 1
                return "error"
            outcome["placed"] += 1
            if outcome["placed"] == RESTART_AFTER and not restarted.is_set():
                restarted.set()
                await asyncio.to_thread(throwaway_redis.restart)   # others are in flight meanwhile
            return "placed"

    first = await asyncio.gather(*(attempt(m, a) for m, a in members))
    assert throwaway_redis.restarts == 1 and restarted.is_set()
    # whoever met the outage tries again, then every member once more (the losers: 已抢光)
    again = [(m, a) for (m, a), r in zip(members, first) if r == "error"]
    await asyncio.gather(*(attempt(m, a) for m, a in again))
    clock.advance(seconds=61)                                   # past the per-minute rate window
    await asyncio.gather(*(attempt(m, a) for m, a in members))

    async with svc.uows() as uow:
        it = await uow.session.get(SeckillItem, item, populate_existing=True)
        orders = await uow.session.scalar(select(func.count()).select_from(Order).where(
            Order.source == f"seckill:{item}"))
        taken = await uow.session.scalar(select(func.sum(SeckillOrder.qty)).where(SeckillOrder.item_id == item))
        worst = await uow.session.scalar(select(func.max(SeckillClaim.qty)).where(SeckillClaim.item_id == item))
        dup = (await uow.session.execute(select(Order.member_id, func.count()).where(
            Order.source == f"seckill:{item}").group_by(Order.member_id).having(func.count() > 1))).all()
        truth = await service.truth(uow, tenant, item)
    # nothing oversold, nobody over the limit
    assert it.sold == orders == taken <= STOCK and worst == 1 and dup == []
    # nothing lost: the stock sold to the last unit after the rebuild
    assert it.sold == STOCK and outcome["placed"] == STOCK
    # memory was rebuilt from the database and agrees with it (the reconcile job finds
    # nothing left to repair)
    assert svc.admission.rebuilds >= 2
    assert await jobs.reconcile_live(svc) == 0
    assert (await svc.admission.reconcile(tenant, pool(item), truth)).clean
    state = await svc.admission.state(tenant, pool(item))
    assert state.stock_left == 0 and len(state.held) == STOCK
