"""Key-value store: conversation state, de-duplication, locks, rate limits, token cache.

Two implementations of one protocol: `MemoryKV` (the embedded default, one process) and
`RedisKV` (many workers). Values are `str`; TTLs are seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


# the port (its protocol, answers and errors) is the core's: social_mall/kv.py
from social_mall.kv import DONE as DONE, LEASE as LEASE, Claimed as Claimed  # noqa: E402
from social_mall.kv import KVLock as KVLock, KVStore as KVStore, LockTimeoutError as LockTimeoutError  # noqa: E402


class _Lock:
    """A lease lock on top of set_nx + compare-and-delete, shared by both stores."""

    def __init__(self, store: "MemoryKV | RedisKV", key: str, ttl: float, wait: float) -> None:
        self.store, self.key, self.ttl, self.wait = store, f"lock:{key}", ttl, wait
        self.token = secrets.token_hex(8)

    async def __aenter__(self) -> None:
        deadline = time.monotonic() + self.wait
        delay = 0.005
        while not await self.store.set_nx(self.key, self.token, self.ttl):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(self.key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def __aexit__(self, *exc: object) -> None:
        await self.store.delete_if(self.key, self.token)


class MemoryKV:
    """In-process store for the embedded default (one worker). TTLs expire lazily."""

    EVICT_AT = 100_000  # entries past which a write first sweeps out the expired ones

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._evict_at = self.EVICT_AT

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    def _put(self, key: str, value: str, ttl: float | None) -> None:
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)
        if len(self._data) > self._evict_at:
            self._evict()

    def _evict(self) -> None:
        """Sweep out expired entries. The next sweep waits until the store has doubled, so
        a store full of live keys (an hour of de-duplication claims) is not swept on every
        write: the cost per write stays constant."""
        now = time.monotonic()
        for k in [k for k, (_, e) in self._data.items() if e is not None and e <= now]:
            del self._data[k]
        self._evict_at = max(self.EVICT_AT, 2 * len(self._data))

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._put(key, value, ttl)

    async def set_nx(self, key: str, value: str, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def delete_if(self, key: str, value: str) -> None:
        if self._live(key) == value:
            del self._data[key]

    async def incr(self, key: str, ttl: float) -> int:
        current = self._live(key)
        if current is None:
            self._put(key, "1", ttl)
            return 1
        n = int(current) + 1
        self._data[key] = (str(n), self._data[key][1])
        return n

    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl)
        return True

    def _spent_elsewhere(self, ticket: str, claim: str) -> bool:
        if not ticket:
            return False
        spent = self._live(ticket)
        return spent is not None and spent != claim

    def _spend(self, ticket: str, claim: str, ttl: float) -> None:
        if ticket and self._live(ticket) is None:
            self._put(ticket, claim, max(ttl, 0.001))  # a TTL of 0 would keep it for ever

    async def claim_and_get(self, claim: str, claim_ttl: float, key: str, ticket: str = "",
                            ticket_ttl: float = 0.0) -> tuple[Claimed, str | None]:
        if self._spent_elsewhere(ticket, claim):
            return Claimed.SPENT, None
        self._spend(ticket, claim, ticket_ttl)
        held = self._live(claim)
        if held is not None:
            return (Claimed.LEASED if held == LEASE else Claimed.REPEAT), None
        self._put(claim, LEASE, claim_ttl)
        return Claimed.WROTE, self._live(key)

    async def claim_and_cas(self, claim: str, claim_ttl: float, key: str, expected: str | None,
                            value: str, ttl: float, ticket: str = "", ticket_ttl: float = 0.0) -> Claimed:
        if claim and self._spent_elsewhere(ticket, claim):
            return Claimed.SPENT
        held = self._live(claim) if claim else None
        if held is not None:
            self._spend(ticket, claim, ticket_ttl)
            return Claimed.LEASED if held == LEASE else Claimed.REPEAT
        if self._live(key) != expected:
            return Claimed.STALE
        if claim:
            self._put(claim, DONE, claim_ttl)
            self._spend(ticket, claim, ticket_ttl)
        self._put(key, value, ttl)
        return Claimed.WROTE

    async def cas_and_confirm(self, key: str, expected: str | None, value: str, ttl: float,
                              claim: str, claim_ttl: float) -> bool:
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl)
        self._put(claim, DONE, claim_ttl)
        return True

    async def confirm(self, claim: str, ttl: float) -> None:
        self._put(claim, DONE, ttl)

    def lock(self, key: str, ttl: float = 10.0, wait: float = 10.0) -> _Lock:
        return _Lock(self, key, ttl, wait)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


_CAS = """
local cur = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and cur == false) or (ARGV[1] ~= '' and cur == string.sub(ARGV[1], 2)) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# A ticket (KEYS[3], when given) holds the key of the claim it was spent on. A claim holds
# '0' while it is a lease, '1' once confirmed (LEASE, DONE).
# KEYS[1]: the claim; KEYS[2]: the value's key. ARGV: the claim's TTL, the ticket's TTL.
_CLAIM_GET = """
if KEYS[3] then
  local spent = redis.call('GET', KEYS[3])
  if spent and spent ~= KEYS[1] then return {3, false} end
  if not spent then redis.call('SET', KEYS[3], KEYS[1], 'PX', ARGV[2]) end
end
local held = redis.call('GET', KEYS[1])
if held then
  if held == '0' then return {4, false} end
  return {0, false}
end
redis.call('SET', KEYS[1], '0', 'PX', ARGV[1])
return {1, redis.call('GET', KEYS[2])}
"""
# KEYS[1]: the value's key; KEYS[2], when given: the claim; KEYS[3], when given: the ticket.
# ARGV as _CAS, then the claim's TTL and the ticket's.
_CLAIM_CAS = """
if KEYS[3] then
  local spent = redis.call('GET', KEYS[3])
  if spent and spent ~= KEYS[2] then return 3 end
end
if KEYS[2] then
  local held = redis.call('GET', KEYS[2])
  if held then
    if KEYS[3] then redis.call('SET', KEYS[3], KEYS[2], 'NX', 'PX', ARGV[5]) end
    if held == '0' then return 4 end
    return 0
  end
end
local cur = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and cur == false) or (ARGV[1] ~= '' and cur == string.sub(ARGV[1], 2)) then
  if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[4]) end
  if KEYS[3] then redis.call('SET', KEYS[3], KEYS[2], 'NX', 'PX', ARGV[5]) end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 2
"""
# KEYS[1]: the value's key, KEYS[2]: the claim. ARGV as _CAS, then the claim's TTL.
_CAS_CONFIRM = """
local cur = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and cur == false) or (ARGV[1] ~= '' and cur == string.sub(ARGV[1], 2)) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  return 1
end
return 0
"""
_DEL_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


_Batch = list[tuple[tuple[str | int, ...], "asyncio.Future[Any]"]]  # commands and their callers


class _Batcher:
    """Commands travel to Redis in pipelines, one round trip for many callers.

    A chat message makes one or two Redis calls; with many messages in flight, redis-py's
    cost per call (connection checkout, packing, a send and a read) dominates the whole
    request. Here calls queue up, and a sender writes everything queued in one go, then
    reads the replies in order; each caller still gets its own result or its own error.
    Order between two calls of one caller is kept (a caller awaits each call before the
    next).

    At most `max_in_flight` pipelines are in flight (one by default). While one is out,
    new calls wait for it, and the sender takes them all when its replies are in: the
    busier the worker, the bigger each pipeline, and the fewer writes, reads and wake-ups
    per call (under the chat benchmark's load, ~20 calls per round trip instead of ~8 when
    every event-loop turn sent its own). Redis runs commands one at a time anyway; what a
    caller waits is at most one round trip more.

    The batcher keeps its own connections: redis-py's blocking pool costs more per
    checkout (locks, a readability probe, metrics) than a whole batch's I/O, and with
    `socket_timeout` set it starts a task per write and a timer per reply. Here one
    deadline covers a batch's write and reads; a connection idle for `IDLE_RECONNECT`
    seconds is reconnected before reuse (the server may have dropped it meanwhile), as
    the pool's checkout probe would."""

    IDLE_RECONNECT = 1.0

    def __init__(self, redis: Redis, max_in_flight: int = 1) -> None:
        self.redis = redis
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self.timeout: float | None = kwargs.get("socket_timeout")
        kwargs["socket_timeout"] = None  # the batch deadline applies instead
        self._connection_class: type[AbstractConnection] = pool.connection_class
        self._connection_kwargs = kwargs
        self._idle: list[tuple[float, AbstractConnection]] = []
        self.max_in_flight = max_in_flight
        self._senders = 0  # senders running; each has at most one pipeline in flight
        self._closed = False
        self._pending: _Batch = []
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, *args: str | int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._pending and self._senders < self.max_in_flight:
            loop.call_soon(self._start)  # the rest of this turn's calls join the batch
        self._pending.append((args, fut))
        return fut

    def _start(self) -> None:
        """A sender for what is pending, unless one in flight will take it when it returns."""
        if not self._pending or self._senders >= self.max_in_flight:
            return
        self._senders += 1
        task = asyncio.ensure_future(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        """Send everything pending, and again whatever queued meanwhile, until nothing is.
        The count of senders drops with no await after the last look at the queue, so a
        call made after it always starts a new sender."""
        conn: AbstractConnection | None = None
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                done = False
                try:
                    if conn is None:
                        conn = await self._connection()
                    if self.timeout is None:
                        await self._exchange(conn, batch)
                    else:
                        async with asyncio.timeout(self.timeout):
                            await self._exchange(conn, batch)
                    done = True
                except TimeoutError:  # the batch deadline: reported as redis-py reports its own
                    _fail(batch, RedisTimeoutError(f"Timeout talking to Redis ({self.timeout}s)"))
                except Exception as exc:  # noqa: BLE001 - every caller still waiting hears of it
                    _fail(batch, exc)
                finally:
                    if not done:  # failed or cancelled mid-exchange: the stream is in an unknown state
                        _fail(batch, ConnectionError("Redis pipeline interrupted"))
                        lost, conn = conn, None
                        if lost is not None:
                            await lost.disconnect()
        finally:
            self._senders -= 1
            if self._pending and not self._closed:  # cut off with calls queued behind it
                asyncio.get_running_loop().call_soon(self._start)
            if conn is not None:
                if self._closed:
                    await conn.disconnect()
                else:
                    self._idle.append((time.monotonic(), conn))

    async def _connection(self) -> AbstractConnection:
        """An idle connection (reconnected if idle too long) or a new one; it connects on
        its first send."""
        if not self._idle:
            return self._connection_class(**self._connection_kwargs)
        since, conn = self._idle.pop()
        if time.monotonic() - since > self.IDLE_RECONNECT:
            await conn.disconnect()
        return conn

    @staticmethod
    async def _exchange(conn: AbstractConnection, batch: _Batch) -> None:
        """One write of every command, then the replies in order: what redis-py's pipeline
        does, without its per-command bookkeeping (reply callbacks, command stack), which
        the store's methods don't use: they read raw replies."""
        await conn.send_packed_command(b"".join([_pack(args) for args, _ in batch]), check_health=False)
        for _, fut in batch:
            try:
                result: Any = await conn.read_response()
            except ResponseError as exc:  # this command's error reply; the stream is intact
                result = exc
            if fut.done():  # the caller was cancelled
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    async def close(self) -> None:
        """Disconnect the idle connections; a sender still running disconnects its own."""
        self._closed = True
        idle, self._idle = self._idle, []
        for _, conn in idle:
            await conn.disconnect()


# A command in RESP (an array of bulk strings), packed in C by hiredis (the reply parser
# redis-py uses; a dependency). Packing the compare-and-set's nine arguments in Python was
# ~260 bytecodes per chat message.
# (hiredis' stub types the argument as a 1-tuple; it takes any length)
_pack = cast(Callable[[tuple[str | int, ...]], bytes], hiredis.pack_command)


def _fail(batch: _Batch, exc: Exception) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


class RedisKV:
    """Redis-backed store: every worker sees the same state. Keys share one prefix.
    Calls go through a `_Batcher` (one pipeline per event-loop turn)."""

    def __init__(self, url: str, prefix: str = "sm:", max_connections: int = 64) -> None:
        # A blocking pool: past max_connections a caller waits for a free connection
        # instead of failing (redis-py's default pool raises MaxConnectionsError).
        pool = BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=10
        )
        self.redis: Redis = Redis(connection_pool=pool)
        self.prefix = prefix
        self._batch = _Batcher(self.redis)
        self._cas = self.redis.register_script(_CAS)
        self._claim_get = self.redis.register_script(_CLAIM_GET)
        self._claim_cas = self.redis.register_script(_CLAIM_CAS)
        self._cas_confirm = self.redis.register_script(_CAS_CONFIRM)
        self._del_if = self.redis.register_script(_DEL_IF)
        self._incr = self.redis.register_script(_INCR)

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def _eval(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await self._batch.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a fresh or flushed server: redis-py loads the script and retries
            return await script(keys=keys, args=args)

    async def get(self, key: str) -> str | None:
        value = await self._batch.call("GET", self._k(key))
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        if ttl:
            await self._batch.call("SET", self._k(key), value, "PX", int(ttl * 1000))
        else:
            await self._batch.call("SET", self._k(key), value)

    async def set_nx(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._batch.call("SET", self._k(key), value, "NX", "PX", int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self._batch.call("DEL", self._k(key))

    async def delete_if(self, key: str, value: str) -> None:
        await self._eval(self._del_if, [self._k(key)], [value])

    async def incr(self, key: str, ttl: float) -> int:
        return int(await self._eval(self._incr, [self._k(key)], [int(ttl * 1000)]))

    async def cas(self, key: str, expected: str | None, value: str, ttl: float) -> bool:
        # '' means "absent"; a present value travels with a one-character prefix.
        exp = "" if expected is None else "=" + expected
        return bool(await self._eval(self._cas, [self._k(key)], [exp, value, int(ttl * 1000)]))

    async def claim_and_get(self, claim: str, claim_ttl: float, key: str, ticket: str = "",
                            ticket_ttl: float = 0.0) -> tuple[Claimed, str | None]:
        keys = [self._k(claim), self._k(key)]
        if ticket:
            keys.append(self._k(ticket))
        verdict, value = await self._eval(self._claim_get, keys, [int(claim_ttl * 1000), _ms(ticket_ttl)])
        if verdict != Claimed.WROTE:
            return Claimed(int(verdict)), None
        return Claimed.WROTE, value.decode() if isinstance(value, bytes) else value

    async def claim_and_cas(self, claim: str, claim_ttl: float, key: str, expected: str | None,
                            value: str, ttl: float, ticket: str = "", ticket_ttl: float = 0.0) -> Claimed:
        keys = [self._k(key), self._k(claim)] if claim else [self._k(key)]
        if claim and ticket:
            keys.append(self._k(ticket))
        exp = "" if expected is None else "=" + expected
        return Claimed(int(await self._eval(self._claim_cas, keys, [exp, value, int(ttl * 1000),
                                                                     int(claim_ttl * 1000), _ms(ticket_ttl)])))

    async def cas_and_confirm(self, key: str, expected: str | None, value: str, ttl: float,
                              claim: str, claim_ttl: float) -> bool:
        exp = "" if expected is None else "=" + expected
        return bool(await self._eval(self._cas_confirm, [self._k(key), self._k(claim)],
                                     [exp, value, int(ttl * 1000), _ms(claim_ttl)]))

    async def confirm(self, claim: str, ttl: float) -> None:
        await self._batch.call("SET", self._k(claim), DONE, "PX", _ms(ttl))

    def lock(self, key: str, ttl: float = 10.0, wait: float = 10.0) -> _Lock:
        return _Lock(self, key, ttl, wait)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # noqa: BLE001 - health check reports, never raises
            return False

    async def close(self) -> None:
        await self._batch.close()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()


def _ms(seconds: float) -> int:
    """A TTL in milliseconds for PX, at least 1 (PX refuses 0)."""
    return max(1, int(seconds * 1000))


def open_kv(redis_url: str, prefix: str = "sm:") -> MemoryKV | RedisKV:
    return RedisKV(redis_url, prefix) if redis_url else MemoryKV()
