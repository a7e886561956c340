"""The admission store on Redis (social_mall/admission.py): one Lua script per operation,
so a reservation's checks and takes happen in one atomic step on the server, one round trip
(through the key-value store's pipelining batcher).

Keys (under the store's prefix): `adm:epoch` (the epoch: set when the first pool is loaded
after the server came up empty), `adm:{tenant}:{pool}` (a hash: gen, stock, limit, m:<member>
counts, r:<token> = "member:qty:seat", s:<seat> places left) and `adm:{tenant}:{pool}:exp`
(a sorted set: tokens by expiry in ms; a token held for good is not in it).
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from redis.commands.core import AsyncScript

from social_mall.admission import AdmissionStore, Held, MemoryAdmissionStore, PoolState, PoolTruth, Verdict
from storage.kv import KVStore, RedisKV

# the shared part: release one token (stock, member count, seat back; forget it)
_GIVE_BACK = """
local function give_back(t)
  local r = redis.call('HGET', KEYS[1], 'r:' .. t)
  if not r then return 0 end
  local m, q, s = string.match(r, '^([^:]*):([^:]*):(.*)$')
  redis.call('HINCRBY', KEYS[1], 'stock', tonumber(q))
  redis.call('HINCRBY', KEYS[1], 'm:' .. m, -tonumber(q))
  if s ~= '' then redis.call('HINCRBY', KEYS[1], 's:' .. s, 1) end
  redis.call('HDEL', KEYS[1], 'r:' .. t)
  redis.call('ZREM', KEYS[2], t)
  return 1
end
local function loaded()
  local epoch = redis.call('GET', KEYS[3])
  return epoch and redis.call('HGET', KEYS[1], 'gen') == epoch
end
"""

# KEYS: pool, exp, epoch. ARGV: member, qty, token, expires_ms, now_ms, seat, seat_cap
_RESERVE = _GIVE_BACK + """
if not loaded() then return {4, 0} end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, 20)
for _, t in ipairs(due) do give_back(t) end
local qty = tonumber(ARGV[2])
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock'))
if stock < qty then return {1, stock} end
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
local mk = 'm:' .. ARGV[1]
if limit > 0 and tonumber(redis.call('HGET', KEYS[1], mk) or '0') + qty > limit then return {2, stock} end
if ARGV[6] ~= '' then
  local sk = 's:' .. ARGV[6]
  redis.call('HSETNX', KEYS[1], sk, ARGV[7])
  if tonumber(redis.call('HGET', KEYS[1], sk)) < 1 then return {3, stock} end
  redis.call('HINCRBY', KEYS[1], sk, -1)
end
redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[1], mk, qty)
redis.call('HSET', KEYS[1], 'r:' .. ARGV[3], ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return {0, stock - qty}
"""

# KEYS: pool, exp, epoch. ARGV: token, member, qty, seat, hold_until_ms ('' = for good)
_CONFIRM = _GIVE_BACK + """
if not loaded() then return 0 end
local rk = 'r:' .. ARGV[1]
local found = redis.call('HEXISTS', KEYS[1], rk) == 1
if not found then
  local q = tonumber(ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'stock', -q)
  redis.call('HINCRBY', KEYS[1], 'm:' .. ARGV[2], q)
  if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[1], 's:' .. ARGV[4], -1) end
  redis.call('HSET', KEYS[1], rk, ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
end
if ARGV[5] == '' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1]) end
if found then return 1 end
return 2
"""

# KEYS: pool, exp, epoch. ARGV: token
_RELEASE = _GIVE_BACK + """
if not loaded() then return 0 end
return give_back(ARGV[1])
"""

# KEYS: pool, exp, epoch. ARGV: now_ms, limit
_SWEEP = _GIVE_BACK + """
if not loaded() then return 0 end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, t in ipairs(due) do give_back(t) end
return #due
"""

# KEYS: pool, exp, epoch, rebuild claim. ARGV: new epoch (if none yet), only-if-unloaded
# ('1'/''), claim to end ('' = none), stock, limit, then field/value pairs, then '|', then
# token/expiry pairs for the sorted set. Returns 1 when loaded, 0 when it was loaded already
# (only-if-unloaded: a prime or a rebuild that another loader beat). The claim ends either way.
_LOAD = _GIVE_BACK + """
if ARGV[3] ~= '' and redis.call('GET', KEYS[4]) == ARGV[3] then redis.call('DEL', KEYS[4]) end
if ARGV[2] ~= '' and loaded() then return 0 end
redis.call('SET', KEYS[3], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'gen', epoch, 'stock', ARGV[4], 'limit', ARGV[5])
local i = 6
while ARGV[i] ~= '|' do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
i = i + 1
while ARGV[i] do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  i = i + 2
end
return 1
"""

# KEYS: pool, exp, epoch, rebuild claim. ARGV: claim, lease_ms, force ('1'/'').
# One round trip for "is it loaded, and if not, may I load it": {0, ''} loaded already (and
# not forced), {1, ''} another holder is loading it, {2, claim} the caller loads it.
_CLAIM_LOAD = _GIVE_BACK + """
if ARGV[3] == '' and loaded() then return {0, ''} end
if redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ARGV[1]} end
return {1, ''}
"""


class RedisAdmissionStore:
    def __init__(self, kv: RedisKV) -> None:
        self.kv = kv
        r = kv.redis
        self._reserve = r.register_script(_RESERVE)
        self._confirm = r.register_script(_CONFIRM)
        self._release = r.register_script(_RELEASE)
        self._sweep = r.register_script(_SWEEP)
        self._load = r.register_script(_LOAD)
        self._claim_load = r.register_script(_CLAIM_LOAD)

    def _keys(self, tenant: int, pool: str) -> list[str]:
        base = self.kv._k(f"adm:{tenant}:{pool}")
        return [base, base + ":exp", self.kv._k("adm:epoch")]

    def _claim_key(self, tenant: int, pool: str) -> str:
        return f"adm:rebuild:{tenant}:{pool}"

    async def _run(self, script: AsyncScript, tenant: int, pool: str, args: list[str | int]) -> Any:
        return await self.kv._eval(script, self._keys(tenant, pool), args)

    async def reserve(self, tenant: int, pool: str, member: int, qty: int, token: str, expires_ms: int,
                      now_ms: int, seat: str = "", seat_cap: int = 0) -> tuple[Verdict, int]:
        verdict, left = await self._run(self._reserve, tenant, pool,
                                        [member, qty, token, expires_ms, now_ms, seat, seat_cap])
        return Verdict(int(verdict)), int(left)

    async def confirm(self, tenant: int, pool: str, token: str, member: int, qty: int, seat: str,
                      hold_until_ms: int | None) -> int:
        until: str | int = "" if hold_until_ms is None else hold_until_ms
        return int(await self._run(self._confirm, tenant, pool, [token, member, qty, seat, until]))

    async def release(self, tenant: int, pool: str, token: str) -> bool:
        return bool(await self._run(self._release, tenant, pool, [token]))

    async def sweep(self, tenant: int, pool: str, now_ms: int, limit: int = 500) -> int:
        return int(await self._run(self._sweep, tenant, pool, [now_ms, limit]))

    async def load(self, tenant: int, pool: str, truth: PoolTruth, *, claim: str = "",
                   if_unloaded: bool = False) -> bool:
        args: list[str | int] = [secrets.token_hex(8), "1" if if_unloaded else "", claim,
                                 truth.stock_left, truth.limit]
        for m, q in truth.members.items():
            if q:
                args += [f"m:{m}", q]
        seats_taken: dict[str, int] = {}
        for token, h in truth.held.items():
            args += [f"r:{token}", f"{h.member}:{h.qty}:{h.seat}"]
            if h.seat:
                seats_taken[h.seat] = seats_taken.get(h.seat, 0) + 1
        for seat, cap in truth.seats.items():
            args += [f"s:{seat}", cap - seats_taken.get(seat, 0)]
        args.append("|")
        for token, h in truth.held.items():
            if h.until_ms is not None:
                args += [token, h.until_ms]
        keys = self._keys(tenant, pool) + [self.kv._k(self._claim_key(tenant, pool))]
        if len(args) <= 256:   # a team's or a fresh pool's: small, through the batcher (one round trip)
            return bool(await self.kv._eval(self._load, keys, args))
        # straight to redis-py (not the batcher): a big load is rare and may be large
        return bool(await self._load(keys=keys, args=args))

    async def claim_load(self, tenant: int, pool: str, lease_seconds: float, force: bool = False) -> str | None:
        keys = self._keys(tenant, pool) + [self.kv._k(self._claim_key(tenant, pool))]
        verdict, claim = await self.kv._eval(self._claim_load, keys,
                                             [secrets.token_hex(8), int(lease_seconds * 1000), "1" if force else ""])
        if int(verdict) == 0:
            return None
        return (claim.decode() if isinstance(claim, bytes) else str(claim)) if int(verdict) == 2 else ""

    async def state(self, tenant: int, pool: str) -> PoolState:
        keys = self._keys(tenant, pool)
        r = self.kv.redis
        epoch = await r.get(keys[2])
        raw = {str(k): str(v) for k, v in (await r.hgetall(keys[0])).items()}
        if not epoch or raw.get("gen") != epoch:
            return PoolState(False)
        scored = cast(list[tuple[str, float]], await r.zrange(keys[1], 0, -1, withscores=True))
        expiry = {str(t): int(s) for t, s in scored}
        members = {int(k[2:]): int(v) for k, v in raw.items() if k.startswith("m:")}
        held: dict[str, Held] = {}
        for k, v in raw.items():
            if k.startswith("r:"):
                m, q, s = v.split(":", 2)
                held[k[2:]] = Held(int(m), int(q), s, expiry.get(k[2:]))
        return PoolState(True, int(raw.get("stock", 0)), int(raw.get("limit", 0)), members, held)

    async def drop(self, tenant: int, pool: str) -> None:
        keys = self._keys(tenant, pool)
        await self.kv.redis.delete(keys[0], keys[1])

    async def claim_rebuild(self, tenant: int, pool: str, lease_seconds: float) -> str:
        claim = secrets.token_hex(8)
        return claim if await self.kv.set_nx(self._claim_key(tenant, pool), claim, lease_seconds) else ""

    async def end_rebuild(self, tenant: int, pool: str, claim: str) -> None:
        await self.kv.delete_if(self._claim_key(tenant, pool), claim)


def open_admission(kv: KVStore) -> AdmissionStore:
    """Redis-backed when the key-value store is Redis (several workers share it), in-process
    otherwise (the embedded default)."""
    if isinstance(kv, RedisKV):
        return RedisAdmissionStore(kv)
    return MemoryAdmissionStore()
