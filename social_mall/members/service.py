"""Members across channels, their addresses, their cart and their birthday."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone

from social_mall.errors import (
    BirthdayLockedError,
    InvalidQuantityError,
    NotFoundError,
    OffShelfError,
    OutOfStockError,
)
from social_mall.catalog.visibility import check_buyable, hidden_products
from social_mall.events import MemberEntered, MemberJoined
from social_mall.members.rules import ENTRY_SOURCE_MAX, Birthday, birthdays_on, clean_address
from social_mall.orders.rules import MAX_QTY_PER_LINE
from social_mall.pricing.unit import Wanted, max_qty, unit_prices
from social_mall.views import AddressView, CartLine, CartView, MemberView
from storage.models import Address, Member
from storage.repos import MemberRow
from storage.uow import UnitOfWork


def member_view(m: Member) -> MemberView:
    return MemberView(m.id, m.tenant_id, m.nickname, m.unionid, m.entry_source)


async def resolve_member(
    uow: UnitOfWork,
    tenant: int,
    channel: str,
    external_id: str,
    *,
    unionid: str | None = None,
    nickname: str = "",
    entry_source: str = "",
) -> tuple[MemberView, bool]:
    """The member behind a channel identity; created (or linked by unionid) on first sight.

    Returns (member, created). A first sight costs one SELECT and two INSERTs: the member
    row, then the identity with ON CONFLICT DO NOTHING on its unique key. Two first messages
    racing each other end with one member: the loser's identity insert does nothing (on
    PostgreSQL after waiting for the winner's commit), so it takes its own new row back and
    reads the winner's. No savepoint, and the unit of work stays usable either way.
    `entry_source` is kept to its first ENTRY_SOURCE_MAX characters (it comes from outside).
    """
    entry_source = entry_source[:ENTRY_SOURCE_MAX]
    members = uow.members
    found = await members.row_by_identity(tenant, channel, external_id)
    if found is not None:
        return MemberView(*found), False
    linked = await members.by_unionid(tenant, unionid) if unionid else None
    now = datetime.now(timezone.utc)
    member_id = linked.id if linked is not None else await members.insert(
        tenant, nickname=nickname, unionid=unionid, entry_source=entry_source, now=now)
    if not await members.claim_identity(tenant, member_id, channel, external_id, now):
        if linked is None:
            await members.delete_new(tenant, member_id)
        found = await members.row_by_identity(tenant, channel, external_id)
        if found is None:  # the winner's identity went again (a merge moved it): not ours to guess
            raise NotFoundError("member_identity", 0)
        return MemberView(*found), False
    if linked is not None:
        return member_view(linked), False
    uow.emit(MemberJoined(tenant_id=tenant, member_id=member_id, channel=channel, entry_source=entry_source))
    return MemberView(member_id, tenant, nickname, unionid, entry_source), True


async def resolve_many(
    uow: UnitOfWork, tenant: int, channel: str, sightings: Sequence[tuple[str, str]],
) -> list[tuple[MemberView, bool]]:
    """`resolve_member` for many first sights on one channel at once, (external id, entry
    source) each, in one transaction's worth of statements whatever their number: one
    SELECT, and for the unknown ones one INSERT of members and one INSERT … ON CONFLICT DO
    NOTHING of their identities. An identity taken meanwhile by another transaction (another
    worker's first message) keeps that one's member: the new rows made for it go.

    Returns (member, created) per sighting, in order; an external id sighted twice is
    created by the first and found by the second, as one after the other would be."""
    ids = list(dict.fromkeys(e for e, _ in sightings))
    members = uow.members
    known = await members.rows_by_identities(tenant, channel, ids)
    source: dict[str, str] = {}
    for external_id, src in sightings:
        if external_id not in known:
            source.setdefault(external_id, src[:ENTRY_SOURCE_MAX])
    created: set[str] = set()
    if source:
        now = datetime.now(timezone.utc)
        new_ids = await members.insert_many(tenant, list(source.values()), now)
        mine = dict(zip(source, new_ids))
        created = await members.claim_identities(tenant, channel, list(mine.items()), now)
        lost = [e for e in mine if e not in created]
        if lost:
            await members.delete_new_many(tenant, [mine[e] for e in lost])
            known.update(await members.rows_by_identities(tenant, channel, lost))
        for e in created:
            known[e] = MemberRow(mine[e], tenant, "", None, source[e])
        await uow.emit_many([MemberJoined(tenant_id=tenant, member_id=mine[e], channel=channel,
                                          entry_source=source[e]) for e in mine if e in created])
    out: list[tuple[MemberView, bool]] = []
    for external_id, _ in sightings:
        row = known.get(external_id)
        if row is None:  # the winner's identity went again (a merge moved it): not ours to guess
            raise NotFoundError("member_identity", 0)
        first = external_id in created
        created.discard(external_id)
        out.append((MemberView(*row), first))
    return out


async def member_of(uow: UnitOfWork, tenant: int, channel: str, external_id: str) -> int | None:
    """The member behind a channel identity, if there is one (never creates one)."""
    found = await uow.members.by_identity(tenant, channel, external_id)
    return found.id if found is not None else None


async def channel_identities(uow: UnitOfWork, tenant: int, member_id: int) -> tuple[tuple[str, str], ...]:
    """(channel, external id) of every identity that resolves to the member."""
    return tuple((i.channel, i.external_id) for i in await uow.members.identities(tenant, member_id))


# addresses

def address_view(a: Address) -> AddressView:
    return AddressView(a.id, a.name, a.phone, a.detail, a.is_default)


async def list_addresses(uow: UnitOfWork, tenant: int, member_id: int) -> tuple[AddressView, ...]:
    return tuple(address_view(a) for a in await uow.members.addresses(tenant, member_id))


async def add_address(
    uow: UnitOfWork, tenant: int, member_id: int, name: str, phone: str, detail: str
) -> AddressView:
    name, phone, detail = clean_address(name, phone, detail)
    row = await uow.members.add_address(
        Address(tenant_id=tenant, member_id=member_id, name=name, phone=phone, detail=detail, is_default=True)
    )
    return address_view(row)


async def use_address(uow: UnitOfWork, tenant: int, member_id: int, address_id: int) -> None:
    """An order ships to `address_id`: it becomes the member's default (the next checkout
    pre-selects it). One conditional update; nothing when it already is."""
    await uow.members.make_default_address(tenant, member_id, address_id)


# cart

async def view_cart(uow: UnitOfWork, tenant: int, member_id: int, now: datetime | None = None) -> CartView:
    """The member's cart. A line of a product kept from the member (catalog/visibility.py)
    is not available (outside the total). With `now`, each line at the member's own unit
    price for its quantity where a pricer has one (its label and tier: pricing/unit.py),
    the retail price kept beside it; without, at the SKUs' own prices."""
    rows = await uow.members.cart(tenant, member_id)
    hidden = await hidden_products(uow, tenant, member_id) if rows else frozenset()
    own = await unit_prices(uow, tenant, member_id, [Wanted(s.id, p.id, s.price_fen, c.qty) for c, s, p in rows],
                            now) if now is not None and rows and uow.pricers else {}
    return CartView(
        tuple(
            CartLine(
                sku_id=s.id, product_id=p.id, title=p.title, spec=s.spec,
                price_fen=own[s.id].fen if s.id in own else s.price_fen,
                qty=c.qty, stock=s.stock,
                available=s.on_shelf and p.on_shelf and s.stock >= c.qty and p.id not in hidden,
                label=own[s.id].label if s.id in own else "", retail_fen=s.price_fen,
                restricted=p.id in hidden,
            )
            for c, s, p in rows
        )
    )


async def add_to_cart(uow: UnitOfWork, tenant: int, member_id: int, sku_id: int, qty: int,
                      now: datetime | None = None) -> CartView:
    current = await uow.members.cart_item(tenant, member_id, sku_id)
    await set_cart_qty(uow, tenant, member_id, sku_id, qty + (current.qty if current else 0))
    return await view_cart(uow, tenant, member_id, now)


async def set_cart_qty(uow: UnitOfWork, tenant: int, member_id: int, sku_id: int, qty: int,
                       now: datetime | None = None) -> CartView:
    """Put `qty` of the SKU in the cart (0 takes it out). Refused (nothing written) beyond
    the member's per-line cap (the retail 99, or more where a unit pricer allows it:
    pricing/unit.max_qty), off the shelf, beyond the stock, or a product kept from the member
    (RestrictedProductError)."""
    if qty == 0:
        await uow.members.remove_cart_items(tenant, member_id, [sku_id])
        return await view_cart(uow, tenant, member_id, now)
    most = await max_qty(uow, tenant, member_id) if uow.pricers else MAX_QTY_PER_LINE
    if not 1 <= qty <= most:
        raise InvalidQuantityError(qty, most)
    found = await uow.catalog.skus_by_ids(tenant, [sku_id])
    if not found:
        raise NotFoundError("sku", sku_id)
    sku, product = found[0]
    name = f"{product.title} {sku.spec}".strip()
    if not (sku.on_shelf and product.on_shelf):
        raise OffShelfError(name)
    await check_buyable(uow, tenant, member_id, [(product.id, name)])
    if sku.stock < qty:
        raise OutOfStockError(name, sku.stock)
    await uow.members.put_cart_item(tenant, member_id, sku_id, qty)
    return await view_cart(uow, tenant, member_id, now)


async def remove_from_cart(uow: UnitOfWork, tenant: int, member_id: int, sku_id: int,
                           now: datetime | None = None) -> CartView:
    await uow.members.remove_cart_items(tenant, member_id, [sku_id])
    return await view_cart(uow, tenant, member_id, now)


async def clear_cart(uow: UnitOfWork, tenant: int, member_id: int) -> None:
    await uow.members.remove_cart_items(tenant, member_id, None)


async def note_entry(
    uow: UnitOfWork, tenant: int, member_id: int, *, channel: str, scene: str, first_time: bool
) -> None:
    """Record that a member came in through a scene (QR/link); modules react to the event."""
    uow.emit(MemberEntered(tenant_id=tenant, member_id=member_id, channel=channel, scene=scene,
                           first_time=first_time))


async def channel_identity(uow: UnitOfWork, tenant: int, member_id: int, channel: str) -> str | None:
    """The member's id on a channel (e.g. the official-account openid), for pushes."""
    for ident in await uow.members.identities(tenant, member_id):
        if ident.channel == channel:
            return ident.external_id
    return None


async def note_identity_account(uow: UnitOfWork, tenant: int, channel: str, external_id: str, account: int) -> bool:
    """Remember that a channel id belongs to the tenant's channel account `account` (an
    official-account openid is per account), once; True when this wrote it."""
    return bool(account) and await uow.members.note_identity_account(tenant, channel, external_id, account)


async def identities_on(uow: UnitOfWork, tenant: int, member_id: int, channel: str) -> list[tuple[int, str]]:
    """The member's (channel account, id) pairs on `channel`, the primary account's (0)
    first, then the others in the order they were made."""
    mine = [(i.account_id or 0, i.external_id) for i in await uow.members.identities(tenant, member_id)
            if i.channel == channel]
    return sorted(mine, key=lambda m: m[0] != 0)


async def push_identity(uow: UnitOfWork, tenant: int, member_id: int, channel: str, *,
                        prefer_account: int | None = None) -> tuple[int, str] | None:
    """(channel account, id) to push to the member on `channel`: its id at `prefer_account`
    when it has one there (the account an order was placed on), otherwise at the primary
    account, otherwise its first id on the channel at any account; None without one. A
    member merged across official accounts has an openid at each, valid only with that
    account's token."""
    mine = await identities_on(uow, tenant, member_id, channel)
    for wanted in (prefer_account, 0):
        for account, external_id in mine:
            if wanted is not None and account == wanted:
                return account, external_id
    return mine[0] if mine else None


async def member_since(uow: UnitOfWork, tenant: int, member_id: int, channel: str) -> datetime | None:
    """When the member was first seen on a channel (its identity there was made: on the
    official account, the first message or follow); None without an identity on it. A
    module that must tell seasoned members from fresh accounts (e.g. to keep new accounts
    out of a promotion) reads it here."""
    found = [i.created_at for i in await uow.members.identities(tenant, member_id) if i.channel == channel]
    if not found:
        return None
    at = min(found)
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


# -- birthday ----------------------------------------------------------------------------------

async def member_birthday(uow: UnitOfWork, tenant: int, member_id: int) -> Birthday | None:
    found = await uow.members.birthday(tenant, member_id)
    return Birthday(*found) if found is not None else None


async def set_birthday(uow: UnitOfWork, tenant: int, member_id: int, b: Birthday) -> Birthday:
    """The member gives their birthday: once. Afterwards only an admin may change it
    (`change_birthday`), so nobody moves it around to collect birthday coupons."""
    if await uow.members.set_birthday(tenant, member_id, b.month, b.day, b.year, only_if_unset=True):
        return b
    current = await member_birthday(uow, tenant, member_id)
    if current is None:
        raise NotFoundError("member", member_id)
    raise BirthdayLockedError(current.month, current.day, current.year)


async def change_birthday(uow: UnitOfWork, tenant: int, member_id: int, b: Birthday | None, *,
                          actor: str) -> None:
    """An admin sets, corrects or clears a member's birthday (audited)."""
    before = await member_birthday(uow, tenant, member_id)
    if not await uow.members.set_birthday(tenant, member_id, b.month if b else None, b.day if b else None,
                                          b.year if b else None, only_if_unset=False):
        raise NotFoundError("member", member_id)
    uow.audit(tenant, actor, "member.birthday", f"member:{member_id}",
              before={"birthday": before.text if before else None}, after={"birthday": b.text if b else None})


async def members_with_birthday(uow: UnitOfWork, tenant: int, today: date, *, after_id: int = 0,
                                limit: int = 500) -> Sequence[int]:
    """Members celebrating their birthday on `today` (Feb 29 birthdays on Feb 28 of a
    common year), by id from `after_id`."""
    return await uow.members.with_birthday(tenant, birthdays_on(today), after_id=after_id, limit=limit)
