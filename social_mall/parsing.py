"""One parser per kind of input from outside (CONVENTIONS.md, "Input at the edge").

Unicode is the trap: `"²".isdigit()` is true and `int("²")` raises; `hmac.compare_digest`
raises on non-ASCII `str`."""

from __future__ import annotations

import hmac
import re

ID_MAX = 2**63 - 1


def parse_id(raw: str) -> int | None:
    """A positive database id from a URL or a message, or None (the caller answers 404)."""
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        return None
    n = int(raw)
    return n if 0 < n <= ID_MAX else None


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


# -- what WeChat's servers send about a person (official account, WeCom) -------------------------
#
# The shapes below are what the platforms hand out. Anything else never came from them, and
# taking it as it is would make the backends disagree: PostgreSQL refuses a string longer
# than its column, a NUL or a lone surrogate, where SQLite stores all three.

USER_MAX = 64
_OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")          # openid / unionid: URL-safe base64, 28 in practice
_WECOM_USERID = re.compile(r"[A-Za-z0-9_@.-]{1,64}")  # WeCom userid: 1..64 of letters, digits, _-@.
_VISIBLE_ASCII = re.compile(r"[!-~]{1,64}")           # WeCom chat ids, and the like
SCENE_MAX = 64                                        # QR scene_str: 1..64 characters
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")      # NUL and lone surrogates


def parse_openid(raw: object) -> str | None:
    """An official-account openid (or a unionid), or None."""
    return raw if isinstance(raw, str) and _OPENID.fullmatch(raw) else None


def parse_wecom_userid(raw: object) -> str | None:
    """A WeCom member's userid, or None."""
    return raw if isinstance(raw, str) and _WECOM_USERID.fullmatch(raw) else None


def parse_token(raw: object) -> str | None:
    """An opaque ASCII token of at most 64 visible characters (a WeCom chat id), or None."""
    return raw if isinstance(raw, str) and _VISIBLE_ASCII.fullmatch(raw) else None


def parse_scene(raw: str) -> str | None:
    """A QR code's scene value (`scene_id` digits or a `scene_str`), or None when no QR code
    can carry it."""
    return raw if 0 < len(raw) <= SCENE_MAX and not _UNSTORABLE.search(raw) else None


def storable_text(raw: str) -> str:
    """What a person typed, without the characters no database stores alike."""
    return _UNSTORABLE.sub("", raw)


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
