"""Group-buy and referral in the member JSON API (/api/app/v1/{tenant}[/{account}]/…), through
the services the chat uses: the group-buy module registers `groupbuy_routes`, the referral
module `referral_routes` (a module switched off serves, and documents, none of its paths).

A seat taken here is the chat's: `groupbuy.service.open_team`, or a join through the core's
join desk (`groupbuy.desk.take_seat`, the hot path the chat's 参团 takes) with the same
checks (seats, per-member team limit, quantity limit, the campaign's window, the team's
expiry); the answer carries the order, paid like any other through `POST …/orders/{id}/pay`.
Withdrawals and opening a team take an `Idempotency-Key` (a double tap opens one team and
holds the money once)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from flows.groupbuy import share_url
from flows.referral import qr_image_url, referral_url
from handlers.api_app import CHANNEL, IDEMPOTENCY_TTL, AppRoutes, Bad, body_of, int_of, jsonable, member_view, path_id
from handlers.api_v1 import error, ok
from handlers.context import Services
from social_mall.groupbuy import desk
from social_mall.groupbuy import service as groupbuy
from social_mall.groupbuy.errors import AlreadyInTeamError, TeamFullError
from social_mall.parsing import parse_id
from social_mall.referral import service as referral
from social_mall.referral.rules import DistributorStatus
from social_mall.tenants import TenantView

groupbuy_routes = AppRoutes()
referral_routes = AppRoutes()
PER_PAGE = 20


async def once(request: web.Request, svc: Services, tenant: TenantView, member: int, scope: str,
               run: Callable[[], Awaitable[tuple[int, Any]]], again: Callable[[int], Awaitable[Any]]
               ) -> web.Response:
    """Run `run` once per `Idempotency-Key` (24 h): it answers (id, body); the same key later
    answers `again(id)` with 200, while the first is under way a 409 `in_progress`."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 80:
        raise Bad("missing_idempotency_key", "Idempotency-Key")
    idem = f"app:idem:{scope}:{tenant.id}:{member}:{hashlib.sha256(key.encode()).hexdigest()}"
    if not await svc.kv.set_nx(idem, "pending", IDEMPOTENCY_TTL):
        done = await svc.kv.get(idem)
        if done is None or done == "pending":
            return error(409, "in_progress", "the same request is under way")
        return ok(jsonable(await again(int(done))))
    try:
        made, body = await run()
    except BaseException:
        await svc.kv.delete(idem)
        raise
    await svc.kv.set(idem, str(made), ttl=IDEMPOTENCY_TTL)
    return ok(jsonable(body), status=201)


def _timeout(svc: Services) -> timedelta:
    return timedelta(minutes=svc.settings.order_timeout_minutes)


def _joined(r: groupbuy.JoinResult, svc: Services, tenant: TenantView) -> dict[str, Any]:
    return {"team": jsonable(r.team), "seat": jsonable(r.seat), "order": jsonable(r.order),
            "share_url": share_url(svc, tenant.code, r.team.id)}


# -- group buys ------------------------------------------------------------------------------

@groupbuy_routes.get("/groupbuy/campaigns")
@member_view
async def campaigns(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """The live campaigns (group prices per SKU, team size, limits, window)."""
    async with svc.uows() as uow:
        return ok({"items": jsonable(await groupbuy.live_campaigns(uow, tenant.id, svc.clock()))})


@groupbuy_routes.get("/groupbuy/campaigns/{id}")
@member_view
async def campaign(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """A live campaign with its teams still forming (to join one)."""
    async with svc.uows() as uow:
        found = await groupbuy.campaign_detail(uow, tenant.id, path_id(request), svc.clock())
    return ok({"campaign": jsonable(found.campaign), "teams": jsonable(found.teams)})


@groupbuy_routes.get("/groupbuy/teams/{id}")
@member_view
async def team(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """A team: seats held and paid of its size, status, expiry; whether the member is in it
    (and the unpaid order of their seat). Other members are not named."""
    team_id = path_id(request)
    async with svc.uows() as uow:
        t = await groupbuy.load_team(uow, tenant.id, team_id)
        c = await groupbuy.load_campaign(uow, tenant.id, t.campaign_id)
        seats = await groupbuy.team_seats(uow, tenant.id, team_id)
        unpaid = await groupbuy.unpaid_join(uow, tenant.id, member, team_id)
    return ok({"team": jsonable(t), "campaign": jsonable(c), "seats_left": max(0, t.size - t.held),
               "joined": any(s.member_id == member for s in seats), "leader": t.leader_member_id == member,
               "unpaid_order": jsonable(unpaid.order) if unpaid else None,
               "share_url": share_url(svc, tenant.code, t.id)})


def _seat_input(data: dict[str, Any]) -> tuple[int, int, int]:
    return int_of(data, "sku_id"), int_of(data, "qty", high=999), int_of(data, "address_id")


@groupbuy_routes.post("/groupbuy/campaigns/{id}/teams")
@member_view
async def open_team(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Open a team (the member leads it) with the first seat: {sku_id, qty, address_id} →
    201 {team, seat, order, share_url}; header `Idempotency-Key` (the same key: the same team)."""
    campaign_id = path_id(request)
    sku, qty, address = _seat_input(await body_of(request))

    async def run() -> tuple[int, Any]:
        async with svc.uows() as uow:
            r = await groupbuy.open_team(uow, tenant.id, member, campaign_id, sku, qty, address_id=address,
                                         now=svc.clock(), timeout=_timeout(svc), channel=CHANNEL)
            await uow.commit()
        svc.outbox.kick()
        return r.team.id, _joined(r, svc, tenant)

    async def again(team_id: int) -> Any:
        async with svc.uows() as uow:
            t = await groupbuy.load_team(uow, tenant.id, team_id)
            unpaid = await groupbuy.unpaid_join(uow, tenant.id, member, team_id)
        return {"team": jsonable(t), "order": jsonable(unpaid.order) if unpaid else None,
                "share_url": share_url(svc, tenant.code, t.id)}

    return await once(request, svc, tenant, member, "gb-open", run, again)


@groupbuy_routes.post("/groupbuy/teams/{id}/join")
@member_view
async def join_team(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Take a seat in a forming team: {sku_id, qty, address_id} → 201 {team, seat, order};
    asking again while the seat waits for payment answers it again (200), as the chat does."""
    team_id = path_id(request)
    sku, qty, address = _seat_input(await body_of(request))
    async with svc.uows() as uow:
        try:
            r = await desk.take_seat(uow, desk.JoinRequest(tenant.id, member, team_id, sku, qty, address,
                                                           svc.clock(), _timeout(svc), CHANNEL))
            await uow.commit()  # a unit of work without a desk joined in it
        except (AlreadyInTeamError, TeamFullError):  # a double tap on the last seat: the team is full of it
            await uow.rollback()
            again = await groupbuy.unpaid_join(uow, tenant.id, member, team_id)
            if again is None:
                raise
            return ok(_joined(again, svc, tenant))
    svc.outbox.kick()
    return ok(_joined(r, svc, tenant), status=201)


# -- referral --------------------------------------------------------------------------------

@referral_routes.get("/referral/me")
@member_view
async def distributor(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """The member's distributor status ("none", "pending", "approved", …); approved: the
    balances, members bound, recent commissions and the share link."""
    async with svc.uows() as uow:
        d = await referral.find_distributor(uow, tenant.id, member)
        if d is None:
            return ok({"status": "none"})
        if d.status != DistributorStatus.APPROVED:
            return ok({"status": d.status})
        s = await referral.summary(uow, tenant.id, member, now=svc.clock())
    return ok({"status": d.status, "code": d.code, "frozen_fen": s.distributor.frozen_fen,
               "available_fen": s.distributor.available_fen, "bound_members": s.bound_members,
               "recent": jsonable(s.recent), "link": referral_url(svc, tenant.code, d.code)})


@referral_routes.post("/referral/apply")
@member_view
async def apply(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Apply to be a distributor (approved at once when the program says so); again: the same."""
    async with svc.uows() as uow:
        d = await referral.apply(uow, tenant.id, member, now=svc.clock())
        if d.status == DistributorStatus.APPROVED:
            referral.request_qr(uow, d)
        await uow.commit()
    svc.outbox.kick()
    return ok({"status": d.status, "code": d.code if d.status == DistributorStatus.APPROVED else None})


@referral_routes.get("/referral/share")
@member_view
async def share(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """The approved distributor's share link and QR image (made on first ask, as the chat's)."""
    async with svc.uows() as uow:
        d = await referral.find_distributor(uow, tenant.id, member)
        if d is None or d.status != DistributorStatus.APPROVED:
            from social_mall.referral.errors import NotDistributorError

            raise NotDistributorError(d.status if d else "")
        referral.request_qr(uow, d, explicit=False)
        await uow.commit()
    svc.outbox.kick()
    return ok({"code": d.code, "link": referral_url(svc, tenant.code, d.code),
               "qr": qr_image_url(svc, tenant.code, d.code)})


@referral_routes.get("/referral/commissions")
@member_view
async def commissions(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """The member's commissions ledger, newest first (20 a page)."""
    page = parse_id(request.query.get("page", "1")) or 1
    async with svc.uows() as uow:
        items, total = await referral.commission_page(uow, tenant.id, member, page=page, per_page=PER_PAGE)
    return ok({"items": jsonable(items), "page": page, "per_page": PER_PAGE, "total": total})


@referral_routes.post("/referral/withdrawals")
@member_view
async def withdraw(request: web.Request, svc: Services, tenant: TenantView, member: int) -> web.StreamResponse:
    """Hold {amount_fen} of the available balance for a payout awaiting approval (the chat's
    提现: minimum, daily limit); header `Idempotency-Key` (the same key holds once)."""
    amount = int_of(await body_of(request), "amount_fen", high=10**10)

    async def run() -> tuple[int, Any]:
        async with svc.uows() as uow:
            w = await referral.request_withdrawal(uow, tenant.id, member, amount, now=svc.clock())
            await uow.commit()
        svc.outbox.kick()
        return w.id, w

    async def again(withdrawal_id: int) -> Any:
        async with svc.uows() as uow:
            return next(w for w in await referral.list_withdrawals(uow, tenant.id)
                        if w.id == withdrawal_id and w.member_id == member)

    return await once(request, svc, tenant, member, "withdraw", run, again)
