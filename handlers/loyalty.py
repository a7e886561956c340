"""The `loyalty` module (会员): levels from growth, points (earned on paid orders and by
sign-in, spent at checkout, returned per the refund rules, expiring), coupons (claimed in
chat, issued on events) and the chat flow 「会员」「签到」「领券」.

Subscribers:
  order.paid              growth + points; the order's coupon becomes used
  order.cancelled         the unpaid order's coupon and points come back
  order.refunded          points and coupon back per social_mall/loyalty/rules.py
  member.joined           coupons of templates issued on "member.joined"
  groupbuy.team_succeeded coupons of templates issued on "groupbuy.succeeded" (payload member_ids)
  loyalty.level_changed   push the new level to the member
  loyalty.coupon_issued   push a coupon given by an event or an admin
  loyalty.birthday_coupons push this year's birthday coupons (one message)
Jobs: loyalty.expire_points; loyalty.birthday_coupons (hourly: the first run of the
Shanghai day gives that day's birthday coupons, later runs find them given — the yearly
gift row is unique — so restarts, a missed run or several workers change nothing).

A member merge (social_mall/loyalty/merge.py) emits `member.merged` for other modules
(referral bindings) to follow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flows import members as members_flow
from handlers.push import push_to_member
from handlers.context import Services
from social_mall.loyalty import demo, service
from social_mall.plugins import Batched, Delivery, Module, Registry

log = logging.getLogger(__name__)

NAME = "loyalty"
BIRTHDAY_JOB_SECONDS = 3600.0


def setup(reg: Registry) -> None:
    from handlers.console import pages_loyalty  # the module's console page

    svc: Services = reg.services
    reg.add_flow(members_flow.FLOW)
    pages_loyalty.register(reg)
    reg.add_demo(demo.seed)

    async def push(d: Delivery, template: str) -> None:
        await push_to_member(svc, d.tenant_id, int(d.payload["member_id"]), template, d.payload)

    async def on_paid(d: Delivery) -> None:
        p = d.payload
        async with svc.uows() as uow:
            await service.on_order_paid(uow, d.tenant_id, int(p["order_id"]), int(p["member_id"]),
                                        int(p["paid_fen"]), svc.clock(), channel=str(p.get("channel", "")))
            await uow.commit()

    async def on_cancelled(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.on_order_cancelled(uow, d.tenant_id, int(d.payload["order_id"]), svc.clock())
            await uow.commit()

    async def on_refunded(d: Delivery) -> None:
        p = d.payload
        async with svc.uows() as uow:
            await service.on_order_refunded(
                uow, d.tenant_id, int(p["order_id"]), int(p["member_id"]), refund_fen=int(p["refund_fen"]),
                paid_fen=int(p["paid_fen"]), full=bool(p["full"]), ref=f"d{d.id}", now=svc.clock())
            await uow.commit()

    async def on_joined(d: Delivery) -> None:
        async with svc.uows() as uow:
            await service.issue_on_event(uow, d.tenant_id, int(d.payload["member_id"]), "member.joined",
                                         svc.clock())
            await uow.commit()

    async def on_joined_many(ds: Sequence[Delivery]) -> None:
        """A crowd's welcome coupons in one transaction (the templates read once per tenant)."""
        by_tenant: dict[int, list[int]] = {}
        for d in ds:
            by_tenant.setdefault(d.tenant_id, []).append(int(d.payload["member_id"]))
        async with svc.uows() as uow:
            for tenant, members in by_tenant.items():
                await service.issue_on_event_many(uow, tenant, members, "member.joined", svc.clock())
            await uow.commit()

    async def on_team_succeeded(d: Delivery) -> None:
        """Coupons of templates issued on "groupbuy.succeeded", to the team's members
        (when the event carries `member_ids`)."""
        ids = d.payload.get("member_ids") or []
        async with svc.uows() as uow:
            for member_id in ids if isinstance(ids, list) else []:
                await service.issue_on_event(uow, d.tenant_id, int(member_id), "groupbuy.succeeded", svc.clock())
            await uow.commit()

    async def push_level(d: Delivery) -> None:
        await push(d, "chat/members/push/level_changed.txt")

    async def push_coupon(d: Delivery) -> None:
        if d.payload.get("push", True):      # off: the giver tells the member (birthday: one message)
            await push(d, "chat/members/push/coupon_issued.txt")

    async def push_birthday(d: Delivery) -> None:
        await push(d, "chat/members/push/birthday.txt")

    async def expire() -> int:
        return await service.expire_points(svc.uows, svc.clock())

    async def birthdays() -> int:
        return await service.issue_birthday_coupons(svc.uows, svc.clock())

    reg.subscribe("order.paid", "loyalty.earn", on_paid)
    reg.subscribe("order.cancelled", "loyalty.release", on_cancelled)
    reg.subscribe("order.refunded", "loyalty.refund", on_refunded)
    reg.subscribe("member.joined", "loyalty.welcome", Batched(on_joined, on_joined_many))
    reg.subscribe("groupbuy.team_succeeded", "loyalty.groupbuy_coupons", on_team_succeeded)
    reg.subscribe("loyalty.level_changed", "loyalty.push_level", push_level)
    reg.subscribe("loyalty.coupon_issued", "loyalty.push_coupon", push_coupon)
    reg.subscribe("loyalty.birthday_coupons", "loyalty.push_birthday", push_birthday)
    reg.add_job("loyalty.expire_points", svc.settings.sweep_interval_seconds * 10, expire)
    reg.add_job("loyalty.birthday_coupons", BIRTHDAY_JOB_SECONDS, birthdays)


MODULE = Module(NAME, setup, "Membership: levels, points, sign-in, coupons, promotions at checkout")
