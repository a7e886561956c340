#!/usr/bin/env python3
"""Browse throughput of `bot.py serve --workers N` at N = 1, 2, 4 on PostgreSQL + Redis.

    .venv/bin/python bench/workers.py                          # N = 1 2 4, 10 s each, asyncio
    .venv/bin/python bench/workers.py --workers 1 2 --loop uvloop --seconds 8

The server is the real CLI (`bot.py serve --workers N`, scheduler on) against a PostgreSQL
cluster and a redis-server of this script's own (bench/servers.py), started once and shared by
every round. The load client runs in its own process: `--conns` keep-alive connections
(64), each a closed loop over its own users, every request a browse message ("分类" or a
category number, alternating per user) with a unique MsgId and its own signed query
(plaintext mode), signed before the timed window. Each round: 3 s of warm-up, then
`--seconds` of measurement.

Printed per round: requests/s; p50/p99 latency; CPU µs per request of all the workers
together (utime+stime from /proc, around the timed window), of PostgreSQL (the postmaster's
children) and of Redis; and the client's CPU (the box has few cores: when the client and
the workers together reach the core count, the throughput is the box's, not the app's).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from servers import Postgres, Redis, free_port, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "workers_token_0123456789"
APP_ID = "wx0123456789abcdef"


def pids_of_children(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += C.proc_cpu_seconds(pid)
        except OSError:
            pass
    return total


# -- the load client (its own process) ---------------------------------------------------------

def signed(xml: bytes, user: str) -> tuple[str, bytes]:
    from handlers.mp_simulator import sign

    ts, nonce = str(int(time.time())), secrets.token_hex(6)
    return f"?signature={sign(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}&openid={user}", xml


def requests_for(user: str, count: int, msg_ids: Any) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        text = "分类" if i % 2 == 0 else "1"
        xml = (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[{user}]]>"
               f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[{text}]]></Content><MsgId>{next(msg_ids)}</MsgId></xml>").encode()
        out.append(signed(xml, user))
    return out


def client_main(conn: Any, url: str, conns: int, warm: float, seconds: float, per_conn: int) -> None:
    import itertools

    msg_ids = itertools.count(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))
    pools = [requests_for(f"o_bench_worker_{c:04d}_{u}xxxxxxxxxx", per_conn // 4, msg_ids)
             for c in range(conns) for u in range(4)]
    conn.send(asyncio.run(_client(conn, url, pools, conns, warm, seconds)))


async def _client(pipe: Any, url: str, pools: list[list[tuple[str, bytes]]], conns: int, warm: float,
                  seconds: float) -> dict[str, Any]:
    import aiohttp

    lat: list[float] = []
    counted = {"n": 0, "errors": 0}
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    start, end = t0 + warm, t0 + warm + seconds
    marks: dict[str, float] = {}

    async def one(session: aiohttp.ClientSession, c: int) -> None:
        users = pools[c * 4:(c + 1) * 4]
        i = 0
        while loop.time() < end:
            pool = users[i % 4]
            if not pool:
                break
            q, body = pool.pop(0)
            i += 1
            began = loop.time()
            try:
                async with session.post(url + q, data=body, headers={"Content-Type": "text/xml"}) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            done = loop.time()
            if start <= began and done <= end:
                if ok:
                    counted["n"] += 1
                    lat.append(done - began)
                else:
                    counted["errors"] += 1

    async def mark() -> None:
        await asyncio.sleep(warm)
        marks["cpu0"] = time.process_time()
        pipe.send("start")
        await asyncio.sleep(seconds)
        marks["cpu1"] = time.process_time()
        pipe.send("end")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as session:
        await asyncio.gather(mark(), *(one(session, c) for c in range(conns)))
    lat.sort()
    return {"n": counted["n"], "errors": counted["errors"], "rps": counted["n"] / seconds,
            "p50": lat[len(lat) // 2] * 1000 if lat else 0, "p99": lat[int(len(lat) * 0.99)] * 1000 if lat else 0,
            "client_cpu": marks.get("cpu1", 0) - marks.get("cpu0", 0)}


# -- a round -------------------------------------------------------------------------------------

def run_round(n: int, loop_kind: str, args: argparse.Namespace, pg: Postgres, rd: Redis, env: dict[str, str],
              work: Path) -> dict[str, Any]:
    port = free_port()
    env = dict(env, SOCIAL_MALL_EVENT_LOOP=loop_kind, SOCIAL_MALL_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    log = open(work / f"serve_{n}_{loop_kind}.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "bot.py"), "serve", "--workers", str(n),
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        wait_port(port)
        time.sleep(3)  # every worker up (each starts in ~2 s)
        workers = pids_of_children(server.pid) if n > 1 else [server.pid]
        assert len(workers) == n, workers
        per_conn = int(args.max_rps * (args.seconds + 3) / args.conns) + 8
        parent, child = mp.Pipe()
        client = mp.Process(target=client_main, args=(child, f"http://127.0.0.1:{port}/wechat/mp/demo",
                                                      args.conns, 3.0, args.seconds, per_conn))
        client.start()
        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        assert parent.recv() == "start"
        w0, p0, r0 = cpu(workers), cpu([pg_pid, *pids_of_children(pg_pid)]), cpu([rd.proc.pid])  # type: ignore[union-attr]
        assert parent.recv() == "end"
        w1, p1, r1 = cpu(workers), cpu([pg_pid, *pids_of_children(pg_pid)]), cpu([rd.proc.pid])  # type: ignore[union-attr]
        result = parent.recv()
        client.join()
        n_req = max(result["n"], 1)
        result.update(workers=n, loop=loop_kind, worker_us=(w1 - w0) / n_req * 1e6,
                      pg_us=(p1 - p0) / n_req * 1e6, redis_us=(r1 - r0) / n_req * 1e6,
                      worker_cores=(w1 - w0) / args.seconds)
        return result
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--loop", nargs="+", default=["asyncio"], choices=("asyncio", "uvloop"))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--max-rps", type=float, default=4000, help="requests signed per round (an upper bound)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sm_workers_"))
    pg, rd = Postgres(), Redis()
    pg.start()
    rd.start()
    env = dict(os.environ, SOCIAL_MALL_DATABASE_URL=pg.url, SOCIAL_MALL_REDIS_URL=rd.url,
               SOCIAL_MALL_DATA_DIR=str(work / "var"), SOCIAL_MALL_LOG_FORMAT="json", SOCIAL_MALL_LOG_LEVEL="WARNING",
               SOCIAL_MALL_WECHAT_TOKEN=TOKEN, SOCIAL_MALL_WECHAT_APP_ID=APP_ID,
               SOCIAL_MALL_WECHAT_API_BASE="http://127.0.0.1:9", SOCIAL_MALL_SECRET_KEY="bench-secret-0123456789",
               SOCIAL_MALL_SANDBOX_PAY="off", SOCIAL_MALL_DEMO_SHOWCASE="false")
    for cmd in (["migrate"], ["seed-demo"]):
        subprocess.run([sys.executable, str(ROOT / "bot.py"), *cmd], env=env, check=True, capture_output=True, cwd=work)
    rows = []
    try:
        for loop_kind in args.loop:
            for n in args.workers:
                r = run_round(n, loop_kind, args, pg, rd, env, work)
                rows.append(r)
                print(f"workers {n} {loop_kind:7}: {r['rps']:7.0f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                      f"workers {r['worker_us']:5.0f} µs/req ({r['worker_cores']:.2f} cores)  "
                      f"PostgreSQL {r['pg_us']:4.0f} µs/req  Redis {r['redis_us']:4.0f} µs/req  "
                      f"client {r['client_cpu'] / args.seconds:.2f} cores  errors {r['errors']}", flush=True)
    finally:
        pg.close()
        rd.close()
    print(f"(box: {os.cpu_count()} cores, shared; {args.conns} connections, {args.seconds:.0f} s windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
