"""Console form parsing: one parser per kind of input, at the edge. Each raises the
console's InvalidInputError(field, problem); `problem_zh` says it in Chinese. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date

from social_mall.console.errors import InvalidInputError
from social_mall_local.geo import Point, parse_degrees, parse_ranges

PROBLEMS_ZH = {
    "required": "必填", "too_long": "太长", "control_chars": "含有控制字符", "coordinate": "坐标格式如 31.235812",
    "hours_format": "营业时间格式如 09:00-21:00，多段用逗号分隔，跨午夜如 18:00-02:00，留空为休息",
    "exception_format": "每行一个日期：2025-10-01 休息 或 2025-10-01 10:00-18:00",
    "picture_format": "图片地址须以 https:// 或 / 开头，每行一个，最多 9 张", "phone_format": "电话只含数字、空格和 -",
    "integer": "须为整数", "range": "超出范围", "money": "金额格式如 12.50", "date_format": "日期格式如 2025-01-31",
    "time_format": "时间格式如 09:30", "unknown_store": "门店不存在", "unknown_product": "商品不存在",
    "tiers_format": "每行一档：3000 5.00（3 公里内配送费 ¥5.00）", "polygon_format": "每行一个顶点：31.23 121.47，至少 3 个",
    "regions_format": "地区用逗号分隔，如 上海,江苏,浙江；* 为其余地区", "rules_format": "每行：地区 首件/首重 首费 续件/续重 续费",
    "unknown_resource": "资源不存在", "code_format": "核销码为 12 位数字",
}

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_PHONE = re.compile(r"^[0-9+\- ]{0,20}$")
_MONEY = re.compile(r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def problem_zh(exc: InvalidInputError) -> str:
    return f"{exc.field}：{PROBLEMS_ZH.get(exc.problem, exc.problem)}"


def text_field(form: Mapping[str, object], name: str, max_len: int, *, required: bool = True,
               multiline: bool = False) -> str:
    value = unicodedata.normalize("NFC", str(form.get(name, "") or "")).strip()
    if required and not value:
        raise InvalidInputError(name, "required")
    if len(value) > max_len:
        raise InvalidInputError(name, "too_long")
    body = value.replace("\r\n", "\n").replace("\n", "") if multiline else value
    if _CTRL.search(body):
        raise InvalidInputError(name, "control_chars")
    return value


def int_field(form: Mapping[str, object], name: str, lo: int, hi: int, *, default: int | None = None) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw and default is not None:
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit() and len(raw) <= 12):
        raise InvalidInputError(name, "integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidInputError(name, "range")
    return value


def money_field(form: Mapping[str, object], name: str, *, default: int | None = None, hi: int = 10**8) -> int:
    """"12.5" → 1250 fen (never a float)."""
    raw = str(form.get(name, "") or "").strip()
    if not raw and default is not None:
        return default
    m = _MONEY.match(raw) if raw.isascii() else None
    if m is None:
        raise InvalidInputError(name, "money")
    fen = int(m[1]) * 100 + int((m[2] or ".00")[1:].ljust(2, "0"))
    if fen > hi:
        raise InvalidInputError(name, "range")
    return fen


def money_text(raw: str) -> int | None:
    m = _MONEY.match(raw.strip()) if raw.strip().isascii() else None
    return int(m[1]) * 100 + int((m[2] or ".00")[1:].ljust(2, "0")) if m else None


def minute_field(form: Mapping[str, object], name: str) -> int:
    raw = str(form.get(name, "") or "").strip()
    m = _TIME.match(raw)
    if m is None:
        raise InvalidInputError(name, "time_format")
    return int(m[1]) * 60 + int(m[2])


def date_field(form: Mapping[str, object], name: str) -> date:
    raw = str(form.get(name, "") or "").strip()
    try:
        if not (raw.isascii() and len(raw) == 10):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(name, "date_format") from None


def checkbox(form: Mapping[str, object], name: str) -> bool:
    return str(form.get(name, "")) in ("1", "on", "true")


def point_field(form: Mapping[str, object], lat_name: str = "lat", lng_name: str = "lng") -> Point:
    lat = parse_degrees(str(form.get(lat_name, "") or ""), 90)
    if lat is None:
        raise InvalidInputError(lat_name, "coordinate")
    lng = parse_degrees(str(form.get(lng_name, "") or ""), 180)
    if lng is None or (lat == 0 and lng == 0):
        raise InvalidInputError(lng_name, "coordinate")
    return Point(lat, lng)


def phone_field(form: Mapping[str, object], name: str = "phone") -> str:
    value = str(form.get(name, "") or "").strip()
    if not _PHONE.match(value):
        raise InvalidInputError(name, "phone_format")
    return value


def hours_fields(form: Mapping[str, object]) -> dict[str, list[list[int]]]:
    """Seven fields hours_1 … hours_7 (Monday … Sunday)."""
    out: dict[str, list[list[int]]] = {}
    for day in range(1, 8):
        name = f"hours_{day}"
        ranges = parse_ranges(str(form.get(name, "") or ""))
        if ranges is None:
            raise InvalidInputError(name, "hours_format")
        out[str(day)] = [[s, e] for s, e in ranges]
    return out


def exceptions_field(form: Mapping[str, object], name: str = "exceptions") -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    for line in str(form.get(name, "") or "").splitlines():
        line = line.strip()
        if not line:
            continue
        day_text, _, rest = line.partition(" ")
        try:
            day = date.fromisoformat(day_text) if day_text.isascii() and len(day_text) == 10 else None
        except ValueError:
            day = None
        rest = rest.strip()
        ranges = () if rest in ("休息", "closed", "") else parse_ranges(rest)
        if day is None or ranges is None or len(out) >= 366:
            raise InvalidInputError(name, "exception_format")
        out[day.isoformat()] = [[s, e] for s, e in ranges]
    return out


def pictures_field(form: Mapping[str, object], name: str = "pictures") -> tuple[str, ...]:
    pics = [p.strip() for p in str(form.get(name, "") or "").splitlines() if p.strip()]
    if len(pics) > 9 or any(
            not (p.startswith("https://") or (p.startswith("/") and not p.startswith("//"))) or len(p) > 300
            or _CTRL.search(p) or any(c in p for c in "\"'<> ") for p in pics):
        raise InvalidInputError(name, "picture_format")
    return tuple(pics)
