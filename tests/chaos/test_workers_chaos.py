"""`bot.py serve --workers 2` as real processes on a PostgreSQL cluster and a redis-server of
the test's own (bench/servers.py; never the shared 5432/6379): a worker killed with SIGKILL in
the middle of a checkout step leaves WeChat's retry to another worker, which places the order
once; the supervisor starts a new worker.

The longer run with load, Redis and PostgreSQL restarts is `bench/chaos.py` (~2 min)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from servers import Postgres, Redis, free_port, wait_port  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_chaos", ROOT / "bench" / "chaos.py")
chaos = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_chaos"] = chaos  # its dataclasses look their module up
_spec.loader.exec_module(chaos)  # type: ignore[union-attr]


@pytest.fixture
def cluster(tmp_path):
    pg, rd = Postgres(), Redis()
    pg.start()
    rd.start()
    port = free_port()
    env = dict(os.environ, SOCIAL_MALL_DATABASE_URL=pg.url, SOCIAL_MALL_REDIS_URL=rd.url,
               SOCIAL_MALL_DATA_DIR=str(tmp_path / "var"), SOCIAL_MALL_LOG_FORMAT="json",
               SOCIAL_MALL_WECHAT_TOKEN=chaos.TOKEN, SOCIAL_MALL_WECHAT_APP_ID=chaos.APP_ID,
               SOCIAL_MALL_WECHAT_APP_SECRET=chaos.APP_SECRET, SOCIAL_MALL_WECHAT_API_BASE="http://127.0.0.1:9",
               SOCIAL_MALL_SECRET_KEY=chaos.SECRET, SOCIAL_MALL_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
               SOCIAL_MALL_SANDBOX_PAY="off", SOCIAL_MALL_DEMO_SHOWCASE="false",
               SOCIAL_MALL_OUTBOX_INTERVAL_SECONDS="1")
    for cmd in (["migrate"], ["seed-demo"]):
        subprocess.run([sys.executable, str(ROOT / "bot.py"), *cmd], env=env, check=True, capture_output=True,
                       cwd=tmp_path)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "bot.py"), "serve", "--workers", "2", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_port(port)
        yield pg, server, f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
        pg.close()
        rd.close()
        assert code == 0


async def test_a_worker_killed_mid_checkout_leaves_the_retry_to_another_and_one_order(cluster):
    pg, server, base, log = cluster
    await chaos.wait_workers(server.pid, 2)
    tally = chaos.Tally()
    async with aiohttp.ClientSession() as http:
        wx = chaos.WeChat(http, f"{base}/wechat/mp/demo", tally)
        assert await chaos.wait_browse_ok(wx, chaos.now(), timeout=60) < 60
        victim = "o_chaos_victim_0000000000000"
        assert await chaos.to_confirmation(wx, victim, "龙井")
        db = await asyncpg.connect(pg.url.replace("+asyncpg", ""))
        try:
            sku = await db.fetchval("SELECT s.id FROM skus s JOIN products p ON p.id = s.product_id "
                                    "WHERE p.title LIKE '%龙井%' ORDER BY s.id LIMIT 1")
            stock0 = await db.fetchval("SELECT stock FROM skus WHERE id = $1", sku)
            tx = db.transaction()
            await tx.start()
            await db.execute("SELECT 1 FROM skus WHERE id = $1 FOR UPDATE", sku)  # holds the step inside
            confirming = asyncio.create_task(wx.send(victim, "确认"))
            killed = None
            for _ in range(200):
                await asyncio.sleep(0.05)
                rows = await db.fetch("SELECT client_port FROM pg_stat_activity "
                                      "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
                pids = [chaos.pid_of_local_port(r["client_port"], chaos.worker_pids(server.pid)) for r in rows]
                killed = next((p for p in pids if p), None)
                if killed:
                    os.kill(killed, signal.SIGKILL)
                    break
            assert killed, "the checkout step never reached the stock update"
            await tx.rollback()
            tries, answer = await confirming
            assert tries == 2, (tries, answer)  # the first try died with its worker
            assert answer and "下单成功" in answer, answer
            order_no = re.search(r"订单号：(\d+)", answer).group(1)
            orders = await db.fetch("SELECT o.order_no, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id "
                                    "WHERE l.sku_id = $1", sku)
            assert [r["order_no"] for r in orders] == [order_no]
            assert await db.fetchval("SELECT stock FROM skus WHERE id = $1", sku) == stock0 - orders[0]["qty"]
            # the supervisor has started a new worker; the retry of the retry is a repeat
            await chaos.wait_workers(server.pid, 2, timeout=30)
            assert killed not in chaos.worker_pids(server.pid)
        finally:
            await db.close()
    text = log.read_text()
    assert '"event": "workers.died"' in text and '"exit": -9' in text
    assert 1 <= text.count('"event": "leader.gained"') <= 2  # once, and again if the killed worker led
