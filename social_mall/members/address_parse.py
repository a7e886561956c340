"""A whole shipping address pasted in one message → name, phone and address. Pure.

People send it in any order, with or without separators, as they copy it from WeChat's
address book (「收货人：张三\\n手机号码：138…\\n所在地区：…\\n详细地址：…」), from a shop
(「张三，13800138000，上海 上海市 浦东新区 世纪大道100号，200120」) or type it
(「张三 13800138000 上海市浦东新区世纪大道100号」, 「上海市…100号张三13800138000」).

How it reads one:

1. NFKC (full-width digits, colons and commas become ASCII), zero-width characters out.
2. The phone: the first mainland mobile (1[3-9] + 9 digits), with or without +86 / 86 /
   (+86) in front and spaces or dashes inside, not glued to other digits.
3. Labels (「收货人：」「手机号码：」「所在地区：」「详细地址：」…, a colon after them)
   say what their value is.
4. What no label claims is split at separators (spaces, commas, 、 ; |) into pieces. The
   name is a piece of 2–4 Chinese characters (or a Latin name, or a name with ·) that
   does not look like a place (a province, or ending in 省市区县镇乡村州旗盟); with several,
   the one nearest the phone. Everything else, in order, is the address (zip codes
   left out, 「上海 上海市」 written once).
5. No name piece: a name glued in front of a province (「张三上海市…」) or behind a
   house number (「…100号张三」) is split off.

Whatever is not found comes back empty (`missing` names it): the caller asks for it.
Fields are checked like a typed address (members.rules.clean_address): a name of 1–20
characters, a detail of 5–100.

`from_picker` reads the address WeChat's own picker (JS-SDK `wx.openAddress`) hands the
H5 page: userName, telNumber, provinceName, cityName, countryName (sic: the district;
countyName in mini programs), detailInfo."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from social_mall.members.rules import PHONE

MAX_INPUT = 400            # characters looked at; a longer message is not an address
NAME_MAX, DETAIL_MIN, DETAIL_MAX = 20, 5, 100

PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
    "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
ADMIN_SUFFIX = "省市区县镇乡村州旗盟"
HOUSE_END = "号室楼栋幢层座户弄巷"

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")   # JSON may carry a lone one: never UTF-8, never stored
_MOBILE = re.compile(r"(?<![0-9])(?:\(?\+?86\)?[\s-]*)?(1[3-9][0-9](?:[\s-]*[0-9]){8})(?![0-9])")
_NAME_LABELS = ("收货人", "收件人", "联系人", "姓名")
_PHONE_LABELS = ("手机号码", "手机号", "手机", "联系电话", "电话号码", "电话")
_PLACE_LABELS = ("所在地区", "所在地", "地区", "省市区", "详细地址", "收货地址", "收件地址", "地址")
_ZIP_LABELS = ("邮政编码", "邮编")
_LABELS = (*_NAME_LABELS, *_PHONE_LABELS, *_PLACE_LABELS, *_ZIP_LABELS)
_LABEL = re.compile("(" + "|".join(sorted(_LABELS, key=len, reverse=True)) + r")\s*:")
_SEPARATORS = re.compile(r"[\s,;、|]+")
_CJK = "\u4e00-\u9fff"
_CJK_NAME = re.compile(rf"[{_CJK}]{{2,4}}")
_DOTTED_NAME = re.compile(rf"[{_CJK}]{{1,8}}·[{_CJK}]{{1,8}}")
_LATIN_NAME = re.compile(r"[A-Za-z][A-Za-z .'-]{0,19}")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z.'-]*")
_ZIP = re.compile(r"[0-9]{6}")
_TRAILING_NAME = re.compile(rf"(.*[0-9{HOUSE_END}])([{_CJK}]{{2,3}})")
_PHONE_MARK = "\x00"
_PHONEISH = re.compile(r"[0-9+()-]+")


@dataclass(frozen=True)
class ParsedAddress:
    name: str = ""
    phone: str = ""
    detail: str = ""

    @property
    def missing(self) -> tuple[str, ...]:
        """The fields not found, in the order they are asked for: name, phone, detail."""
        return tuple(f for f in ("name", "phone", "detail") if not getattr(self, f))

    @property
    def complete(self) -> bool:
        return not self.missing


#: the picker's fields, each at most this long (WeChat's own limits are far below)
PICKER_FIELD_MAX = 100
PICKER_PLACES = ("provinceName", "cityName", "countryName", "countyName", "detailInfo")


def normalize_mobile(raw: str) -> str:
    """A mainland mobile written any way (+86, spaces, dashes, full-width) as 11 digits,
    or "" when it is not one."""
    text = unicodedata.normalize("NFKC", raw).strip()
    m = _MOBILE.fullmatch(text)
    if m is None:
        return ""
    digits = re.sub(r"[^0-9]", "", m.group(1))
    return digits if PHONE.match(digits) else ""


def from_picker(fields: Mapping[str, object]) -> ParsedAddress:
    """The address picked in WeChat's address book (wx.openAddress). A field that is not
    a string of at most PICKER_FIELD_MAX characters counts as absent; the province, city
    and district go in front of the detail, a city that repeats its province once
    (「上海市 上海市」)."""
    def field(key: str) -> str:
        v = fields.get(key, "")
        if not isinstance(v, str) or len(v) > PICKER_FIELD_MAX or _SURROGATE.search(v):
            return ""
        return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", v)).strip()

    name = field("userName")
    phone = normalize_mobile(field("telNumber"))
    district = field("countryName") or field("countyName")
    places = [field("provinceName"), field("cityName"), district, field("detailInfo")]
    detail = _join(_dedupe([p for p in places if p]))
    if not 1 <= len(name) <= NAME_MAX:
        name = ""
    if not DETAIL_MIN <= len(detail) <= DETAIL_MAX or not field("detailInfo"):
        detail = ""
    return ParsedAddress(name, phone, detail)


def parse_address(raw: str) -> ParsedAddress:
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", raw))[:MAX_INPUT]
    phone = ""
    m = _MOBILE.search(text)
    if m is not None:
        digits = re.sub(r"[^0-9]", "", m.group(1))
        if PHONE.match(digits):
            phone = digits
            text = f"{text[:m.start()]} {_PHONE_MARK} {text[m.end():]}"

    # every piece in the order written: (labelled name?, piece); the phone as a mark
    pieces: list[tuple[bool, str]] = []
    parts = _LABEL.split(text)
    pieces.extend((False, p) for p in _pieces(parts[0]))
    for label, value in zip(parts[1::2], parts[2::2], strict=False):
        for p in _pieces(value):
            if label in _ZIP_LABELS and _ZIP.fullmatch(p):
                continue
            if label in _PHONE_LABELS and p != _PHONE_MARK:
                continue  # not a mobile (a landline…): left out, the phone is asked for
            pieces.append((label in _NAME_LABELS, p))
    pieces = _latin_runs(pieces)
    named = [p for is_name, p in pieces if is_name and p != _PHONE_MARK]
    words = [_unlabel(p) for _, p in pieces if p not in _LABELS]
    words = [p for p in words if p and not _ZIP.fullmatch(p) and not _bad_phone(p)]
    if named:
        name = named[0]
        words.remove(name)
    else:
        name, words = _pick_name(words)
    places = [p for p in words if p != _PHONE_MARK]
    if not name and places:
        name, places = _split_glued_name(places)
    detail = _join(_dedupe(places))
    if not 1 <= len(name) <= NAME_MAX:
        name = ""
    if not DETAIL_MIN <= len(detail) <= DETAIL_MAX:
        detail = ""
    return ParsedAddress(name, phone, detail)


# -- pieces --------------------------------------------------------------------------------

def _pieces(text: str) -> list[str]:
    return [p for p in _SEPARATORS.split(text.strip(" :")) if p and p != ":"]


def _latin_runs(pieces: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    """Neighbouring Latin words are one piece: 「Tom Lee」 is a name, not two."""
    out: list[tuple[bool, str]] = []
    for labelled, p in pieces:
        if out and out[-1][0] == labelled and _LATIN_WORD.fullmatch(p) and _LATIN_WORD.fullmatch(out[-1][1].split(" ")[-1]):
            out[-1] = (labelled, f"{out[-1][1]} {p}")
        else:
            out.append((labelled, p))
    return out


def _unlabel(piece: str) -> str:
    """「收货人张三」 → 「张三」 (a label typed without its colon, glued to the value)."""
    for label in _NAME_LABELS:
        if piece.startswith(label) and _is_name(piece[len(label):]):
            return piece[len(label):]
    return piece


def _bad_phone(piece: str) -> bool:
    """A number of 5 digits or more that is not a mobile (a landline, a digit too many or
    too few; a zip code is gone already): not part of the address; the phone is asked for."""
    return bool(_PHONEISH.fullmatch(piece)) and sum(c.isdigit() for c in piece) >= 5


def _is_place(piece: str) -> bool:
    if any(c.isdigit() for c in piece):
        return True
    if piece.startswith(PROVINCES) or piece[-1] in ADMIN_SUFFIX:
        return True
    return len(piece) > 4 and any(c in ADMIN_SUFFIX + HOUSE_END + "路街道巷弄" for c in piece)


def _is_name(piece: str) -> bool:
    if not piece or _is_place(piece):
        return False
    return bool(_CJK_NAME.fullmatch(piece) or _DOTTED_NAME.fullmatch(piece) or _LATIN_NAME.fullmatch(piece))


def _pick_name(pieces: list[str]) -> tuple[str, list[str]]:
    """The name-like piece nearest the phone (the first one when there is no phone)."""
    at = pieces.index(_PHONE_MARK) if _PHONE_MARK in pieces else None
    candidates = [i for i, p in enumerate(pieces) if _is_name(p)]
    if not candidates:
        return "", pieces
    best = min(candidates, key=lambda i: (abs(i - at), i)) if at is not None else candidates[0]
    return pieces[best], pieces[:best] + pieces[best + 1:]


def _split_glued_name(places: list[str]) -> tuple[str, list[str]]:
    """A name glued to the address: in front of a province, or behind the house number."""
    first = places[0]
    for i in range(2, 5):
        if first[i:].startswith(PROVINCES) and _is_name(first[:i]):
            return first[:i], [first[i:], *places[1:]]
    m = _TRAILING_NAME.fullmatch(places[-1])
    if m is not None and len(m.group(1)) >= DETAIL_MIN:
        return m.group(2), [*places[:-1], m.group(1)]
    return "", places


def _dedupe(places: list[str]) -> list[str]:
    """「上海 上海市 浦东新区」 → 「上海市 浦东新区」: a piece the next one repeats goes."""
    out: list[str] = []
    places = [_once(p) for p in places]
    for i, p in enumerate(places):
        nxt = places[i + 1] if i + 1 < len(places) else ""
        if nxt.startswith(p) or (out and out[-1] == p):
            continue
        out.append(p)
    return out


def _once(piece: str) -> str:
    """「上海上海市…」 → 「上海市…」 (a province written twice, glued)."""
    for p in PROVINCES:
        if piece.startswith(p + p):
            return piece[len(p):]
    return piece


def _join(places: list[str]) -> str:
    """Chinese addresses have no spaces; Latin words keep one between them."""
    out = ""
    for p in places:
        if out and out[-1].isascii() and out[-1].isalnum() and p[0].isascii() and p[0].isalnum():
            out += " "
        out += p
    return out
