"""Who a message to many goes to: members' ids on one channel (the official-account
openid…), all of them or a segment the core knows (a member level; buyers of a category
or a product; members with an address in a city; members holding a tag). Read-only, one
query; a module that broadcasts reads its audience here instead of the core's tables.

`MemberGroups` is the seam for groups of members the core doesn't know (a module's
companies and their buyers): a module registers them with `reg.add_member_groups`, and a
module that builds segments offers them by `key` without knowing whose they are."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select

from storage.loyalty_models import LoyaltyAccount
from storage.models import Address, MemberIdentity, MemberTagLink, Order, OrderLine, Product
from storage.uow import UnitOfWork

PAID_STATUSES = ("paid", "shipped", "completed")   # the buyer paid and has not been refunded in full


@dataclass(frozen=True)
class MemberGroups:
    """A kind of group of members a module keeps. `key` names it in segment rules
    ("company": a rule reads "company:12"), `label` in the console; `options(uow, tenant)`
    → (group id, name) of the tenant's groups (at most a few hundred, by name);
    `members(uow, tenant, group_id)` → the ids of its members (empty for an unknown id)."""

    key: str
    label: str
    options: Callable[[UnitOfWork, int], Awaitable[list[tuple[int, str]]]]
    members: Callable[[UnitOfWork, int, int], Awaitable[set[int]]]


async def audience(uow: UnitOfWork, tenant: int, channel: str, *, level: str | None = None,
                   bought_category: int | None = None, bought_product: int | None = None,
                   address_contains: str | None = None, tag: int | None = None,
                   account: int | None = None) -> list[tuple[int, str]]:
    """(member id, id on `channel`) of every member with an identity there, by member id
    (a member's first identity on the channel); `level`: only members at that loyalty level;
    `bought_category` / `bought_product`: only members with a paid order holding a product
    of that category / that product; `address_contains`: only members with a saved address
    holding that text (a city: 「深圳」); `tag`: only members holding that tag (by hand or by
    a rule); `account`: only ids at that channel account (0: the tenant's primary official
    account; an openid is valid only with its own account's token)."""
    q = select(MemberIdentity.member_id, MemberIdentity.external_id).where(
        MemberIdentity.tenant_id == tenant, MemberIdentity.channel == channel)
    if account is not None:
        q = q.where(MemberIdentity.account_id == account)
    if level is not None:
        q = q.where(MemberIdentity.member_id.in_(
            select(LoyaltyAccount.member_id).where(LoyaltyAccount.tenant_id == tenant, LoyaltyAccount.level == level)))
    if bought_category is not None:
        q = q.where(MemberIdentity.member_id.in_(
            select(Order.member_id).join(OrderLine, OrderLine.order_id == Order.id)
            .join(Product, Product.id == OrderLine.product_id)
            .where(Order.tenant_id == tenant, Order.status.in_(PAID_STATUSES), Product.category_id == bought_category)))
    if bought_product is not None:
        q = q.where(MemberIdentity.member_id.in_(
            select(Order.member_id).join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.tenant_id == tenant, Order.status.in_(PAID_STATUSES), OrderLine.product_id == bought_product)))
    if address_contains:
        pattern = "%" + address_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(MemberIdentity.member_id.in_(
            select(Address.member_id).where(Address.tenant_id == tenant, Address.detail.like(pattern, escape="\\"))))
    if tag is not None:
        q = q.where(MemberIdentity.member_id.in_(
            select(MemberTagLink.member_id).where(MemberTagLink.tenant_id == tenant, MemberTagLink.tag_id == tag)))
    return _first_each(await uow.session.execute(q.order_by(MemberIdentity.member_id, MemberIdentity.id)))


async def channel_ids(uow: UnitOfWork, tenant: int, channel: str, member_ids: Iterable[int], *,
                      account: int | None = None) -> list[tuple[int, str]]:
    """(member id, id on `channel`) of those members that have one, by member id; `account`:
    only ids at that channel account (0: the primary)."""
    at = () if account is None else (MemberIdentity.account_id == account,)
    ids = sorted(set(member_ids))
    out: list[tuple[int, str]] = []
    for i in range(0, len(ids), 500):
        rows = await uow.session.execute(
            select(MemberIdentity.member_id, MemberIdentity.external_id).where(
                MemberIdentity.tenant_id == tenant, MemberIdentity.channel == channel,
                MemberIdentity.member_id.in_(ids[i:i + 500]), *at).order_by(MemberIdentity.member_id, MemberIdentity.id))
        out.extend(_first_each(rows))
    return out


def _first_each(rows: Iterable[tuple[object, object]]) -> list[tuple[int, str]]:
    seen: dict[int, str] = {}
    for member_id, external in rows:
        seen.setdefault(int(str(member_id)), str(external))
    return list(seen.items())
