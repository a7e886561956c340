"""Leader lease: of the workers sharing one key-value store, one runs the scheduled jobs.

Every worker runs a `Leader`: it takes the key `leader:<name>` with `set_nx` (its own id as the
value, a TTL of `ttl` seconds) and, while it holds it, renews it every `ttl / 3` seconds with a
compare-and-set on its own id. The others keep trying; when the leader dies (kill -9, lost
machine), its lease runs out and one of them takes over within `ttl`. A job wrapped with
`guard` runs only while this worker leads, so a sweeper runs once per interval across the
workers, not N times. Correctness never depends on it: every sweeper is idempotent and safe
to run concurrently (conditional updates), so a leader that loses its lease mid-run (a Redis
restart) at worst lets two runs overlap once.

On the embedded default (one process, the in-process store) the one worker always leads, as
before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

from social_mall.kv import KVStore

log = logging.getLogger(__name__)


class Leader:
    def __init__(self, kv: KVStore, name: str = "scheduler", ttl: float = 15.0) -> None:
        self.kv, self.key, self.ttl = kv, f"leader:{name}", ttl
        self.me = f"{os.getpid()}:{secrets.token_hex(4)}"
        self.held = False
        self._task: asyncio.Task[None] | None = None

    async def try_lead(self) -> bool:
        """One round: renew the lease this worker holds, or take a free one."""
        try:
            if self.held and await self.kv.cas(self.key, self.me, self.me, self.ttl):
                return True
            took = await self.kv.set_nx(self.key, self.me, self.ttl)
        except Exception:  # noqa: BLE001 - the store is down: nobody can be sure to lead
            log.warning("leader.store_unreachable", exc_info=True)
            took = False
        if took != self.held:
            log.info("leader.gained" if took else "leader.lost", extra={"lease": self.key})
        self.held = took
        return took

    async def _loop(self) -> None:
        while True:
            await self.try_lead()
            await asyncio.sleep(self.ttl / 3)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop renewing and hand the lease back (another worker takes it at once)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.held:
            self.held = False
            try:
                await self.kv.delete_if(self.key, self.me)
            except Exception:  # noqa: BLE001 - it runs out by itself
                pass

    def guard(self, run: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        """`run`, skipped while another worker leads."""
        async def guarded() -> object:
            if not self.held:
                return None
            return await run()

        guarded.__name__ = getattr(run, "__name__", "job")
        return guarded
