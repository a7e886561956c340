"""Pure validation and formatting for console input. No I/O."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from social_mall.console.errors import InvalidInputError
from social_mall.parsing import is_storable_text

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_PRICE_FEN = 10_000_000_00  # ¥10,000,000
MAX_STOCK = 1_000_000                 # per SKU: each change and the total after it
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2099, 12, 31)   # date filters
_PRICE = re.compile(r"^([0-9]{1,9})(?:\.([0-9]{1,2}))?$")
_TRACKING = re.compile(r"^[A-Za-z0-9-]{4,64}$")
_TENANT_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")


def parse_price(text: str, field: str = "price") -> int:
    """"39.9" / "39.90" / "39" → fen, without floats. Must be above zero."""
    m = _PRICE.match(text.strip().lstrip("¥"))
    if not m:
        raise InvalidInputError(field, "price_format")
    fen = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if not 0 < fen <= MAX_PRICE_FEN:
        raise InvalidInputError(field, "price_range")
    return fen


def check_price_fen(fen: object, field: str = "price_fen") -> int:
    if isinstance(fen, bool) or not isinstance(fen, int) or not 0 < fen <= MAX_PRICE_FEN:
        raise InvalidInputError(field, "price_range")
    return fen


def parse_int(text: object, field: str, *, lo: int, hi: int) -> int:
    if isinstance(text, bool):
        raise InvalidInputError(field, "integer")
    if isinstance(text, int):
        n = text
    else:
        s = str(text).strip()
        if not re.fullmatch(r"-?[0-9]{1,12}", s):  # ASCII digits only: int() takes "١", not "²"
            raise InvalidInputError(field, "integer")
        n = int(s)
    if not lo <= n <= hi:
        raise InvalidInputError(field, "range")
    return n


def text(value: object, field: str, *, max_len: int, min_len: int = 0) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(field, "text")
    s = value.strip()
    if len(s) < min_len:
        raise InvalidInputError(field, "required" if not s else "too_short")
    if len(s) > max_len:
        raise InvalidInputError(field, "too_long")
    if any(ord(c) < 32 and c not in "\n\t" for c in s):
        raise InvalidInputError(field, "control_chars")
    if not is_storable_text(s):  # a lone surrogate
        raise InvalidInputError(field, "invalid_text")
    return s


def tracking_no(value: object) -> str:
    s = text(value, "tracking_no", max_len=64, min_len=1)
    if not _TRACKING.match(s):
        raise InvalidInputError("tracking_no", "tracking_format")
    return s


def tenant_code(value: object) -> str:
    s = text(value, "code", max_len=32, min_len=2)
    if not _TENANT_CODE.match(s):
        raise InvalidInputError("code", "code_format")
    return s


def username(value: object) -> str:
    s = text(value, "username", max_len=64, min_len=3)
    if not _USERNAME.match(s):
        raise InvalidInputError("username", "username_format")
    return s


def page_args(page: object, per_page: object, *, max_per_page: int = 100) -> tuple[int, int]:
    p = parse_int(page or 1, "page", lo=1, hi=1_000_000)
    n = parse_int(per_page or 20, "per_page", lo=1, hi=max_per_page)
    return p, n


def day_start(d: date) -> datetime:
    """Midnight in Shanghai of `d`, as UTC."""
    return datetime.combine(d, time(0), SHANGHAI).astimezone(timezone.utc)


def shanghai_date(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def parse_date(value: str, field: str) -> date | None:
    s = value.strip()
    if not s:
        return None
    try:
        d = date.fromisoformat(s)
    except ValueError:
        raise InvalidInputError(field, "date_format") from None
    if not MIN_DATE <= d <= MAX_DATE:  # day_start(0001-01-01) and 9999-12-31 + 1 day overflow
        raise InvalidInputError(field, "range")
    return d


def csv_cell(value: object) -> str:
    """A cell that a spreadsheet will not run as a formula."""
    s = "" if value is None else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def yuan_plain(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def mask(value: str, keep: int = 4) -> str:
    return "" if not value else ("*" * max(0, len(value) - keep)) + value[-keep:]
