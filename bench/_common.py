"""Helpers shared by the bench scripts (not a test module, not part of the app).

Backends, schema/key clean-up, CPU accounting from /proc, percentiles, pyinstrument
summaries. Scripts in bench/ put the repository root on sys.path before importing this.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting -------------------------------------------------------------------

def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rindex(b")") + 2:].split()
    # after "pid (comm) ": state=0 ... utime=11 stime=12 (0-based from the state field)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_of_named(prefixes: tuple[str, ...]) -> dict[str, float]:
    """Summed CPU seconds of every process whose comm starts with one of `prefixes`
    (PostgreSQL backends, redis-server), including reaped children (cutime/cstime), so a
    backend that exits during the window still counts: approximate, other users' work on
    the same servers counts too."""
    out: dict[str, float] = defaultdict(float)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
        for p in prefixes:
            if comm.startswith(p):
                fields = raw[raw.rindex(b")") + 2:].split()
                out[p] += sum(int(x) for x in fields[11:15]) / CLK_TCK
                break
    return dict(out)


def pin(cpu: int | None) -> None:
    """Pin this process (call before it starts threads) to one core."""
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
    except (AttributeError, OSError):
        pass


# -- stats ------------------------------------------------------------------------------

def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


# -- backends -------------------------------------------------------------------------

async def pg_create_schema(url: str, schema: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await admin.dispose()


async def pg_drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def redis_drop_prefix(url: str, prefix: str) -> int:
    from redis.asyncio import Redis

    r = Redis.from_url(url)
    n = 0
    try:
        batch = []
        async for k in r.scan_iter(match=prefix + "*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                n += await r.delete(*batch)
                batch = []
        if batch:
            n += await r.delete(*batch)
    finally:
        await r.aclose()
    return n


# -- pyinstrument ---------------------------------------------------------------------

def _bucket(path: str, function: str) -> str:
    """Which library or project package a frame's own time belongs to."""
    if not path:
        return f"<{function}>"
    p = path.replace("\\", "/")
    if "site-packages/" in p:
        return p.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    root = str(ROOT).replace("\\", "/") + "/"
    if p.startswith(root):
        rel = p[len(root):]
        return rel.rsplit("/", 1)[0] + "/" if "/" in rel else rel
    if "/lib/python3" in p:
        mod = p.split("/lib/python3", 1)[1].split("/", 2)
        return "stdlib:" + (mod[1].removesuffix(".py") if len(mod) > 1 else "?")
    return p


def profile_summary(session: object, top_functions: int = 25) -> str:
    """Self time by package and the top functions by self time, from a pyinstrument session."""
    root = session.root_frame()  # type: ignore[attr-defined]
    if root is None:
        return "(empty profile)"
    by_pkg: dict[str, float] = defaultdict(float)
    by_fn: dict[str, float] = defaultdict(float)
    total = root.time or 1e-9
    # pyinstrument keeps a frame's own time in synthetic "[self]"-style leaf children:
    # charge those to the real frame above them
    stack = [(root, root)]
    while stack:
        fr, real = stack.pop()
        if fr.file_path is not None or fr is root:
            real = fr
        kids = fr.children
        self_t = fr.time - sum(c.time for c in kids)
        if self_t > 0:
            path = real.file_path or ""
            by_pkg[_bucket(path, real.function or "")] += self_t
            short = path.replace(str(ROOT) + "/", "")
            if "site-packages/" in short:
                short = short.split("site-packages/", 1)[1]
            by_fn[f"{real.function}  ({short}:{real.line_no})"] += self_t
        stack.extend((k, real) for k in kids)
    # inclusive time of the project's own functions (outermost call only), and the
    # SQLAlchemy work pyinstrument sees outside them (its sync half runs in greenlets)
    incl: dict[str, float] = defaultdict(float)
    root_str = str(ROOT) + "/"
    stack2 = [(root, frozenset())]
    while stack2:
        fr, seen = stack2.pop()
        path = fr.file_path or ""
        if path.startswith(root_str) and "/bench/" not in path and "/.venv/" not in path:
            name = f"{fr.function}  ({path[len(root_str):]})"
            if name not in seen:
                incl[name] += fr.time
                seen = seen | {name}
        stack2.extend((k, seen) for k in fr.children)
    lines = [f"sampled wall time {total:.2f}s; self time by package:"]
    for name, t in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:22]:
        lines.append(f"  {100 * t / total:5.1f}%  {name}")
    lines.append(f"top {top_functions} functions by self time:")
    for name, t in sorted(by_fn.items(), key=lambda kv: -kv[1])[:top_functions]:
        lines.append(f"  {100 * t / total:5.1f}%  {name}")
    lines.append("inclusive time of the project's functions (outermost calls; SQLAlchemy's greenlet-side"
                 " work is partly outside them):")
    for name, t in sorted(incl.items(), key=lambda kv: -kv[1])[:top_functions]:
        lines.append(f"  {100 * t / total:5.1f}%  {name}")
    return "\n".join(lines)


def machine_busy() -> dict[str, float]:
    """Busy CPU seconds (all cores and per core) from /proc/stat: to tell other load apart."""
    out: dict[str, float] = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]
            # user nice system idle iowait irq softirq steal
            out[name] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    return out


# -- PostgreSQL backends serving one of our processes ------------------------------------

def _socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(fd.path)
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def local_ports_to(pid: int, remote_port: int) -> set[int]:
    """Local TCP ports of `pid`'s connections to 127.0.0.1:`remote_port` (from /proc/net/tcp)."""
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote, inode = parts[1], parts[2], parts[9]
                    if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                        ports.add(int(local.rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


async def pg_backends_of(url: str, pid: int) -> set[int]:
    """Pids of the PostgreSQL backends serving `pid`'s connections (by client port)."""
    ports = local_ports_to(pid, 5432)
    if not ports:
        return set()
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(url)
    try:
        async with admin.connect() as conn:
            rows = (await conn.execute(text("SELECT pid, client_port FROM pg_stat_activity"))).all()
    finally:
        await admin.dispose()
    return {int(p) for p, port in rows if port in ports}


class BackendCpu:
    """CPU of the PostgreSQL backends that serve one process, across a window: backends
    alive at both ends count their difference, ones born during it count in full; ones
    that exit during the window are missed (pool churn is small)."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.start: dict[int, float] = {}

    def _sample(self, pids: set[int]) -> dict[int, float]:
        out = {}
        for p in pids:
            try:
                out[p] = proc_cpu_seconds(p)
            except OSError:
                pass
        return out

    async def begin(self) -> None:
        self.start = self._sample(await pg_backends_of(self.url, self.pid))

    async def end(self) -> float:
        now = self._sample(await pg_backends_of(self.url, self.pid))
        return sum(v - self.start.get(p, 0.0) for p, v in now.items())


def wait_quiet(max_wait: float, limit: float = 0.3) -> float:
    """Wait (up to max_wait s) until the machine is nearly idle: other people's test runs on
    a 2-core box would otherwise decide the figures. Returns the busy cores last seen."""
    import time

    deadline = time.monotonic() + max_wait
    while True:
        b0 = machine_busy()["cpu"]
        time.sleep(1.0)
        busy = machine_busy()["cpu"] - b0
        if busy <= limit or time.monotonic() >= deadline:
            return busy
