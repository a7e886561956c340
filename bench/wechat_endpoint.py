#!/usr/bin/env python3
"""Throughput and latency of the official-account endpoint against a bare wechatpy baseline.

    .venv/bin/python bench/wechat_endpoint.py                 # all ten scenarios, ~10 s each
    .venv/bin/python bench/wechat_endpoint.py --seconds 5 --only app-pg-plain,baseline-plain
    .venv/bin/python bench/wechat_endpoint.py --profile --only app-pg-plain   # needs pyinstrument
    .venv/bin/python bench/wechat_endpoint.py --only app-pg-plain --compare-without insights --rounds 3
        # each scenario also on a server with that module switched off ("off:<scenario>"), in
        # the same round: what the module adds to a browse step (server CPU per request)
    .venv/bin/python bench/wechat_endpoint.py --only app-pg-plain --loop uvloop  # the server on uvloop

Three processes per scenario: this one orchestrates; the server runs in its own process
pinned to core 0 (`_serve` sub-command); the aiohttp load client runs in another process
pinned to core 1, with `--conns` keep-alive connections (64) in a closed loop. PostgreSQL
and Redis float. Request bodies are signed (and encrypted in safe mode) before the timed
window, so the client's signing cost is not counted.

Scenarios:
  baseline-plain / baseline-safe   bare aiohttp + wechatpy: check the signature, parse_message,
                                   echo a TextReply (safe: WeChatCrypto decrypt + encrypt)
  app-sqlite-* / app-pg-*          bot.build_app(settings, auto_setup=True), scheduler off, on the
                                   embedded default (SQLite file + memory KV) or PostgreSQL + Redis.
                                   Each user alternates "分类" (list categories) and a category
                                   number (list that category's products); every request has a
                                   unique MsgId, and no user has two requests in flight.
  app-*-warm / app-*-first         first contact: the same browse message ("逛逛") from members
                                   the server knows (warm: --users of them, created in the warmup)
                                   and from openids it has never seen (first: every request is
                                   a new user's first message; --new-users of them in the timed
                                   window, which runs until all are answered, then the outbox is
                                   drained and its CPU counted too). Printed: first/warm ratios
                                   of throughput and CPU, p99, max, and requests over 1 s.

Figures per scenario: requests/s, p50/p99 latency, server CPU µs per request (utime+stime
of the server process from /proc, around the timed window), CPU of PostgreSQL and Redis
processes per request (approximate), client CPU (to show when the client is the limit),
and the app's throughput relative to the baseline in the same mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (puts the repository root on sys.path)

TOKEN = "bench_token_0123456789"
APP_ID = "wx0123456789abcdef"
APP_SECRET = "bench_app_secret_0123456789abcdef"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
TENANT = "demo"
CATEGORIES = ("水果生鲜", "休闲零食", "日用百货", "茶饮冲调")
PRODUCT_OF = {"水果生鲜": "赣南脐橙", "休闲零食": "每日坚果", "日用百货": "竹纤维抽纸", "茶饮冲调": "西湖龙井"}
SCENARIOS = ("baseline-plain", "baseline-safe", "app-sqlite-plain", "app-sqlite-safe",
             "app-pg-plain", "app-pg-safe", "app-sqlite-warm", "app-sqlite-first",
             "app-pg-warm", "app-pg-first")
BROWSE = "逛逛"  # the first-contact scenarios' message (a browse step: the category list)
SERVER_CPU, CLIENT_CPU = 0, 1
NOISY = 0.25  # cores of other load during a window above which the window is re-run
OFF = "off:"  # a scenario run on a server with --compare-without's module switched off


# ======================================================================================
# servers (run in their own process: `bench/wechat_endpoint.py _serve ...`)
# ======================================================================================

def baseline_app() -> Any:
    """The least a wechatpy endpoint does: signature, parse, TextReply (safe: decrypt+encrypt)."""
    from aiohttp import web
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(TOKEN, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            raise web.HTTPForbidden() from None
        raw = await request.read()
        safe = q.get("encrypt_type") == "aes"
        try:
            xml = crypto.decrypt_message(raw, q.get("msg_signature", ""), q["timestamp"], q["nonce"]) if safe else raw
        except InvalidSignatureException:
            raise web.HTTPForbidden() from None
        msg = parse_message(xml)
        out = TextReply(content=getattr(msg, "content", ""), message=msg).render()
        if safe:
            out = crypto.encrypt_message(out, q["nonce"], q["timestamp"])
        return web.Response(text=out, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat/mp/{tenant}", receive)
    return app


def what_if_engine(pool_size: int, no_pre_ping: bool) -> None:
    """Experiments, off by default: the engine bot.py builds, with another pool size or
    without pool_pre_ping (to size a suggested fix; the app's code is untouched)."""
    import bot

    original = bot.create_engine

    def create_engine(url: str, *, schema: str = "", **kw: Any) -> Any:
        if pool_size and not url.startswith("sqlite"):
            kw["pool_size"] = pool_size
        engine = original(url, schema=schema, **kw)
        if no_pre_ping and not url.startswith("sqlite"):
            engine.sync_engine.pool._pre_ping = False
        return engine

    bot.create_engine = create_engine  # type: ignore[assignment]


async def app_settings(db_url: str, schema: str, redis_url: str, prefix: str, work: Path,
                       cleanup: list[Any], disabled: list[str] | None = None) -> Any:
    """The app's settings for a bench run. WeChat's API is a loopback stand-in (token +
    customer-service send): the pushes the first messages cause (welcome coupons…) succeed
    during the warmup, as in production, instead of failing and being retried by the
    outbox inside the timed window. Its runner goes on `cleanup`."""
    from aiohttp import web
    from pydantic import SecretStr

    from handlers.terminal_chat import push_inbox
    from social_mall.settings import Settings

    api = web.AppRunner(push_inbox(user=""), access_log=None)
    await api.setup()
    api_site = web.TCPSite(api, "127.0.0.1", 0)
    await api_site.start()
    api_port = api_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cleanup.append(api.cleanup)
    return Settings(
        database_url=db_url, database_schema=schema, redis_url=redis_url, kv_prefix=prefix,
        data_dir=work / "var", wechat_token=SecretStr(TOKEN), wechat_app_id=APP_ID,
        wechat_app_secret=SecretStr(APP_SECRET), wechat_aes_key=SecretStr(AES_KEY),
        wechat_api_base=f"http://127.0.0.1:{api_port}", secret_key=SecretStr("bench-secret"),
        scheduler_enabled=False, log_level="WARNING",
        sandbox_pay="on",  # the demo's pay links in the placed-order replies, as on the embedded default
        disabled_modules=list(disabled or []),
    )


async def serve(args: argparse.Namespace) -> None:
    import logging

    from aiohttp import web

    logging.basicConfig(level=logging.WARNING)
    cleanup: list[Any] = []
    if args.kind == "baseline":
        app = baseline_app()
    else:
        from bot import build_app

        work = Path(args.workdir)
        if args.kind == "app-pg":
            schema, prefix = args.schema, args.kv_prefix
            await C.pg_create_schema(args.pg_url, schema)
            db_url, redis_url = args.pg_url, args.redis_url
            cleanup.append(lambda: C.pg_drop_schema(args.pg_url, schema))
            cleanup.append(lambda: C.redis_drop_prefix(args.redis_url, prefix))
        else:
            schema, prefix = "", args.kv_prefix
            db_url, redis_url = f"sqlite+aiosqlite:///{work / 'bench.db'}", ""
        settings = await app_settings(db_url, schema, redis_url, prefix, work, cleanup,
                                      [m for m in args.disable.split(",") if m])
        if args.what_if_pool or args.what_if_no_pre_ping:
            what_if_engine(args.what_if_pool, args.what_if_no_pre_ping)
        app = build_app(settings, public_base_url="http://127.0.0.1", auto_setup=True)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    census = Census(app)
    print(f"READY {port}", flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    profiler = None
    try:
        while line := await reader.readline():
            cmd, *rest = line.decode().split()
            if cmd == "prof_start":
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.001, async_mode="disabled")
                profiler.start()
            elif cmd == "prof_stop" and profiler is not None:
                session = profiler.stop()
                text = profiler.output_text(unicode=True, color=False, show_all=False)
                Path(rest[0]).write_text(C.profile_summary(session) + "\n\ncall tree:\n" + text)
                profiler = None
            elif cmd == "census_reset":
                # The warmup's first contacts queue pushes (welcome…): deliver them before the
                # timed window, which measures browsing, not the outbox catching up.
                from handlers.context import SERVICES

                if SERVICES in app:
                    await app[SERVICES].outbox.drain()
                census.reset()
            elif cmd == "drain":  # the outbox's backlog (first contacts: welcome coupons…)
                from handlers.context import SERVICES

                if SERVICES in app:
                    await app[SERVICES].outbox.drain()
            elif cmd == "census":
                print("CENSUS " + json.dumps(census.snapshot()), flush=True)
            elif cmd == "quit":
                break
            print("OK", flush=True)
    finally:
        await runner.cleanup()
        for fn in cleanup:
            await fn()


_SQL_SHAPE = re.compile(r"^\s*(\w+)(?:.*?\b(?:FROM|INTO|UPDATE)\s+([\w\".]+))?", re.S | re.I)


class Census:
    """Counts what the server asks of the world: socket writes by peer (each one a send()
    syscall: HTTP replies, PostgreSQL and Redis round trips), SQL statements (by verb and
    table), pool checkouts (PostgreSQL: each one runs a pre-ping), new DB connections,
    commits, rollbacks, Redis commands, outbox kicks and event-loop turns. A counter bump
    per event: cheap."""

    PEERS = {5432: "pg", 6379: "redis"}

    def __init__(self, app: Any) -> None:
        import asyncio.selector_events as se

        self.counts: dict[str, int] = {}
        self._cache_loads = self._cache_clears = lambda: 0
        self._base = (0, 0)
        bump = self.bump
        peers = self.PEERS
        original_write = se._SelectorSocketTransport.write

        def write(transport: Any, data: Any) -> None:
            peer = transport.get_extra_info("peername") or ("", 0)
            bump(f"socket writes to {peers.get(peer[1], 'http client')}")
            original_write(transport, data)

        se._SelectorSocketTransport.write = write  # type: ignore[method-assign]
        # Event-loop turns (one selector poll each): requests per turn is how many go
        # through each stage of the handler together, which the app's cost per request
        # depends on (the more in step, the warmer the CPU's caches for each stage).
        selector = getattr(asyncio.get_running_loop(), "_selector", None)  # uvloop has none: not counted
        if selector is not None:
            select = selector.select

            def counted_select(timeout: float | None = None) -> Any:
                bump("event-loop turns")
                return select(timeout)

            selector.select = counted_select
        from handlers.context import SERVICES

        if SERVICES in app:
            self._app(app[SERVICES])

    def bump(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _app(self, svc: Any) -> None:
        from sqlalchemy import event

        bump = self.bump
        engine = svc.engine.sync_engine

        def on_sql(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
            m = _SQL_SHAPE.match(statement)
            verb, table = (m.group(1).upper(), (m.group(2) or "").strip('"')) if m else ("?", "")
            bump(f"sql {verb} {table}".rstrip())
            bump("sql (all)")

        event.listen(engine, "before_cursor_execute", on_sql)
        event.listen(engine, "commit", lambda conn: bump("db commit"))
        event.listen(engine, "rollback", lambda conn: bump("db rollback"))
        event.listen(engine.pool, "checkout", lambda *a: bump("db pool checkout"))
        event.listen(engine.pool, "connect", lambda *a: bump("db new connection"))
        batcher = getattr(svc.kv, "_batch", None)
        if batcher is not None:  # RedisKV: commands go out in pipelines
            call, exchange = batcher.call, batcher._exchange

            def counted_call(*args: Any) -> Any:
                bump(f"redis {str(args[0]).upper()}")
                bump("redis (all)")
                return call(*args)

            async def counted_exchange(conn: Any, batch: Any) -> None:
                bump("redis round trips")
                await exchange(conn, batch)

            batcher.call, batcher._exchange = counted_call, counted_exchange
        cache = svc.cache
        self._cache_loads = lambda: cache.loads
        self._cache_clears = lambda: cache.version
        outbox = svc.outbox
        kick = outbox.kick

        def counted_kick() -> None:
            bump("outbox kick")
            kick()

        outbox.kick = counted_kick
        svc.runner.on_commit = counted_kick

    def reset(self) -> None:
        self.counts = {}
        self._base = (self._cache_loads(), self._cache_clears())

    def snapshot(self) -> dict[str, int]:
        loads, clears = self._cache_loads() - self._base[0], self._cache_clears() - self._base[1]
        return {**self.counts, **({"cache catalog loads": loads, "cache catalog clears": clears}
                                  if loads or clears else {})}


# ======================================================================================
# the load client (own process)
# ======================================================================================

@dataclass
class Item:
    url: Any             # yarl.URL, already encoded
    body: bytes
    expect: str          # a text every correct reply contains
    query: dict[str, str]


@dataclass
class ClientCfg:
    base_url: str
    safe: bool
    is_app: bool
    conns: int
    users: int
    seconds: float
    warmup: float
    step: str            # mix | categories | browse (逛逛) | first (逛逛, each from a new user)
    check_every: int
    pin: bool
    new_users: int = 0   # first: requests (= new users) in the timed window


@dataclass
class Gen:
    """Pre-signs requests: worker w owns users w, w+conns, ...; each user's messages go in order."""

    cfg: ClientCfg
    sim: Any
    turn: dict[str, int] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    fresh: int = 0  # new users made so far (step "first")

    def users_of(self, w: int) -> list[str]:
        return [f"o_bench_user_{i:05d}" for i in range(w, self.cfg.users, self.cfg.conns)]

    def new_user(self) -> str:
        """An openid no server of this run has seen (unique per client process and run)."""
        self.fresh += 1
        return f"o_new_{self.tag}_{self.fresh:07d}"

    def make(self, w: int, count: int) -> list[Item]:
        """`count` requests for worker w. Every user's part of a pool starts with 分类, so a
        pool cut short by the end of a window never leaves a user in an unexpected state."""
        import yarl

        users = self.users_of(w)
        items: list[Item] = []
        ts = int(time.time())
        for i in range(count):
            user = self.new_user() if self.cfg.step == "first" else users[i % len(users)]
            n = i // len(users)  # this user's n-th message in this pool
            if self.cfg.step in ("browse", "first"):
                text, expect = BROWSE, CATEGORIES[0]
            elif self.cfg.step == "categories" or n % 2 == 0:
                text, expect = "分类", CATEGORIES[0]
            else:
                k = self.turn.get(user, 0)
                self.turn[user] = k + 1
                cat = CATEGORIES[k % len(CATEGORIES)]
                text, expect = str(k % len(CATEGORIES) + 1), PRODUCT_OF[cat]
            if not self.cfg.is_app:
                expect = text  # the baseline echoes the text back
            xml = self.sim.text_xml(user, text, created=ts)
            query, body = self.sim.signed_request(xml, user=user, timestamp=ts, nonce=secrets.token_hex(5))
            url = yarl.URL(f"{self.cfg.base_url}?{urlencode(query)}", encoded=True)
            items.append(Item(url, body, expect, query))
        return items


async def _drive(session: Any, pools: list[list[Item]], deadline: float, lat: list[float],
                 check_every: int, samples: list[tuple[int, bytes, Item]], counters: dict[str, int],
                 stop: dict[str, bool], plain_expect: bool, stop_on_exhaust: bool = True) -> None:
    perf = time.perf_counter

    async def worker(items: list[Item]) -> None:
        for i, it in enumerate(items):
            if stop["now"] or perf() >= deadline:
                return
            t0 = perf()
            async with session.post(it.url, data=it.body) as resp:
                body = await resp.read()
                status = resp.status
            lat.append(perf() - t0)
            if status != 200:
                counters["non200"] += 1
            elif not body.startswith(b"<xml"):
                counters["not_xml"] += 1  # "success": the reply did not come back passively
            elif plain_expect and it.expect.encode() not in body:
                counters["wrong"] += 1
                if counters["wrong"] <= 3:
                    samples.append((status, body, it))  # shown with the sample check
            if i % check_every == 0:
                samples.append((status, body, it))
        if stop_on_exhaust:  # one worker ran out of pre-signed requests: end the window
            stop["now"] = True
            counters["exhausted"] += 1

    await asyncio.gather(*(worker(p) for p in pools))


def client_main(conn: Any, cfg: ClientCfg) -> None:
    if cfg.pin:
        C.pin(CLIENT_CPU)
    asyncio.run(_client(conn, cfg))


async def _client(conn: Any, cfg: ClientCfg) -> None:
    import aiohttp

    from handlers.mp_simulator import MPSimulator

    connector = aiohttp.TCPConnector(limit=cfg.conns, limit_per_host=cfg.conns, ttl_dns_cache=None)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     headers={"Content-Type": "text/xml"},
                                     auto_decompress=False) as session:
        sim = MPSimulator(session, cfg.base_url, token=TOKEN, app_id=APP_ID, aes_key=AES_KEY,
                          safe_mode=cfg.safe)
        gen = Gen(cfg, sim)
        plain_expect = not cfg.safe

        # warmup 1: every user twice (creates the members); 2: ~cfg.warmup seconds, whose
        # rate sizes the pool of the timed window
        users_per_worker = -(-cfg.users // cfg.conns)
        pools = [gen.make(w, 2 * users_per_worker) for w in range(cfg.conns)]
        counters = {"non200": 0, "not_xml": 0, "wrong": 0, "exhausted": 0}
        await _drive(session, pools, time.perf_counter() + 120, [], 10**9, [], counters,
                     {"now": False}, plain_expect, stop_on_exhaust=False)
        pools = [gen.make(w, int(4000 * cfg.warmup / cfg.conns) + 4) for w in range(cfg.conns)]
        lat: list[float] = []
        t0 = time.perf_counter()
        await _drive(session, pools, t0 + cfg.warmup, lat, 10**9, [], counters,
                     {"now": False}, plain_expect)
        warm_s = time.perf_counter() - t0
        warm_rate = len(lat) / warm_s if warm_s > 0 else 1000.0
        warm_bad = counters["non200"] + counters["not_xml"] + counters["wrong"]

        per_worker = int(warm_rate * 2 * cfg.seconds / cfg.conns) + 48
        first = cfg.step == "first"
        if first:  # every new user once, however long it takes (within reason)
            per_worker = -(-cfg.new_users // cfg.conns)
        g0 = time.perf_counter()
        pools = [gen.make(w, per_worker) for w in range(cfg.conns)]
        gen_s = time.perf_counter() - g0

        lat = []
        samples: list[tuple[int, bytes, Any]] = []
        counters = {"non200": 0, "not_xml": 0, "wrong": 0, "exhausted": 0}
        conn.send(("ready", {"warm_rate": warm_rate, "gen_s": gen_s,
                             "pool": per_worker * cfg.conns, "warm_bad": warm_bad}))
        assert conn.recv() == "go"
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        await _drive(session, pools, t0 + (600 if first else cfg.seconds), lat, cfg.check_every, samples,
                     counters, {"now": False}, plain_expect, stop_on_exhaust=not first)
        elapsed = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(("done", elapsed))

        # after the window: check the sampled replies in full (decrypting in safe mode)
        checked = bad = 0
        bad_examples: list[str] = []
        for status, body, it in samples:
            checked += 1
            text = body.decode(errors="replace")
            try:
                answer = sim.read_answer(status, text, it.query)
                ok = answer.status == 200 and it.expect in answer.text
            except Exception as exc:  # noqa: BLE001
                ok, answer = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                bad += 1
                if len(bad_examples) < 3:
                    seen = getattr(answer, "text", None) or text
                    bad_examples.append(f"expected {it.expect!r} in {seen[:160]!r}")
        lat.sort()
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        conn.send(("result", {
            "requests": len(lat), "elapsed": elapsed, "rps": len(lat) / elapsed,
            "p50": 1000 * C.percentile(lat, 50), "p99": 1000 * C.percentile(lat, 99),
            "max": 1000 * (lat[-1] if lat else float("nan")),
            "over_1s": sum(1 for x in lat if x > 1.0), "over_2s": sum(1 for x in lat if x > 2.0),
            "client_cpu_pct": 100 * cpu / elapsed, **counters,
            "checked": checked, "check_bad": bad, "bad_examples": bad_examples,
        }))


# ======================================================================================
# orchestration
# ======================================================================================

class Server:
    def __init__(self, kind: str, args: argparse.Namespace, workdir: Path, disable: str = "") -> None:
        self.kind = kind
        self.schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.kv_prefix = f"bench:{uuid.uuid4().hex[:10]}:"
        self.args = args
        cmd = [sys.executable, str(Path(__file__).resolve()), "_serve", "--kind", kind,
               "--workdir", str(workdir), "--schema", self.schema, "--kv-prefix", self.kv_prefix,
               "--pg-url", args.pg_url, "--redis-url", args.redis_url]
        if not args.no_pin:
            cmd += ["--pin", str(SERVER_CPU)]
        if args.what_if_pool:
            cmd += ["--what-if-pool", str(args.what_if_pool)]
        if args.what_if_no_pre_ping:
            cmd += ["--what-if-no-pre-ping"]
        if disable:
            cmd += ["--disable", disable]
        if args.loop != "asyncio":
            cmd += ["--loop", args.loop]
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=str(C.ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.port = 0
        deadline = time.monotonic() + 120
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server {kind} exited with {self.proc.wait()}: "
                                   f"{self.log_path.read_text()[-3000:]}")
            if line.startswith("READY"):
                self.port = int(line.split()[1])
                break
        if not self.port:
            raise RuntimeError(f"server {kind} did not start")

    def log_summary(self) -> str:
        """The server's stderr, counted by message (slow-path pushes to the unreachable
        stand-in WeChat API show up here)."""
        counts: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith((" ", "Traceback", "\t")) or not line.strip():
                continue  # traceback bodies: count the exception line and log lines only
            key = line[:140]
            counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{v}× {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:4])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wechat/mp/{TENANT}"

    def command(self, cmd: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self.proc.stdout.readline()) and not line.startswith("OK"):
            lines.append(line.rstrip("\n"))
        return lines

    def census(self) -> dict[str, int]:
        for line in self.command("census"):
            if line.startswith("CENSUS "):
                return dict(json.loads(line[7:]))
        return {}

    def cpu(self) -> float:
        return C.proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                self.proc.wait(timeout=10)
        self.log.close()
        if self.kind == "app-pg":  # in case the server could not clean up
            asyncio.run(C.pg_drop_schema(self.args.pg_url, self.schema))
            asyncio.run(C.redis_drop_prefix(self.args.redis_url, self.kv_prefix))


def run_scenario(name: str, server: Server, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if args.quiet_wait > 0:
        busy = C.wait_quiet(args.quiet_wait)
        if busy > 0.3:
            print(f"#   machine still busy ({busy:.2f} cores) after {args.quiet_wait:g}s: figures are noisy",
                  flush=True)
    name = name.removeprefix(OFF)
    safe = name.endswith("-safe")
    mode = name.rsplit("-", 1)[1]
    step = {"warm": "browse", "first": "first"}.get(mode, args.step)
    cfg = ClientCfg(base_url=server.url, safe=safe, is_app=name.startswith("app"), conns=args.conns,
                    users=args.users, seconds=args.seconds, warmup=args.warmup, step=step,
                    check_every=args.check_every, pin=not args.no_pin, new_users=args.new_users)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=client_main, args=(child, cfg), daemon=True)
    proc.start()
    try:
        if not parent.poll(600):
            raise RuntimeError("client did not get ready")
        kind, prep = parent.recv()
        assert kind == "ready", kind
        prof_file = workdir / f"profile_{name}.txt"
        server.command("census_reset")
        if args.profile:
            server.command("prof_start")
        pg = C.BackendCpu(args.pg_url, server.proc.pid)
        if server.kind == "app-pg":
            asyncio.run(pg.begin())
        side0 = C.cpu_of_named(("redis-server",))
        busy0 = C.machine_busy()
        cpu0 = server.cpu()
        parent.send("go")
        kind, _elapsed = parent.recv()
        cpu1 = server.cpu()
        busy1 = C.machine_busy()
        side1 = C.cpu_of_named(("redis-server",))
        pg_s = asyncio.run(pg.end()) if server.kind == "app-pg" else 0.0
        # what the window left to the outbox (first contacts queue welcome coupons, pushes):
        # drained now, its CPU reported beside the window's
        d0 = time.perf_counter()
        server.command("drain")
        drain_s = time.perf_counter() - d0
        cpu2 = server.cpu()
        side2 = C.cpu_of_named(("redis-server",))
        pg_s2 = asyncio.run(pg.end()) if server.kind == "app-pg" else 0.0
        if args.profile:
            server.command(f"prof_stop {prof_file}")
        census = server.census()
        kind, res = parent.recv()
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    n = max(res["requests"], 1)
    res.update(prep)
    res["census"] = {k: v / n for k, v in census.items()}
    res["server_cpu_us"] = 1e6 * (cpu1 - cpu0) / n
    res["drain_s"] = drain_s
    res["server_cpu_drained_us"] = 1e6 * (cpu2 - cpu0) / n
    res["pg_cpu_drained_us"] = 1e6 * pg_s2 / n
    res["redis_cpu_drained_us"] = 1e6 * (side2.get("redis-server", 0) - side0.get("redis-server", 0)) / n
    res["server_cpu_pct"] = 100 * (cpu1 - cpu0) / res["elapsed"]
    res["pg_cpu_us"] = 1e6 * pg_s / n
    res["redis_cpu_us"] = 1e6 * (side1.get("redis-server", 0) - side0.get("redis-server", 0)) / n
    # load that is none of ours (other people's tests...): all busy CPU minus server, client,
    # PostgreSQL and Redis, in cores; and how busy the server's core was
    el = res["elapsed"]
    ours = (cpu1 - cpu0) + res["client_cpu_pct"] / 100 * el + (res["pg_cpu_us"] + res["redis_cpu_us"]) * n / 1e6
    res["other_cores"] = max(0.0, (busy1["cpu"] - busy0["cpu"]) - ours) / el
    core = f"cpu{SERVER_CPU}"
    res["server_core_busy_pct"] = 100 * (busy1.get(core, 0) - busy0.get(core, 0)) / el
    if args.profile:
        res["profile"] = prof_file.read_text() if prof_file.exists() else "(no profile written)"
    return res


def base_of(name: str) -> str:
    """The baseline an app scenario compares with (the first-contact ones: plaintext)."""
    mode = name.rsplit("-", 1)[1]
    return "baseline-" + ("safe" if mode == "safe" else "plain")


def first_contact(rounds: list[dict[str, dict[str, Any]]], kind: str) -> list[str]:
    """The first-contact figures of one backend (`app-sqlite` / `app-pg`): a new user's
    first browse message against a member's, per round, and the verdict on the median."""
    warm_name, first_name = f"{kind}-warm", f"{kind}-first"
    pairs = [(r[warm_name], r[first_name]) for r in rounds if warm_name in r and first_name in r]
    if not pairs:
        return []
    lines, costs = [], []
    for w, f in pairs:
        drained_rps = f["requests"] / (f["elapsed"] + f["drain_s"])
        # the cost of a message: server CPU (its core is what limits throughput; outbox included)
        cost = f["server_cpu_drained_us"] / w["server_cpu_us"]
        costs.append(cost)
        cpu_w = w["server_cpu_us"] + w["pg_cpu_us"] + w["redis_cpu_us"]
        cpu_f = f["server_cpu_drained_us"] + f["pg_cpu_drained_us"] + f["redis_cpu_drained_us"]
        lines.append(
            f"{kind}: warm {w['rps']:.0f} req/s, p99 {w['p99']:.1f} ms, server {w['server_cpu_us']:.0f} µs/rq; "
            f"first {f['rps']:.0f} req/s ({f['requests']} new users in {f['elapsed']:.1f}s, outbox drained "
            f"{f['drain_s']:.1f}s after: {drained_rps:.0f} req/s), server {f['server_cpu_drained_us']:.0f} µs/rq "
            f"incl. outbox → cost {cost:.2f}× a warm step (server+pg+redis: {cpu_f:.0f} vs {cpu_w:.0f} µs, "
            f"{cpu_f / cpu_w:.2f}×; throughput first/warm {drained_rps / w['rps']:.2f}); "
            f"first p99 {f['p99']:.0f} ms, max {f['max']:.0f} ms, over 1 s: {f['over_1s']}, over 2 s: {f['over_2s']}"
            f"; other load {max(w['other_cores'], f['other_cores']):.2f} cores")
    cost = statistics.median(costs)
    worst = max(f["max"] for _, f in pairs)
    sane = not any(x[k] for w, f in pairs for x in (w, f) for k in ("non200", "not_xml", "wrong", "check_bad"))
    if kind == "app-pg":
        ok = cost <= 2.0
        lines.append(f"{'PASS' if ok and sane else 'FAIL'}  {kind} first contact: a first message costs "
                     f"{cost:.2f}× a warm browse step (server CPU, median){'' if sane else ' (replies failed the checks)'}"
                     f"  [target ≤ 2×]")
    else:
        ok = worst <= 1000.0
        lines.append(f"{'PASS' if ok and sane else 'FAIL'}  {kind} first contact: slowest request {worst:.0f} ms "
                     f"({cost:.2f}× a warm step){'' if sane else ' (replies failed the checks)'}"
                     f"  [target: none over 1 s]")
    return lines


def report_line(name: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    ratio = f"{r['rps'] / base['rps']:6.1%}" if base else "     -"
    problems = r["non200"] + r["not_xml"] + r["wrong"] + r["check_bad"]
    return (f"{name:<17} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['server_cpu_us']:9.0f} "
            f"{r['server_cpu_pct']:6.0f}% {r['pg_cpu_us']:7.0f} {r['redis_cpu_us']:6.0f} "
            f"{r['client_cpu_pct']:6.0f}% {ratio}  {r['requests']:7d} "
            f"{'ok' if not problems else 'BAD'} {r['checked']}/{r['check_bad']}  "
            f"{r['other_cores']:4.2f} {r['server_core_busy_pct']:4.0f}%")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="timed window per scenario (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warmup per scenario, seconds (2)")
    p.add_argument("--conns", type=int, default=64, help="concurrent connections (64)")
    p.add_argument("--users", type=int, default=320, help="distinct openids (320)")
    p.add_argument("--step", choices=("mix", "categories"), default="mix",
                   help="mix: each user alternates 分类 and a category number; categories: 分类 only")
    p.add_argument("--new-users", type=int, default=5000,
                   help="first-contact scenarios: new users (one message each) in the timed window (5000)")
    p.add_argument("--only", default="", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    p.add_argument("--rounds", type=int, default=1,
                   help="run every scenario this many times, baseline and app alternating; the targets "
                        "are judged on the median ratio (this box's speed drifts ±10%% between runs)")
    p.add_argument("--profile", action="store_true", help="run the server under pyinstrument")
    p.add_argument("--profile-lines", type=int, default=150, help="lines of each profile to print")
    p.add_argument("--check-every", type=int, default=20, help="decrypt/parse every Nth reply in full")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="before each scenario wait up to this long for other load to stop (120; 0: don't)")
    p.add_argument("--noisy-retries", type=int, default=2,
                   help="re-run a scenario whose window saw > 0.25 cores of other load, keeping the quietest (2)")
    p.add_argument("--no-pin", action="store_true", help="do not pin server/client to cores 0/1")
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--redis-url", default=C.REDIS_URL)
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"),
                   help="the server's event loop (uvloop: pip install uvloop)")
    p.add_argument("--what-if-pool", type=int, default=0, metavar="N",
                   help="experiment: PostgreSQL pool_size N (app default 10, +2N overflow)")
    p.add_argument("--what-if-no-pre-ping", action="store_true",
                   help="experiment: PostgreSQL pool without pool_pre_ping (app default: on)")
    p.add_argument("--compare-without", default="", metavar="MODULE",
                   help="also run each app scenario with MODULE switched off (same round, first): "
                        "the module's cost per request")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server, drop the schema
    wanted = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    if args.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            print("--profile needs pyinstrument: .venv/bin/pip install pyinstrument", file=sys.stderr)
            return 2
    if args.users < args.conns:
        p.error("--users must be >= --conns (no user may have two requests in flight)")

    print(f"# wechat endpoint bench: {os.cpu_count()} cores, server pinned to core {SERVER_CPU}, client to "
          f"core {CLIENT_CPU}{' (pinning off)' if args.no_pin else ''}; {args.conns} connections, "
          f"{args.users} users, {args.seconds:g}s per scenario after {args.warmup:g}s warmup, step={args.step}"
          f"{', PROFILED (pyinstrument slows the server)' if args.profile else ''}", flush=True)
    if args.what_if_pool or args.what_if_no_pre_ping:
        print(f"# EXPERIMENT, not the app's configuration: "
              f"{f'pool_size={args.what_if_pool} ' if args.what_if_pool else ''}"
              f"{'pool_pre_ping off' if args.what_if_no_pre_ping else ''}", flush=True)
    rounds: list[dict[str, dict[str, Any]]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench_wechat_"))
    try:
        by_server: dict[str, list[str]] = {}
        for s in wanted:
            if args.compare_without and s.startswith("app"):
                by_server.setdefault(OFF + s.rsplit("-", 1)[0], []).append(OFF + s)
        for s in wanted:
            by_server.setdefault(s.rsplit("-", 1)[0], []).append(s)
        for rnd in range(args.rounds):
            if args.rounds > 1:
                print(f"# round {rnd + 1} of {args.rounds}", flush=True)
            rdir = workdir / f"round{rnd + 1}"
            rdir.mkdir()
            # every other round in the opposite order: with --compare-without, "off" and "on"
            # take turns at running first (the first window of a round catches more of the
            # box's other load, which leaned the comparison one way when "off" always led)
            order = by_server if rnd % 2 == 0 else dict(reversed(list(by_server.items())))
            rounds.append(run_servers(order, args, rdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    shown = [n for s in wanted for n in ((OFF + s, s) if args.compare_without and s.startswith("app") else (s,))]
    for rnd, results in enumerate(rounds):
        print()
        if args.rounds > 1:
            print(f"round {rnd + 1} of {args.rounds}:")
        print_table(shown, results)
    if args.compare_without:
        print()
        print(f"module {args.compare_without!r}: on vs off (server CPU per request; throughput), per round:")
        for s in wanted:
            pairs = [(r[s], r[OFF + s]) for r in rounds if s in r and OFF + s in r]
            if not pairs:
                continue
            cpu = [on["server_cpu_us"] / off["server_cpu_us"] - 1 for on, off in pairs]
            tot = [(on["server_cpu_us"] + on["pg_cpu_us"] + on["redis_cpu_us"])
                   / (off["server_cpu_us"] + off["pg_cpu_us"] + off["redis_cpu_us"]) - 1 for on, off in pairs]
            rps = [on["rps"] / off["rps"] - 1 for on, off in pairs]
            mid = statistics.median(cpu)
            print(f"  {s}: server CPU {', '.join(f'{x:+.1%}' for x in cpu)} (median {mid:+.1%}); "
                  f"server+pg+redis {', '.join(f'{x:+.1%}' for x in tot)}; "
                  f"throughput {', '.join(f'{x:+.1%}' for x in rps)}")
            print(f"  {'PASS' if mid < 0.05 else 'FAIL'}  {s}: a browse step costs {mid:+.1%} server CPU with "
                  f"{args.compare_without} on  [target < +5%]")
    results = rounds[-1]
    print()
    verdicts = []
    for name, share, p99 in (("app-pg-plain", 0.50, 50.0), ("app-pg-safe", 0.30, None)):
        base_name = "baseline-" + name.rsplit("-", 1)[1]
        pairs = [(r[name], r[base_name]) for r in rounds if name in r and base_name in r]
        if not pairs:
            verdicts.append(f"{name}: not measured (needs {name} and its baseline)")
            continue
        ratios = sorted(a["rps"] / b["rps"] for a, b in pairs)
        ratio, p99_mid = statistics.median(ratios), statistics.median(a["p99"] for a, _ in pairs)
        rps, base_rps = statistics.median(a["rps"] for a, _ in pairs), statistics.median(b["rps"] for _, b in pairs)
        ok = ratio >= share and (p99 is None or p99_mid < p99)
        sane = not any(a["non200"] or a["not_xml"] or a["wrong"] or a["check_bad"] for a, _ in pairs)
        want = f"≥ {share:.0%} of baseline" + (f", p99 < {p99:g} ms" if p99 else "")
        spread = f"; ratios {', '.join(f'{x:.1%}' for x in ratios)}, median" if len(ratios) > 1 else ""
        verdicts.append(f"{'PASS' if ok and sane else 'FAIL'}  {name}{spread}: {ratio:.1%} of baseline "
                        f"({rps:.0f} vs {base_rps:.0f} req/s), p99 {p99_mid:.1f} ms  [target {want}]"
                        f"{'' if sane else '  (replies failed the checks)'}")
    census_rows = [n for n in wanted if results[n].get("census")]
    if census_rows:
        keys = sorted({k for n in census_rows for k in results[n]["census"]},
                      key=lambda k: (k.split()[0], -max(results[n]["census"].get(k, 0) for n in census_rows)))
        print("what one request asks of the stores (per request, timed window):")
        print(f"  {'':<34}" + "".join(f"{n.removeprefix('app-'):>15}" for n in census_rows))
        for k in keys:
            print(f"  {k[:34]:<34}" + "".join(f"{results[n]['census'].get(k, 0):15.2f}" for n in census_rows))
        print()
    print("targets (PostgreSQL + Redis, one server process):")
    for v in verdicts:
        print("  " + v)
    firsts = [line for kind in ("app-sqlite", "app-pg") for line in first_contact(rounds, kind)]
    if firsts:
        print(f"first contact ({args.new_users} new users in the window, {args.conns} connections, {BROWSE}):")
        for line in firsts:
            print("  " + line)
    if args.profile:
        for name in wanted:
            print(f"\n===== profile: {name} (server, timed window) =====")
            lines = results[name].get("profile", "").splitlines()
            print("\n".join(lines[:args.profile_lines]))
    return 0


def run_servers(by_server: dict[str, list[str]], args: argparse.Namespace,
                workdir: Path) -> dict[str, dict[str, Any]]:
    """One round: each server kind in turn, its scenarios against it."""
    results: dict[str, dict[str, Any]] = {}
    for kind, names in by_server.items():
        sdir = workdir / kind.replace(":", "_")
        sdir.mkdir()
        t0 = time.monotonic()
        off = kind.startswith(OFF)
        server = Server(kind.removeprefix(OFF), args, sdir, disable=args.compare_without if off else "")
        print(f"# {kind}: server pid {server.proc.pid} up in {time.monotonic() - t0:.1f}s", flush=True)
        try:
            for name in names:
                r = run_scenario(name, server, args, workdir)
                for _ in range(args.noisy_retries):  # someone else's load shared our cores
                    if r["other_cores"] <= NOISY:
                        break
                    print(f"#   {name}: {r['other_cores']:.2f} cores of other load during the window "
                          f"({r['rps']:.0f} req/s): running it again", flush=True)
                    again = run_scenario(name, server, args, workdir)
                    r = again if again["other_cores"] < r["other_cores"] else r
                results[name] = r
                print(f"#   {name}: warmup {r['warm_rate']:.0f} req/s, {r['pool']} requests pre-signed in "
                      f"{r['gen_s']:.1f}s, measured {r['requests']} in {r['elapsed']:.1f}s"
                      f"{' (pool exhausted: window cut short)' if r['exhausted'] else ''}"
                      f"{'; warmup problems: ' + str(r['warm_bad']) if r['warm_bad'] else ''}", flush=True)
                if r["bad_examples"]:
                    for ex in r["bad_examples"]:
                        print(f"#     bad reply: {ex}")
        finally:
            server.stop()
            if summary := server.log_summary():
                print(f"#   {kind} server log: {summary}", flush=True)
    return results


def print_table(wanted: list[str], results: dict[str, dict[str, Any]]) -> None:
    print(f"{'scenario':<17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'srv µs/rq':>9} {'srvCPU':>7} "
          f"{'pg µs':>7} {'rds µs':>6} {'client':>7} {'vs base':>6}  {'reqs':>7} ok checked/bad  other core0")
    for name in wanted:
        r = results[name]
        base = results.get(base_of(name)) if name.startswith("app") else None
        print(report_line(name, r, base))
        if r["non200"] or r["not_xml"] or r["wrong"]:
            print(f"    non-200: {r['non200']}  not a passive XML reply: {r['not_xml']}  "
                  f"missing expected text: {r['wrong']}")
    print("  srv µs/rq: server process CPU (all threads) per request; srvCPU: share of one core;\n"
          "  pg µs: CPU of the PostgreSQL backends serving the server, per request; rds µs: of redis-server"
          " (shared with other users);\n  client: load client CPU (near 100% means the client limits the"
          " figure); vs base: throughput / the baseline's in the same mode;\n  checked/bad: replies"
          " decrypted and read in full / wrong ones; other: cores busy with load that is not ours (noise);"
          " core0: how busy the server's core was")


def serve_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", required=True, choices=("baseline", "app-sqlite", "app-pg"))
    p.add_argument("--workdir", required=True)
    p.add_argument("--schema", default="")
    p.add_argument("--kv-prefix", default="bench:")
    p.add_argument("--pg-url", default=C.PG_URL)
    p.add_argument("--redis-url", default=C.REDIS_URL)
    p.add_argument("--pin", type=int, default=None)
    p.add_argument("--what-if-pool", type=int, default=0)
    p.add_argument("--what-if-no-pre-ping", action="store_true")
    p.add_argument("--disable", default="")
    p.add_argument("--loop", default="asyncio")
    args = p.parse_args(argv)
    C.pin(args.pin)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        sys.exit(serve_main(sys.argv[2:]))
    sys.exit(main())
