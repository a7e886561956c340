#!/usr/bin/env python3
"""Chaos run: `bot.py serve --workers N` on a PostgreSQL and a Redis of its own, under a
purchase-and-browse load from a fake WeChat, while a worker is killed mid checkout step,
Redis is restarted (every key lost) and PostgreSQL is restarted.

    .venv/bin/python bench/chaos.py                    # 3 workers, ~90 s
    .venv/bin/python bench/chaos.py --workers 2 --buyers 6 --browsers 6

The servers are throwaway (bench/servers.py: initdb/pg_ctl as postgres and redis-server on
free ports, in a temporary directory); the shared 5432/6379 are never touched.

WeChat as this script plays it (WECHAT.md): every message is signed (a new signed query on
every try, the same MsgId), a try without an answer in 5 s (or a broken connection, or a
5xx) is retried 5 s after it began, 3 tries in all; then the message is lost (the member
sees "该公众号暂时无法提供服务"). An empty body or "success" ends the tries. Buyers walk
search → SKU → address → 确认, take the pay link's Native prepay (the server calls the fake
WeChat Pay), pay, and the fake posts the signed v3 notify, retried until acknowledged (on a
compressed schedule: 1, 2, 4 … s instead of 15 s, 15 s, 30 s …). Browsers alternate 分类 / 1.

Chaos, in order, the load running throughout:
  kill     a buyer's 「确认」 is held inside its step (the script holds the SKU row's lock in
           PostgreSQL), the worker running it is found (its PostgreSQL backend's client port)
           and killed with SIGKILL; the lock goes; WeChat's retry 5 s later lands on another
           worker, finds the message's lease run out, and places the order: one order.
  redis    redis-server killed and started empty.
  postgres pg_ctl restart -m fast.

Checked at the end (load stopped, notifies acknowledged, outbox drained): messages answered
on the first try / on a retry / lost; orders per 「确认」 (never two); every order the fake
WeChat Pay has as paid is paid in the database (zero lost paid orders), once (one applied
notify, one succeeded payment, paid_fen = total); stock: what left each SKU equals what the
live orders hold; no outbox row dead or left pending; the worker count back to N; recovery
times (from the fault until browse answers again on every try).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402,F401  (puts the repository root on sys.path)
from servers import Postgres, Redis, free_port, wait_port  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from handlers.mp_simulator import MPSimulator  # noqa: E402
from social_mall.payments import wxpay_v3  # noqa: E402
from tests.fakes.wechat_api import FakeWeChatAPI  # noqa: E402
from tests.fakes.wechat_pay import APIV3_KEY, MCHID, FakeOrder, FakeWeChatPay  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "chaos_token_0123456789"
APP_ID = "wx0123456789abcdef"
APP_SECRET = "chaos_app_secret_0123456789abcdef"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
SECRET = "chaos-secret-key-0123456789"
TRY_TIMEOUT = 5.0   # WeChat's wait for a passive reply
TRIES = 3
ADDRESS = "张三 13800138000 浙江省杭州市西湖区文三路100号"
XRW = {"X-Requested-With": "social_mall"}
BUSY = "系统繁忙，请稍后再试"


def now() -> float:
    return time.monotonic()


# -- WeChat's side ---------------------------------------------------------------------------

@dataclass
class Tally:
    first_try: int = 0
    retried: int = 0       # answered on the 2nd or 3rd try
    success_only: int = 0  # the answer was "success"/empty (a repeat, or the slow path's push)
    lost: int = 0          # no answer in 3 tries
    lost_texts: list[str] = field(default_factory=list)
    confirms: Counter[str] = field(default_factory=Counter)  # buyer → 「确认」 messages sent
    placed: dict[str, str] = field(default_factory=dict)      # order no → buyer
    paid_acked: set[str] = field(default_factory=set)
    notify_tries: Counter[str] = field(default_factory=Counter)
    busy: int = 0
    restarts: int = 0      # a buyer's flow started over (its conversation was lost: Redis)
    browse_fail_at: list[float] = field(default_factory=list)
    browse_ok_at: list[float] = field(default_factory=list)


class WeChat:
    def __init__(self, http: aiohttp.ClientSession, url: str, tally: Tally) -> None:
        self.sim = MPSimulator(http, url, token=TOKEN, app_id=APP_ID)
        self.http, self.tally = http, tally
        self.trace = False

    async def send(self, user: str, text: str) -> tuple[int, str | None]:
        """(tries used, the answer's text or "" for success/empty), or (TRIES, None): lost."""
        xml = self.sim.text_xml(user, text)
        loop = asyncio.get_running_loop()
        for attempt in range(1, TRIES + 1):
            began = loop.time()
            query, body = self.sim.signed_request(xml, user=user)
            try:
                async with asyncio.timeout(TRY_TIMEOUT):
                    answer = await self.sim.post(query, body)
                if answer.status == 200:
                    if attempt == 1:
                        self.tally.first_try += 1
                    else:
                        self.tally.retried += 1
                    if not answer.body.strip() or answer.body.strip() == "success":
                        self.tally.success_only += 1
                        return attempt, ""
                    if answer.text == BUSY:
                        self.tally.busy += 1
                    return attempt, answer.text
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                if self.trace:
                    print(f"    try {attempt} of {text!r}: {type(exc).__name__} after {loop.time() - began:.2f} s",
                          flush=True)
            await asyncio.sleep(max(0.0, began + TRY_TIMEOUT - loop.time()))
        self.tally.lost += 1
        self.tally.lost_texts.append(text)
        return TRIES, None


# -- load ---------------------------------------------------------------------------------

async def browser(wx: WeChat, user: str, stop: asyncio.Event) -> None:
    texts = ("分类", "1")
    i = 0
    while not stop.is_set():
        began = now()
        tries, answer = await wx.send(user, texts[i % 2])
        (wx.tally.browse_ok_at if tries == 1 and answer else wx.tally.browse_fail_at).append(began)
        i += 1
        await asyncio.sleep(0.05)


async def pay(http: aiohttp.ClientSession, base: str, fake: FakeWeChatPay, tally: Tally, pay_url: str,
              order_no: str) -> None:
    """The buyer opens the pay link in a desktop browser (Native), pays; the notify is retried
    until acknowledged."""
    path = pay_url.split("?")[0].removeprefix(base) + "/native?" + pay_url.split("?")[1]
    for delay in (0, 1, 2, 4, 8, 8, 8, 8):
        await asyncio.sleep(delay)
        try:
            async with http.post(base + path, headers=XRW) as resp:
                if resp.status == 200:
                    break
        except aiohttp.ClientError:
            pass
    else:
        return  # never got a prepay: the order stays unpaid (and is cancelled by the sweeper)
    for delay in (0, 1, 2, 4, 8, 8, 8, 8, 8, 8):
        await asyncio.sleep(delay)
        tally.notify_tries[order_no] += 1
        try:
            status = await fake.pay(order_no)
        except aiohttp.ClientError:
            status = 0
        if status is not None and 200 <= status < 300:
            tally.paid_acked.add(order_no)
            return


async def buyer(wx: WeChat, http: aiohttp.ClientSession, base: str, fake: FakeWeChatPay, user: str,
                stop: asyncio.Event, payments: list[asyncio.Task[None]]) -> None:
    while not stop.is_set():
        if not await to_confirmation(wx, user):
            wx.tally.restarts += 1
            continue
        await confirm(wx, http, base, fake, user, payments)


async def to_confirmation(wx: WeChat, user: str, product: str = "坚果") -> bool:
    for text, expect in ((f"搜索 {product}", product), ("1", "收货"), (ADDRESS, "确认")):
        _, answer = await wx.send(user, text)
        if not answer or expect not in answer:
            return False
    return True


async def confirm(wx: WeChat, http: aiohttp.ClientSession, base: str, fake: FakeWeChatPay, user: str,
                  payments: list[asyncio.Task[None]]) -> int:
    wx.tally.confirms[user] += 1
    tries, answer = await wx.send(user, "确认")
    if answer and "下单成功" in answer:
        order_no = re.search(r"订单号：(\d+)", answer).group(1)  # type: ignore[union-attr]
        pay_url = re.search(r"(http\S+/h5/pay/demo/\S+)", answer).group(1)  # type: ignore[union-attr]
        wx.tally.placed[order_no] = user
        payments.append(asyncio.create_task(pay(http, base, fake, wx.tally, pay_url, order_no)))
    return tries


# -- the workers ----------------------------------------------------------------------------

def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def pid_of_local_port(port: int, pids: list[int]) -> int | None:
    """The process among `pids` with a TCP socket bound to local 127.0.0.1:`port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port:
                inodes.add(parts[9])
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


async def wait_workers(parent: int, n: int, timeout: float = 60) -> float:
    began = now()
    while now() - began < timeout:
        if len(worker_pids(parent)) == n:
            return now() - began
        await asyncio.sleep(0.1)
    raise TimeoutError("workers did not come back")


async def outbox_drained(url: str, since: float, timeout: float = 120) -> float:
    import asyncpg

    db = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        while now() - since < timeout:
            if not await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'"):
                break
            await asyncio.sleep(0.5)
    finally:
        await db.close()
    return now() - since


async def wait_browse_ok(wx: WeChat, since: float, timeout: float = 60) -> float:
    """Seconds from `since` until a probe browse message is answered on its first try."""
    while now() - since < timeout:
        tries, answer = await wx.send("o_chaos_probe_000000000000", "分类")
        if tries == 1 and answer:
            return now() - since
        await asyncio.sleep(0.1)
    return float("inf")


# -- the run ---------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> int:
    import asyncpg

    work = Path(tempfile.mkdtemp(prefix="sm_chaos_"))
    pg, rd = Postgres(), Redis()
    pg.start()
    rd.start()
    print(f"PostgreSQL :{pg.port}  Redis :{rd.port}  workers: {args.workers}", flush=True)
    api = FakeWeChatAPI(app_id=APP_ID, app_secret=APP_SECRET)
    api_runner = web.AppRunner(api.app())
    await api_runner.setup()
    api_port = free_port()
    await web.TCPSite(api_runner, "127.0.0.1", api_port).start()
    api.base_url = f"http://127.0.0.1:{api_port}"
    merchant = wxpay_v3.generate_keypair()
    fake = FakeWeChatPay(mchid=MCHID, appid=APP_ID, apiv3_key=APIV3_KEY, merchant_serial=merchant.serial,
                         merchant_public_pem=merchant.public_pem)
    pay_runner = web.AppRunner(fake.app())
    await pay_runner.setup()
    pay_port = free_port()
    await web.TCPSite(pay_runner, "127.0.0.1", pay_port).start()
    fake.base_url = f"http://127.0.0.1:{pay_port}"
    (work / "apiclient_key.pem").write_bytes(merchant.private_pem)
    (work / "pub_key.pem").write_bytes(fake.platform.public_pem)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SOCIAL_MALL_DATABASE_URL=pg.url, SOCIAL_MALL_REDIS_URL=rd.url,
               SOCIAL_MALL_DATA_DIR=str(work / "var"), SOCIAL_MALL_LOG_FORMAT="json",
               SOCIAL_MALL_WECHAT_TOKEN=TOKEN, SOCIAL_MALL_WECHAT_APP_ID=APP_ID,
               SOCIAL_MALL_WECHAT_APP_SECRET=APP_SECRET, SOCIAL_MALL_WECHAT_AES_KEY=AES_KEY,
               SOCIAL_MALL_WECHAT_API_BASE=api.base_url, SOCIAL_MALL_SECRET_KEY=SECRET,
               SOCIAL_MALL_PUBLIC_BASE_URL=base, SOCIAL_MALL_SANDBOX_PAY="off",
               SOCIAL_MALL_DEMO_SHOWCASE="false", SOCIAL_MALL_EVENT_LOOP=args.loop)
    py = sys.executable
    for cmd in (["migrate"], ["seed-demo"]):
        subprocess.run([py, str(ROOT / "bot.py"), *cmd], env=env, check=True, capture_output=True, cwd=work)
    db = await asyncpg.connect(pg.url.replace("+asyncpg", ""))
    await db.execute("UPDATE skus SET stock = 100000")
    await db.execute(
        "INSERT INTO tenant_pay_accounts (tenant_id, api_version, mch_id, app_id, apiv3_key, apiv2_key, "
        "v2_sign_type, private_key_path, serial_no, platform_mode, platform_key_path, platform_key_id, base_url, "
        "enabled, created_at, updated_at) VALUES (1, 'v3', $1, $2, $3, '', 'MD5', $4, $5, 'public_key', $6, $7, "
        "$8, true, now(), now())",
        MCHID, APP_ID, APIV3_KEY, str(work / "apiclient_key.pem"), merchant.serial, str(work / "pub_key.pem"),
        fake.platform.serial, fake.base_url)
    stock0 = dict(await db.fetch("SELECT id, stock FROM skus"))
    await db.close()

    log = open(work / "serve.log", "w")
    server = subprocess.Popen([py, str(ROOT / "bot.py"), "serve", "--workers", str(args.workers),
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    wait_port(port)
    await wait_workers(server.pid, args.workers)
    tally = Tally()
    report: list[str] = []
    payments: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as http:
        wx = WeChat(http, f"{base}/wechat/mp/demo", tally)
        ready = await wait_browse_ok(wx, now(), timeout=60)
        print(f"serving after {ready:.1f} s", flush=True)
        load = [asyncio.create_task(browser(wx, f"o_chaos_browser_{i:013d}", stop)) for i in range(args.browsers)]
        load += [asyncio.create_task(buyer(wx, http, base, fake, f"o_chaos_buyer_{i:015d}", stop, payments))
                 for i in range(args.buyers)]
        await asyncio.sleep(args.phase)

        # 1. kill -9 the worker running a checkout step
        victim = "o_chaos_victim_0000000000000"
        # the victim buys what no other buyer does: only its step waits on that SKU's lock
        assert await to_confirmation(wx, victim, "龙井"), "the victim never reached the confirmation"
        lock = await asyncpg.connect(pg.url.replace("+asyncpg", ""))
        sku = await lock.fetchval("SELECT s.id FROM skus s JOIN products p ON p.id = s.product_id "
                                  "WHERE p.title LIKE '%龙井%' ORDER BY s.id LIMIT 1")
        tx = lock.transaction()
        await tx.start()
        await lock.execute("SELECT 1 FROM skus WHERE id = $1 FOR UPDATE", sku)
        began = now()
        wx.trace = True
        confirming = asyncio.create_task(confirm(wx, http, base, fake, victim, payments))
        killed = None
        while now() - began < 4 and killed is None:
            await asyncio.sleep(0.05)
            rows = await lock.fetch("SELECT client_port FROM pg_stat_activity "
                                    "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
            for row in rows:
                pid = pid_of_local_port(row["client_port"], worker_pids(server.pid))
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
        killed_at = now()
        await tx.rollback()
        await lock.close()
        tries = await confirming
        wx.trace = False
        back = await wait_workers(server.pid, args.workers)
        victim_orders = [o for o, u in tally.placed.items() if u == victim]
        report.append(f"kill -9: worker {killed} killed {killed_at - began:.2f} s into the victim's 「确认」 "
                      f"(blocked in its step); answered on try {tries}, orders from it: {len(victim_orders)}; "
                      f"worker restarted by the supervisor in {back:.2f} s")
        print(report[-1], flush=True)
        await asyncio.sleep(args.phase)

        # 2. restart Redis (empty)
        t0 = now()
        rd.restart()
        rec = await wait_browse_ok(wx, t0)
        report.append(f"redis restart (all keys lost): browse answered on the first try again {rec:.2f} s after "
                      "the kill")
        print(report[-1], flush=True)
        await asyncio.sleep(args.phase)

        # 3. restart PostgreSQL
        t0 = now()
        await asyncio.to_thread(pg.restart)
        down = now() - t0
        rec = await wait_browse_ok(wx, t0)
        report.append(f"postgres restart (fast, {down:.2f} s down): browse answered on the first try again "
                      f"{rec:.2f} s after the stop began")
        print(report[-1], flush=True)
        await asyncio.sleep(args.phase)

        stop.set()
        await asyncio.gather(*load)
        await asyncio.gather(*payments)
        # the outbox: kicked runs, the leader's 5 s sweep, and the rows the killed worker had
        # leased, delivered again once their 60 s lease runs out
        drain = await outbox_drained(pg.url, since=killed_at)
        report.append(f"outbox drained {drain:.1f} s after the kill (rows the killed worker had leased wait "
                      "out their 60 s lease)")
    workers_now = len(worker_pids(server.pid))
    server.send_signal(signal.SIGTERM)
    exit_code = server.wait(timeout=60)
    log.close()

    db = await asyncpg.connect(pg.url.replace("+asyncpg", ""))
    orders = {r["order_no"]: r for r in await db.fetch(
        "SELECT o.order_no, o.status, o.total_fen, o.paid_fen, m.id AS member FROM orders o "
        "JOIN members m ON m.id = o.member_id")}
    paid_in_fake = {no for no, o in fake.orders.items() if o.state == "SUCCESS"}
    lost_paid = sorted(no for no in paid_in_fake if orders.get(no) is None or orders[no]["status"] != "paid"
                       or orders[no]["paid_fen"] != orders[no]["total_fen"])
    applied = Counter(r["out_trade_no"] for r in await db.fetch(
        "SELECT out_trade_no FROM pay_notifications WHERE verdict = 'applied'"))
    twice_applied = sorted(no for no, n in applied.items() if n > 1)
    pays = Counter(r["order_id"] for r in await db.fetch("SELECT order_id FROM payments WHERE status = 'paid'"))
    pay_statuses = Counter(r["status"] for r in await db.fetch("SELECT status FROM payments"))
    two_payments = sum(1 for n in pays.values() if n > 1)
    by_member = Counter(r["member"] for r in orders.values())
    ident = dict(await db.fetch("SELECT external_id, member_id FROM member_identities"))
    over = {u: (by_member[ident.get(u, -1)], n) for u, n in tally.confirms.items()
            if by_member[ident.get(u, -1)] > n}
    held = dict(await db.fetch(
        "SELECT l.sku_id, sum(l.qty) FROM order_lines l JOIN orders o ON o.id = l.order_id "
        "WHERE o.status <> 'cancelled' GROUP BY l.sku_id"))
    stock1 = dict(await db.fetch("SELECT id, stock FROM skus"))
    stock_off = {s: (stock0[s] - stock1[s], held.get(s, 0)) for s in stock0 if stock0[s] - stock1[s] != held.get(s, 0)}
    outbox = Counter(r["status"] for r in await db.fetch("SELECT status FROM outbox"))
    pending = [dict(r) for r in await db.fetch(
        "SELECT topic, subscriber, attempts, next_attempt_at - now() AS due_in, left(last_error, 120) AS error "
        "FROM outbox WHERE status <> 'done' ORDER BY id LIMIT 5")]
    await db.close()

    print("\n== chaos run: bot.py serve --workers %d, %d buyers + %d browsers, loop %s" % (
        args.workers, args.buyers, args.browsers, args.loop))
    for line in report:
        print(" ", line)
    total = tally.first_try + tally.retried + tally.lost
    print(f"  messages: {total} sent ({tally.busy} answered 「{BUSY}」: the step failed on a database or Redis "
          f"error while it restarted); answered on the first try {tally.first_try}, on a retry {tally.retried} "
          f"(of them 'success'/empty: {tally.success_only}); lost after 3 tries: {tally.lost} {tally.lost_texts[:8]}")
    print(f"  buyers: {sum(tally.confirms.values())} 「确认」 sent, {len(tally.placed)} orders answered, "
          f"{len(orders)} orders in the database; flows started over (conversation lost): {tally.restarts}")
    print(f"  paid: {len(paid_in_fake)} paid at the fake WeChat Pay, notifies acknowledged {len(tally.paid_acked)}, "
          f"notify tries {sum(tally.notify_tries.values())}; lost paid orders: {len(lost_paid)} {lost_paid[:5]}")
    print(f"  duplicate effects: members with more orders than 「确认」: {len(over)} {dict(list(over.items())[:3])}; "
          f"notifies applied twice: {len(twice_applied)}; orders with two succeeded payments: {two_payments}")
    print(f"  payments by status: {dict(pay_statuses)}")
    print(f"  stock: SKUs whose decrement differs from the live orders' quantities: {len(stock_off)} {stock_off}")
    print(f"  outbox rows by status: {dict(outbox)}; not done (first 5): {pending}")
    print(f"  customer-service pushes delivered by the fake WeChat API: {len(api.delivered)}")
    print(f"  workers at the end: {workers_now}/{args.workers}; supervisor exit code on SIGTERM: {exit_code}")
    ok = (not lost_paid and not over and not twice_applied and not two_payments and not stock_off
          and outbox.get("dead", 0) == 0 and tally.lost == 0 and workers_now == args.workers and exit_code == 0)
    print("  VERDICT:", "consistent" if ok else "INCONSISTENT", f"(logs: {work / 'serve.log'})")
    await api_runner.cleanup()
    await pay_runner.cleanup()
    pg.close()
    rd.close()
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--buyers", type=int, default=8)
    p.add_argument("--browsers", type=int, default=8)
    p.add_argument("--phase", type=float, default=8.0, help="seconds of load between the faults")
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
