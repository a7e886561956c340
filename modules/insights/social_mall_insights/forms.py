"""Console form fields: each a clear Chinese problem or a value (never a 500)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from typing import Any

from social_mall_insights.rules import SHANGHAI

_CTRL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\ud800-\udfff]")
_MONEY = re.compile(r"^(\d{1,9})(\.\d{1,2})?$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class FormProblem(Exception):
    def __init__(self, field: str, text: str) -> None:
        super().__init__(field, text)
        self.field, self.text = field, text

    def __str__(self) -> str:
        return f"{self.field}：{self.text}"


def text(form: Any, name: str, label: str, max_len: int, *, required: bool = False, multiline: bool = False) -> str:
    value = unicodedata.normalize("NFC", str(form.get(name, "") or "")).strip()
    if required and not value:
        raise FormProblem(label, "必填")
    if len(value) > max_len:
        raise FormProblem(label, f"最多 {max_len} 字")
    body = value.replace("\r\n", "\n").replace("\n", "") if multiline else value
    if _CTRL.search(body):
        raise FormProblem(label, "含有控制字符")
    return value.replace("\r\n", "\n")


def integer(form: Any, name: str, label: str, lo: int, hi: int, *, default: int = 0) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise FormProblem(label, "请填整数")
    v = int(raw)
    if not lo <= v <= hi:
        raise FormProblem(label, f"应在 {lo}–{hi} 之间")
    return v


def money(form: Any, name: str, label: str) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return 0
    m = _MONEY.match(raw) if raw.isascii() else None
    if m is None:
        raise FormProblem(label, "请填金额，如 199 或 99.90")
    return int(m[1]) * 100 + int((m[2] or ".00")[1:].ljust(2, "0"))


def day(form: Any, name: str, label: str) -> str:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return ""
    try:
        return date.fromisoformat(raw).isoformat() if raw.isascii() and len(raw) == 10 else _bad(label)
    except ValueError:
        return _bad(label)


def _bad(label: str) -> str:
    raise FormProblem(label, "日期格式应为 2026-01-31")


def clock(form: Any, name: str, label: str, default: int) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return default
    m = _CLOCK.match(raw) if raw.isascii() else None
    if m is None:
        raise FormProblem(label, "时间格式应为 22:00")
    return int(m[1]) * 60 + int(m[2])


def when(form: Any, name: str, label: str, now: datetime) -> datetime:
    """A Beijing time "2026-01-31T09:30" (datetime-local) or "2026-01-31 09:30"; blank: now."""
    raw = str(form.get(name, "") or "").strip().replace(" ", "T")
    if not raw:
        return now
    try:
        if not raw.isascii() or len(raw) != 16:
            raise ValueError(raw)
        d, t = raw.split("T")
        at = datetime.combine(date.fromisoformat(d), time.fromisoformat(t), SHANGHAI)
    except ValueError:
        raise FormProblem(label, "时间格式应为 2026-01-31 09:30") from None
    return at.astimezone(timezone.utc)


def url(form: Any, name: str, label: str) -> str:
    value = text(form, name, label, 300)
    if value and not re.match(r"^https?://[^\s<>\"']+$", value):
        raise FormProblem(label, "请填 http(s):// 开头的网址")
    return value


def many(form: Any, name: str, allowed: Sequence[str]) -> list[str]:
    values = form.getall(name, []) if hasattr(form, "getall") else []
    return [v for v in values if isinstance(v, str) and v in allowed]
