"""One parser per kind of input from outside (CONVENTIONS.md, "Input at the edge").

Unicode is the trap: `"²".isdigit()` is true and `int("²")` raises; `hmac.compare_digest`
raises on non-ASCII `str`."""

from __future__ import annotations

import hmac

ID_MAX = 2**63 - 1


def parse_id(raw: str) -> int | None:
    """A positive database id from a URL or a message, or None (the caller answers 404)."""
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        return None
    n = int(raw)
    return n if 0 < n <= ID_MAX else None


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def is_storable_text(s: str) -> bool:
    """Text that both backends store alike: no NUL (PostgreSQL text refuses it, SQLite keeps
    it) and no lone surrogate (JSON `"\\ud800"`, odd charsets: not encodable as UTF-8)."""
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
