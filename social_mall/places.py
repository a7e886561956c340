"""Where a member shops: places, for whoever wants to know (a recommendation's cold start:
what sells where the member is). A place is an opaque string "kind:key" — "city:深圳",
"store:12" — most specific first.

The core knows one kind: the city of a shipping address ("广东省深圳市南山区…" → 深圳;
"上海市浦东新区…" → 上海), the member's default address first, else the latest; an
order's is the city of the address it ships to. A module that knows more (the store a
member chose, the store an order is picked up at) adds a `PlaceSource` with
`reg.add_place_source(source)`; its places come before the core's. No module reads
another's tables: a reader asks `member_places` / `order_places` with the registry's
sources (`Registry.place_sources`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select

from storage.models import Address, Order
from storage.uow import UnitOfWork

CITY = "city"

# provinces and municipalities as addresses start with them (the suffix is optional)
_PROVINCE = re.compile(
    r"^(北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|"
    r"贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门)"
    r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?")
_MUNICIPAL = {"北京", "天津", "上海", "重庆", "香港", "澳门"}
_CITY = re.compile(r"^(.{2,8}?)(市|自治州|地区|盟)")


def city_of(address: str) -> str:
    """The city an address as written in China names, without its suffix; "" if none."""
    text = "".join(address.split())
    m = _PROVINCE.match(text)
    if m is not None:
        if m.group(1) in _MUNICIPAL:
            return m.group(1)
        text = text[m.end():]
    c = _CITY.match(text)
    return c.group(1) if c is not None else ""


def place(kind: str, key: str | int) -> str:
    return f"{kind}:{key}"


class PlaceSource(Protocol):
    async def member_places(self, uow: UnitOfWork, tenant: int, member: int) -> Sequence[str]:
        """Where the member shops, most specific first (() when not known)."""
        ...

    async def order_places(self, uow: UnitOfWork, tenant: int, order_id: int) -> Sequence[str]:
        """Where the order was bought or is delivered (() when not known)."""
        ...


class AddressPlaces:
    """The core's source: cities of shipping addresses."""

    async def member_places(self, uow: UnitOfWork, tenant: int, member: int) -> Sequence[str]:
        details = (await uow.session.scalars(
            select(Address.detail).where(Address.tenant_id == tenant, Address.member_id == member)
            .order_by(Address.is_default.desc(), Address.id.desc()).limit(1))).all()
        city = city_of(details[0]) if details else ""
        return (place(CITY, city),) if city else ()

    async def order_places(self, uow: UnitOfWork, tenant: int, order_id: int) -> Sequence[str]:
        detail = await uow.session.scalar(select(Order.ship_address).where(Order.tenant_id == tenant,
                                                                           Order.id == order_id))
        city = city_of(detail or "")
        return (place(CITY, city),) if city else ()


async def member_places(uow: UnitOfWork, tenant: int, member: int, sources: Sequence[PlaceSource]) -> tuple[str, ...]:
    """Every source's places of the member, in the sources' order, each once."""
    out: list[str] = []
    for s in sources:
        out.extend(p for p in await s.member_places(uow, tenant, member) if p not in out)
    return tuple(out)


async def order_places(uow: UnitOfWork, tenant: int, order_id: int, sources: Sequence[PlaceSource]) -> tuple[str, ...]:
    out: list[str] = []
    for s in sources:
        out.extend(p for p in await s.order_places(uow, tenant, order_id) if p not in out)
    return tuple(out)
