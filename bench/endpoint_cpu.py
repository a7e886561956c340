#!/usr/bin/env python3
"""Cost per message of the official-account endpoint, in one process and without sockets:
the low-noise companion of bench/wechat_endpoint.py, for A/B comparisons of a change.

    .venv/bin/python bench/endpoint_cpu.py                        # baseline and app-pg, CPU µs per message
    .venv/bin/python bench/endpoint_cpu.py --callgrind            # instructions per message (valgrind)
    .venv/bin/python bench/endpoint_cpu.py --only app-pg --callgrind --root /tmp/other-checkout
    .venv/bin/python bench/endpoint_cpu.py --only app-pg --callgrind --compare-without insights
        # each app kind also with that module switched off ("app-pg-without-insights"), in the same run
    .venv/bin/python bench/endpoint_cpu.py --only app-pg --callgrind --steps browse,first
        # first contact: a member's browse message (逛逛) against a new user's first one
        # (--new-users of them, the outbox's deliveries they cause drained and counted too)

The real aiohttp server stack (HTTP parser, router, handler, response writer) is fed from
memory: 64 in-memory connections in a closed loop, each writing its pre-signed request
and waiting for the whole response. Only the stores are real (PostgreSQL + Redis for
app-pg, a SQLite file + the in-process store for app-sqlite). The baseline is the same
bare aiohttp + wechatpy echo app as in wechat_endpoint.py.

Why: this machine's speed drifts ±15% from minute to minute, so two CPU-time runs of the
same code differ more than most single changes do. Under `--callgrind` the figure is
instructions executed in the timed part (valgrind's callgrind, instrumentation switched
on only around it), which repeats within ~0.5% run to run: a change's effect can be read
off one pair of runs. Instructions are not time (cache misses, syscalls and the kernel's
share are not in them), so the throughput target is still judged by wechat_endpoint.py.

For the count to depend on the code only, nothing in the timed part may depend on how long
it takes: the app runs with caches that don't expire and a reply budget that never runs
out (under valgrind a run is ~50x slower: catalog reloads and slow-path pushes would
otherwise be counted in proportion to how loaded the machine was), and a run whose
replies were not all passive XML replies is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

KINDS = ("baseline", "app-pg", "app-sqlite")


# -- in-memory connections ------------------------------------------------------------

class _Transport(asyncio.Transport):
    """What aiohttp's protocol writes to: hands every byte to its connection."""

    def __init__(self, conn: _Conn) -> None:
        super().__init__()
        self.conn, self.closing = conn, False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: Any) -> None:
        self.conn.received(bytes(data))

    def writelines(self, lines: Any) -> None:
        self.conn.received(b"".join(lines))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


class _Conn:
    """One keep-alive connection: send a request, wait for its whole response."""

    def __init__(self, protocol: Any) -> None:
        self.protocol, self.buf = protocol, b""
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        protocol.connection_made(_Transport(self))

    def received(self, data: bytes) -> None:
        self.buf += data
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if len(rest) >= length:
            self.buf = rest[length:]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((int(head.split(b" ", 2)[1]), rest[:length]))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.protocol.data_received(request)
        return await self.waiter


# -- the run --------------------------------------------------------------------------

async def _app(kind: str, work: Path, cleanup: list[Any]) -> Any:
    import _common as C
    import wechat_endpoint as W

    kind, _, without = kind.partition("-without-")
    if kind == "baseline":
        return W.baseline_app()
    from bot import build_app

    prefix = f"cpu{uuid.uuid4().hex[:6]}:"
    if kind == "app-pg":
        schema = f"bench_cpu_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        db_url, redis_url = C.PG_URL, C.REDIS_URL
        cleanup.append(lambda: C.pg_drop_schema(C.PG_URL, schema))
        cleanup.append(lambda: C.redis_drop_prefix(C.REDIS_URL, prefix))
    else:
        schema, db_url, redis_url = "", f"sqlite+aiosqlite:///{work / 'bench.db'}", ""
    # The per-worker caches (catalog 10 s, tenant and pay account 30 s) must not expire inside
    # the timed part: under valgrind it runs ~50x slower, and each expiry's SQL would add
    # instructions in proportion to how slow the run happened to be. At the real bench's
    # rates an expiry is one read per 40,000+ messages.
    import handlers.context
    import adapters.wechatpay_v3

    handlers.context.TENANT_CACHE_SECONDS = adapters.wechatpay_v3.ACCOUNT_CACHE_SECONDS = 86400.0
    settings = await W.app_settings(db_url, schema, redis_url, prefix, work, cleanup, [without] if without else [])
    # Likewise the 3 s reply budget: 64 messages in flight under valgrind wait longer than
    # that, and the slow path (answer "success", push the replies) would be measured instead.
    settings = settings.model_copy(update={"catalog_cache_seconds": 86400, "reply_budget_seconds": 3600.0})
    # And the message claim's 4 s lease (flows/runner.py CLAIM_LEASE): a first message waits on
    # the member desk and the step's commit before its claim is confirmed; under valgrind that
    # can pass 4 s, the lease runs out, and the step is refused as another handler's (a reply
    # that is not passive: the run was refused for it).
    import flows.runner

    if not getattr(flows.runner.FlowRunner.__init__, "bench_lease", False):
        plain_init = flows.runner.FlowRunner.__init__

        def long_lease(self: Any, *a: Any, **k: Any) -> None:
            k.setdefault("claim_lease", 3600.0)
            plain_init(self, *a, **k)
        long_lease.bench_lease = True  # type: ignore[attr-defined]
        flows.runner.FlowRunner.__init__ = long_lease  # type: ignore[method-assign]
    return build_app(settings, public_base_url="http://127.0.0.1", auto_setup=True)


STEPS = ("mix", "browse", "first")


async def run(kind: str, rounds: int, conns: int, users: int, handshake: str,
              step: str = "mix", new_users: int = 0) -> dict[str, Any]:
    """`rounds` timed rounds of 10 messages per user; with `handshake` (a folder), wait for
    the parent to switch callgrind's instrumentation on before them and off after.
    `step`: mix (分类 and a category number, alternating), browse (逛逛 from members),
    first (逛逛 once from each of `new_users` users never seen, per round; the outbox's
    deliveries they cause are drained inside the timed part)."""
    import wechat_endpoint as W
    from aiohttp import web

    from handlers.mp_simulator import MPSimulator

    cleanup: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="endpoint_cpu_") as tmp:
        app = await _app(kind, Path(tmp), cleanup)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sim = MPSimulator(None, "", token=W.TOKEN, app_id=W.APP_ID, aes_key=W.AES_KEY)  # type: ignore[arg-type]
        conn_list = [_Conn(runner.server()) for _ in range(conns)]  # type: ignore[misc]
        turn: dict[str, int] = {}

        def requests(w: int, count: int, how: str = "mix", fresh: int = -1) -> list[bytes]:
            """As wechat_endpoint.py: each user alternates 分类 and a category number (mix),
            sends 逛逛 (browse), or is new (first: round `fresh`'s new users, one message each)."""
            if how == "first":
                mine = [f"o_cpu_new{fresh}_{i:05d}" for i in range(w, new_users, conns)]
                count = len(mine)
            else:
                mine = [f"o_cpu_user_{i:05d}" for i in range(w, users, conns)]
            out, ts = [], int(time.time())
            for i in range(count):
                user = mine[i % len(mine)]
                if how in ("browse", "first"):
                    text = W.BROWSE
                elif (i // len(mine)) % 2 == 0:
                    text = "分类"
                else:
                    k = turn[user] = turn.get(user, -1) + 1
                    text = str(k % len(W.CATEGORIES) + 1)
                query, body = sim.signed_request(sim.text_xml(user, text, created=ts), user=user,
                                                 timestamp=ts, nonce=secrets.token_hex(5))
                head = (f"POST /wechat/mp/{W.TENANT}?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n")
                out.append(head.encode() + body)
            return out

        bad = 0

        async def drive(conn: _Conn, batch: list[bytes]) -> None:
            nonlocal bad
            for request in batch:
                status, body = await conn.exchange(request)
                bad += status != 200 or not body.startswith(b"<xml")

        per_user = max(1, users // conns)
        for _ in range(2):  # warm-up: every user's member and conversation exist
            await asyncio.gather(*(drive(c, requests(w, per_user * 2)) for w, c in enumerate(conn_list)))
        from handlers.context import SERVICES

        if not kind.startswith("baseline"):
            # what the warm-up's first contacts left to the outbox (welcome coupons, member
            # records) is delivered now: the timed part measures browse steps only
            await app[SERVICES].outbox.drain()
            while await app[SERVICES].outbox.run_once():
                pass
        timed = [[requests(w, per_user * 10, step, r) for w in range(conns)] for r in range(rounds)]
        bad = 0
        if handshake:
            _signal(handshake, "ready")
        cpu: list[float] = []
        count = 0
        prof = None
        if profile := os.environ.get("ENDPOINT_CPU_PROFILE"):   # a file: cProfile of the timed part (pstats)
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        for batches in timed:
            gc.collect()
            c0 = time.process_time()
            await asyncio.gather(*(drive(c, b) for c, b in zip(conn_list, batches)))
            if step == "first":  # what the first contacts left to the outbox, delivered
                await app[SERVICES].outbox.drain()
                while await app[SERVICES].outbox.run_once():
                    pass
            n = sum(len(b) for b in batches)
            cpu.append(1e6 * (time.process_time() - c0) / n)
            count += n
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}.{kind}.{step}")
        if handshake:
            _signal(handshake, "done", f"{count} {bad}")
        await runner.cleanup()
        for fn in cleanup:
            await fn()
    return {"kind": kind, "messages": count, "bad": bad, "cpu_us": cpu}


def _signal(folder: str, name: str, text: str = "") -> None:
    """Tell the parent (callgrind mode) and wait for its go-ahead."""
    Path(folder, f"{name}.tmp").write_text(text)
    Path(folder, f"{name}.tmp").rename(Path(folder, name))  # whole, never half-written
    go = Path(folder, "go")
    while not go.exists():
        time.sleep(0.05)
    go.unlink()


def callgrind(kind: str, step: str, args: argparse.Namespace) -> tuple[int, int]:
    """(instructions, messages) of the timed rounds, run under valgrind's callgrind."""
    if shutil.which("valgrind") is None:
        sys.exit("--callgrind needs valgrind (Debian's package valgrind)")
    with tempfile.TemporaryDirectory(prefix="endpoint_cpu_cg_") as folder:
        out = Path(folder, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, __file__, "_child", kind, "--rounds", str(args.rounds),
               "--conns", str(args.conns), "--users", str(args.users), "--root", args.root,
               "--handshake", folder, "--steps", step, "--new-users", str(args.new_users)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def at(name: str, switch: str) -> str:
            marker = Path(folder, name)
            while not marker.exists():
                if proc.poll() is not None:
                    sys.exit(f"{kind}: the run under valgrind ended early:\n{proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
                time.sleep(0.2)
            text = marker.read_text()
            marker.unlink()
            subprocess.run(["callgrind_control", "-i", switch, str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            Path(folder, "go").touch()
            return text

        at("ready", "on")
        messages, bad = map(int, at("done", "off").split())
        if bad:
            sys.exit(f"{kind}: {bad} of {messages} replies were not a passive XML reply")
        proc.wait()
        if keep := os.environ.get("ENDPOINT_CPU_KEEP"):   # a folder: keep the profile (callgrind_annotate)
            shutil.copy(out, Path(keep) / f"callgrind.{kind}.{step}.out")
        totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
        return int(totals.split()[1]), messages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="", help=argparse.SUPPRESS)  # "_child": one run, for callgrind
    p.add_argument("child_kind", nargs="?", default="", help=argparse.SUPPRESS)
    p.add_argument("--only", default="baseline,app-pg", help="comma-separated: " + ",".join(KINDS))
    p.add_argument("--rounds", type=int, default=0, help="timed rounds of 10 messages per user "
                   "(default 8, or 1 with --callgrind)")
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--users", type=int, default=320)
    p.add_argument("--callgrind", action="store_true", help="instructions per message (slow: ~2 min per kind)")
    p.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                   help="the checkout whose code runs (to compare two trees with one bench)")
    p.add_argument("--handshake", default="", help=argparse.SUPPRESS)
    p.add_argument("--steps", default="mix", help="comma-separated: " + ",".join(STEPS) + " (mix: 分类 and a "
                   "category number; browse: 逛逛 from members; first: 逛逛 from new users, outbox included)")
    p.add_argument("--new-users", type=int, default=640, help="first: new users per timed round (640)")
    p.add_argument("--compare-without", default="", metavar="MODULE",
                   help="also run each app kind with MODULE switched off, first (its cost per message)")
    args = p.parse_args()
    args.rounds = args.rounds or (1 if args.callgrind else 8)
    sys.path[:0] = [str(Path(args.root) / "bench"), args.root]
    if args.mode == "_child":
        asyncio.run(run(args.child_kind, args.rounds, args.conns, args.users, args.handshake,
                        args.steps, args.new_users))
        return
    steps = [x for x in args.steps.split(",") if x]
    if bad_steps := set(steps) - set(STEPS):
        sys.exit(f"unknown steps: {', '.join(sorted(bad_steps))}")
    kinds = [k for k in args.only.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        sys.exit(f"unknown: {', '.join(sorted(unknown))}")
    if args.compare_without:
        kinds = [x for k in kinds for x in ((f"{k}-without-{args.compare_without}", k) if k != "baseline" else (k,))]
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass
    print(f"# endpoint_cpu: {args.conns} in-memory connections, {args.users} users, code from {args.root}")
    results: dict[str, float] = {}
    by_step: dict[tuple[str, str], float] = {}
    for kind in kinds:
        for step in steps if kind != "baseline" else steps[:1]:
            name = kind if step == "mix" or kind == "baseline" else f"{kind}/{step}"
            if args.callgrind:
                instructions, messages = callgrind(kind, step, args)
                cost = instructions / messages
                print(f"{name:12} {cost:12,.0f} instructions per message ({messages} messages)", flush=True)
            else:
                res = asyncio.run(run(kind, args.rounds, args.conns, args.users, "", step, args.new_users))
                cost = statistics.median(res["cpu_us"])
                print(f"{name:12} {cost:8.1f} µs CPU per message (median of {args.rounds}; "
                      f"min {min(res['cpu_us']):.1f}, max {max(res['cpu_us']):.1f}), bad replies {res['bad']}",
                      flush=True)
            by_step[(kind, step)] = cost
            if step == steps[0] or kind == "baseline":
                results[kind] = cost
    for kind in kinds:
        warm, first = by_step.get((kind, "browse")), by_step.get((kind, "first"))
        if warm and first:
            print(f"{'PASS' if first <= 2 * warm else 'FAIL'}  {kind} first contact: a new user's first message "
                  f"costs {first / warm:.2f}× a member's browse step ({first:,.0f} vs {warm:,.0f}, outbox "
                  f"included)  [target ≤ 2×]")
    for kind, cost in results.items():
        off = results.get(f"{kind}-without-{args.compare_without}") if args.compare_without else None
        if off:
            rise = cost / off - 1
            print(f"{'PASS' if rise < 0.05 else 'FAIL'}  {kind}: {args.compare_without} on costs {rise:+.1%} per "
                  f"message ({cost:,.1f} vs {off:,.1f})  [target < +5%]")
    if "baseline" in results:
        for kind, cost in results.items():
            if kind != "baseline":
                print(f"{kind} costs {cost / results['baseline']:.2f}× the baseline per message "
                      f"(baseline/app {100 * results['baseline'] / cost:.1f}%)")


if __name__ == "__main__":
    main()
