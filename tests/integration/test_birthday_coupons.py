"""Birthdays and birthday coupons on a real database (SQLite and PostgreSQL): the member
sets a birthday once (admins correct it), the birthday job gives each member the birthday
coupons once per year — also when two runs race — on the Shanghai day, Feb 29 birthdays
on Feb 28 of a common year; and with the loyalty module off, checkout prices plainly and
locks nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from social_mall.errors import BirthdayLockedError
from social_mall.loyalty import merge
from social_mall.loyalty import service as loyalty
from social_mall.members.rules import Birthday
from social_mall.members.service import (
    add_address,
    change_birthday,
    member_birthday,
    resolve_member,
    set_birthday,
)
from social_mall.orders.service import place_order
from social_mall.pricing import service as pricing
from social_mall.pricing.rules import CouponKind
from social_mall.pricing.service import AUTO, PricingInput
from storage.db import session_factory
from storage.loyalty_models import BirthdayGift, Coupon, CouponTemplate, OrderDiscount
from storage.models import AuditEntry, OutboxEvent, Sku
from storage.uow import uow_factory

SHANGHAI = timezone(timedelta(hours=8))


def at_shanghai(y: int, m: int, d: int, hour: int = 9) -> datetime:
    return datetime(y, m, d, hour, tzinfo=SHANGHAI).astimezone(timezone.utc)


async def member(uows, tenant, name: str, born: Birthday | None = None) -> int:
    async with uows() as uow:
        m, _ = await resolve_member(uow, tenant.id, "mp", name)
        if born is not None:
            await set_birthday(uow, tenant.id, m.id, born)
        await uow.commit()
    return m.id


async def birthday_template(uows, tenant, **kw) -> int:
    async with uows() as uow:
        tid = await loyalty.create_template(
            uow, tenant.id, name=kw.pop("name", "生日券"), kind=CouponKind.AMOUNT, off_fen=kw.pop("off_fen", 1000),
            claimable=False, issue_on="birthday", valid_days=30, per_member=1, **kw)
        await uow.commit()
    return tid


async def coupons_of(uows, tenant, member_id: int, template_id: int) -> int:
    async with uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.tenant_id == tenant.id, Coupon.member_id == member_id, Coupon.template_id == template_id)))


async def test_two_birthday_runs_at_once_give_each_member_one_coupon_a_year(uows, demo):
    tid = await birthday_template(uows, demo)
    born = [await member(uows, demo, f"o_bday_{i:02d}", Birthday(5, 2, 1990 if i % 2 else None)) for i in range(12)]
    others = [await member(uows, demo, "o_bday_other_1", Birthday(4, 30)),
              await member(uows, demo, "o_bday_other_2", Birthday(5, 3, 1988)),
              await member(uows, demo, "o_bday_none")]

    # 23:00 on May 1 in Shanghai (15:00 UTC): nobody's birthday yet
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 5, 1, 23)) == 0
    # 01:30 on May 2 in Shanghai is still May 1 in UTC: two runs at once
    now = at_shanghai(2030, 5, 2, 1)
    assert now.day == 1
    served = await asyncio.gather(loyalty.issue_birthday_coupons(uows, now),
                                  loyalty.issue_birthday_coupons(uows, now))
    assert sum(served) == len(born)
    assert [await coupons_of(uows, demo, m, tid) for m in born] == [1] * len(born)
    assert [await coupons_of(uows, demo, m, tid) for m in others] == [0, 0, 0]
    async with uows() as uow:
        gifts = (await uow.session.scalars(select(BirthdayGift).where(BirthdayGift.tenant_id == demo.id))).all()
        pushes = (await uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "loyalty.birthday_coupons"))).all()
        issued = (await uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "loyalty.coupon_issued"))).all()
        template = await loyalty.repo(uow).template(demo.id, tid)
    assert sorted((g.member_id, g.year, g.coupons) for g in gifts) == [(m, 2030, 1) for m in born]
    assert sorted(p.payload["member_id"] for p in pushes) == born          # one push per member …
    assert {p.payload["names"] for p in pushes} == {"生日券"}               # … not one per coupon:
    assert sorted(e.payload["member_id"] for e in issued) == born            # each coupon told (for the record)
    assert {(e.payload["push"], e.payload["channel"]) for e in issued} == {(False, "job")}   # but not pushed
    assert template.claimed_qty == len(born)

    # a later run that day gives nothing more; the next day is only May 3's
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 5, 2, 20)) == 0
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 5, 3)) == 1
    assert [await coupons_of(uows, demo, m, tid) for m in others] == [0, 1, 0]

    # next year: once more (the template's per-member limit is for claims, not for a yearly gift)
    next_year = await asyncio.gather(*(loyalty.issue_birthday_coupons(uows, at_shanghai(2031, 5, 2)) for _ in range(3)))
    assert sum(next_year) == len(born)
    assert [await coupons_of(uows, demo, m, tid) for m in born] == [2] * len(born)


async def test_a_feb_29_birthday_is_celebrated_on_feb_28_in_a_common_year(uows, demo):
    tid = await birthday_template(uows, demo)
    leapling = await member(uows, demo, "o_leapling", Birthday(2, 29, 2000))
    feb28 = await member(uows, demo, "o_feb28", Birthday(2, 28))

    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2031, 2, 27)) == 0
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2031, 2, 28)) == 2     # 2031 is common
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2031, 3, 1)) == 0
    assert await coupons_of(uows, demo, leapling, tid) == 1

    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2032, 2, 28)) == 1     # 2032 is leap
    assert await coupons_of(uows, demo, leapling, tid) == 1
    assert await coupons_of(uows, demo, feb28, tid) == 2
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2032, 2, 29)) == 1
    assert await coupons_of(uows, demo, leapling, tid) == 2


async def test_a_sold_out_birthday_coupon_is_given_once_the_merchant_tops_it_up(uows, demo):
    tid = await birthday_template(uows, demo, total_qty=1)
    a = await member(uows, demo, "o_bday_a", Birthday(7, 7))
    b = await member(uows, demo, "o_bday_b", Birthday(7, 7))
    now = at_shanghai(2030, 7, 7)
    assert await loyalty.issue_birthday_coupons(uows, now) == 1
    assert (await coupons_of(uows, demo, a, tid), await coupons_of(uows, demo, b, tid)) == (1, 0)
    async with uows() as uow:   # nothing was given to b: no gift row, so a later run may
        assert await loyalty.repo(uow).birthday_gifted(demo.id, 2030, [a, b]) == {a}
        await uow.session.execute(update(CouponTemplate).where(CouponTemplate.id == tid).values(total_qty=2))
        await uow.commit()
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 7, 7, 15)) == 1
    assert (await coupons_of(uows, demo, a, tid), await coupons_of(uows, demo, b, tid)) == (1, 1)


async def test_the_member_sets_a_birthday_once_and_an_admin_corrects_it(uows, demo):
    m = await member(uows, demo, "o_bday_once")
    async with uows() as uow:
        assert await member_birthday(uow, demo.id, m) is None
        await set_birthday(uow, demo.id, m, Birthday(5, 1, 1990))
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(BirthdayLockedError) as refused:
            await set_birthday(uow, demo.id, m, Birthday(8, 8))
        assert refused.value.facts() == {"month": 5, "day": 1, "year": 1990}
        await change_birthday(uow, demo.id, m, Birthday(8, 8), actor="admin:1")
        await uow.commit()
    async with uows() as uow:
        assert await member_birthday(uow, demo.id, m) == Birthday(8, 8)
        entry = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "member.birthday"))
        assert (entry.actor, entry.before, entry.after) == ("admin:1", {"birthday": "1990-05-01"},
                                                            {"birthday": "08-08"})


async def test_a_merge_keeps_the_birthday_and_its_yearly_gift(uows, demo):
    await birthday_template(uows, demo)
    kept = await member(uows, demo, "o_merge_kept")
    gone = await member(uows, demo, "o_merge_gone", Birthday(9, 9))
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 9, 9)) == 1
    async with uows() as uow:
        await merge.merge_members(uow, demo.id, kept, gone, via="admin", actor="admin:1", now=at_shanghai(2030, 9, 9))
        await uow.commit()
    async with uows() as uow:
        assert await member_birthday(uow, demo.id, kept) == Birthday(9, 9)
        assert await member_birthday(uow, demo.id, gone) is None
        assert await loyalty.repo(uow).birthday_gifted(demo.id, 2030, [kept]) == {kept}
    assert await loyalty.issue_birthday_coupons(uows, at_shanghai(2030, 9, 9, 20)) == 0   # not twice this year


async def test_with_loyalty_off_checkout_prices_plainly_and_holds_nothing(engine, uows, demo):
    off = uow_factory(session_factory(engine), {}, modules=["shop", "pay", "console"])
    now = datetime.now(timezone.utc)
    async with uows() as uow:
        m, _ = await resolve_member(uow, demo.id, "mp", "o_loyalty_off")
        addr = await add_address(uow, demo.id, m.id, "李四", "13912345678", "北京市朝阳区建国路88号")
        sku = await uow.session.scalar(select(Sku).where(Sku.tenant_id == demo.id).order_by(Sku.id).limit(1))
        await loyalty.add_flash_price(uow, demo.id, sku.id, sku.price_fen // 2, starts_at=now - timedelta(hours=1),
                                      ends_at=now + timedelta(hours=1))
        tid = await loyalty.create_template(uow, demo.id, name="立减5元", kind=CouponKind.AMOUNT, off_fen=500)
        coupon = await loyalty.claim(uow, demo.id, m.id, tid, now=now)
        await loyalty.adjust_points(uow, demo.id, m.id, 500, ref="gift", actor="admin:1", note="", now=now)
        await uow.commit()
    async with uows() as uow:   # on: the flash price shows
        assert (await pricing.active_flash_prices(uow, demo.id, [sku.id], now))[sku.id].price_fen == sku.price_fen // 2
    async with off() as uow:
        assert await pricing.active_flash_prices(uow, demo.id, [sku.id], now) == {}
        order = await place_order(uow, demo.id, m.id, [(sku.id, 1)], address_id=addr.id, now=now,
                                  timeout=timedelta(minutes=30), pricing=PricingInput(AUTO, 500))
        await uow.commit()
    assert (order.discount_fen, order.total_fen) == (0, order.goods_fen + order.shipping_fen)
    async with uows() as uow:
        assert (await loyalty.repo(uow).coupon(demo.id, coupon.id))[0].status == "available"
        assert await loyalty.points_balance(uow, demo.id, m.id) == 500
        assert await uow.session.scalar(select(func.count()).select_from(OrderDiscount)) == 0
