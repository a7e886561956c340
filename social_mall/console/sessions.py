"""Console sessions, server-side in the key-value store (Redis when configured, so every
worker sees them and logging out ends them everywhere).

The cookie carries a random 256-bit id; the store keys on its SHA-256, so a copy of the
store holds no usable cookie. Sessions expire after `IDLE` without use and after
`ABSOLUTE` in any case. Each session has its own CSRF token, and carries the admin's
credentials version at login: a password reset, role change or disabling moves the
version on (social_mall.console.auth), which ends every session of that admin on every
worker without having to find them in the store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

from social_mall.kv import KVStore

IDLE_SECONDS = 2 * 3600
ABSOLUTE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    admin_id: int
    csrf: str
    created: float
    flash: str = ""
    cred_version: int = 0


def _key(sid: str) -> str:
    return "console:session:" + hashlib.sha256(sid.encode()).hexdigest()


async def open_session(kv: KVStore, admin_id: int, cred_version: int = 0) -> tuple[str, ConsoleSession]:
    sid = secrets.token_urlsafe(32)
    session = ConsoleSession(admin_id=admin_id, csrf=secrets.token_urlsafe(32), created=time.time(),
                             cred_version=cred_version)
    await kv.set(_key(sid), json.dumps(asdict(session)), ttl=IDLE_SECONDS)
    return sid, session


def _plausible(sid: str) -> bool:
    """Ours are ASCII (token_urlsafe); a cookie's odd bytes arrive as lone surrogates."""
    return 0 < len(sid) <= 100 and sid.isascii()


async def load_session(kv: KVStore, sid: str) -> ConsoleSession | None:
    if not _plausible(sid):
        return None
    raw = await kv.get(_key(sid))
    if raw is None:
        return None
    try:
        session = ConsoleSession(**json.loads(raw))
    except (TypeError, ValueError):
        return None
    age = time.time() - session.created
    if age > ABSOLUTE_SECONDS:
        await kv.delete(_key(sid))
        return None
    await kv.set(_key(sid), raw, ttl=min(IDLE_SECONDS, ABSOLUTE_SECONDS - age))  # sliding idle expiry
    return session


async def close_session(kv: KVStore, sid: str) -> None:
    if _plausible(sid):
        await kv.delete(_key(sid))
