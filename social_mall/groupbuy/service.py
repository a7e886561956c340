"""Group-buy services. Each takes the caller's unit of work and returns frozen views.

Joins: `hold` (one conditional UPDATE, held < size) → seat row (partial unique index:
a member once per team) → a normal order through orders.place_order with the group
price (`unit_prices`) and `source="groupbuy:team:<id>"`, all in one transaction.
Payment confirms the seat (`on_order_paid`), cancellation releases it
(`on_order_cancelled`). Sweepers: `expire_team` (fail, or simulated completion) and
`refund_team` (failed → refunding, one refund request per paid seat, each seat moved
paid → refunding first so two sweepers never request twice).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.errors import IllegalTransitionError, NotFoundError
from social_mall.groupbuy import rules
from social_mall.groupbuy.errors import (
    AlreadyInTeamError,
    BadTermsError,
    BadWecomSettingError,
    CampaignNotLiveError,
    ExtendRefusedError,
    NotLeaderError,
    QtyLimitError,
    TeamClosedError,
    TeamFullError,
    TeamLimitError,
)
from social_mall.groupbuy.events import SeatConfirmed, TeamFailed, TeamOpened, TeamRefunded, TeamSucceeded
from social_mall.groupbuy.rules import SeatStatus as S
from social_mall.groupbuy.rules import TeamStatus as T
from social_mall.orders.rules import OrderStatus
from social_mall.orders.service import cancel_order, load_order, place_order
from social_mall.payments.service import request_refund
from social_mall.views import OrderView
from storage.groupbuy_models import GroupbuyCampaign, GroupbuySeat, GroupbuySku, GroupbuyTeam, GroupbuyWecom
from storage.groupbuy_repos import GroupbuyRepo
from storage.models import Address
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PICKUP = "团长处自提"


def repo(uow: UnitOfWork) -> GroupbuyRepo:
    return GroupbuyRepo(uow.session)


# -- views ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriceView:
    sku_id: int
    spec: str
    price_fen: int          # the SKU's own price
    group_price_fen: int
    stock: int


@dataclass(frozen=True)
class CampaignView:
    id: int
    product_id: int
    title: str
    product_title: str
    image: str
    team_size: int
    lifetime_hours: int
    starts_at: datetime
    ends_at: datetime
    max_teams_per_member: int
    max_qty: int
    leader_discount_fen: int
    simulated: bool
    max_extend_hours: int
    active: bool
    prices: tuple[PriceView, ...]
    leader_reward_fen: int = 0
    leader_reward_bp: int = 0

    @property
    def min_group_fen(self) -> int:
        return min((p.group_price_fen for p in self.prices), default=0)

    @property
    def min_price_fen(self) -> int:
        return min((p.price_fen for p in self.prices), default=0)

    def price(self, sku_id: int) -> PriceView | None:
        return next((p for p in self.prices if p.sku_id == sku_id), None)


@dataclass(frozen=True)
class TeamView:
    id: int
    campaign_id: int
    leader_member_id: int
    size: int
    held: int
    paid: int
    virtual: int
    status: str
    chat_id: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None

    @property
    def seats_left(self) -> int:
        return rules.seats_left(self.size, self.held)

    @property
    def missing(self) -> int:
        return rules.missing(self.size, self.paid, self.virtual)

    def time_left(self, now: datetime) -> tuple[int, int]:
        return rules.time_left(self.expires_at, now)


@dataclass(frozen=True)
class SeatView:
    id: int
    team_id: int
    member_id: int
    order_id: int | None
    sku_id: int
    qty: int
    leader: bool
    status: str
    channel: str


@dataclass(frozen=True)
class JoinResult:
    team: TeamView
    seat: SeatView
    order: OrderView
    campaign: CampaignView


@dataclass(frozen=True)
class CampaignDetail:
    campaign: CampaignView
    teams: tuple[TeamView, ...]


def team_view(t: GroupbuyTeam) -> TeamView:
    return TeamView(t.id, t.campaign_id, t.leader_member_id, t.size, t.held, t.paid, t.virtual, t.status,
                    t.chat_id, t.created_at, t.expires_at, t.closed_at)


def seat_view(s: GroupbuySeat) -> SeatView:
    return SeatView(s.id, s.team_id, s.member_id, s.order_id, s.sku_id, s.qty, s.leader, s.status, s.channel)


async def _campaign_view(uow: UnitOfWork, c: GroupbuyCampaign) -> CampaignView:
    prices = await repo(uow).prices(c.tenant_id, c.id)
    product = await uow.catalog.product(c.tenant_id, c.product_id)
    skus = {s.id: s for s in await uow.catalog.skus(c.tenant_id, c.product_id)}
    views = tuple(
        PriceView(p.sku_id, skus[p.sku_id].spec, skus[p.sku_id].price_fen, p.group_price_fen, skus[p.sku_id].stock)
        for p in prices if p.sku_id in skus
    )
    return CampaignView(
        c.id, c.product_id, c.title, product.title if product else "", product.image if product else "",
        c.team_size, c.lifetime_hours, c.starts_at, c.ends_at, c.max_teams_per_member, c.max_qty,
        c.leader_discount_fen, c.simulated, c.max_extend_hours, c.active, views,
        c.leader_reward_fen, c.leader_reward_bp,
    )


# -- campaigns ----------------------------------------------------------------------------

async def create_campaign(
    uow: UnitOfWork, tenant: int, *, product_id: int, title: str, terms: rules.CampaignTerms,
    group_prices: Mapping[int, int], actor: str = "system",
) -> CampaignView:
    """A campaign on a product: group price per SKU (fen, positive, not above the SKU's
    own price) and the terms (team size 2–100, lifetime, window, limits)."""
    bad = rules.check_terms(terms)
    skus = {s.id: s for s in await uow.catalog.skus(tenant, product_id)}
    if not skus:
        raise NotFoundError("product", product_id)
    if not group_prices or any(sid not in skus or not 0 < fen <= skus[sid].price_fen
                               for sid, fen in group_prices.items()):
        bad.append("group_prices")
    if bad:
        raise BadTermsError(bad)
    row = await repo(uow).add_campaign(
        GroupbuyCampaign(
            tenant_id=tenant, product_id=product_id, title=title[:80], team_size=terms.team_size,
            lifetime_hours=terms.lifetime_hours, starts_at=terms.starts_at, ends_at=terms.ends_at,
            max_teams_per_member=terms.max_teams_per_member, max_qty=terms.max_qty,
            leader_discount_fen=terms.leader_discount_fen, simulated=terms.simulated,
            max_extend_hours=terms.max_extend_hours, active=True,
            leader_reward_fen=terms.leader_reward_fen, leader_reward_bp=terms.leader_reward_bp,
        ),
        [GroupbuySku(tenant_id=tenant, sku_id=sid, group_price_fen=fen) for sid, fen in sorted(group_prices.items())],
    )
    uow.audit(tenant, actor, "groupbuy.campaign_created", f"groupbuy_campaign:{row.id}",
              after={"product_id": product_id, "team_size": terms.team_size, "prices": dict(group_prices),
                     "leader_reward_fen": terms.leader_reward_fen, "leader_reward_bp": terms.leader_reward_bp})
    return await _campaign_view(uow, row)


async def load_campaign(uow: UnitOfWork, tenant: int, campaign_id: int) -> CampaignView:
    c = await repo(uow).campaign(tenant, campaign_id)
    if c is None:
        raise NotFoundError("groupbuy_campaign", campaign_id)
    return await _campaign_view(uow, c)


async def live_campaigns(uow: UnitOfWork, tenant: int, now: datetime) -> tuple[CampaignView, ...]:
    return tuple([await _campaign_view(uow, c) for c in await repo(uow).live_campaigns(tenant, now)])


async def find_live_campaign(uow: UnitOfWork, tenant: int, words: str, now: datetime) -> CampaignView | None:
    """A live campaign whose title or product title contains `words` (the WeCom 开团 <商品>)."""
    words = words.strip()
    for c in await live_campaigns(uow, tenant, now):
        if words and (words in c.title or words in c.product_title or c.product_title in words):
            return c
    return None


async def campaign_detail(uow: UnitOfWork, tenant: int, campaign_id: int, now: datetime) -> CampaignDetail:
    c = await repo(uow).campaign(tenant, campaign_id)
    if c is None or not rules.is_live(c.starts_at, c.ends_at, c.active, now):
        raise CampaignNotLiveError(campaign_id)
    teams = await repo(uow).open_teams(tenant, campaign_id, now)
    return CampaignDetail(await _campaign_view(uow, c), tuple(team_view(t) for t in teams))


# -- teams --------------------------------------------------------------------------------

async def load_team(uow: UnitOfWork, tenant: int, team_id: int) -> TeamView:
    t = await repo(uow).team(tenant, team_id)
    if t is None:
        raise NotFoundError("groupbuy_team", team_id)
    return team_view(t)


async def unpaid_join(uow: UnitOfWork, tenant: int, member_id: int, team_id: int) -> JoinResult | None:
    """The member's seat in this team while it still waits for payment, with its order:
    what a second 「确认」 (a double send, a retried message) shows again instead of a
    refusal, so the member always has the pay link."""
    seat = await repo(uow).active_seat(tenant, team_id, member_id)
    if seat is None or seat.status != S.HELD or seat.order_id is None:
        return None
    order = await load_order(uow, tenant, seat.order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        return None
    team = await load_team(uow, tenant, team_id)
    return JoinResult(team, seat_view(seat), order, await join_terms(uow, tenant, team.campaign_id))


async def team_seats(uow: UnitOfWork, tenant: int, team_id: int, *, active_only: bool = True) -> tuple[SeatView, ...]:
    statuses = (S.HELD, S.PAID, S.REFUNDING, S.REFUNDED) if active_only else ()
    return tuple(seat_view(s) for s in await repo(uow).seats(tenant, team_id, statuses=statuses))


async def leader_teams(uow: UnitOfWork, tenant: int, member_id: int) -> tuple[TeamView, ...]:
    return tuple(team_view(t) for t in await repo(uow).teams_led_by(tenant, member_id))


async def pickup_address(uow: UnitOfWork, tenant: int, member_id: int, label: str) -> int:
    """The member's default address, or (group chats: members collect from their leader)
    a pickup address made for them."""
    saved = await uow.members.addresses(tenant, member_id)
    if saved:
        return saved[0].id
    row = await uow.members.add_address(
        Address(tenant_id=tenant, member_id=member_id, name=label[:40] or "团员", phone="", detail=PICKUP,
                is_default=True))
    return row.id


async def join_terms(uow: UnitOfWork, tenant: int, campaign_id: int) -> CampaignView:
    """The campaign as a join checks it, through the unit of work's read cache: joins are
    the module's hot path, and a campaign, its group prices, product and SKUs change only
    by an edit that clears the cache when it commits (storage/cache.py). The stock in the
    view may be a cache period old; a join takes stock by conditional UPDATE regardless."""
    async def load() -> CampaignView | None:
        c = await repo(uow).campaign(tenant, campaign_id)
        return None if c is None else await _campaign_view(uow, c)

    view = await uow.cache.get_or_load(("groupbuy_campaign", tenant, campaign_id), load)
    if view is None:
        raise NotFoundError("groupbuy_campaign", campaign_id)
    return view


async def _check_join(uow: UnitOfWork, tenant: int, view: CampaignView, member_id: int, sku_id: int, qty: int,
                      now: datetime) -> int:
    """The group price for this sku if the member may take a seat now."""
    check_limits(view, sku_id, qty, now, 0)  # the cheap checks before the count query
    teams = await repo(uow).member_team_count(tenant, view.id, member_id) if view.max_teams_per_member else 0
    return check_limits(view, sku_id, qty, now, teams)


def check_limits(view: CampaignView, sku_id: int, qty: int, now: datetime, teams: int) -> int:
    """The group price for this sku, given the member's forming teams in the campaign."""
    if not rules.is_live(view.starts_at, view.ends_at, view.active, now):
        raise CampaignNotLiveError(view.id)
    if not 1 <= qty <= view.max_qty:
        raise QtyLimitError(qty, view.max_qty)
    price = view.price(sku_id)
    if price is None:
        raise NotFoundError("sku", sku_id)
    if view.max_teams_per_member and teams >= view.max_teams_per_member:
        raise TeamLimitError(view.max_teams_per_member)
    return price.group_price_fen


async def _seat_and_order(
    uow: UnitOfWork, tenant: int, c: CampaignView, team: TeamView, member_id: int, sku_id: int, qty: int,
    group_price: int, *, leader: bool, address_id: int, now: datetime, timeout: timedelta, channel: str,
) -> JoinResult:
    """The order (stock taken at the group price) and the seat pointing at it. Called with
    the team's seat already held: what follows is short, the team and SKU rows are locked
    until the caller commits."""
    price = rules.unit_price(group_price, leader=leader, leader_discount_fen=c.leader_discount_fen)
    order = await place_order(
        uow, tenant, member_id, [(sku_id, qty)],
        address_id=address_id, now=now,
        timeout=min(timeout, max(team.expires_at - now, timedelta(minutes=1))), channel=channel,
        source=rules.team_source(team.id), unit_prices={sku_id: price},
    )
    seat = await repo(uow).add_seat(GroupbuySeat(
        tenant_id=tenant, team_id=team.id, campaign_id=c.id, member_id=member_id, sku_id=sku_id,
        qty=qty, leader=leader, status=S.HELD, channel=channel, joined_at=now, order_id=order.id,
    ))
    if seat is None:
        raise AlreadyInTeamError(team.id)
    return JoinResult(team, seat_view(seat), order, c)


async def open_team(
    uow: UnitOfWork, tenant: int, member_id: int, campaign_id: int, sku_id: int, qty: int, *,
    address_id: int, now: datetime, timeout: timedelta, channel: str = "mp", chat_id: str = "",
) -> JoinResult:
    """The member opens a team (its leader) and holds its first seat with an order."""
    c = await join_terms(uow, tenant, campaign_id)
    group_price = await _check_join(uow, tenant, c, member_id, sku_id, qty, now)
    team = await repo(uow).add_team(GroupbuyTeam(
        tenant_id=tenant, campaign_id=c.id, leader_member_id=member_id, size=c.team_size, held=1, paid=0,
        virtual=0, status=T.FORMING, chat_id=chat_id[:64], version=0, created_at=now,
        expires_at=rules.team_expiry(now, c.lifetime_hours, c.ends_at),
    ))
    result = await _seat_and_order(uow, tenant, c, team_view(team), member_id, sku_id, qty,
                                   group_price, leader=True, address_id=address_id, now=now, timeout=timeout,
                                   channel=channel)
    uow.emit(TeamOpened(tenant_id=tenant, team_id=team.id, campaign_id=c.id, member_id=member_id, chat_id=chat_id))
    from social_mall.groupbuy.desk import prime_opened   # the desk imports this module
    prime_opened(uow, tenant, result)   # the team's admission pool, once this commits
    return result


async def join_team(
    uow: UnitOfWork, tenant: int, member_id: int, team_id: int, sku_id: int, qty: int, *,
    address_id: int, now: datetime, timeout: timedelta, channel: str = "mp",
) -> JoinResult:
    """Take a seat in an open team. Exactly one of many racing joiners gets the last
    seat (the conditional UPDATE); the others get TeamFullError and roll back.

    Reads and checks come first, without locks; then the seat is held (team row locked),
    the order placed (SKU row locked) and the seat written, and the caller commits."""
    r = repo(uow)
    team = await r.team(tenant, team_id)
    if team is None:
        raise NotFoundError("groupbuy_team", team_id)
    if team.status != T.FORMING or team.expires_at <= now:
        raise TeamClosedError(team_id, team.status)
    if team.held >= team.size:
        raise TeamFullError(team_id, team.campaign_id)
    if await r.active_seat(tenant, team_id, member_id) is not None:
        raise AlreadyInTeamError(team_id)
    view = await join_terms(uow, tenant, team.campaign_id)
    group_price = await _check_join(uow, tenant, view, member_id, sku_id, qty, now)
    counters = await r.hold(tenant, team_id, now)
    if counters is None:
        raise TeamFullError(team_id, view.id)
    held, paid, virtual = counters
    after = dataclasses.replace(team_view(team), held=held, paid=paid, virtual=virtual)
    return await _seat_and_order(uow, tenant, view, after, member_id, sku_id, qty, group_price,
                                 leader=False, address_id=address_id, now=now, timeout=timeout, channel=channel)


async def on_order_paid(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> TeamView | None:
    """order.paid: confirm the seat (once); the team succeeds when confirmed seats reach
    its size. A seat paid after its team failed is refunded: by the refund sweeper, or
    here when the sweeper is done with the team."""
    r = repo(uow)
    seat = await r.seat_for_order(tenant, order_id)
    if seat is None:
        return None
    if not await r.move_seat(seat.id, S.HELD, S.PAID, paid_at=now):
        return await load_team(uow, tenant, seat.team_id)   # repeat delivery, or released
    await r.confirm(tenant, seat.team_id)
    team = await r.team(tenant, seat.team_id)
    assert team is not None
    order = await uow.orders.get(tenant, order_id)
    if order is not None and order.status == OrderStatus.REFUNDED:
        # its full refund was handled before this payment (outbox deliveries retry on their
        # own): the seat ends as it would have in order, paid and then refunded
        await _seat_refunded(uow, tenant, seat.id, seat.team_id)
    elif team.status == T.FORMING:
        uow.emit(SeatConfirmed(tenant_id=tenant, team_id=team.id, member_id=seat.member_id, order_id=order_id,
                               paid=team.paid, size=team.size))
        if await r.succeed_if_complete(tenant, team.id, now):
            uow.emit(TeamSucceeded(tenant_id=tenant, team_id=team.id, paid=team.paid, virtual=team.virtual,
                                   size=team.size, member_ids=await _paid_members(r, tenant, team.id)))
    elif team.status in (T.REFUNDING, T.REFUNDED):
        # paid after its team failed and was swept for refunds (the team's sweeper confirms
        # or cancels every hold when it ends a team, so this is a stray): the seat is paid
        # back on its own; the team's status stays where the table allows
        await _refund_seat(uow, tenant, seat.id, order_id, now=now)
    return await load_team(uow, tenant, seat.team_id)


async def on_order_cancelled(uow: UnitOfWork, tenant: int, order_id: int, *, now: datetime) -> bool:
    """order.cancelled (timeout, the member, or the team sweeper): release the held seat
    so someone else can take it. Once only."""
    r = repo(uow)
    seat = await r.seat_for_order(tenant, order_id)
    if seat is None or not await r.move_seat(seat.id, S.HELD, S.RELEASED):
        return False
    await r.unhold(tenant, seat.team_id)
    uow.audit(tenant, "system", "groupbuy.seat_released", f"groupbuy_team:{seat.team_id}",
              after={"member_id": seat.member_id, "order_id": order_id})
    return True


async def _confirm_seat(uow: UnitOfWork, tenant: int, seat_id: int, team_id: int, *, at: datetime) -> bool:
    """held → paid for a seat whose order is paid, and count it (once: conditional)."""
    if not await repo(uow).move_seat(seat_id, S.HELD, S.PAID, paid_at=at):
        return False
    await repo(uow).confirm(tenant, team_id)
    return True


async def _finish_team(uow: UnitOfWork, team: GroupbuyTeam, c: GroupbuyCampaign, *, now: datetime,
                       reason: str) -> str:
    """Expiry or the leader's close: success (every seat paid), simulated completion or
    failure; unpaid holds are cancelled (their order.cancelled releases the seats).

    Payments count as of now, not as of the last order.paid delivery: a held seat whose
    order is already paid (its event still in the outbox) is confirmed here first, so an
    outbox running late never fails a team whose members paid in time. The late delivery
    then finds the seat paid and does nothing."""
    tenant, r = team.tenant_id, repo(uow)
    for seat in await r.seats(tenant, team.id, statuses=(S.HELD,)):
        order = await uow.orders.get(tenant, seat.order_id) if seat.order_id is not None else None
        if order is not None and order.status == OrderStatus.PAID:
            await _confirm_seat(uow, tenant, seat.id, team.id, at=order.paid_at or now)
    fresh = await r.team(tenant, team.id)
    assert fresh is not None
    team = fresh
    if team.status != T.FORMING:
        return ""
    decision, virtual = rules.on_expiry(size=team.size, paid=team.paid, simulated=c.simulated)
    if decision in (rules.Expiry.SUCCEED, rules.Expiry.SUCCEED_SIMULATED):
        if not await r.move(tenant, team.id, T.FORMING, T.SUCCEEDED, virtual=virtual, closed_at=now):
            return ""
        uow.emit(TeamSucceeded(tenant_id=tenant, team_id=team.id, paid=team.paid, virtual=virtual, size=team.size,
                               member_ids=await _paid_members(r, tenant, team.id)))
        outcome = "simulated" if decision == rules.Expiry.SUCCEED_SIMULATED else "succeeded"
    else:
        if not await r.move(tenant, team.id, T.FORMING, T.FAILED, closed_at=now):
            return ""
        uow.emit(TeamFailed(tenant_id=tenant, team_id=team.id, paid=team.paid, size=team.size, reason=reason))
        outcome = "failed"
    for seat in await r.seats(tenant, team.id, statuses=(S.HELD,)):
        if seat.order_id is None:
            continue
        try:
            await cancel_order(uow, tenant, seat.order_id, reason=f"groupbuy_{outcome}"[:40], now=now)
        except IllegalTransitionError:
            # paid a moment ago (another worker's notify won the race): the seat counts;
            # a failed team's refund sweeper pays it back like every other paid seat
            await _confirm_seat(uow, tenant, seat.id, team.id, at=now)
    uow.audit(tenant, "system" if reason == "expired" else "leader", f"groupbuy.team_{outcome}",
              f"groupbuy_team:{team.id}", after={"paid": team.paid, "virtual": virtual, "reason": reason})
    return outcome


async def expire_team(uow: UnitOfWork, tenant: int, team_id: int, *, now: datetime) -> str:
    """The sweeper's step for one forming team past its expiry: "failed", "simulated",
    "succeeded" (its last payments were still in the outbox), or "" (not due, or another
    worker did it)."""
    r = repo(uow)
    team = await r.team(tenant, team_id)
    if team is None or team.status != T.FORMING or team.expires_at > now:
        return ""
    c = await r.campaign(tenant, team.campaign_id)
    assert c is not None
    return await _finish_team(uow, team, c, now=now, reason="expired")


async def _refund_seat(uow: UnitOfWork, tenant: int, seat_id: int, order_id: int, *, now: datetime) -> bool:
    """paid → refunding, then one refund request for the whole order (fixed out_refund_no
    per request, through the outbox to the gateway). The seat's conditional move is what
    makes two sweepers request it once."""
    if not await repo(uow).move_seat(seat_id, S.PAID, S.REFUNDING):
        return False
    order = await uow.orders.get(tenant, order_id)
    assert order is not None
    if order.status == OrderStatus.REFUND_REQUESTED or order.status == OrderStatus.REFUNDED:
        return True  # an admin refunded it already
    await request_refund(uow, tenant, order_id, amount_fen=None, reason="拼团失败", actor="groupbuy", now=now)
    return True


async def refund_team(uow: UnitOfWork, tenant: int, team_id: int, *, now: datetime) -> int:
    """The refund sweeper's step for a failed team: failed → refunding, one refund per
    paid seat. Returns how many refunds were requested (0 if another worker won)."""
    r = repo(uow)
    if not await r.move(tenant, team_id, T.FAILED, T.REFUNDING):
        return 0
    n = 0
    for seat in await r.seats(tenant, team_id, statuses=(S.PAID,)):
        if seat.order_id is not None and await _refund_seat(uow, tenant, seat.id, seat.order_id, now=now):
            n += 1
    if n == 0 and await r.count_seats(tenant, team_id, (S.REFUNDING,)) == 0:
        await r.move(tenant, team_id, T.REFUNDING, T.REFUNDED)
        uow.emit(TeamRefunded(tenant_id=tenant, team_id=team_id, refunds=0))
    return n


async def on_order_refunded(uow: UnitOfWork, tenant: int, order_id: int, *, full: bool) -> bool:
    """order.refunded: the seat's money is back, whether the team's refund run asked for it
    (refunding) or the merchant refunded a paid seat; the last one makes the team refunded.
    A seat still held (its order.paid not handled yet) is settled by `on_order_paid`."""
    seat = await repo(uow).seat_for_order(tenant, order_id)
    if seat is None or not full:
        return False
    return await _seat_refunded(uow, tenant, seat.id, seat.team_id)


async def _seat_refunded(uow: UnitOfWork, tenant: int, seat_id: int, team_id: int) -> bool:
    r = repo(uow)
    if not await r.move_seat_from(seat_id, (S.PAID, S.REFUNDING), S.REFUNDED):
        return False
    if await r.count_seats(tenant, team_id, (S.PAID, S.REFUNDING)) == 0:
        if await r.move(tenant, team_id, T.REFUNDING, T.REFUNDED):
            uow.emit(TeamRefunded(tenant_id=tenant, team_id=team_id,
                                  refunds=await r.count_seats(tenant, team_id, (S.REFUNDED,))))
    return True


# -- the leader's tools -----------------------------------------------------------------------

async def _led(uow: UnitOfWork, tenant: int, member_id: int, team_id: int) -> tuple[GroupbuyTeam, GroupbuyCampaign]:
    r = repo(uow)
    team = await r.team(tenant, team_id)
    if team is None:
        raise NotFoundError("groupbuy_team", team_id)
    if team.leader_member_id != member_id:
        raise NotLeaderError(team_id)
    if team.status != T.FORMING:
        raise TeamClosedError(team_id, team.status)
    c = await r.campaign(tenant, team.campaign_id)
    assert c is not None
    return team, c


async def close_team(uow: UnitOfWork, tenant: int, member_id: int, team_id: int, *, now: datetime) -> str:
    """The leader ends a forming team now, under the campaign's rules: simulated
    completion if the campaign has it (and someone paid), otherwise it fails and every
    paid member is refunded."""
    team, c = await _led(uow, tenant, member_id, team_id)
    outcome = await _finish_team(uow, team, c, now=now, reason="closed_by_leader")
    if not outcome:
        raise IllegalTransitionError(f"team {team_id}", team.status, "closed")
    return outcome


async def extend_team(uow: UnitOfWork, tenant: int, member_id: int, team_id: int, hours: int, *,
                      now: datetime) -> TeamView:
    team, c = await _led(uow, tenant, member_id, team_id)
    new = rules.check_extend(expires_at=team.expires_at, created_at=team.created_at,
                             lifetime_hours=c.lifetime_hours, max_extend_hours=c.max_extend_hours,
                             hours=hours, campaign_ends_at=c.ends_at)
    if new is None or team.expires_at <= now or not await repo(uow).extend(tenant, team_id, team.expires_at, new):
        raise ExtendRefusedError(team_id, hours)
    uow.audit(tenant, f"member:{member_id}", "groupbuy.team_extended", f"groupbuy_team:{team_id}",
              before={"expires_at": team.expires_at.isoformat()}, after={"expires_at": new.isoformat()})
    return await load_team(uow, tenant, team_id)


async def members_of(uow: UnitOfWork, tenant: int, team_id: int) -> Sequence[int]:
    """Member ids with a seat that counts (for pushes)."""
    seats = await repo(uow).seats(tenant, team_id, statuses=(S.HELD, S.PAID, S.REFUNDING, S.REFUNDED))
    return sorted({s.member_id for s in seats})


# -- one person, one member -------------------------------------------------------------------

async def absorb_member(uow: UnitOfWork, tenant: int, keep: int, gone: int) -> tuple[int, int]:
    """member.merged: the merged member's teams (as leader) and seats move to the kept
    one (a seat stays put where the kept member sits in the same team). Idempotent."""
    teams, seats = await repo(uow).move_member(tenant, keep, gone)
    if teams or seats:
        uow.audit(tenant, "system", "groupbuy.member_merged", f"member:{keep}",
                  after={"from": gone, "teams": teams, "seats": seats})
    return teams, seats


async def unpaid_orders(uow: UnitOfWork, tenant: int, member_id: int) -> tuple[tuple[int, OrderView], ...]:
    """(team id, order) of the member's seats still waiting for payment."""
    return tuple([(team_id, await load_order(uow, tenant, order_id))
                  for team_id, order_id in await repo(uow).unpaid_orders_of(tenant, member_id)])


# -- the WeCom group channel's settings ---------------------------------------------------------

@dataclass(frozen=True)
class WecomSettings:
    tenant_id: int
    token: str
    aes_key: str
    receive_id: str
    webhook_url: str
    bot_name: str

    def __repr__(self) -> str:  # never log the token or key
        return f"WecomSettings(tenant_id={self.tenant_id}, bot_name={self.bot_name!r})"


WECOM_API_BASE = "https://qyapi.weixin.qq.com"


async def wecom_settings(uow: UnitOfWork, tenant: int, *, webhook_base: str = WECOM_API_BASE) -> WecomSettings | None:
    """The group bot's callback credentials and robot webhook. A WeCom row on the console's
    渠道与商户 page (channel accounts: a group robot, or a corp app, with token and AES key; a
    group robot with a webhook key) takes precedence, part by part, over this module's own
    row (the 企业微信 page, seeded from the environment for the demo)."""
    from social_mall.channels.service import wecom_accounts

    row = await repo(uow).wecom(tenant)
    callback, robot = await wecom_accounts(uow, tenant)
    if callback is None and robot is None:
        if row is None:
            return None
        return WecomSettings(row.tenant_id, row.token, row.aes_key, row.receive_id, row.webhook_url, row.bot_name)
    if callback is not None:
        token, aes_key = callback.token, callback.aes_key
        receive_id = callback.app_id if callback.kind == "wecom_app" else ""
    else:
        token, aes_key, receive_id = (row.token, row.aes_key, row.receive_id) if row is not None else ("", "", "")
    webhook = rules.webhook_url(webhook_base, robot.webhook_key) if robot is not None else (
        row.webhook_url if row is not None else "")
    name = (robot.name if robot is not None else "") or (row.bot_name if row is not None else "") or "机器人"
    return WecomSettings(tenant, token, aes_key, receive_id, webhook, name)


async def own_wecom_settings(uow: UnitOfWork, tenant: int) -> tuple[WecomSettings | None, bool]:
    """This module's own row (the 企业微信 page edits it) and whether a WeCom row of the
    渠道与商户 page overrides some of it (`wecom_settings` is what is in use)."""
    from social_mall.channels.service import wecom_accounts

    row = await repo(uow).wecom(tenant)
    own = None if row is None else WecomSettings(row.tenant_id, row.token, row.aes_key, row.receive_id,
                                                 row.webhook_url, row.bot_name)
    return own, any(a is not None for a in await wecom_accounts(uow, tenant))


async def save_wecom_settings(uow: UnitOfWork, s: WecomSettings, *, actor: str, now: datetime) -> None:
    await repo(uow).save_wecom(GroupbuyWecom(
        tenant_id=s.tenant_id, token=s.token, aes_key=s.aes_key, receive_id=s.receive_id,
        webhook_url=s.webhook_url, bot_name=s.bot_name, updated_at=now))
    uow.audit(s.tenant_id, actor, "groupbuy.wecom_saved", "groupbuy_wecom", after={"bot_name": s.bot_name})


async def update_wecom_settings(uow: UnitOfWork, tenant: int, changes: Mapping[str, str], *, webhook_base: str,
                                actor: str, now: datetime) -> list[str]:
    """Set the bot's token, AES key, robot webhook key and name from `changes`; a blank
    value keeps the stored one (the secrets are write-only: nobody reads them back). A
    first save needs the token and the AES key. The webhook is built on `webhook_base`
    (WeCom's API host) from the key: the server posts there, so no URL is ever typed in.
    Returns the names of the fields set; the audit log records names, never values."""
    values: dict[str, str] = {}
    for name in rules.WECOM_FIELDS:
        raw = (changes.get(name) or "").strip()
        if not raw:
            continue
        problem = rules.wecom_problem(name, raw)
        if problem is not None:
            raise BadWecomSettingError(name, problem)
        values[name] = raw
    current, _ = await own_wecom_settings(uow, tenant)  # this page's row, whatever the channel page overrides
    if current is None:
        for name in ("token", "aes_key"):
            if name not in values:
                raise BadWecomSettingError(name, "required")
    if not values:
        return []
    base = current or WecomSettings(tenant, "", "", "", "", "机器人")
    hook = rules.webhook_url(webhook_base, values["webhook_key"]) if "webhook_key" in values else base.webhook_url
    await repo(uow).save_wecom(GroupbuyWecom(
        tenant_id=tenant, token=values.get("token", base.token), aes_key=values.get("aes_key", base.aes_key),
        receive_id=base.receive_id, webhook_url=hook, bot_name=values.get("bot_name", base.bot_name),
        updated_at=now))
    changed = sorted(values)
    uow.audit(tenant, actor, "groupbuy.wecom_saved", "groupbuy_wecom",
              after={"changed": changed, "bot_name": values.get("bot_name", base.bot_name)})
    return changed


async def open_teams_in_chat(uow: UnitOfWork, tenant: int, chat_id: str, now: datetime) -> tuple[TeamView, ...]:
    """Forming teams opened in one WeCom group (oldest first), with a seat left."""
    return tuple(team_view(t) for t in await repo(uow).open_teams_in_chat(tenant, chat_id, now))


async def _paid_members(r: GroupbuyRepo, tenant: int, team_id: int) -> tuple[int, ...]:
    return tuple(seat.member_id for seat in await r.seats(tenant, team_id, statuses=(S.PAID,)))


# -- leader rewards (团长奖励) ------------------------------------------------------------------

@dataclass(frozen=True)
class LeaderReward:
    """What a successful team owes its leader: fixed fen or basis points of what the
    team's orders paid for their goods, and those orders (the leader's first)."""

    team_id: int
    campaign_id: int
    leader_member_id: int
    fixed_fen: int
    rate_bp: int
    order_ids: tuple[int, ...]


async def leader_reward(uow: UnitOfWork, tenant: int, team_id: int) -> LeaderReward | None:
    """The reward of a team that succeeded with every seat paid (no simulated seats: a
    team completed virtually earned nothing for its leader), when its campaign pays one;
    None otherwise. Read by the referral ledger on `groupbuy.team_succeeded`."""
    r = repo(uow)
    team = await r.team(tenant, team_id)
    if team is None or team.status not in (T.SUCCEEDED,) or team.virtual > 0:
        return None
    c = await r.campaign(tenant, team.campaign_id)
    if c is None or (c.leader_reward_fen <= 0 and c.leader_reward_bp <= 0):
        return None
    seats = await r.seats(tenant, team_id, statuses=(S.PAID, S.REFUNDING, S.REFUNDED))
    seats.sort(key=lambda s: (not s.leader, s.id))
    orders = tuple(s.order_id for s in seats if s.order_id is not None)
    if not orders:
        return None
    return LeaderReward(team.id, c.id, team.leader_member_id, c.leader_reward_fen, c.leader_reward_bp, orders)
