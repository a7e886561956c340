"""Express shipping-fee templates (运费模板): pure, integer fen.

A template charges by piece or by weight (grams): the first `first` units cost
`first_fen`, every started `extra` units after that `extra_fen`. Each rule covers some
provinces ("*": every province no other rule names). A template may be free from an
amount of goods, and may not serve some provinces at all. An order's lines are grouped by
template; each group pays its template's fee (the groups' fees add up).

The province is read from the start of the address as people write it in China
("广东省深圳市…", "上海市浦东新区…", "内蒙古自治区…"); an address that names none
counts as "*".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PROVINCES: tuple[str, ...] = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾",
    "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
ANY = "*"
PIECE, WEIGHT = "piece", "weight"


def province_of(address: str) -> str:
    """The province an address starts with, or ANY."""
    text = "".join(address.split())
    for name in sorted(PROVINCES, key=len, reverse=True):
        if text.startswith(name):
            return name
    return ANY


@dataclass(frozen=True)
class FeeRule:
    regions: frozenset[str]
    first: int
    first_fen: int
    extra: int
    extra_fen: int

    def covers(self, region: str) -> bool:
        return region in self.regions


@dataclass(frozen=True)
class Template:
    id: int
    name: str
    mode: str
    free_over_fen: int
    unserved: frozenset[str]
    rules: tuple[FeeRule, ...]

    @staticmethod
    def from_json(id_: int, name: str, mode: str, free_over_fen: int, unserved: Sequence[str],
                  rules: Sequence[Mapping[str, object]]) -> Template:
        def num(v: object) -> int:
            return v if isinstance(v, int) and not isinstance(v, bool) else 0

        parsed = []
        for r in rules:
            regions = r.get("regions")
            parsed.append(FeeRule(frozenset(str(x) for x in regions) if isinstance(regions, list) else frozenset({ANY}),
                                  max(num(r.get("first")), 1), max(num(r.get("first_fen")), 0),
                                  max(num(r.get("extra")), 1), max(num(r.get("extra_fen")), 0)))
        return Template(id_, name, mode if mode in (PIECE, WEIGHT) else PIECE, max(free_over_fen, 0),
                        frozenset(unserved), tuple(parsed))

    def rule_for(self, region: str) -> FeeRule | None:
        named = next((r for r in self.rules if r.covers(region)), None)
        return named or next((r for r in self.rules if r.covers(ANY)), None)


@dataclass(frozen=True)
class Parcel:
    """The lines one template prices: their goods amount, pieces and grams."""

    goods_fen: int
    pieces: int
    grams: int


def template_fee(t: Template, region: str, parcel: Parcel) -> int | None:
    """The fee, or None when the template doesn't ship there."""
    if region in t.unserved:
        return None
    rule = t.rule_for(region)
    if rule is None:
        return None
    if t.free_over_fen and parcel.goods_fen >= t.free_over_fen:
        return 0
    units = parcel.pieces if t.mode == PIECE else parcel.grams
    more = max(units - rule.first, 0)
    return rule.first_fen + -(-more // rule.extra) * rule.extra_fen


def parse_rule_line(line: str) -> FeeRule | None:
    """"上海,江苏,浙江 1 8.00 1 2.00" (regions, first units, first fee in yuan, extra units,
    extra fee) → a rule, else None."""
    parts = line.split()
    if len(parts) != 5:
        return None
    regions = frozenset(p.strip() for p in parts[0].replace("，", ",").split(",") if p.strip())
    if not regions or any(r != ANY and r not in PROVINCES for r in regions):
        return None
    nums = [p for i, p in enumerate(parts[1:]) if i in (0, 2)]
    if not all(n.isascii() and n.isdigit() and 0 < int(n) <= 10**7 for n in nums):
        return None
    fees = [_yuan(parts[2]), _yuan(parts[4])]
    if fees[0] is None or fees[1] is None:
        return None
    return FeeRule(regions, int(parts[1]), fees[0], int(parts[3]), fees[1])


def _yuan(raw: str) -> int | None:
    whole, dot, frac = raw.partition(".")
    if not (whole.isascii() and whole.isdigit() and len(whole) <= 6) or (dot and not (frac.isascii() and frac.isdigit()
                                                                                     and 1 <= len(frac) <= 2)):
        return None
    return int(whole) * 100 + int(frac.ljust(2, "0") if dot else "0")


def rule_json(r: FeeRule) -> dict[str, object]:
    return {"regions": sorted(r.regions), "first": r.first, "first_fen": r.first_fen, "extra": r.extra,
            "extra_fen": r.extra_fen}
