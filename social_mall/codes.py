"""Codes a person types into chat (bind codes today; pick-up codes, invites next): one
rule for all of them, so none is guessable.

    rule = CodeRule("bind")
    new = issue(rule)                     # store new.selector + new.digest, show new.shown
    ...
    hit = await check(kv, rule, tenant=t, actor=member_id, typed=text, now=now, find=lookup)
    # then spend `hit.ref` with a conditional UPDATE in the caller's transaction

The rule:

- **Unguessable.** 10 characters of Crockford base32 (0-9 and A-Z without I, L, O, U):
  50 bits. Shown as two groups of five (`K7Q2M-9XD3F`); typed in any case, with or
  without spaces or dashes, full-width or not; I and L read as 1, O as 0. Letters cost
  no more than digits on a phone keyboard, and 12 digits would be only 39.9 bits.
- **Split: selector + secret.** The first 2 characters (10 bits) name the issued code
  (stored in clear, not unique); the other 8 (40 bits) are the secret. Only the SHA-256
  of the whole code is stored. The selector is what lets a wrong guess count against the
  code it was aimed at, so each code can absorb at most `code_attempts` guesses: the
  chance that any one code is ever guessed stays below 5 · 2^-40 however many accounts
  an attacker uses.
- **Attempt-limited.** Every attempt (a malformed one too) counts against the member
  first: past `member_attempts` in `window`, every attempt is refused until the window
  (which starts at the member's first attempt) has passed, the right code included. Every
  well-formed attempt whose selector names a live code counts against that code: past
  `code_attempts` the code is burnt. Counters live in the key-value store (outside the
  unit of work, so a refusal that rolls the transaction back still counts) and are taken
  before the code is compared, so parallel attempts can't slip past the limit.
- **Expiring.** `ttl` (10 minutes); the caller's row says when, this module decides.
- **Logged.** `code.refused` with the purpose, tenant, member id, reason and attempt
  count; never the code typed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from social_mall.errors import MallError

log = logging.getLogger(__name__)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford base32: 5 bits a character
LENGTH = 10                                      # 50 bits
SELECTOR = 2                                     # 10 bits name the code, 40 bits are secret
GROUP = 5
_READ_AS = {"I": "1", "L": "1", "O": "0"}
_SEPARATORS = frozenset(" -_.\u00b7\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc")
TYPED_MAX = 40                                   # longer than any code with separators: not one


@dataclass(frozen=True)
class CodeRule:
    purpose: str                                 # "bind": key prefix, digest salt, log field
    ttl: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(minutes=15)
    member_attempts: int = 5                     # per member per window
    code_attempts: int = 5                       # per issued code, over its life


class Counters(Protocol):
    """The part of the key-value store (storage.kv.KVStore) the limits need."""

    async def get(self, key: str) -> str | None: ...
    async def set_nx(self, key: str, value: str, ttl: float) -> bool: ...
    async def incr(self, key: str, ttl: float) -> int: ...
    async def delete(self, key: str) -> None: ...


# -- errors (the chat words them: templates/chat/errors/code_*.txt, by purpose) ---------------

class CodeError(MallError):
    """Unknown, wrong, spent or expired: one answer for all (a guesser learns nothing)."""

    code = "code_invalid"

    def __init__(self, purpose: str) -> None:
        super().__init__(purpose)
        self.purpose = purpose


class CodeMalformedError(CodeError):
    """Not the shape of a code at all: say what one looks like."""

    code = "code_malformed"


class CodeBurntError(CodeError):
    """The right code, but it had seen too many wrong guesses: ask for a new one."""

    code = "code_burnt"


class CodeAttemptsError(CodeError):
    """Too many attempts by this member: try again in `minutes`."""

    code = "code_attempts"

    def __init__(self, purpose: str, minutes: int) -> None:
        super().__init__(purpose)
        self.minutes = minutes


# -- the code itself (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class NewCode:
    text: str        # canonical: 10 characters, upper case, no separators
    selector: str
    digest: str

    @property
    def shown(self) -> str:
        return display(self.text)


def display(code: str) -> str:
    """`K7Q2M9XD3F` → `K7Q2M-9XD3F`."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def digest(purpose: str, code: str) -> str:
    """What is stored: SHA-256 over the purpose and the canonical code."""
    return hashlib.sha256(f"{purpose}:{code}".encode()).hexdigest()


def issue(rule: CodeRule) -> NewCode:
    text = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return NewCode(text, text[:SELECTOR], digest(rule.purpose, text))


def normalise(typed: str) -> str | None:
    """The canonical code in what was typed, or None when it is not one: case, full-width
    characters, spaces and dashes don't matter; I/L read as 1 and O as 0 (Crockford)."""
    if len(typed) > TYPED_MAX:
        return None
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", typed).upper():
        if ch in _SEPARATORS or ch.isspace():
            continue
        ch = _READ_AS.get(ch, ch)
        if ch not in ALPHABET:
            return None
        out.append(ch)
    return "".join(out) if len(out) == LENGTH else None


def selector_of(code: str) -> str:
    return code[:SELECTOR]


# -- checking a typed code ----------------------------------------------------------------------

@dataclass(frozen=True)
class Stored:
    """An issued code as its module stores it."""

    ref: str                 # unique per issued code, never reused (names its attempt counter)
    digest: str
    expires_at: datetime
    spent: bool


Find = Callable[[str], Awaitable[Sequence[Stored]]]


def _key(rule: CodeRule, tenant: int, kind: str, who: object) -> str:
    return f"code:{rule.purpose}:{tenant}:{kind}:{who}"


async def _count_in_window(kv: Counters, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
    """Count one attempt in a window that starts at the first one; (count, window start).
    The start is kept by the caller's clock as well as the store's TTL, so an injected
    clock (tests) and the store agree on when a window has passed."""
    seconds = window.total_seconds()
    since_key = f"{key}:since"
    since = _parse_time(await kv.get(since_key))
    if since is not None and now >= since + window:
        await kv.delete(key)
        await kv.delete(since_key)
        since = None
    if since is None:
        if not await kv.set_nx(since_key, now.isoformat(), seconds + 60):
            since = _parse_time(await kv.get(since_key))
        since = since or now
    return await kv.incr(key, seconds), since


def _parse_time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _refused(rule: CodeRule, tenant: int, actor: int, reason: str, attempts: int, ref: str = "") -> None:
    log.warning("code.refused", extra={"purpose": rule.purpose, "tenant": tenant, "member_id": actor,
                                       "reason": reason, "attempts": attempts, "code_ref": ref})


async def check(kv: Counters, rule: CodeRule, *, tenant: int, actor: int, typed: str, now: datetime,
                find: Find) -> Stored:
    """The live issued code `typed` is, counting the attempt against the member and the
    code; raises a CodeError (nothing to spend) otherwise. `find(selector)` returns the
    issued codes with that selector (any state). The caller spends the code it gets."""
    attempts, since = await _count_in_window(kv, _key(rule, tenant, "member", actor), now, rule.window)
    if attempts > rule.member_attempts:
        _refused(rule, tenant, actor, "too_many", attempts)
        left = (since + rule.window - now).total_seconds()
        raise CodeAttemptsError(rule.purpose, max(1, math.ceil(left / 60)))
    code = normalise(typed)
    if code is None:
        _refused(rule, tenant, actor, "malformed", attempts)
        raise CodeMalformedError(rule.purpose)
    wanted = digest(rule.purpose, code)
    hit: Stored | None = None
    burnt = False
    for stored in await find(selector_of(code)):
        if stored.spent or stored.expires_at <= now:
            if hmac.compare_digest(stored.digest, wanted):
                _refused(rule, tenant, actor, "spent" if stored.spent else "expired", attempts, stored.ref)
                raise CodeError(rule.purpose)
            continue
        seen = await kv.incr(_key(rule, tenant, "code", stored.ref), rule.ttl.total_seconds())
        if hmac.compare_digest(stored.digest, wanted):
            hit, burnt = stored, seen > rule.code_attempts
    if hit is None:
        _refused(rule, tenant, actor, "wrong", attempts)
        raise CodeError(rule.purpose)
    if burnt:
        _refused(rule, tenant, actor, "burnt", attempts, hit.ref)
        raise CodeBurntError(rule.purpose)
    return hit
